//! Typed comparisons, networks, the client address and the host, table by
//! table, each case named; SemVer precedence checked against the `semver`
//! crate.

mod support;

use graymatch::ClientIp;
use proptest::prelude::*;
use support::{req, yaml};

/// One rule `r` sending to `gray` when `cond` holds.
fn one(cond: &str) -> graymatch::Matcher {
    yaml(&format!(
        "default: stable\nrules:\n  - name: r\n    to: gray\n    when: {cond}\n"
    ))
}

/// Whether a request with header `x-v: value` goes gray under `cond`.
fn header_holds(m: &graymatch::Matcher, value: &[u8]) -> bool {
    m.decide(&req("GET", "/", &[("x-v", value)])).variant() == "gray"
}

#[test]
fn numbers() {
    // (case, condition, request value, holds)
    let cases: &[(&str, &str, &[u8], bool)] = &[
        (
            "gt integer",
            "{header: {name: x-v, gt: 20, as: number}}",
            b"21",
            true,
        ),
        (
            "gt equal",
            "{header: {name: x-v, gt: 20, as: number}}",
            b"20",
            false,
        ),
        (
            "gt by value not text",
            "{header: {name: x-v, gt: 9, as: number}}",
            b"10",
            true,
        ),
        (
            "gte decimal equal",
            "{header: {name: x-v, gte: 20, as: number}}",
            b"20.0",
            true,
        ),
        (
            "equals 1e3",
            "{header: {name: x-v, equals: 1000, as: number}}",
            b"1e3",
            true,
        ),
        (
            "equals rule 1e3",
            "{header: {name: x-v, equals: '1e3', as: number}}",
            b"1000",
            true,
        ),
        (
            "negative zero equals zero",
            "{header: {name: x-v, equals: 0, as: number}}",
            b"-0",
            true,
        ),
        (
            "leading plus",
            "{header: {name: x-v, lt: 10, as: number}}",
            b"+9.5",
            true,
        ),
        (
            "negative",
            "{header: {name: x-v, lt: 0, as: number}}",
            b"-1e-3",
            true,
        ),
        (
            "in by value",
            "{header: {name: x-v, in: [1, 2.5], as: number}}",
            b"2.50",
            true,
        ),
        (
            "in none",
            "{header: {name: x-v, in: [1, 2.5], as: number}}",
            b"3",
            false,
        ),
        (
            "leading zero does not parse",
            "{header: {name: x-v, gt: 1, as: number}}",
            b"012",
            false,
        ),
        (
            "word does not parse",
            "{header: {name: x-v, lt: 1e9, as: number}}",
            b"lots",
            false,
        ),
        (
            "inf does not parse",
            "{header: {name: x-v, gt: 1, as: number}}",
            b"inf",
            false,
        ),
        (
            "hex does not parse",
            "{header: {name: x-v, gt: 1, as: number}}",
            b"0x10",
            false,
        ),
        (
            "non-UTF-8 never matches",
            "{header: {name: x-v, lt: 1e9, as: number}}",
            b"1\xff",
            false,
        ),
        (
            "empty never matches",
            "{header: {name: x-v, lte: 0, as: number}}",
            b"",
            false,
        ),
    ];
    for (name, cond, value, want) in cases {
        assert_eq!(header_holds(&one(cond), value), *want, "case {name}");
    }
}

