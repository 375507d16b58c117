//! Table-driven decisions: every leaf and operation, combinators, order,
//! fall-through, weights and tags, each case named.

mod support;

use graymatch::Reason;
use support::{req, yaml};

/// One rule `r` sending to `gray` when `cond` holds.
fn one(cond: &str) -> graymatch::Matcher {
    yaml(&format!(
        "default: stable\nrules:\n  - name: r\n    to: gray\n    when: {cond}\n"
    ))
}

struct Case {
    name: &'static str,
    cond: &'static str,
    method: &'static str,
    uri: &'static str,
    headers: &'static [(&'static str, &'static [u8])],
    gray: bool,
}

const fn case(
    name: &'static str,
    cond: &'static str,
    uri: &'static str,
    headers: &'static [(&'static str, &'static [u8])],
    gray: bool,
) -> Case {
    Case {
        name,
        cond,
        method: "GET",
        uri,
        headers,
        gray,
    }
}

const HEADER: &[Case] = &[
    case(
        "equals",
        "{header: {name: x-a, equals: v}}",
        "/",
        &[("x-a", b"v")],
        true,
    ),
    case(
        "equals other",
        "{header: {name: x-a, equals: v}}",
        "/",
        &[("x-a", b"w")],
        false,
    ),
    case(
        "equals absent",
        "{header: {name: x-a, equals: v}}",
        "/",
        &[],
        false,
    ),
    case(
        "name case-insensitive",
        "{header: {name: X-A, equals: v}}",
        "/",
        &[("x-a", b"v")],
        true,
    ),
    case(
        "value case-sensitive",
        "{header: {name: x-a, equals: v}}",
        "/",
        &[("x-a", b"V")],
        false,
    ),
    case(
        "ignore_case",
        "{header: {name: x-a, equals: v, ignore_case: true}}",
        "/",
        &[("x-a", b"V")],
        true,
    ),
    case(
        "any line matches",
        "{header: {name: x-a, equals: v}}",
        "/",
        &[("x-a", b"w"), ("x-a", b"v")],
        true,
    ),
    case(
        "not split on commas",
        "{header: {name: x-a, equals: v}}",
        "/",
        &[("x-a", b"w, v")],
        false,
    ),
    case(
        "in",
        "{header: {name: x-r, in: [hz, sh]}}",
        "/",
        &[("x-r", b"sh")],
        true,
    ),
    case(
        "in miss",
        "{header: {name: x-r, in: [hz, sh]}}",
        "/",
        &[("x-r", b"bj")],
        false,
    ),
    case(
        "in ignore_case",
        "{header: {name: x-r, in: [hz, sh], ignore_case: true}}",
        "/",
        &[("x-r", b"HZ")],
        true,
    ),
    case(
        "in large set",
        "{header: {name: x-r, in: [a, b, c, d, e, f, g, h, i, j, k]}}",
        "/",
        &[("x-r", b"k")],
        true,
    ),
    case(
        "in large set ignore_case",
        "{header: {name: x-r, in: [a, b, c, d, e, f, g, h, i, j, K], ignore_case: true}}",
        "/",
        &[("x-r", b"k")],
        true,
    ),
    case(
        "in large set miss",
        "{header: {name: x-r, in: [a, b, c, d, e, f, g, h, i, j, k]}}",
        "/",
        &[("x-r", b"z")],
        false,
    ),
    case(
        "prefix",
        "{header: {name: x-a, prefix: ab}}",
        "/",
        &[("x-a", b"abc")],
        true,
    ),
    case(
        "prefix miss",
        "{header: {name: x-a, prefix: ab}}",
        "/",
        &[("x-a", b"a")],
        false,
    ),
    case(
        "prefix ignore_case",
        "{header: {name: x-a, prefix: AB, ignore_case: true}}",
        "/",
        &[("x-a", b"abc")],
        true,
    ),
    case(
        "suffix",
        "{header: {name: x-a, suffix: bc}}",
        "/",
        &[("x-a", b"abc")],
        true,
    ),
    case(
        "suffix miss",
        "{header: {name: x-a, suffix: bc}}",
        "/",
        &[("x-a", b"c")],
        false,
    ),
    case(
        "suffix ignore_case",
        "{header: {name: x-a, suffix: BC, ignore_case: true}}",
        "/",
        &[("x-a", b"abc")],
        true,
    ),
    case(
        "contains",
        "{header: {name: x-a, contains: b}}",
        "/",
        &[("x-a", b"abc")],
        true,
    ),
    case(
        "contains miss",
        "{header: {name: x-a, contains: z}}",
        "/",
        &[("x-a", b"abc")],
        false,
    ),
    case(
        "contains ignore_case",
        "{header: {name: x-a, contains: B, ignore_case: true}}",
        "/",
        &[("x-a", b"abc")],
        true,
    ),
    case(
        "regex whole value",
        "{header: {name: x-a, regex: 'b.'}}",
        "/",
        &[("x-a", b"abc")],
        false,
    ),
    case(
        "regex match",
        "{header: {name: x-a, regex: '.*b.*'}}",
        "/",
        &[("x-a", b"abc")],
        true,
    ),
    case(
        "regex alternation anchored",
        "{header: {name: x-a, regex: 'a|b'}}",
        "/",
        &[("x-a", b"ab")],
        false,
    ),
    case(
        "regex ignore_case",
        "{header: {name: x-a, regex: 'abc', ignore_case: true}}",
        "/",
        &[("x-a", b"ABC")],
        true,
    ),
    case(
        "present",
        "{header: {name: x-a, present: true}}",
        "/",
        &[("x-a", b"")],
        true,
    ),
    case(
        "present absent",
        "{header: {name: x-a, present: true}}",
        "/",
        &[],
        false,
    ),
    case(
        "present false",
        "{header: {name: x-a, present: false}}",
        "/",
        &[],
        true,
    ),
    case(
        "present false present",
        "{header: {name: x-a, present: false}}",
        "/",
        &[("x-a", b"1")],
        false,
    ),
    // Non-UTF-8 values are compared as bytes and never match a regex.
    case(
        "non-utf8 equals bytes",
        "{header: {name: x-a, prefix: a}}",
        "/",
        &[("x-a", b"a\xff")],
        true,
    ),
    case(
        "non-utf8 regex",
        "{header: {name: x-a, regex: '.*'}}",
        "/",
        &[("x-a", b"a\xff")],
        false,
    ),
];

