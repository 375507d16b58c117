//! Every invalid rule set is refused with an error that names its place.

use graymatch::{Condition, Field, Op, Rule, RuleSet, Target};

/// (case, YAML rule set, expected message)
const CASES: &[(&str, &str, &str)] = &[
    (
        "gt without as",
        "default: s\nrules:\n  - {name: v, to: g, when: {header: {name: x-v, gt: 5}}}",
        "rules[0] (v): when.header: `gt` needs `as: number`, `as: semver` or `as: version`",
    ),
    (
        "as with a string op",
        "default: s\nrules:\n  - {name: v, to: g, when: {header: {name: x-v, prefix: '5', as: version}}}",
        "rules[0] (v): when.header: `as: version` goes with equals, in, gt, gte, lt and lte, not `prefix`",
    ),
    (
        "as with cidr",
        "default: s\nrules:\n  - {name: v, to: g, when: {client_ip: {cidr: [10.0.0.0/8], as: number}}}",
        "rules[0] (v): when.client_ip: `as: number` goes with equals, in, gt, gte, lt and lte, not `cidr`",
    ),
    (
        "rule value not a version",
        "default: s\nrules:\n  - {name: v, to: g, when: {header: {name: x-v, gte: latest, as: version}}}",
        "rules[0] (v): when.header: \"latest\" is not a version (1 to 4 dot-separated numbers, an optional v)",
    ),
    (
        "rule value not semver",
        "default: s\nrules:\n  - {name: v, to: g, when: {header: {name: x-v, in: ['1.0.0', '1.0'], as: semver}}}",
        "rules[0] (v): when.header: \"1.0\" is not a semver version (MAJOR.MINOR.PATCH, SemVer 2.0.0)",
    ),
    (
        "rule value not a number",
        "default: s\nrules:\n  - {name: v, to: g, when: {query: {name: n, lt: '012', as: number}}}",
        "rules[0] (v): when.query: \"012\" is not a number (a decimal number as JSON writes it)",
    ),
    (
        "typed ignore_case",
        "default: s\nrules:\n  - {name: v, to: g, when: {header: {name: x-v, lt: 5, as: number, ignore_case: true}}}",
        "rules[0] (v): when.header: ignore_case goes with string operations, not `lt` with `as`",
    ),
    (
        "bad network",
        "default: s\nrules:\n  - {name: office, to: g, when: {all: [{client_ip: {cidr: [10.0.0.0/33]}}]}}",
        "rules[0] (office): when.all[0].client_ip: \"10.0.0.0/33\" is not a network: write an address with a prefix length (10.0.0.0/8, 2001:db8::/32) or a bare address",
    ),
    (
        "empty cidr",
        "default: s\nrules:\n  - {name: office, to: g, when: {header: {name: x-ip, cidr: []}}}",
        "rules[0] (office): when.header: `cidr` needs at least one network",
    ),
    (
        "percent sum",
        "default: s\nrules:\n  - {name: abc, split: [{to: a, percent: 60}, {to: b, percent: 60}]}",
        "rules[0] (abc): percents sum to 120, more than 100",
    ),
    (
        "percent sum with decimals",
        "default: s\nrules:\n  - {name: abc, split: [{to: a, percent: 60.25}, {to: b, percent: 40}]}",
        "rules[0] (abc): percents sum to 100.25, more than 100",
    ),
    (
        "percent over 100",
        "default: s\nrules:\n  - {name: r, to: g, percent: 101}",
        "rules[0] (r): percent 101 is not between 0 and 100",
    ),
    (
        "negative percent",
        "default: s\nrules:\n  - {name: r, to: g, percent: -1}",
        "rules[0] (r): percent -1 is not between 0 and 100",
    ),
    (
        "five decimals",
        "default: s\nrules:\n  - {name: r, to: g, percent: 1.00001}",
        "rules[0] (r): percent 1.00001 has more than 4 decimals",
    ),
    (
        "unleash non-integer",
        "default: s\nrules:\n  - {name: r, to: g, percent: 2.5, sticky: {header: x-u, algorithm: unleash}}",
        "rules[0] (r): percent 2.5 is not a whole number, as algorithm: unleash needs",
    ),
    (
        "duplicate rule",
        "default: s\nrules:\n  - {name: r, to: g}\n  - {name: r, to: g}",
        "rules[1] (r): rule name `r` is used twice",
    ),
    (
        "bad rule name",
        "default: s\nrules:\n  - {name: 'has space', to: g}",
        "rules[0]: invalid rule name \"has space\": names are 1 to 64 of [A-Za-z0-9._-]",
    ),
    (
        "long rule name",
        "default: s\nrules:\n  - {name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, to: g}",
        "rules[0]: invalid rule name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": names are 1 to 64 of [A-Za-z0-9._-]",
    ),
    (
        "bad variant name",
        "default: s\nrules:\n  - {name: r, to: 'a,b'}",
        "rules[0] (r): invalid variant name \"a,b\": names are 1 to 64 of [A-Za-z0-9._-]",
    ),
    (
        "bad default",
        "default: 'a b'",
        "default: invalid variant name \"a b\": names are 1 to 64 of [A-Za-z0-9._-]",
    ),
    (
        "undeclared variant",
        "default: s\nvariants: [s, gray]\nrules:\n  - {name: r, to: grey}",
        "rules[0] (r): variant `grey` is not declared in variants",
    ),
    (
        "undeclared default",
        "default: s\nvariants: [gray]",
        "default: variant `s` is not declared in variants",
    ),
    (
        "variant declared twice",
        "default: s\nvariants: [s, s]",
        "variants[1]: variant `s` is declared twice",
    ),
    (
        "to and split",
        "default: s\nrules:\n  - {name: r, to: g, split: [{to: a, percent: 1}]}",
        "rules[0] (r): a rule has `to` or `split`, not both",
    ),
    (
        "neither to nor split",
        "default: s\nrules:\n  - {name: r}",
        "rules[0] (r): a rule needs `to` or `split`",
    ),
    (
        "percent with split",
        "default: s\nrules:\n  - {name: r, percent: 5, split: [{to: a, percent: 1}]}",
        "rules[0] (r): `percent` goes with `to`; a split gives each target its own",
    ),
    (
        "empty split",
        "default: s\nrules:\n  - {name: r, split: []}",
        "rules[0] (r): `split` needs at least one target",
    ),
    (
        "target twice",
        "default: s\nrules:\n  - {name: r, split: [{to: a, percent: 1}, {to: a, percent: 2}]}",
        "rules[0] (r): variant `a` is a target twice",
    ),
    (
        "bad header name",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: 'x a', equals: v}}}",
        "rules[0] (r): when.header: invalid header name \"x a\"",
    ),
    (
        "nested bad header name",
        "default: s\nrules:\n  - {name: r, to: g, when: {all: [{path: {prefix: /}}, {not: {header: {name: '', present: true}}}]}}",
        "rules[0] (r): when.all[1].not.header: invalid header name \"\"",
    ),
    (
        "bad cookie name",
        "default: s\nrules:\n  - {name: r, to: g, when: {cookie: {name: 'a;b', equals: v}}}",
        "rules[0] (r): when.cookie: invalid cookie name \"a;b\": a cookie name is a token",
    ),
    (
        "empty query name",
        "default: s\nrules:\n  - {name: r, to: g, when: {query: {name: '', equals: v}}}",
        "rules[0] (r): when.query: a query parameter name cannot be empty",
    ),
    (
        "bad regex",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: x, regex: 'a('}}}",
        "rules[0] (r): when.header: regex \"a(\" does not compile: unclosed group",
    ),
    (
        "unbalanced regex cannot escape anchors",
        "default: s\nrules:\n  - {name: r, to: g, when: {path: {regex: 'a)|(b'}}}",
        "rules[0] (r): when.path: regex \"a)|(b\" does not compile: unopened group",
    ),
    (
        "regex too big",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: x, regex: '\\w{1000}\\w{1000}'}}}",
        "rules[0] (r): when.header: regex \"\\\\w{1000}\\\\w{1000}\" does not compile: Compiled regex exceeds size limit of 1048576 bytes.",
    ),
    (
        // A run's regex rules decide through the run's one regex and build
        // no engine of their own: their patterns are still checked alone.
        "regex too big, in a literal run",
        "default: s\nrules:\n  - {name: a, to: g, when: {path: {prefix: /a}}}\n  - {name: b, to: g, when: {path: {prefix: /b}}}\n  - {name: c, to: g, when: {path: {prefix: /c}}}\n  - {name: d, to: g, when: {path: {prefix: /d}}}\n  - {name: e, to: g, when: {path: {prefix: /e}}}\n  - {name: f, to: g, when: {path: {prefix: /f}}}\n  - {name: h, to: g, when: {path: {prefix: /h}}}\n  - {name: r, to: g, when: {path: {regex: '\\w{1000}\\w{1000}'}}}",
        "rules[7] (r): when.path: regex \"\\\\w{1000}\\\\w{1000}\" does not compile: Compiled regex exceeds size limit of 1048576 bytes.",
    ),
    (
        "empty in",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: x, in: []}}}",
        "rules[0] (r): when.header: `in` needs at least one value",
    ),
    (
        "ignore_case with present",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: x, present: true, ignore_case: true}}}",
        "rules[0] (r): when.header: ignore_case goes with string operations, not present",
    ),
    (
        "sticky needs one source",
        "default: s\nrules:\n  - {name: r, to: g, percent: 5, sticky: {header: x, cookie: y}}",
        "rules[0] (r): sticky: needs exactly one of header, cookie, query",
    ),
    (
        "sticky no source",
        "default: s\nrules:\n  - {name: r, to: g, percent: 5, sticky: {salt: x}}",
        "rules[0] (r): sticky: needs exactly one of header, cookie, query",
    ),
    (
        "sticky bad header",
        "default: s\nrules:\n  - {name: r, to: g, percent: 5, sticky: {header: 'a b'}}",
        "rules[0] (r): sticky: invalid header name \"a b\"",
    ),
    (
        "propagation header",
        "default: s\npropagation: {header: 'x gray'}",
        "propagation.header: invalid header name \"x gray\"",
    ),
    (
        "propagation baggage",
        "default: s\npropagation: {baggage: 'a=b'}",
        "propagation.baggage: invalid baggage key \"a=b\": a key is a token (letters, digits, !#$%&'*+-.^_`|~)",
    ),
];