#[test]
fn versions() {
    // (case, condition, request value, holds)
    let cases: &[(&str, &str, &[u8], bool)] = &[
        (
            "5.10 is newer than 5.2",
            "{header: {name: x-v, gte: '5.2.0', as: version}}",
            b"5.10",
            true,
        ),
        (
            "5.9 is older than 5.10",
            "{header: {name: x-v, lt: '5.10', as: version}}",
            b"5.9",
            true,
        ),
        (
            "missing parts are 0",
            "{header: {name: x-v, equals: '5.2', as: version}}",
            b"5.2.0.0",
            true,
        ),
        (
            "v prefix",
            "{header: {name: x-v, equals: '5.2.0', as: version}}",
            b"v5.2",
            true,
        ),
        (
            "fourth part counts",
            "{header: {name: x-v, gt: '5.2', as: version}}",
            b"5.2.0.1",
            true,
        ),
        (
            "pre-release below release",
            "{header: {name: x-v, lt: '5.2', as: version}}",
            b"5.2.0-beta.1",
            true,
        ),
        (
            "build ignored",
            "{header: {name: x-v, equals: '5.2', as: version}}",
            b"5.2+abc",
            true,
        ),
        (
            "leading zeros allowed",
            "{header: {name: x-v, equals: '5.2', as: version}}",
            b"05.02",
            true,
        ),
        (
            "word does not parse",
            "{header: {name: x-v, lt: '99', as: version}}",
            b"latest",
            false,
        ),
        (
            "five parts do not parse",
            "{header: {name: x-v, lt: '99', as: version}}",
            b"1.2.3.4.5",
            false,
        ),
        (
            "semver strict: two parts do not parse",
            "{header: {name: x-v, lt: '9.0.0', as: semver}}",
            b"5.2",
            false,
        ),
        (
            "semver strict: v does not parse",
            "{header: {name: x-v, lt: '9.0.0', as: semver}}",
            b"v5.2.0",
            false,
        ),
        (
            "semver strict: leading zero",
            "{header: {name: x-v, lt: '9.0.0', as: semver}}",
            b"05.2.0",
            false,
        ),
        (
            "semver pre numeric below alnum",
            "{header: {name: x-v, lt: '1.0.0-alpha', as: semver}}",
            b"1.0.0-1",
            true,
        ),
        (
            "semver pre numeric by value",
            "{header: {name: x-v, gt: '1.0.0-beta.2', as: semver}}",
            b"1.0.0-beta.11",
            true,
        ),
        (
            "semver longer pre is higher",
            "{header: {name: x-v, gt: '1.0.0-alpha', as: semver}}",
            b"1.0.0-alpha.1",
            true,
        ),
        (
            "semver build ignored",
            "{header: {name: x-v, equals: '1.0.0+a', as: semver}}",
            b"1.0.0+b",
            true,
        ),
        (
            "semver in",
            "{header: {name: x-v, in: ['1.0.0', '2.0.0'], as: semver}}",
            b"2.0.0",
            true,
        ),
        (
            "non-UTF-8",
            "{header: {name: x-v, lt: '9', as: version}}",
            b"1.\xff",
            false,
        ),
    ];
    for (name, cond, value, want) in cases {
        assert_eq!(header_holds(&one(cond), value), *want, "case {name}");
    }
}

#[test]
fn any_occurrence_and_other_leaves() {
    let m = one("{header: {name: x-v, gt: '5', as: version}}");
    // Repeated headers: any line that parses and compares holds.
    let r = req("GET", "/", &[("x-v", b"latest"), ("x-v", b"6")]);
    assert_eq!(m.decide(&r).variant(), "gray");
    let m = one("{query: {name: items, gt: 20, as: number}}");
    assert_eq!(m.decide(&req("GET", "/?items=2%31", &[])).variant(), "gray");
    let m = one("{cookie: {name: app, gte: '2.0', as: version}}");
    assert_eq!(
        m.decide(&req("GET", "/", &[("cookie", b"a=1; app=\"2.1\"")]))
            .variant(),
        "gray"
    );
}

#[test]
fn networks() {
    // (case, condition, header value, holds)
    let cases: &[(&str, &str, &[u8], bool)] = &[
        (
            "v4 in /8",
            "{header: {name: x-v, cidr: [10.0.0.0/8]}}",
            b"10.2.3.4",
            true,
        ),
        (
            "v4 outside",
            "{header: {name: x-v, cidr: [10.0.0.0/8]}}",
            b"11.2.3.4",
            false,
        ),
        (
            "v6",
            "{header: {name: x-v, cidr: ['2001:db8::/32']}}",
            b"2001:db8::42",
            true,
        ),
        (
            "bare host",
            "{header: {name: x-v, cidr: [192.0.2.7]}}",
            b"192.0.2.7",
            true,
        ),
        (
            "mapped counts as v4",
            "{header: {name: x-v, cidr: [10.0.0.0/8]}}",
            b"::ffff:10.0.0.1",
            true,
        ),
        (
            "v4 not in v6 /0",
            "{header: {name: x-v, cidr: ['::/0']}}",
            b"10.0.0.1",
            false,
        ),
        (
            "zone does not parse",
            "{header: {name: x-v, cidr: ['fe80::/10']}}",
            b"fe80::1%eth0",
            false,
        ),
        (
            "port does not parse",
            "{header: {name: x-v, cidr: [10.0.0.0/8]}}",
            b"10.0.0.1:80",
            false,
        ),
        (
            "word",
            "{header: {name: x-v, cidr: [0.0.0.0/0]}}",
            b"localhost",
            false,
        ),
        (
            "non-UTF-8",
            "{header: {name: x-v, cidr: [0.0.0.0/0]}}",
            b"10.0.0.\xff",
            false,
        ),
    ];
    for (name, cond, value, want) in cases {
        assert_eq!(header_holds(&one(cond), value), *want, "case {name}");
    }
}