const COOKIE: &[Case] = &[
    case(
        "equals",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b"a=1; foo=bar")],
        true,
    ),
    case(
        "not a prefix match",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b"foo=barbaz")],
        false,
    ),
    case(
        "name case-sensitive",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b"Foo=bar")],
        false,
    ),
    case(
        "quoted",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b"foo=\"bar\"")],
        true,
    ),
    case(
        "spaces",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b"  foo =  bar  ;x=1")],
        true,
    ),
    case(
        "second header line",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b"a=1"), ("cookie", b"foo=bar")],
        true,
    ),
    case(
        "any occurrence",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b"foo=x; foo=bar")],
        true,
    ),
    case(
        "in",
        "{cookie: {name: foo, in: [x, bar]}}",
        "/",
        &[("cookie", b"foo=bar")],
        true,
    ),
    case(
        "prefix",
        "{cookie: {name: foo, prefix: ba}}",
        "/",
        &[("cookie", b"foo=bar")],
        true,
    ),
    case(
        "suffix",
        "{cookie: {name: foo, suffix: ar}}",
        "/",
        &[("cookie", b"foo=bar")],
        true,
    ),
    case(
        "contains",
        "{cookie: {name: foo, contains: a}}",
        "/",
        &[("cookie", b"foo=bar")],
        true,
    ),
    case(
        "regex",
        "{cookie: {name: foo, regex: 'b[a-z]+'}}",
        "/",
        &[("cookie", b"foo=bar")],
        true,
    ),
    case(
        "present",
        "{cookie: {name: foo, present: true}}",
        "/",
        &[("cookie", b"foo=")],
        true,
    ),
    case(
        "present false",
        "{cookie: {name: foo, present: false}}",
        "/",
        &[("cookie", b"food=1")],
        true,
    ),
    case(
        "malformed pairs",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[("cookie", b";;=;foo;=x;foo=bar")],
        true,
    ),
    case(
        "no cookie header",
        "{cookie: {name: foo, equals: bar}}",
        "/",
        &[],
        false,
    ),
];