#[test]
fn invalid_rule_sets_name_their_place() {
    for (name, text, want) in CASES {
        let set = RuleSet::from_yaml(text).unwrap_or_else(|e| panic!("{name}: parse: {e}"));
        let err = set.compile().expect_err(name);
        assert_eq!(err.to_string(), *want, "case {name}");
        assert!(err.place().is_some(), "case {name}");
    }
}

/// A run whose one regex is past one regex's size limit (here 300 regexes
/// of about 5 KB) has each of its patterns checked alone: the one that is
/// too big alone is refused with its place, though the run's regex, whose
/// limit scales with its patterns, would have built.
#[test]
fn a_pattern_too_big_alone_is_refused_in_a_large_run() {
    let mut text = String::from("default: s\nrules:\n");
    for i in 0..300 {
        text.push_str(&format!(
            "  - {{name: r{i}, to: g, when: {{path: {{regex: '/t/{i}/\\w+/.*'}}}}}}\n"
        ));
    }
    text.push_str("  - {name: big, to: g, when: {path: {regex: '\\w{1000}\\w{1000}'}}}\n");
    let set = RuleSet::from_yaml(&text).unwrap();
    let err = set.compile().expect_err("too big alone");
    assert_eq!(
        err.to_string(),
        "rules[300] (big): when.path: regex \"\\\\w{1000}\\\\w{1000}\" does not compile: Compiled regex exceeds size limit of 1048576 bytes."
    );
    // Without it, the same run compiles (each pattern checked alone).
    let ok = RuleSet::from_yaml(text.rsplit_once("  - {name: big").unwrap().0).unwrap();
    assert!(ok.compile().is_ok());
}