#[test]
fn client_address() {
    let office = one("{client_ip: {cidr: [10.0.0.0/8, '2001:db8::/32']}}");
    let with = |ip: &str| {
        let mut r = req("GET", "/", &[("x-forwarded-for", b"10.0.0.1")]);
        r.extensions_mut().insert(ClientIp(ip.parse().unwrap()));
        r
    };
    // (case, client address or none, holds)
    let cases: &[(&str, Option<&str>, bool)] = &[
        ("inside v4", Some("10.1.2.3"), true),
        ("inside v6", Some("2001:db8::1"), true),
        ("mapped", Some("::ffff:10.1.2.3"), true),
        ("outside", Some("192.0.2.1"), false),
        // A client-supplied header is never the client address.
        ("absent, despite x-forwarded-for", None, false),
    ];
    for (name, ip, want) in cases {
        let r = match ip {
            Some(ip) => with(ip),
            None => req("GET", "/", &[("x-forwarded-for", b"10.0.0.1")]),
        };
        assert_eq!(office.decide(&r).variant() == "gray", *want, "case {name}");
    }
    let absent = one("{client_ip: {present: false}}");
    assert_eq!(absent.decide(&req("GET", "/", &[])).variant(), "gray");
    let text = one("{client_ip: {equals: '2001:db8::1'}}");
    assert_eq!(text.decide(&with("2001:db8::1")).variant(), "gray");
    // Parts carry the extension too.
    let (parts, ()) = with("10.0.0.9").into_parts();
    assert_eq!(office.decide(&parts).variant(), "gray");
}

#[test]
fn hosts() {
    // (case, condition, uri, host header, holds)
    let cases: &[(&str, &str, &str, Option<&[u8]>, bool)] = &[
        (
            "header, port and case",
            "{host: {equals: shop.example.com}}",
            "/",
            Some(b"Shop.Example.COM:8443"),
            true,
        ),
        (
            "absolute URI",
            "{host: {equals: shop.example.com}}",
            "http://shop.example.com/cart",
            None,
            true,
        ),
        (
            "URI wins over header",
            "{host: {equals: shop.example.com}}",
            "http://other.example.com/",
            Some(b"shop.example.com"),
            false,
        ),
        (
            "trailing dot",
            "{host: {equals: shop.example.com}}",
            "/",
            Some(b"shop.example.com."),
            true,
        ),
        (
            "rule value any case",
            "{host: {equals: SHOP.example.com}}",
            "/",
            Some(b"shop.example.com"),
            true,
        ),
        (
            "suffix wildcard",
            "{host: {suffix: .preview.example.com}}",
            "/",
            Some(b"pr-1.preview.example.com"),
            true,
        ),
        (
            "ipv6 keeps brackets",
            "{host: {equals: '[2001:db8::1]'}}",
            "/",
            Some(b"[2001:db8::1]:443"),
            true,
        ),
        (
            "ipv6 by cidr",
            "{host: {cidr: ['2001:db8::/32']}}",
            "/",
            Some(b"[2001:db8::1]:443"),
            true,
        ),
        (
            "regex without case",
            "{host: {regex: '[a-z]+\\.example\\.com'}}",
            "/",
            Some(b"SHOP.example.com"),
            true,
        ),
        ("no host", "{host: {present: false}}", "/", None, true),
        (
            "empty host is none",
            "{host: {present: true}}",
            "/",
            Some(b""),
            false,
        ),
        (
            "first host header only",
            "{host: {equals: b.example}}",
            "/",
            Some(b"a.example"),
            false,
        ),
    ];
    for (name, cond, uri, host, want) in cases {
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(h) = host {
            headers.push(("host", h));
        }
        if *name == "first host header only" {
            headers.push(("host", b"b.example"));
        }
        let got = one(cond).decide(&req("GET", uri, &headers)).variant() == "gray";
        assert_eq!(got, *want, "case {name}");
    }
}

#[test]
fn explain_shows_typed_comparisons() {
    let m = one("{header: {name: x-app-version, gte: '5.2.0', as: version}}");
    let e = m.explain(&req("GET", "/", &[("x-app-version", b"5.10")]));
    assert_eq!(
        e.rules()[0].to_string(),
        "r: decided gray: condition held (x-app-version 5.10 (version) >= 5.2.0: held), 100 percent"
    );
    let e = m.explain(&req("GET", "/", &[("x-app-version", b"5.1.9")]));
    assert!(
        e.rules()[0]
            .why()
            .ends_with("(x-app-version 5.1.9 (version) >= 5.2.0: failed)"),
        "{e}"
    );
    let e = m.explain(&req("GET", "/", &[("x-app-version", b"latest")]));
    assert!(
        e.rules()[0].why().contains("\"latest\" is not a version"),
        "{e}"
    );
}