const QUERY: &[Case] = &[
    case(
        "equals",
        "{query: {name: beta, equals: 'on'}}",
        "/?a=1&beta=on",
        &[],
        true,
    ),
    case(
        "other value",
        "{query: {name: beta, equals: 'on'}}",
        "/?beta=off",
        &[],
        false,
    ),
    case(
        "no query",
        "{query: {name: beta, equals: 'on'}}",
        "/",
        &[],
        false,
    ),
    case(
        "plus decoded",
        "{query: {name: team, equals: blue sky}}",
        "/?team=blue+sky",
        &[],
        true,
    ),
    case(
        "percent decoded",
        "{query: {name: team, equals: blue sky}}",
        "/?team=blue%20sky",
        &[],
        true,
    ),
    case(
        "name decoded",
        "{query: {name: team x, equals: a}}",
        "/?team%20x=a",
        &[],
        true,
    ),
    case(
        "bad escape kept",
        "{query: {name: q, equals: '%zz'}}",
        "/?q=%zz",
        &[],
        true,
    ),
    case(
        "non-utf8 decoded bytes",
        "{query: {name: q, prefix: a}}",
        "/?q=a%FF",
        &[],
        true,
    ),
    case(
        "non-utf8 regex",
        "{query: {name: q, regex: '.*'}}",
        "/?q=a%FF",
        &[],
        false,
    ),
    case("in", "{query: {name: q, in: [x, y]}}", "/?q=y", &[], true),
    case(
        "present empty value",
        "{query: {name: beta, present: true}}",
        "/?beta",
        &[],
        true,
    ),
    case(
        "present false",
        "{query: {name: beta, present: false}}",
        "/?betas=1",
        &[],
        true,
    ),
    case(
        "second occurrence",
        "{query: {name: q, equals: b}}",
        "/?q=a&q=b",
        &[],
        true,
    ),
    case(
        "prefix",
        "{query: {name: q, prefix: ab}}",
        "/?q=abc",
        &[],
        true,
    ),
    case(
        "suffix",
        "{query: {name: q, suffix: bc}}",
        "/?q=abc",
        &[],
        true,
    ),
    case(
        "contains ignore_case",
        "{query: {name: q, contains: B, ignore_case: true}}",
        "/?q=abc",
        &[],
        true,
    ),
];

const PATH_METHOD: &[Case] = &[
    case(
        "path prefix",
        "{path: {prefix: /api/}}",
        "/api/v1",
        &[],
        true,
    ),
    case(
        "path prefix miss",
        "{path: {prefix: /api/}}",
        "/apix",
        &[],
        false,
    ),
    case(
        "path equals",
        "{path: {equals: /cart}}",
        "/cart?x=1",
        &[],
        true,
    ),
    case(
        "path not decoded",
        "{path: {equals: /a b}}",
        "/a%20b",
        &[],
        false,
    ),
    case(
        "path regex",
        "{path: {regex: '/users/[0-9]+'}}",
        "/users/42",
        &[],
        true,
    ),
    case(
        "path suffix",
        "{path: {suffix: .json}}",
        "/a.json",
        &[],
        true,
    ),
    case(
        "path contains",
        "{path: {contains: admin}}",
        "/x/admin/y",
        &[],
        true,
    ),
    case("path in", "{path: {in: [/a, /b]}}", "/b", &[], true),
    case("path present", "{path: {present: true}}", "/", &[], true),
    case("method equals", "{method: {equals: GET}}", "/", &[], true),
    case(
        "method case-sensitive",
        "{method: {equals: get}}",
        "/",
        &[],
        false,
    ),
    case(
        "method ignore_case",
        "{method: {equals: get, ignore_case: true}}",
        "/",
        &[],
        true,
    ),
    case("method in", "{method: {in: [POST, PUT]}}", "/", &[], false),
];

