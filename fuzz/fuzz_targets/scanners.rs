//! The cookie, query and baggage scanners, percent-decoding and baggage
//! merging on arbitrary bytes: never a panic, and the invariants hold.
#![no_main]

use graymatch::scan;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (name, rest) = data.split_at(data.len().min(4));
    let name = String::from_utf8_lossy(name);
    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append("cookie", v.clone());
            headers.append("baggage", v);
        }
    }
    for v in scan::cookies(&headers, &name) {
        // A value is a slice of a line, trimmed: no ';' inside.
        assert!(!v.contains(&b';'));
    }
    let query = String::from_utf8_lossy(rest);
    for raw in scan::query_params(Some(&query), &name) {
        assert!(!raw.contains(&b'&'));
        for plus in [true, false] {
            scan::with_decoded(raw, plus, |v| {
                assert!(v.len() <= raw.len());
                if !raw.contains(&b'%') && !(plus && raw.contains(&b'+')) {
                    assert_eq!(v, raw);
                }
            });
        }
    }
    let _ = scan::baggage(&headers, &name);
    if let Ok(tag) = graymatch::Tag::new("gray") {
        tag.write(&mut headers);
        assert_eq!(headers.get_all("baggage").iter().count(), 1);
        let merged = headers["baggage"].as_bytes();
        assert!(merged.len() <= scan::BAGGAGE_MAX_BYTES);
        assert!(merged.ends_with(b"gray=gray"));
        assert_eq!(scan::baggage(&headers, "gray"), Some(&b"gray"[..]));
    }
});
