//! Hostile input through the public API: every case has a defined outcome
//! and none panics.

mod support;

use std::time::Instant;

use graymatch::{Condition, Field, Op, Reason, Rule, RuleSet};
use support::{req, yaml};

const RULES: &str = r#"
default: stable
variants: [stable, gray, v2]
propagation: { incoming: trust }
rules:
  - { name: cookie, to: gray, when: { cookie: { name: uid, equals: last } } }
  - { name: header, to: v2, when: { header: { name: x-a, equals: needle } } }
  - { name: query, to: v2, when: { query: { name: q, regex: '[a-z]+' } } }
  - { name: sticky, to: gray, percent: 50, sticky: { cookie: sid, missing: skip } }
"#;

#[test]
fn huge_and_malformed_requests_have_defined_outcomes() {
    let m = yaml(RULES);
    let big_cookie = format!("{}; uid=last", "x=".to_owned() + &"y".repeat(64 * 1024));
    let many_cookies = (0..10_000)
        .map(|i| format!("c{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("; ")
        + "; uid=last";
    let many_headers: Vec<(&str, &[u8])> = (0..1_000)
        .map(|_| ("x-a", &b"hay"[..]))
        .chain([("x-a", &b"needle"[..])])
        .collect();
    let oversized_baggage = format!("{},gray=gray", "k=v,".repeat(3_000));
    let long_tag = "g".repeat(10_000);
    let too_many_members = (0..200)
        .map(|i| format!("m{i}=1"))
        .collect::<Vec<_>>()
        .join(",")
        + ",gray=gray";
    // (case, method, uri, headers, variant, reason)
    let cases: Vec<(&str, &str, String, Vec<(&str, &[u8])>, &str, Reason)> = vec![
        (
            "64 KiB cookie header",
            "GET",
            "/".into(),
            vec![("cookie", big_cookie.as_bytes())],
            "gray",
            Reason::Rule,
        ),
        (
            "10,000 cookies",
            "GET",
            "/".into(),
            vec![("cookie", many_cookies.as_bytes())],
            "gray",
            Reason::Rule,
        ),
        (
            "1,000 repeated headers",
            "GET",
            "/".into(),
            many_headers,
            "v2",
            Reason::Rule,
        ),
        (
            "non-UTF-8 everywhere",
            "GET",
            "/".into(),
            vec![
                ("x-a", b"\xff\xfe"),
                ("cookie", b"uid=\xff; sid=\xfe"),
                ("x-gray", b"\xff"),
            ],
            "gray",
            Reason::Rule,
        ),
        (
            "malformed cookies",
            "GET",
            "/".into(),
            vec![("cookie", b";;;===;uid;uid=;=last;\"uid\"=last")],
            "stable",
            Reason::Default,
        ),
        (
            "bad escapes",
            "GET",
            "/?q=%&q=%%&q=%zz&q=%F&q=%4".into(),
            vec![],
            "stable",
            Reason::Default,
        ),
        (
            "escape decoding to a letter",
            "GET",
            "/?q=%61%62".into(),
            vec![],
            "v2",
            Reason::Rule,
        ),
        (
            "decoding to non-UTF-8",
            "GET",
            "/?q=%FF".into(),
            vec![],
            "stable",
            Reason::Default,
        ),
        (
            "baggage past 8,192 bytes",
            "GET",
            "/".into(),
            vec![("baggage", oversized_baggage.as_bytes())],
            "stable",
            Reason::Default,
        ),
        (
            "baggage past 180 members",
            "GET",
            "/".into(),
            vec![("baggage", too_many_members.as_bytes())],
            "stable",
            Reason::Default,
        ),
        (
            "baggage within limits",
            "GET",
            "/".into(),
            vec![("baggage", b"a=1,gray=gray")],
            "gray",
            Reason::Propagated,
        ),
        (
            "malformed baggage",
            "GET",
            "/".into(),
            vec![("baggage", b",,;;=,gray,=gray,gray=%zz,gray=")],
            "stable",
            Reason::Default,
        ),
        (
            "unknown tag",
            "GET",
            "/".into(),
            vec![("x-gray", b"v999")],
            "stable",
            Reason::Default,
        ),
        (
            "long tag",
            "GET",
            "/".into(),
            vec![("x-gray", long_tag.as_bytes())],
            "stable",
            Reason::Default,
        ),
    ];
    for (name, method, uri, headers, variant, reason) in &cases {
        let r = req(method, uri, headers);
        let d = m.decide(&r);
        assert_eq!((d.variant(), d.reason()), (*variant, *reason), "{name}");
        // Explaining and tagging the same request is safe too.
        let _ = m.explain(&r).to_string();
        let mut out = r.headers().clone();
        m.tag(&d).write(&mut out);
        assert!(
            out["baggage"].len() <= graymatch::scan::BAGGAGE_MAX_BYTES,
            "{name}"
        );
        assert_eq!(out["x-gray"], *variant, "{name}");
    }
}

#[test]
fn names_that_cannot_travel_are_refused() {
    for bad in [
        "",
        "a b",
        "a,b",
        "a;b",
        "a=b",
        "ä",
        "a\"b",
        "a/b",
        &"x".repeat(65),
    ] {
        let err = RuleSet::new(bad).compile().unwrap_err();
        assert!(
            err.to_string().starts_with("default: invalid variant name"),
            "{bad:?}: {err}"
        );
        assert!(graymatch::Tag::new(bad).is_err(), "{bad:?}");
        let mut set = RuleSet::new("stable");
        set.rules.push(Rule::to("r", bad));
        assert!(set.compile().is_err(), "{bad:?}");
    }
    assert!(RuleSet::new("x".repeat(64)).compile().is_ok());
}

#[test]
fn regex_past_the_size_limit_is_refused() {
    let mut set = RuleSet::new("stable");
    set.rules.push(
        Rule::to("r", "gray").when(Condition::Path(graymatch::Test::new(Op::Regex(
            "(a|b|c){1000}{1000}".into(),
        )))),
    );
    let err = set.compile().unwrap_err();
    assert!(err.to_string().contains("does not compile"), "{err}");
}

#[test]
fn ten_thousand_rules_compile_and_decide() {
    let mut set = RuleSet::new("stable");
    for i in 0..10_000 {
        let cond = match i % 4 {
            0 => Condition::Header(Field::new("x-id", Op::Equals(format!("k{i}")))),
            1 => Condition::Cookie(Field::new(
                "c",
                Op::In(vec![format!("k{i}"), format!("j{i}")]),
            )),
            2 => Condition::Query(Field::new("q", Op::Prefix(format!("k{i}-")))),
            _ => Condition::Not(Box::new(Condition::Header(Field::new(
                "x-never",
                Op::Present(false),
            )))),
        };
        set.rules.push(Rule::to(format!("r{i}"), "gray").when(cond));
    }
    let start = Instant::now();
    let m = set.compile().unwrap();
    eprintln!("10,000 rules compiled in {:?}", start.elapsed());
    assert_eq!(
        m.decide(&req("GET", "/", &[("x-id", b"k9996")])).rule(),
        Some("r9996")
    );
    assert_eq!(
        m.decide(&req("GET", "/", &[("cookie", b"c=j9997")])).rule(),
        Some("r9997")
    );
    assert_eq!(
        m.decide(&req("GET", "/?q=k9998-x", &[])).rule(),
        Some("r9998")
    );
    assert_eq!(m.decide(&req("GET", "/", &[])).variant(), "stable");
}

#[test]
fn malformed_rule_text_is_an_error() {
    let texts = [
        "",
        "default:",
        "default: [a",
        "{{{{",
        "default: s\nrules: 5",
        "default: s\nrules: [ {name: r, to: g, percent: .nan} ]",
        "default: s\nrules: [ {name: r, to: g, percent: 1e400} ]",
        "\u{0}\u{1}",
        "default: !!binary aGVsbG8=",
        "default: s\nrules: [ {name: r, to: g, when: {all: {}}} ]",
        "&a [*a, *a]",
    ];
    for t in texts {
        let outcome = RuleSet::from_yaml(t).and_then(|s| s.compile());
        assert!(outcome.is_err(), "{t:?}");
    }
    for t in [
        "",
        "{",
        "[]",
        "{\"default\": 1}",
        "{\"default\": \"s\", \"rules\": [{}]}",
        "\"\\ud800\"",
    ] {
        assert!(
            RuleSet::from_json(t).and_then(|s| s.compile()).is_err(),
            "{t:?}"
        );
    }
    for t in ["", "default = ", "default = \"s\"\nrules = 1", "[[["] {
        assert!(
            RuleSet::from_toml(t).and_then(|s| s.compile()).is_err(),
            "{t:?}"
        );
    }
}