const COMBINATORS: &[Case] = &[
    case(
        "all holds",
        "{all: [{header: {name: a, equals: '1'}}, {query: {name: b, present: true}}]}",
        "/?b",
        &[("a", b"1")],
        true,
    ),
    case(
        "all fails",
        "{all: [{header: {name: a, equals: '1'}}, {query: {name: b, present: true}}]}",
        "/",
        &[("a", b"1")],
        false,
    ),
    case("all empty holds", "{all: []}", "/", &[], true),
    case(
        "any holds",
        "{any: [{header: {name: a, equals: '1'}}, {cookie: {name: a, equals: '1'}}]}",
        "/",
        &[("cookie", b"a=1")],
        true,
    ),
    case(
        "any fails",
        "{any: [{header: {name: a, equals: '1'}}, {cookie: {name: a, equals: '1'}}]}",
        "/",
        &[],
        false,
    ),
    case("any empty never", "{any: []}", "/", &[], false),
    case(
        "not",
        "{not: {header: {name: a, present: true}}}",
        "/",
        &[],
        true,
    ),
    case(
        "not fails",
        "{not: {header: {name: a, present: true}}}",
        "/",
        &[("a", b"")],
        false,
    ),
    case(
        "nested",
        "{all: [{not: {any: [{path: {prefix: /admin}}]}}, {method: {equals: GET}}]}",
        "/shop",
        &[],
        true,
    ),
];

#[test]
fn leaves_and_combinators() {
    for (group, cases) in [
        ("header", HEADER),
        ("cookie", COOKIE),
        ("query", QUERY),
        ("path/method", PATH_METHOD),
        ("combinators", COMBINATORS),
    ] {
        for c in cases {
            let m = one(c.cond);
            let d = m.decide(&req(c.method, c.uri, c.headers));
            let want = if c.gray { "gray" } else { "stable" };
            assert_eq!(d.variant(), want, "{group}: {}", c.name);
            assert_eq!(d.rule().is_some(), c.gray, "{group}: {}", c.name);
        }
    }
}

#[test]
fn first_match_wins_and_falls_through() {
    let m = yaml(
        r#"
default: stable
rules:
  - { name: never, to: stable, when: { header: { name: x-canary, equals: never } } }
  - { name: always, to: gray, when: { header: { name: x-canary, equals: always } } }
  - { name: zero, to: v2, percent: 0 }
  - { name: cookie, to: gray, when: { cookie: { name: canary, equals: always } } }
"#,
    );
    let cases: &[(&str, &[(&str, &[u8])], &str, Option<&str>, Reason)] = &[
        (
            "header never beats cookie",
            &[("x-canary", b"never"), ("cookie", b"canary=always")],
            "stable",
            Some("never"),
            Reason::Rule,
        ),
        (
            "header always",
            &[("x-canary", b"always")],
            "gray",
            Some("always"),
            Reason::Rule,
        ),
        (
            "zero percent falls through",
            &[("cookie", b"canary=always")],
            "gray",
            Some("cookie"),
            Reason::Rule,
        ),
        ("nothing: default", &[], "stable", None, Reason::Default),
    ];
    for (name, headers, variant, rule, reason) in cases {
        let d = m.decide(&req("GET", "/", headers));
        assert_eq!(
            (d.variant(), d.rule(), d.reason()),
            (*variant, *rule, *reason),
            "{name}"
        );
    }
}