/// (case, YAML, substring of the message): shape errors found while reading.
const PARSE_CASES: &[(&str, &str, &str)] = &[
    ("missing default", "rules: []", "missing field `default`"),
    (
        "unknown top-level field",
        "default: s\ncolour: red",
        "unknown field `colour`",
    ),
    (
        "unknown rule field",
        "default: s\nrules:\n  - {name: r, to: g, weight: 5}",
        "unknown field `weight`",
    ),
    (
        "two ops",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: x, equals: a, prefix: b}}}",
        "exactly one of equals, in, prefix, suffix, contains, regex, present, gt, gte, lt, lte, cidr, segment_prefix (found equals, prefix)",
    ),
    (
        "host takes no name",
        "default: s\nrules:\n  - {name: h, to: g, when: {host: {name: x, equals: a}}}",
        "a path, method, host or client_ip condition takes no `name`",
    ),
    (
        "no op",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: x}}}",
        "(found none)",
    ),
    (
        "leaf without name",
        "default: s\nrules:\n  - {name: r, to: g, when: {cookie: {equals: a}}}",
        "needs a `name`",
    ),
    (
        "path with name",
        "default: s\nrules:\n  - {name: r, to: g, when: {path: {name: x, equals: a}}}",
        "takes no `name`",
    ),
    (
        "two condition keys",
        "default: s\nrules:\n  - {name: r, to: g, when: {header: {name: x, equals: a}, cookie: {name: x, equals: a}}}",
        "(found header, cookie)",
    ),
    (
        "unknown condition",
        "default: s\nrules:\n  - {name: r, to: g, when: {body: {equals: a}}}",
        "unknown field `body`",
    ),
    (
        "bad incoming",
        "default: s\npropagation: {incoming: maybe}",
        "unknown variant `maybe`",
    ),
    (
        "bad algorithm",
        "default: s\nrules:\n  - {name: r, to: g, sticky: {header: x, algorithm: md5}}",
        "unknown variant `md5`",
    ),
    (
        "percent as text",
        "default: s\nrules:\n  - {name: r, to: g, percent: many}",
        "invalid type",
    ),
    ("not yaml", "default: [", "invalid YAML rule set"),
];

