//! Rule-set text (JSON or YAML, chosen by the first byte) -> parse ->
//! compile -> decide: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let parsed = match kind % 3 {
        0 => graymatch::RuleSet::from_json(text),
        1 => graymatch::RuleSet::from_yaml(text),
        _ => graymatch::RuleSet::from_toml(text),
    };
    let Ok(rules) = parsed else { return };
    let Ok(m) = rules.compile() else { return };
    let req = http::Request::get("/a?b=1&c=%41")
        .header("cookie", "a=1; b=\"2\"")
        .header("x-user-id", "u-1")
        .header("baggage", "gray=gray")
        .body(())
        .unwrap();
    let d = m.decide(&req);
    let mut headers = http::HeaderMap::new();
    m.tag(&d).write(&mut headers);
    let _ = m.explain(&req).to_string();
});