#[test]
fn random_percent_is_about_right() {
    let m = yaml("default: stable\nrules:\n  - { name: r, to: gray, percent: 20 }\n");
    let gray = (0..20_000)
        .filter(|_| m.decide(&req("GET", "/", &[])).variant() == "gray")
        .count();
    assert!((3_400..4_600).contains(&gray), "{gray} of 20000");
}

#[test]
fn split_falls_through_outside_targets() {
    let m = yaml(
        r#"
default: stable
rules:
  - name: abc
    split: [ { to: v2, percent: 5 }, { to: v3, percent: 5 } ]
    sticky: { cookie: uid, salt: abc-2026 }
  - { name: rest, to: v4, when: { cookie: { name: uid, present: true } } }
"#,
    );
    let mut counts = std::collections::HashMap::new();
    for i in 0..10_000 {
        let cookie = format!("uid=u{i}");
        let d = m.decide(&req("GET", "/", &[("cookie", cookie.as_bytes())]));
        *counts.entry(d.variant()).or_insert(0) += 1;
        // Sticky: the same user again lands the same way.
        assert_eq!(
            m.decide(&req("GET", "/", &[("cookie", cookie.as_bytes())])),
            d
        );
    }
    for v in ["v2", "v3"] {
        assert!((350..650).contains(&counts[v]), "{v}: {counts:?}");
    }
    assert!(counts["v4"] > 8_500, "{counts:?}");
    assert!(!counts.contains_key("stable"));
}

#[test]
fn sticky_missing_key_policies() {
    let m = yaml(
        r#"
default: stable
rules:
  - { name: skip, to: gray, percent: 100, sticky: { header: x-u, missing: skip } }
  - { name: random, to: v2, percent: 50, sticky: { query: u } }
"#,
    );
    // No x-u: `skip` goes on; no u: a random draw.
    let mut v2 = 0;
    for _ in 0..2_000 {
        let d = m.decide(&req("GET", "/", &[]));
        assert_ne!(d.variant(), "gray");
        v2 += usize::from(d.variant() == "v2");
    }
    assert!((800..1_200).contains(&v2), "{v2}");
    assert_eq!(
        m.decide(&req("GET", "/", &[("x-u", b"1")])).rule(),
        Some("skip")
    );
    // The query key is decoded before hashing: both spellings land alike.
    assert_eq!(
        m.decide(&req("GET", "/?u=a%20b", &[])),
        m.decide(&req("GET", "/?u=a+b", &[]))
    );
}

#[test]
fn unleash_algorithm_matches_unleash_users() {
    // Unleash gradualRollout 23 with groupId AB12A: userId 122 (n = 23) is in, 155 (n = 100) is out.
    let m = yaml(
        "default: off\nrules:\n  - { name: r, to: on, percent: 23, sticky: { header: x-user, salt: AB12A, algorithm: unleash } }\n",
    );
    assert_eq!(
        m.decide(&req("GET", "/", &[("x-user", b"122")])).variant(),
        "on"
    );
    let m = yaml(
        "default: off\nrules:\n  - { name: r, to: on, percent: 22, sticky: { header: x-user, salt: AB12A, algorithm: unleash } }\n",
    );
    assert_eq!(
        m.decide(&req("GET", "/", &[("x-user", b"122")])).variant(),
        "off"
    );
    let m = yaml(
        "default: off\nrules:\n  - { name: r, to: on, percent: 99, sticky: { header: x-user, salt: AB12A, algorithm: unleash } }\n",
    );
    assert_eq!(
        m.decide(&req("GET", "/", &[("x-user", b"155")])).variant(),
        "off"
    );
}