#[test]
fn malformed_text_is_refused_with_its_place() {
    for (name, text, want) in PARSE_CASES {
        let err = RuleSet::from_yaml(text).expect_err(name);
        let msg = err.to_string();
        assert!(msg.contains(want), "case {name}: {msg}");
        assert!(
            msg.starts_with("invalid YAML rule set: "),
            "case {name}: {msg}"
        );
        assert_eq!(err.place(), None);
    }
}

#[test]
fn json_and_toml_errors_too() {
    let err =
        RuleSet::from_json(r#"{"default": "s", "rules": [{"name": "r", "to": "g", "colour": 1}]}"#)
            .unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = RuleSet::from_toml("default = \"s\"\n[[rules]]\nname = \"r\"\nto = \"g\"\nwhen = { header = { name = \"x\" } }\n").unwrap_err();
    assert!(err.to_string().contains("(found none)"), "{err}");
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let mut cond = Condition::Header(Field::new("x", Op::Present(true)));
    for _ in 0..graymatch::MAX_DEPTH {
        cond = Condition::Not(Box::new(cond));
    }
    let mut set = RuleSet::new("s");
    set.rules.push(Rule::to("deep", "g").when(cond));
    let err = set.compile().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rules[0] (deep): when.not.not."),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("conditions nest deeper than 32 levels"),
        "{err}"
    );

    // One level less compiles.
    let mut cond = Condition::Header(Field::new("x", Op::Present(true)));
    for _ in 0..graymatch::MAX_DEPTH - 1 {
        cond = Condition::Not(Box::new(cond));
    }
    set.rules[0] = Rule::to("deep", "g").when(cond);
    assert!(set.compile().is_ok());
}

