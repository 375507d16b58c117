//! Runs of string leaves on one field (prefix, suffix, contains, equals,
//! `in`, segment prefix, regex), decided by one scan per occurrence, agree
//! with evaluating the rules one by one: named edge cases, each checked
//! against the expected rule and against the naive interpreter.

mod support;

use support::req;

/// Fillers before a case's rules, so that the run is long enough to be
/// scanned once (and never match the cases' values).
const FILLERS: usize = 8;

/// The rule set of a case: fillers on `field`, then a rule `c{i}` per entry
/// of `rules` (`OP` or `OP | EXTRA`, EXTRA being more of the rule, such as
/// `percent: 0`), then a catch-all `last`.
fn rule_set(field: &str, rules: &[&str]) -> graymatch::RuleSet {
    let mut text = String::from("default: stable\nrules:\n");
    for k in 0..FILLERS {
        text.push_str(&format!(
            "  - {{ name: f{k}, to: stable, when: {{ {field} prefix: zz-filler-{k} }} }} }}\n"
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        let (op, extra) = r.split_once(" | ").unwrap_or((r, ""));
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("{extra}, ")
        };
        text.push_str(&format!(
            "  - {{ name: c{i}, to: gray, {extra}when: {{ {field} {op} }} }} }}\n"
        ));
    }
    text.push_str("  - { name: last, to: other }\n");
    graymatch::RuleSet::from_yaml(&text).expect("case parses")
}

#[test]
fn edge_cases() {
    const H: &str = "header: { name: x-a,";
    const P: &str = "path: {";
    const HOST: &str = "host: {";
    const Q: &str = "query: { name: q,";
    // (case, field, rules, method + uri, headers, the rule that decides)
    let cases: &[(&str, &str, &[&str], &str, &[(&str, &[u8])], &str)] = &[
        (
            "overlapping literals: the first rule in order wins, not the first hit",
            P,
            &["contains: bc", "prefix: /ab", "prefix: /a"],
            "/abc",
            &[],
            "c0",
        ),
        (
            "overlapping literals, the later hit is the earlier rule",
            P,
            &["contains: /abc/d", "prefix: /ab", "contains: bc/"],
            "/abc/d",
            &[],
            "c0",
        ),
        (
            "one literal inside another",
            H,
            &["equals: b", "contains: b", "equals: abc"],
            "/",
            &[("x-a", b"abc")],
            "c1",
        ),
        (
            "a prefix that is also a suffix",
            H,
            &["suffix: ba", "prefix: ab"],
            "/",
            &[("x-a", b"abab")],
            "c1",
        ),
        (
            "a literal found twice, anchored only the second time",
            H,
            &["prefix: xab", "suffix: abx", "suffix: ab"],
            "/",
            &[("x-a", b"abxab")],
            "c2",
        ),
        (
            "the same literal as prefix, suffix and equals",
            H,
            &["equals: ab", "prefix: ab", "suffix: ab"],
            "/",
            &[("x-a", b"xab")],
            "c2",
        ),
        (
            "found in the middle only: contains, not prefix or suffix",
            H,
            &["prefix: b", "suffix: b", "contains: b"],
            "/",
            &[("x-a", b"abc")],
            "c2",
        ),
        (
            "empty literal: a prefix of every value",
            H,
            &["prefix: zz", "suffix: ''"],
            "/",
            &[("x-a", b"abc")],
            "c1",
        ),
        (
            "empty literal: equals only the empty value",
            H,
            &["equals: ''", "contains: ''"],
            "/",
            &[("x-a", b"abc")],
            "c1",
        ),
        (
            "empty literal on an empty value",
            H,
            &["equals: ''", "contains: ''"],
            "/",
            &[("x-a", b"")],
            "c0",
        ),
        (
            "ignore_case and exact case on one literal",
            H,
            &["prefix: ab", "prefix: ab, ignore_case: true", "prefix: AB"],
            "/",
            &[("x-a", b"ABC")],
            "c1",
        ),
        (
            "ignore_case contains and regex",
            H,
            &[
                "contains: XB",
                "regex: 'A.*C', ignore_case: true",
                "contains: xB, ignore_case: true",
            ],
            "/",
            &[("x-a", b"axbc")],
            "c1",
        ),
        (
            "non-UTF-8 value never matches a regex, literals still do",
            H,
            &["regex: 'a.*'", "regex: '.*'", "prefix: a", "suffix: b"],
            "/",
            &[("x-a", b"a\xffb")],
            "c2",
        ),
        (
            "non-UTF-8 value, suffix after the invalid byte",
            H,
            &["regex: '.*b'", "suffix: b"],
            "/",
            &[("x-a", b"\xff\xfeb")],
            "c1",
        ),
        (
            "repeated header: a later line satisfies an earlier rule",
            H,
            &["prefix: ab", "prefix: zz"],
            "/",
            &[("x-a", b"zzz"), ("x-a", b"abc")],
            "c0",
        ),
        (
            "repeated header: rule order across lines",
            H,
            &["suffix: yy", "prefix: zz", "regex: 'y+'"],
            "/",
            &[("x-a", b"zzz"), ("x-a", b"yy")],
            "c0",
        ),
        (
            "absent header: no rule of the run decides",
            H,
            &["prefix: ''", "contains: ''", "regex: '.*'"],
            "/",
            &[],
            "last",
        ),
        (
            "a draw of 0 % falls outside: the next candidate decides",
            H,
            &[
                "prefix: a | percent: 0",
                "prefix: ab | percent: 0",
                "contains: b",
            ],
            "/",
            &[("x-a", b"abc")],
            "c2",
        ),
        (
            // The run's search names the first matching regex only; the
            // later ones are searched for one by one with its own regex
            // (their leaves have no engines of their own).
            "a regex whose draw falls outside: the next matching regex decides",
            H,
            &["regex: 'a.*' | percent: 0", "regex: 'x.*'", "regex: '.*c'"],
            "/",
            &[("x-a", b"abc")],
            "c2",
        ),
        (
            "a regex falls outside: a later ignore_case regex decides",
            H,
            &[
                "regex: 'a.*' | percent: 0",
                "regex: 'AB.', ignore_case: true",
            ],
            "/",
            &[("x-a", b"abc")],
            "c1",
        ),
        (
            "a regex falls outside: a later regex holds on another line",
            H,
            &["regex: 'a.*' | percent: 0", "prefix: q", "regex: 'z+'"],
            "/",
            &[("x-a", b"abc"), ("x-a", b"zzz")],
            "c2",
        ),
        (
            "a regex falls outside: a later regex never holds on non-UTF-8",
            H,
            &["regex: 'a.*' | percent: 0", "regex: '.*b'"],
            "/",
            &[("x-a", b"abc"), ("x-a", b"\xffb")],
            "last",
        ),
        (
            // The lazy DFA quits on a non-ASCII byte near a Unicode word
            // boundary; the run's PikeVM answers instead.
            "a Unicode word boundary over non-ASCII: the run's PikeVM decides",
            H,
            &["prefix: q", "regex: '\\w+\\b'"],
            "/",
            &[("x-a", "héllo".as_bytes())],
            "c1",
        ),
        (
            "the PikeVM searched for one pattern after a draw falls outside",
            H,
            &[
                "regex: 'h.*' | percent: 0",
                "regex: '\\bh\\w+'",
                "regex: '.*'",
            ],
            "/",
            &[("x-a", "héllo".as_bytes())],
            "c1",
        ),
        (
            "the PikeVM: no regex matches",
            H,
            &["regex: '\\w+\\b\\d'"],
            "/",
            &[("x-a", "héllo".as_bytes())],
            "last",
        ),
        (
            "sticky with missing: skip and no key: the next candidate decides",
            H,
            &[
                "prefix: a | percent: 50, sticky: { cookie: uid, missing: skip }",
                "contains: c",
            ],
            "/",
            &[("x-a", b"abc")],
            "c1",
        ),
        (
            "sticky by the leaf's own header, 100 %: decides",
            H,
            &[
                "contains: c | percent: 100, sticky: { header: x-a, missing: skip }",
                "prefix: a",
            ],
            "/",
            &[("x-a", b"abc")],
            "c0",
        ),
        (
            "host compares without case, trailing dot of a rule value",
            HOST,
            &[
                "suffix: .Other.com",
                "equals: Shop.Example.COM.",
                "suffix: .example.com",
            ],
            "http://SHOP.example.com:8080/",
            &[],
            "c1",
        ),
        (
            "query values are decoded before the scan",
            Q,
            &["prefix: '%41'", "prefix: Ab", "regex: 'a b'"],
            "/?q=%41b",
            &[],
            "c1",
        ),
        (
            "query with + as a space, regex",
            Q,
            &["equals: a+b", "regex: 'a b'"],
            "/?q=a+b",
            &[],
            "c1",
        ),
        (
            "segment prefix: /a is not a segment of /ab",
            P,
            &["segment_prefix: /a", "prefix: /a"],
            "/ab",
            &[],
            "c1",
        ),
        (
            "segment prefix: /a/ covers /a/b",
            P,
            &["prefix: /b", "segment_prefix: /a/"],
            "/a/b",
            &[],
            "c1",
        ),
        (
            "in list: any value, whole",
            H,
            &["in: [ab, abcd]", "in: [x, abc]"],
            "/",
            &[("x-a", b"abc")],
            "c1",
        ),
        (
            "several regexes match: the first in order",
            P,
            &["regex: '/b.*'", "regex: '/a.*'", "regex: '/a/.*'"],
            "/a/b",
            &[],
            "c1",
        ),
    ];
    for (name, field, rules, uri, headers, want) in cases {
        let set = rule_set(field, rules);
        let m = set.compile().expect("case compiles");
        let r = req("GET", uri, headers);
        let got = m.decide(&r);
        assert_eq!(got.rule().unwrap_or("-"), *want, "case {name}");
        if let Some((variant, rule)) = support::naive::decide(&set, &r) {
            assert_eq!(
                (got.variant(), got.rule()),
                (variant.as_str(), rule.as_deref()),
                "case {name}: the naive interpreter"
            );
        }
    }
}