#[test]
fn trusted_and_ignored_tags() {
    let rules = |incoming: &str| {
        yaml(&format!(
            "default: stable\nvariants: [stable, gray]\npropagation: {{ incoming: {incoming} }}\nrules:\n  - {{ name: r, to: stable, when: {{ header: {{ name: x-force, present: true }} }} }}\n"
        ))
    };
    let trust = rules("trust");
    let ignore = rules("ignore");
    type Headers = &'static [(&'static str, &'static [u8])];
    let cases: &[(&str, Headers, &str, Reason, &str)] = &[
        (
            "header tag",
            &[("x-gray", b"gray")],
            "gray",
            Reason::Propagated,
            "stable",
        ),
        (
            "baggage tag",
            &[("baggage", b"a=1, gray=gray;p")],
            "gray",
            Reason::Propagated,
            "stable",
        ),
        (
            "encoded baggage tag",
            &[("baggage", b"gray=%67ray")],
            "gray",
            Reason::Propagated,
            "stable",
        ),
        (
            "header first",
            &[("x-gray", b"stable"), ("baggage", b"gray=gray")],
            "stable",
            Reason::Propagated,
            "stable",
        ),
        (
            "unknown header, baggage next",
            &[("x-gray", b"nope"), ("baggage", b"gray=gray")],
            "gray",
            Reason::Propagated,
            "stable",
        ),
        (
            "unknown tag: rules decide",
            &[("x-gray", b"v9"), ("x-force", b"1")],
            "stable",
            Reason::Rule,
            "stable",
        ),
        (
            "non-utf8 tag ignored",
            &[("x-gray", b"\xffgray")],
            "stable",
            Reason::Default,
            "stable",
        ),
        (
            "case matters",
            &[("x-gray", b"GRAY")],
            "stable",
            Reason::Default,
            "stable",
        ),
    ];
    for (name, headers, variant, reason, ignored) in cases {
        let d = trust.decide(&req("GET", "/", headers));
        assert_eq!(
            (d.variant(), d.reason()),
            (*variant, *reason),
            "trust: {name}"
        );
        assert_eq!(
            ignore.decide(&req("GET", "/", headers)).variant(),
            *ignored,
            "ignore: {name}"
        );
    }
}

#[test]
fn exact_runs_keep_first_match_order() {
    // 40 rules on one header, some percent 0, some with overlapping sets: the
    // shared index must give the same answer as rule-by-rule evaluation.
    let mut text = String::from("default: stable\nrules:\n");
    for i in 0..40 {
        let percent = if i % 7 == 3 { 0 } else { 100 };
        text.push_str(&format!(
            "  - {{ name: r{i}, to: v{}, percent: {percent}, when: {{ header: {{ name: x-id, in: [k{i}, k{}, shared] }} }} }}\n",
            i % 3,
            i / 2
        ));
    }
    let m = yaml(&text);
    for (value, rule) in [
        ("k3", Some("r6")),
        ("k0", Some("r0")),
        ("shared", Some("r0")),
        ("k40", None),
    ] {
        let d = m.decide(&req("GET", "/", &[("x-id", value.as_bytes())]));
        assert_eq!(d.rule(), rule, "{value}");
    }
    // Two header lines: the earliest rule holding for either.
    let d = m.decide(&req("GET", "/", &[("x-id", b"k30"), ("x-id", b"k12")]));
    assert_eq!(d.rule(), Some("r12"));
}

#[test]
fn tag_written_for_decision() {
    let m = yaml("default: stable\npropagation: { header: X-Lane, baggage: lane }\n");
    let d = m.decide(&req("GET", "/", &[]));
    let mut headers = http::HeaderMap::new();
    headers.insert("baggage", "lane=old,k=v".parse().unwrap());
    m.tag(&d).write(&mut headers);
    assert_eq!(headers["x-lane"], "stable");
    assert_eq!(headers["baggage"], "k=v,lane=stable");
}
