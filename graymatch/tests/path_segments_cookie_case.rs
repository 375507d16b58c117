//! `segment_prefix` and cookie `name_ignore_case`: the leaves the importers
//! of ingress-nginx and Gateway API rule sets need.

use graymatch::RuleSet;

fn decide(rules: &str, uri: &str, cookie: Option<&str>) -> &'static str {
    let m = RuleSet::from_yaml(rules).unwrap().compile().unwrap();
    let mut req = http::Request::get(uri);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    m.decide(&req.body(()).unwrap()).variant()
}

#[test]
fn segment_prefix_matches_whole_segments() {
    let rules = |p: &str, fold: bool| {
        format!(
            "default: other\nrules:\n  - {{ name: r, to: hit, when: {{ path: {{ segment_prefix: {p:?}, ignore_case: {fold} }} }} }}\n"
        )
    };
    let cases: &[(&str, &str, bool, &str, bool)] = &[
        ("the prefix itself", "/api", false, "/api", true),
        ("with trailing slash", "/api", false, "/api/", true),
        ("below", "/api", false, "/api/v1/x", true),
        ("not a segment", "/api", false, "/apis", false),
        ("shorter", "/api", false, "/ap", false),
        (
            "prefix trailing slash ignored",
            "/api/",
            false,
            "/api",
            true,
        ),
        (
            "prefix trailing slash, below",
            "/api/",
            false,
            "/api/v1",
            true,
        ),
        (
            "prefix trailing slash, not a segment",
            "/api/",
            false,
            "/apiv1",
            false,
        ),
        (
            "root holds for every path",
            "/",
            false,
            "/anything/at/all",
            true,
        ),
        ("root holds for root", "/", false, "/", true),
        ("case-sensitive", "/api", false, "/API", false),
        ("ignore_case", "/api", true, "/API/v1", true),
        ("query not part of path", "/api", false, "/api?x=/y", true),
        ("deeper prefix", "/a/b", false, "/a/bc", false),
        ("deeper prefix below", "/a/b", false, "/a/b/c", true),
    ];
    for (name, prefix, fold, uri, want) in cases {
        let got = decide(&rules(prefix, *fold), uri, None);
        assert_eq!(got == "hit", *want, "case {name}: {uri} under {prefix}");
    }
}

#[test]
fn cookie_names_compare_without_case_when_asked() {
    let rules = |any_case: bool| {
        format!(
            "default: other\nrules:\n  - {{ name: r, to: hit, when: {{ cookie: {{ name: Canary, equals: always, name_ignore_case: {any_case} }} }} }}\n"
        )
    };
    let cases: &[(&str, bool, &str, bool)] = &[
        ("exact name", false, "Canary=always", true),
        ("other case, exact names", false, "canary=always", false),
        ("other case, any case", true, "canary=always", true),
        ("upper, any case", true, "CANARY=always", true),
        ("value still exact", true, "canary=Always", false),
        ("longer name", true, "canaryx=always", false),
        ("second pair", true, "a=1; CANARY=always", true),
    ];
    for (name, any_case, cookie, want) in cases {
        let got = decide(&rules(*any_case), "/", Some(cookie));
        assert_eq!(got == "hit", *want, "case {name}");
    }
}

#[test]
fn new_leaves_round_trip_and_refuse_misuse() {
    let text = "default: s\nrules:\n  - name: r\n    to: g\n    when:\n      all:\n        - path: { segment_prefix: /api }\n        - cookie: { name: c, equals: x, name_ignore_case: true }\n";
    let set = RuleSet::from_yaml(text).unwrap();
    let again = RuleSet::from_yaml(&serde_yaml_ng::to_string(&set).unwrap()).unwrap();
    assert_eq!(set, again);
    let errors: &[(&str, &str, &str)] = &[
        (
            "name_ignore_case on a header",
            "default: s\nrules: [ { name: r, to: g, when: { header: { name: x, equals: y, name_ignore_case: true } } } ]\n",
            "rules[0] (r): when.header: name_ignore_case goes with cookie conditions (header names are always compared without case)",
        ),
        (
            "name_ignore_case on a query",
            "default: s\nrules: [ { name: r, to: g, when: { query: { name: x, equals: y, name_ignore_case: true } } } ]\n",
            "rules[0] (r): when.query: name_ignore_case goes with cookie conditions (query names are compared exactly)",
        ),
        (
            "name_ignore_case on a path",
            "default: s\nrules: [ { name: r, to: g, when: { path: { equals: /, name_ignore_case: true } } } ]\n",
            "name_ignore_case goes with cookie conditions",
        ),
        (
            "segment_prefix with as",
            "default: s\nrules: [ { name: r, to: g, when: { path: { segment_prefix: /a, as: number } } } ]\n",
            "`as: number` goes with equals, in, gt, gte, lt and lte, not `segment_prefix`",
        ),
    ];
    for (name, text, want) in errors {
        let err = RuleSet::from_yaml(text)
            .and_then(|s| s.compile().map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "case {name}: {err}");
    }
}