fn semver_text() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        Just("0".to_owned()),
        Just("1".to_owned()),
        Just("10".to_owned()),
        Just("2".to_owned())
    ];
    let id = prop_oneof![
        Just("alpha"),
        Just("beta"),
        Just("rc"),
        Just("1"),
        Just("2"),
        Just("11"),
        Just("0a"),
        Just("x-y")
    ];
    (
        num.clone(),
        num.clone(),
        num,
        prop::collection::vec(id, 0..3),
        prop::option::of(Just("+build.1")),
    )
        .prop_map(|(a, b, c, pre, build)| {
            let mut s = format!("{a}.{b}.{c}");
            if !pre.is_empty() {
                s.push('-');
                s.push_str(&pre.join("."));
            }
            s.push_str(build.unwrap_or(""));
            s
        })
}

proptest! {
    /// SemVer precedence agrees with the `semver` crate for every operator.
    #[test]
    fn semver_agrees_with_the_semver_crate(a in semver_text(), b in semver_text()) {
        let ord = semver::Version::parse(&a).unwrap().cmp_precedence(&semver::Version::parse(&b).unwrap());
        for (op, want) in [("gt", ord.is_gt()), ("gte", ord.is_ge()), ("lt", ord.is_lt()), ("lte", ord.is_le()), ("equals", ord.is_eq())] {
            let m = one(&format!("{{header: {{name: x-v, {op}: '{b}', as: semver}}}}"));
            prop_assert_eq!(header_holds(&m, a.as_bytes()), want, "{} {} {}", a, op, b);
        }
    }

    /// Numbers compare as the f64 values Rust parses from the same text.
    #[test]
    fn numbers_compare_by_value(a in -1000i64..1000, b in -1000i64..1000, frac in 0u8..4) {
        let text = if frac == 0 { a.to_string() } else { format!("{a}.{}", "0".repeat(usize::from(frac))) };
        let m = one(&format!("{{header: {{name: x-v, lt: '{b}', as: number}}}}"));
        prop_assert_eq!(header_holds(&m, text.as_bytes()), a < b);
    }
}

#[test]
fn regressions_found_in_review() {
    // A run of 4 typed `equals` leaves on one header went through the exact
    // byte index, so `5.2.0` missed `equals: "5.2", as: version`.
    let m = yaml(
        "default: stable\nrules:\n\
         - { name: a, to: gray, when: { header: { name: x-v, equals: '5.2', as: version } } }\n\
         - { name: b, to: gray, when: { header: { name: x-v, equals: '6.0', as: version } } }\n\
         - { name: c, to: gray, when: { header: { name: x-v, in: ['7', '8'], as: version } } }\n\
         - { name: d, to: gray, when: { header: { name: x-v, equals: 12, as: number } } }\n",
    );
    for (value, rule) in [("5.2.0", "a"), ("v6", "b"), ("8.0.0", "c"), ("12.0", "d")] {
        let d = m.decide(&req("GET", "/", &[("x-v", value.as_bytes())]));
        assert_eq!(d.rule(), Some(rule), "{value}");
    }
    // An unquoted YAML float lost its digits (5.10 became "5.1").
    let err = graymatch::RuleSet::from_yaml(
        "default: s\nrules: [{ name: r, to: g, when: { header: { name: x-v, equals: 5.10 } } }]",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("write the value in quotes"),
        "{err}"
    );
    let err = graymatch::RuleSet::from_yaml(
        "default: s\nrules: [{ name: r, to: g, when: { header: { name: x-v, gte: 5.10, as: version } } }]",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("5.1 was read as a number"),
        "{err}"
    );
    // ... but a number is a number, and integers keep their spelling.
    let m = one("{header: {name: x-v, gt: 1.5, as: number}}");
    assert!(header_holds(&m, b"2"));
    let m = one("{header: {name: x-v, equals: 42}}");
    assert!(header_holds(&m, b"42"));
    // A host rule with a trailing dot never matched: the request's is removed.
    let m = one("{host: {equals: shop.example.com.}}");
    assert_eq!(
        m.decide(&req("GET", "/", &[("host", b"shop.example.com")]))
            .variant(),
        "gray"
    );
    // A dual-stack peer `::ffff:10.1.2.3` reads as 10.1.2.3 for string ops.
    let m = one("{client_ip: {prefix: '10.'}}");
    let mut r = req("GET", "/", &[]);
    r.extensions_mut()
        .insert(ClientIp("::ffff:10.1.2.3".parse().unwrap()));
    assert_eq!(m.decide(&r).variant(), "gray");
    // Numbers past the float range do not parse.
    let m = one("{header: {name: x-v, gt: 1, as: number}}");
    assert!(!header_holds(&m, b"1e400"));
}
