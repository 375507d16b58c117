//! The rule-test file loader of `graymatch test` on arbitrary text: it
//! reports, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("graymatch-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(if data.first().is_some_and(|b| b % 2 == 0) { "t.yaml" } else { "t.json" });
    if std::fs::write(&path, data.get(1..).unwrap_or_default()).is_err() {
        return;
    }
    // Bounded work: a `repeat` of millions would only be slow, not wrong.
    if data.windows(6).any(|w| w == b"repeat") {
        return;
    }
    let _ = graymatch_cli::test_file(&path);
});