#[test]
fn deep_json_is_refused_without_overflowing_the_stack() {
    // Regression guard: serde_json's recursion limit stops this before compile.
    let deep = format!(
        "{{\"default\": \"s\", \"rules\": [{{\"name\": \"r\", \"to\": \"g\", \"when\": {}{}}}]}}",
        "{\"not\": ".repeat(5_000),
        "}".repeat(5_000)
    );
    assert!(RuleSet::from_json(&deep).is_err());
    let deep_yaml = format!(
        "default: s\nrules:\n  - name: r\n    to: g\n    when: {}{{path: {{present: true}}}}{}\n",
        "{not: ".repeat(5_000),
        "}".repeat(5_000)
    );
    assert!(RuleSet::from_yaml(&deep_yaml).is_err());
}

#[test]
fn regressions_found_in_review() {
    // A fifth decimal above a few percent passed a relative tolerance.
    let err = RuleSet::from_yaml("default: s\nrules:\n  - {name: r, to: g, percent: 20.00001}")
        .unwrap()
        .compile()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rules[0] (r): percent 20.00001 has more than 4 decimals"
    );
    // A 0 % rule skipped the check of its sticky key.
    let err = RuleSet::from_yaml(
        "default: s\nrules:\n  - {name: r, to: g, percent: 0, sticky: {header: 'a b'}}",
    )
    .unwrap()
    .compile()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rules[0] (r): sticky: invalid header name \"a b\""
    );
    // Thousands of full targets overflowed a u32 sum (a debug-build panic).
    let targets: Vec<Target> = (0..5_000)
        .map(|i| Target::new(format!("v{i}"), 100.0))
        .collect();
    let mut set = RuleSet::new("s");
    set.rules.push(Rule::split("many", targets));
    let err = set.compile().unwrap_err();
    assert_eq!(
        err.to_string(),
        "rules[0] (many): percents sum to 500000, more than 100"
    );
}

#[test]
fn parse_errors_name_the_rule_in_every_format() {
    // Two operations in the second rule's leaf, in each format: the error
    // names the rule by index and name, the path inside it, and the line.
    // (Regression: JSON gave no path, TOML a multi-line snippet, and none
    // named the rule.)
    let cases: &[(&str, Result<RuleSet, graymatch::CompileError>, &str)] = &[
        (
            "yaml",
            RuleSet::from_yaml(
                "default: s\nrules:\n  - { name: ok, to: g }\n  - name: bad\n    to: g\n    when: { header: { name: x, equals: a, prefix: b } }\n",
            ),
            "invalid YAML rule set: rules[1] (bad).when: a condition needs exactly one of",
        ),
        (
            "json",
            RuleSet::from_json(
                r#"{"default": "s", "rules": [{"name": "ok", "to": "g"},
                {"name": "bad", "to": "g", "when": {"header": {"name": "x", "equals": "a", "prefix": "b"}}}]}"#,
            ),
            "invalid JSON rule set: rules[1] (bad).when.header: a condition needs exactly one of",
        ),
        (
            "toml",
            RuleSet::from_toml(
                "default = \"s\"\n[[rules]]\nname = \"ok\"\nto = \"g\"\n[[rules]]\nname = \"bad\"\nto = \"g\"\nwhen = { header = { name = \"x\", equals = \"a\", prefix = \"b\" } }\n",
            ),
            "invalid TOML rule set: rules[1] (bad).when.header: a condition needs exactly one of",
        ),
    ];
    for (name, result, want) in cases {
        let msg = result.as_ref().unwrap_err().to_string();
        assert!(msg.starts_with(want), "case {name}: {msg}");
        assert!(msg.contains(" at line "), "case {name}: {msg}");
        assert_eq!(msg.lines().count(), 1, "case {name}: one line: {msg}");
    }
}
