//! The `graymatch` binary, run as operators run it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_graymatch"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("graymatch runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn here(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("graymatch-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const RULES: &str = r#"
default: stable
variants: [stable, gray, v2, v3]
rules:
  - { name: never-canary, to: stable, when: { header: { name: x-canary, equals: never } } }
  - name: testers
    to: gray
    when: { any: [ { header: { name: foo, equals: bar } }, { cookie: { name: foo, equals: bar } } ] }
  - { name: canary-20, to: gray, percent: 20, sticky: { header: x-user-id } }
  - { name: abc, split: [ { to: v2, percent: 5 }, { to: v3, percent: 5 } ], sticky: { cookie: uid, salt: abc-2026 } }
"#;

#[test]
fn check_summarises_a_valid_file() {
    let path = scratch("ok.yaml", RULES);
    let out = run(&["check", path.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(": ok"), "{stdout}");
    assert!(
        stdout.contains("variants: stable, gray, v2, v3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("propagation: header x-gray, baggage gray, incoming ignore"),
        "{stdout}"
    );
    assert!(stdout.contains("3. canary-20 -> gray 20% sticky header x-user-id (salt canary-20, graymatch, missing random)"), "{stdout}");
    assert!(
        stdout.contains("4. abc -> v2 5%, v3 5% sticky cookie uid (salt abc-2026"),
        "{stdout}"
    );
}

#[test]
fn check_reads_json_toml_and_stdin() {
    let json = scratch(
        "ok.json",
        r#"{"default": "stable", "rules": [{"name": "r", "to": "gray", "percent": 5}]}"#,
    );
    let toml = scratch(
        "ok.toml",
        "default = \"stable\"\n[[rules]]\nname = \"r\"\nto = \"gray\"\n[rules.when.header]\nname = \"x\"\nequals = \"1\"\n",
    );
    let out = run(&["check", json.to_str().unwrap(), toml.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("1. r -> gray 100% when header x equals \"1\""),
        "{stdout}"
    );

    let mut child = bin()
        .args(["check", "-", "--format", "yaml"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"default: stable\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(text(&out).0.starts_with("<stdin>: ok"));
}

#[test]
fn check_exit_codes() {
    // (case, file contents or None for a missing file, extension, exit code, expected text)
    let cases: &[(&str, Option<&str>, &str, i32, &str)] = &[
        (
            "invalid rule set",
            Some(
                "default: s\nrules: [ { name: abc, split: [ { to: a, percent: 60 }, { to: b, percent: 60 } ] } ]\n",
            ),
            "yaml",
            1,
            "invalid: rules[0] (abc): percents sum to 120, more than 100",
        ),
        (
            "malformed yaml",
            Some("default: [\n"),
            "yaml",
            1,
            "invalid: invalid YAML rule set",
        ),
        (
            "unknown field",
            Some("{\"default\": \"s\", \"x\": 1}"),
            "json",
            1,
            "unknown field `x`",
        ),
        ("missing file", None, "yaml", 2, "cannot read"),
        (
            "unknown extension",
            Some("default: s"),
            "txt",
            2,
            "unknown extension",
        ),
    ];
    for (name, contents, ext, code, want) in cases {
        let path = match contents {
            Some(c) => scratch(&format!("case-{}.{ext}", name.replace(' ', "-")), c),
            None => PathBuf::from("/nonexistent/rules.yaml"),
        };
        let out = run(&["check", path.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(*code), "{name}: {stdout}{stderr}");
        assert!(
            stdout.contains(want) || stderr.contains(want),
            "{name}: {stdout}{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}");
        // Errors fit on one line.
        assert!(stderr.lines().count() <= 1, "{name}: {stderr}");
    }
}

#[test]
fn explain_says_why_each_rule_did_not_decide() {
    let path = scratch("explain.yaml", RULES);
    let out = run(&[
        "explain",
        path.to_str().unwrap(),
        "--uri",
        "/cart?x=1",
        "-H",
        "x-user-id: user-1",
        "--cookie",
        "uid=u-7",
        "--cookie",
        "foo=baz",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        r#"never-canary: did not hold: header x-canary equals "never" (no x-canary header)"#
    );
    assert_eq!(
        lines[1],
        r#"testers: did not hold: none of any: header foo equals "bar" (no foo header); cookie foo equals "bar" (foo="baz")"#
    );
    assert_eq!(
        lines[2],
        r#"canary-20: sticky x-user-id="user-1" bucket 457401 of 1000000 (targets gray [0, 200000)): outside every target"#
    );
    assert_eq!(
        lines[3],
        r#"abc: decided v3: sticky cookie uid="u-7" bucket 73710 of 1000000 (targets v2 [0, 50000), v3 [50000, 100000))"#
    );
    assert_eq!(lines[4], "decision: variant=v3 rule=abc reason=rule");
}

#[test]
fn explain_rejects_bad_arguments_in_one_line() {
    let path = scratch("explain-bad.yaml", RULES);
    for args in [
        vec!["-H", "no colon"],
        vec!["-H", "bad name: x"],
        vec!["--cookie", "novalue"],
        vec!["--uri", "http://[::1"],
        vec!["--method", "G E T"],
    ] {
        let mut all = vec!["explain", path.to_str().unwrap()];
        all.extend(args.iter());
        let out = run(&all);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("graymatch: error: "),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn test_passes_the_projects_rule_tests() {
    let dir = here("tests/rules");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    let mut args = vec!["test"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

#[test]
fn test_passes_the_shared_conformance_files() {
    let dir = here("../../shared/conformance");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // Outside the project's checkout layout (CI always has shared/ beside it).
        assert!(
            std::env::var_os("CI").is_none(),
            "shared/conformance is missing in CI"
        );
        return;
    };
    let files: Vec<String> = entries
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut args = vec!["test"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.ends_with(" passed, 0 failed\n"), "{stdout}");
}

#[test]
fn test_reports_failures_and_unreadable_files() {
    let failing = scratch(
        "failing.yaml",
        "rules:\n  default: stable\n  rules: [ { name: r, to: gray, when: { header: { name: x, equals: '1' } } } ]\ncases:\n  - { name: wrong on purpose, request: { headers: { x: '1' } }, expect: stable }\n  - { name: right, request: { headers: { x: '1' } }, expect: gray, rule: r, reason: rule }\n  - { name: wrong rule, request: { headers: { x: '1' } }, expect: gray, rule: null }\n",
    );
    let out = run(&["test", failing.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].ends_with(
            "failing.yaml: wrong on purpose: expected stable, got gray (rule r) (reason rule)"
        ),
        "{stdout}"
    );
    assert!(
        lines[1].ends_with(
            "failing.yaml: wrong rule: expected gray (rule null), got gray (rule r) (reason rule)"
        ),
        "{stdout}"
    );
    assert_eq!(lines[2], "1 passed, 2 failed");

    let relative = scratch(
        "relative.yaml",
        "rules: ok-rel.yaml\ncases:\n  - { name: default, request: {}, expect: stable }\n",
    );
    scratch("ok-rel.yaml", "default: stable\n");
    let out = run(&[
        "test",
        relative.to_str().unwrap(),
        "/nonexistent/cases.yaml",
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("/nonexistent/cases.yaml: cannot read"),
        "{stdout}"
    );
    // The unreadable file counts as one failure.
    assert!(stdout.ends_with("1 passed, 1 failed\n"), "{stdout}");

    let not_a_test = scratch("not-a-test.yaml", "default: stable\n");
    let out = run(&["test", not_a_test.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).0.contains("not a rule-test file"));
}

#[test]
fn simulate_shares_and_raise() {
    let path = scratch("simulate.yaml", RULES);
    let out = run(&[
        "simulate",
        path.to_str().unwrap(),
        "--users",
        "20000",
        "--requests",
        "1000",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let canary = stdout.lines().find(|l| l.starts_with("canary-20")).unwrap();
    let share: f64 = canary
        .split("gray ")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((19.0..21.0).contains(&share), "{canary}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("testers") && l.contains("gray 100.00%")),
        "{stdout}"
    );

    let out = run(&[
        "simulate",
        path.to_str().unwrap(),
        "--raise",
        "canary-20=30",
    ]);
    let (stdout, _) = text(&out);
    let gray: Vec<u32> = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("gray"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    // before, after, entered, left: raising only adds users.
    assert_eq!(gray[3], 0, "{stdout}");
    assert_eq!(gray[1] - gray[0], gray[2], "{stdout}");

    for bad in [
        "nope=5",
        "canary-20=x",
        "canary-20",
        "canary-20=120",
        "abc/v9=1",
    ] {
        let out = run(&["simulate", path.to_str().unwrap(), "--raise", bad]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr.starts_with("graymatch: error: invalid --raise"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in ["check", "explain", "test", "simulate", "diff"] {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success());
        let (stdout, _) = text(&out);
        assert!(stdout.contains("Example:"), "{cmd}: {stdout}");
    }
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out).1.contains("panicked"));
}

/// The exit code and the last line of `graymatch test`, and the other lines.
fn last_line(stdout: &str) -> &str {
    stdout.lines().last().unwrap_or("")
}

#[test]
fn test_counts_every_file_in_the_summary() {
    scratch("count-rules-ok.yaml", "default: stable\n");
    scratch(
        "count-rules-bad.yaml",
        "default: stable\nrules: [ { name: r, to: g, percent: 150 } ]\n",
    );
    let passing = scratch(
        "count-passing.yaml",
        "rules:\n  default: stable\ncases:\n  - { name: default, expect: stable }\n",
    );
    // (case, test file (None: missing), extra arguments, exit code, last line,
    //  a line that must be printed)
    let cases: &[(&str, Option<&str>, &[&str], i32, &str, &str)] = &[
        (
            "a missing file is one failure",
            None,
            &[],
            2,
            "1 passed, 1 failed",
            "/nonexistent/count.yaml: cannot read",
        ),
        (
            "not a rule-test file is one failure",
            Some("default: stable\n"),
            &[],
            2,
            "1 passed, 1 failed",
            "not a rule-test file",
        ),
        (
            "malformed YAML is one failure",
            Some("rules: [\n"),
            &[],
            2,
            "1 passed, 1 failed",
            "invalid YAML",
        ),
        (
            "an invalid inline rule set fails each case",
            Some(
                "rules:\n  default: stable\n  rules: [ { name: r, to: g, percent: 150 } ]\ncases:\n  - { name: a, expect: stable }\n  - { name: b, expect: g }\n",
            ),
            &[],
            1,
            "1 passed, 2 failed",
            "rules: rules[0] (r): percent 150 is not between 0 and 100 (2 cases not run, counted as failed)",
        ),
        (
            "an invalid rule file fails each case",
            Some("rules: count-rules-bad.yaml\ncases:\n  - { name: a, expect: stable }\n"),
            &[],
            1,
            "1 passed, 1 failed",
            "(1 case not run, counted as failed)",
        ),
        (
            "a missing rule file fails each case",
            Some("rules: count-nope.yaml\ncases:\n  - { name: a, expect: stable }\n"),
            &[],
            2,
            "1 passed, 1 failed",
            "count-nope.yaml: cannot read",
        ),
        (
            "an invalid rule set without cases is one failure",
            Some("rules:\n  default: ''\n"),
            &[],
            1,
            "1 passed, 1 failed",
            "rules: default",
        ),
        (
            "expect_error still passes",
            Some("rules:\n  default: ''\nexpect_error: default\n"),
            &[],
            0,
            "2 passed, 0 failed",
            "",
        ),
        (
            "expect_error with cases is one failure",
            Some(
                "rules:\n  default: ''\nexpect_error: default\ncases: [ { name: a, expect: s } ]\n",
            ),
            &[],
            2,
            "1 passed, 1 failed",
            "a file with expect_error has no cases",
        ),
        (
            "no cases is a warning",
            Some("rules: count-rules-ok.yaml\n"),
            &[],
            0,
            "1 passed, 0 failed",
            "warning: no cases, nothing tested",
        ),
        (
            "empty cases is a warning",
            Some("rules: count-rules-ok.yaml\ncases: []\n"),
            &[],
            0,
            "1 passed, 0 failed",
            "warning: no cases, nothing tested",
        ),
        (
            "no cases is a failure with --strict",
            Some("rules: count-rules-ok.yaml\ncases: []\n"),
            &["--strict"],
            1,
            "1 passed, 1 failed",
            "error: no cases (--strict)",
        ),
    ];
    for (i, (name, contents, extra, code, last, line)) in cases.iter().enumerate() {
        let path = match contents {
            Some(c) => scratch(&format!("count-{i}.yaml"), c),
            None => PathBuf::from("/nonexistent/count.yaml"),
        };
        let mut args = vec!["test"];
        args.extend(extra.iter());
        args.push(passing.to_str().unwrap());
        args.push(path.to_str().unwrap());
        let out = run(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(*code), "{name}: {stdout}{stderr}");
        assert_eq!(last_line(&stdout), *last, "{name}: {stdout}");
        assert!(stdout.contains(line), "{name}: {stdout}");
        assert!(stderr.is_empty(), "{name}: {stderr}");
    }
}

#[test]
fn test_names_the_place_of_an_inline_rule_set_error() {
    // The same rule set, as a rule file for `check` and inline in a test file.
    const RULE_SET: &str = "default: s\nrules:\n  - name: r\n    to: g\n    when:\n      header: { name: x, equals: a, prefix: b }\n";
    let inline: String = RULE_SET.lines().map(|l| format!("  {l}\n")).collect();
    let yaml = format!(
        "# two operations in one leaf\nrules:\n{inline}cases:\n  - {{ name: a, expect: s }}\n"
    );
    // (case, extension, test file, what the error line must say)
    let cases: &[(&str, &str, String, &str)] = &[
        (
            "YAML: the place in the rule set and the line in the test file",
            "yaml",
            yaml,
            "rules: invalid YAML rule set: rules[0] (r).when: a condition needs exactly one of equals, in, prefix, suffix, contains, regex, present, gt, gte, lt, lte, cidr, segment_prefix (found equals, prefix) at line 8 column 9",
        ),
        (
            "YAML: an unknown field",
            "yaml",
            "rules:\n  default: s\n  rules:\n    - { name: r, to: g, weight: 5 }\ncases: [ { name: a, expect: s } ]\n".to_owned(),
            "rules: invalid YAML rule set: rules[0] (r): unknown field `weight`",
        ),
        (
            "YAML: a missing default",
            "yaml",
            "rules:\n  rules: []\ncases: [ { name: a, expect: s } ]\n".to_owned(),
            "rules: invalid YAML rule set: missing field `default` at line 2 column 3",
        ),
        (
            "YAML: a compile error names the rule",
            "yaml",
            "rules:\n  default: s\n  rules: [ { name: abc, split: [ { to: a, percent: 60 }, { to: b, percent: 60 } ] } ]\ncases: [ { name: a, expect: s } ]\n".to_owned(),
            "rules: rules[0] (abc): percents sum to 120, more than 100",
        ),
        (
            "JSON: the line in the test file",
            "json",
            "{\n  \"rules\": {\n    \"default\": \"s\",\n    \"rules\": [\n      {\"name\": \"r\", \"to\": \"g\", \"when\": {\"header\": {\"name\": \"x\", \"equals\": \"a\", \"prefix\": \"b\"}}}\n    ]\n  },\n  \"cases\": [{\"name\": \"a\", \"expect\": \"s\"}]\n}\n".to_owned(),
            "rules: invalid JSON rule set: rules[0] (r).when.header: a condition needs exactly one of equals, in, prefix, suffix, contains, regex, present, gt, gte, lt, lte, cidr, segment_prefix (found equals, prefix) at line 5",
        ),
        (
            "TOML: the line in the test file, on one line",
            "toml",
            "[rules]\ndefault = \"s\"\n\n[[rules.rules]]\nname = \"r\"\nto = \"g\"\nweight = 5\n\n[[cases]]\nname = \"a\"\nexpect = \"s\"\n".to_owned(),
            "rules: invalid TOML rule set: rules[0] (r).weight: unknown field `weight`",
        ),
    ];
    for (i, (name, ext, contents, want)) in cases.iter().enumerate() {
        let path = scratch(&format!("place-{i}.{ext}"), contents);
        let out = run(&["test", path.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{name}: one line per problem: {stdout}");
        assert!(lines[0].contains(want), "{name}: {stdout}");
        if *ext == "toml" {
            assert!(lines[0].contains(" at line 7 column 1"), "{name}: {stdout}");
        }
    }

    // The same words as `check` on the rule set alone.
    let file = scratch("place-check.yaml", RULE_SET);
    let out = run(&["check", file.to_str().unwrap()]);
    let (checked, _) = text(&out);
    let words = |s: &str| -> String {
        let from = s.find("rule set: ").unwrap() + "rule set: ".len();
        let to = s.find(" at line").unwrap();
        s[from..to].to_owned()
    };
    let out = run(&[
        "test",
        scratch("place-0.yaml", &cases[0].2).to_str().unwrap(),
    ]);
    let (tested, _) = text(&out);
    assert_eq!(words(&checked), words(&tested), "{checked}\n{tested}");
}

/// An XML element read back from a report.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, key: &str) -> usize {
        let v = self
            .attr(key)
            .unwrap_or_else(|| panic!("<{}> has no {key}", self.name));
        v.parse()
            .unwrap_or_else(|_| panic!("<{}> {key}={v:?} is not a count", self.name))
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Parses XML with quick-xml into elements (well-formedness is checked:
/// matching end tags, escapes).
fn parse_xml(xml: &str) -> Node {
    use quick_xml::events::{BytesStart, Event};
    fn element(e: &BytesStart<'_>) -> Node {
        Node {
            name: e.name().as_ref().to_owned(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.expect("a well-formed attribute");
                    (
                        a.key.as_ref().to_owned(),
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .expect("escaped")
                            .into_owned(),
                    )
                })
                .collect(),
            ..Node::default()
        }
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(element(&e)),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let entity = format!("&{};", &*r);
                let resolved = quick_xml::escape::unescape(&entity).expect("a known entity");
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.pop().unwrap()
}

/// The rules of tests/junit.xsd (the Jenkins/Ant JUnit schema, as strict),
/// checked on the parsed report, with the counts agreeing with the testcases.
fn check_junit_schema(root: &Node) {
    fn only(node: &Node, allowed: &[&str]) {
        for (k, _) in &node.attrs {
            assert!(
                allowed.contains(&k.as_str()),
                "<{}> may not have {k}",
                node.name
            );
        }
    }
    fn seconds(node: &Node) {
        let t = node
            .attr("time")
            .unwrap_or_else(|| panic!("<{}> has no time", node.name));
        let (whole, frac) = t.split_once('.').unwrap_or((t, "0"));
        assert!(
            !whole.is_empty()
                && !frac.is_empty()
                && whole
                    .bytes()
                    .chain(frac.bytes())
                    .all(|b| b.is_ascii_digit()),
            "time {t:?}"
        );
    }
    /// Children in the schema's order: each name at most `max` times.
    fn sequence(node: &Node, order: &[(&[&str], usize)]) {
        let mut at = 0;
        for (names, max) in order {
            let mut n = 0;
            while at < node.children.len() && names.contains(&node.children[at].name.as_str()) {
                at += 1;
                n += 1;
            }
            assert!(n <= *max, "<{}>: too many {names:?}", node.name);
        }
        assert_eq!(
            at,
            node.children.len(),
            "<{}>: <{}> out of place",
            node.name,
            node.children.get(at).map_or("", |c| c.name.as_str())
        );
    }

    assert_eq!(root.name, "testsuites");
    only(root, &["name", "tests", "failures", "errors", "time"]);
    seconds(root);
    sequence(root, &[(&["testsuite"], usize::MAX)]);
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for suite in &root.children {
        only(
            suite,
            &[
                "name",
                "tests",
                "failures",
                "errors",
                "skipped",
                "time",
                "timestamp",
                "hostname",
            ],
        );
        assert!(suite.attr("name").is_some());
        seconds(suite);
        sequence(
            suite,
            &[
                (&["properties"], 1),
                (&["testcase"], usize::MAX),
                (&["system-out"], 1),
                (&["system-err"], 1),
            ],
        );
        let cases: Vec<&Node> = suite
            .children
            .iter()
            .filter(|c| c.name == "testcase")
            .collect();
        let with = |outcome: &str| cases.iter().filter(|c| c.child(outcome).is_some()).count();
        assert_eq!(suite.count("tests"), cases.len());
        assert_eq!(suite.count("failures"), with("failure"));
        assert_eq!(suite.count("errors"), with("error"));
        assert_eq!(suite.count("skipped"), with("skipped"));
        for case in cases {
            only(case, &["name", "classname", "time"]);
            assert!(case.attr("name").is_some() && case.attr("classname").is_some());
            seconds(case);
            sequence(
                case,
                &[
                    (&["failure", "error", "skipped"], 1),
                    (&["system-out"], 1),
                    (&["system-err"], 1),
                ],
            );
            for outcome in &case.children {
                if outcome.name != "system-out" && outcome.name != "system-err" {
                    only(outcome, &["message", "type"]);
                }
                assert!(
                    outcome.children.is_empty(),
                    "<{}> holds text only",
                    outcome.name
                );
            }
        }
        tests += suite.count("tests");
        failures += suite.count("failures");
        errors += suite.count("errors");
    }
    assert_eq!(root.count("tests"), tests);
    assert_eq!(root.count("failures"), failures);
    assert_eq!(root.count("errors"), errors);
}

/// Validates `xml` against tests/junit.xsd with xmllint, when it is installed
/// (Debian: libxml2-utils); GRAYMATCH_REQUIRE_SERVERS=1 makes it required.
fn xmllint_validates(xml: &Path) {
    let xsd = here("tests/junit.xsd");
    match Command::new("xmllint")
        .args(["--noout", "--schema", &xsd])
        .arg(xml)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(
                std::env::var("GRAYMATCH_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "xmllint is required (GRAYMATCH_REQUIRE_SERVERS=1) but cannot run: {e}"
            );
            eprintln!(
                "skipped: xmllint schema validation (xmllint not found: apt-get install libxml2-utils)"
            );
        }
    }
}

#[test]
fn test_writes_junit_and_json_reports() {
    let rules = "rules:\n  default: stable\n  rules:\n    - { name: r, to: gray, when: { header: { name: x, equals: '1' } } }\n    - { name: half, to: gray, percent: 50, sticky: { header: x-user-id } }\n";
    let passing = scratch(
        "report-pass.yaml",
        &format!(
            "{rules}cases:\n  - {{ name: matches, request: {{ headers: {{ x: '1' }} }}, expect: gray, rule: r, reason: rule }}\n  - name: about half\n    request: {{ headers: {{ x-user-id: 'u{{i}}' }} }}\n    repeat: 2000\n    expect_share: {{ gray: [45, 55] }}\n"
        ),
    );
    let failing = scratch(
        "report-fail.yaml",
        &format!(
            "{rules}cases:\n  - {{ name: \"wrong <&>\\\"' \\x01 on purpose\", request: {{ headers: {{ x: '1' }} }}, expect: stable }}\n  - name: shares off\n    request: {{ headers: {{ x-user-id: 'u{{i}}' }} }}\n    repeat: 1000\n    expect_share: {{ gray: [10, 20] }}\n"
        ),
    );
    let broken = scratch(
        "report-broken.yaml",
        "rules:\n  default: stable\n  rules: [ { name: r, to: g, percent: 150 } ]\ncases:\n  - { name: a, expect: stable }\n",
    );
    let empty = scratch("report-empty.yaml", "rules:\n  default: stable\n");
    let junit = std::env::temp_dir()
        .join(format!("graymatch-cli-{}", std::process::id()))
        .join("reports/sub/junit.xml");
    let json = junit.with_file_name("summary.json");
    let out = run(&[
        "test",
        passing.to_str().unwrap(),
        failing.to_str().unwrap(),
        broken.to_str().unwrap(),
        empty.to_str().unwrap(),
        "/nonexistent/report.yaml",
        "--report",
        &format!("junit={}", junit.display()),
        "--report",
        &format!("json={}", json.display()),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(last_line(&stdout), "2 passed, 4 failed", "{stdout}");

    let xml = std::fs::read_to_string(&junit).expect("the JUnit report is written");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let root = parse_xml(&xml);
    check_junit_schema(&root);
    xmllint_validates(&junit);
    assert_eq!(root.count("tests"), 6);
    assert_eq!(root.count("failures"), 2);
    assert_eq!(root.count("errors"), 2);
    let suites: Vec<&Node> = root.children.iter().collect();
    assert_eq!(suites.len(), 5, "one testsuite per file");
    assert_eq!(suites[0].attr("name"), passing.to_str());
    assert_eq!(
        suites[0].children[0].attr("classname").unwrap(),
        passing.to_str().unwrap().replace('.', "_")
    );
    // A repeated case carries its measured shares.
    let half = &suites[0].children[1];
    assert_eq!(half.attr("name"), Some("about half"));
    let shares = &half.child("system-out").unwrap().text;
    assert!(
        shares.starts_with("shares over 2000 requests: gray ") && shares.contains("stable "),
        "{shares}"
    );
    assert!(shares.ends_with("; expected gray in [45, 55]"), "{shares}");
    // A failure says what was expected and what came: variant, rule, reason.
    let wrong = &suites[1].children[0];
    assert_eq!(
        wrong.attr("name"),
        Some("wrong <&>\"' \u{FFFD} on purpose"),
        "escaped, and a control character XML cannot hold replaced"
    );
    let failure = wrong.child("failure").unwrap();
    assert_eq!(
        failure.attr("message"),
        Some("expected stable, got gray (rule r) (reason rule)")
    );
    assert_eq!(failure.attr("type"), Some("mismatch"));
    assert!(
        failure.text.contains("\nexpected: variant stable\n"),
        "{}",
        failure.text
    );
    assert!(
        failure
            .text
            .contains("\ngot: variant gray, rule r, reason rule\n"),
        "{}",
        failure.text
    );
    assert!(
        failure.text.contains("request: GET /; x: 1"),
        "{}",
        failure.text
    );
    let off = suites[1].children[1].child("failure").unwrap();
    assert_eq!(off.attr("type"), Some("share"));
    assert!(
        off.attr("message")
            .unwrap()
            .starts_with("expected shares, got gray "),
        "{off:?}"
    );
    assert!(
        off.text.contains("shares over 1000 requests: gray "),
        "{}",
        off.text
    );
    // Cases that never ran are errors; so is a file that cannot be read.
    let error = suites[2].children[0].child("error").unwrap();
    assert_eq!(error.attr("type"), Some("rules"));
    assert!(
        error
            .attr("message")
            .unwrap()
            .contains("rules[0] (r): percent 150 is not between 0 and 100"),
        "{error:?}"
    );
    assert_eq!(suites[3].count("tests"), 0);
    assert!(
        suites[3]
            .child("system-out")
            .unwrap()
            .text
            .ends_with("warning: no cases, nothing tested")
    );
    assert_eq!(suites[4].children[0].attr("name"), Some("(file)"));
    assert_eq!(
        suites[4].children[0].child("error").unwrap().attr("type"),
        Some("unreadable")
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["passed"], 2);
    assert_eq!(summary["failed"], 4);
    assert_eq!(summary["warnings"], 1);
    assert_eq!(summary["exit_code"], 2);
    let files = summary["files"].as_array().unwrap();
    assert_eq!(files.len(), 5);
    let case = &files[1]["cases"][0];
    assert_eq!(case["status"], "failed");
    assert_eq!(case["expected"], serde_json::json!({"variant": "stable"}));
    assert_eq!(
        case["got"],
        serde_json::json!({"variant": "gray", "rule": "r", "reason": "rule"})
    );
    let half = &files[0]["cases"][1];
    assert_eq!(half["repeat"], 2000);
    let gray = half["shares"]["gray"]["count"].as_u64().unwrap();
    let stable = half["shares"]["stable"]["count"].as_u64().unwrap();
    assert_eq!(gray + stable, 2000);
    assert_eq!(files[2]["cases"][0]["status"], "error");
    assert_eq!(files[4]["unreadable"], true);
}

#[test]
fn test_report_arguments_and_write_errors() {
    let ok = scratch(
        "report-args.yaml",
        "rules:\n  default: stable\ncases:\n  - { name: a, expect: stable }\n",
    );
    let blocker = scratch("report-blocker", "a file, not a directory");
    let under_a_file = format!("junit={}/junit.xml", blocker.display());
    // (case, --report value, exit code, stderr start, whether the cases ran)
    let cases: &[(&str, &str, i32, &str, bool)] = &[
        (
            "no equals sign",
            "junit",
            2,
            "graymatch: error: invalid --report \"junit\": write junit=PATH or json=PATH",
            false,
        ),
        (
            "unknown format",
            "xml=r.xml",
            2,
            "graymatch: error: invalid --report \"xml=r.xml\": unknown format \"xml\"",
            false,
        ),
        (
            "empty path",
            "json=",
            2,
            "graymatch: error: invalid --report \"json=\": the path is empty",
            false,
        ),
        (
            "a path that cannot be written",
            &under_a_file,
            2,
            "graymatch: error: cannot write report",
            true,
        ),
    ];
    for (name, report, code, err, ran) in cases {
        let out = run(&["test", ok.to_str().unwrap(), "--report", report]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(*code), "{name}: {stdout}{stderr}");
        assert!(stderr.starts_with(err), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert_eq!(stdout == "1 passed, 0 failed\n", *ran, "{name}: {stdout}");
    }
}

const DIFF_OLD: &str = r#"
default: stable
variants: [stable, gray, v2, v3, v4, v9]
rules:
  - { name: by-header, to: gray, when: { header: { name: x-lane, equals: a } } }
  - { name: canary, to: gray, percent: 20, sticky: { header: X-User-Id } }
  - { name: cookie-split, split: [ { to: v2, percent: 10 } ], sticky: { cookie: uid, missing: skip } }
  - { name: query-split, to: v3, percent: 10, sticky: { query: "user id", missing: skip } }
  - { name: random, to: v4, percent: 10 }
"#;

/// The numbers of a rule's row in the diff table: OLD, NEW, delta.
fn diff_row(stdout: &str, rule: &str) -> (i64, i64, i64) {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(rule))
        .unwrap_or_else(|| panic!("no row {rule}: {stdout}"));
    let n: Vec<i64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

#[test]
fn diff_counts_changed_requests_and_rules() {
    let old = scratch("diff-old.yaml", DIFF_OLD);
    let cases_file = scratch(
        "diff-cases.yaml",
        "rules: diff-old.yaml\ncases:\n  - { name: lane a, request: { headers: { x-lane: a } }, expect: gray }\n  - { name: lane b, request: { headers: { x-lane: b } }, expect: stable }\n  - { name: many a, request: { headers: { x-lane: a, x-n: '{i}' } }, repeat: 50, expect: gray }\n",
    );
    // (case, NEW from OLD by replacing text, extra arguments, check)
    let cases: &[(&str, (&str, &str), &[&str], &dyn Fn(&str))] = &[
        (
            "identical rule sets change nothing, random rules included",
            ("", ""),
            &["--users", "5000"],
            &|out| {
                assert!(out.contains("changed variant: 0 of 5000 (0.00%)"), "{out}");
                assert!(out.contains("\nno request changes variant\n"), "{out}");
                let (a, b, d) = diff_row(out, "random");
                assert!(a > 0 && a == b && d == 0, "{out}");
            },
        ),
        (
            "raising a sticky percent only adds users",
            ("percent: 20", "percent: 30"),
            &["--users", "10000"],
            &|out| {
                let (a, b, d) = diff_row(out, "canary");
                assert!((1800..2200).contains(&a), "{out}");
                assert!((800..1200).contains(&d) && b == a + d, "{out}");
                assert!(out.contains("\nstable -> gray "), "{out}");
                assert!(!out.lines().any(|l| l.starts_with("gray -> ")), "{out}");
                assert!(
                    out.contains("sticky keys: header x-user-id, cookie uid, query user id"),
                    "{out}"
                );
            },
        ),
        (
            "the sticky cookie is sent",
            ("{ to: v2, percent: 10 }", "{ to: v2, percent: 20 }"),
            &["--users", "10000"],
            &|out| {
                let (a, b, _) = diff_row(out, "cookie-split");
                assert!(a > 500 && b > a, "{out}");
                assert!(out.contains(" -> v2 "), "{out}");
            },
        ),
        (
            "the sticky query parameter is sent, encoded",
            ("to: v3, percent: 10", "to: v3, percent: 20"),
            &["--users", "10000"],
            &|out| {
                let (a, b, _) = diff_row(out, "query-split");
                assert!(a > 500 && b > a, "{out}");
            },
        ),
        (
            "a changed target moves the test requests that hit it",
            ("by-header, to: gray", "by-header, to: v9"),
            &["--users", "0", "--tests", cases_file.to_str().unwrap()],
            &|out| {
                assert!(out.contains("changed variant: 51 of 52 (98.08%): 0 of 0 synthetic users, 51 of 52 test requests"), "{out}");
                assert!(out.contains("\ngray -> v9 "), "{out}");
                assert_eq!(diff_row(out, "by-header"), (51, 51, 0), "{out}");
                assert!(
                    out.contains("diff-cases.yaml: lane a: gray -> v9\n"),
                    "{out}"
                );
                assert!(
                    out.contains("diff-cases.yaml: many a: 50 of 50: gray -> v9 50\n"),
                    "{out}"
                );
                assert!(!out.contains("lane b:"), "{out}");
            },
        ),
        (
            "a rule renamed with its salt kept moves requests, not variants",
            (
                "name: canary, to: gray, percent: 20, sticky: { header: X-User-Id }",
                "name: canary-2, to: gray, percent: 20, sticky: { header: X-User-Id, salt: canary }",
            ),
            &["--users", "1000"],
            &|out| {
                assert!(out.contains("changed variant: 0 of 1000"), "{out}");
                let (a, b, d) = diff_row(out, "canary");
                assert!(a > 0 && b == 0 && d == -a, "{out}");
                assert_eq!(diff_row(out, "canary-2"), (0, a, a), "{out}");
                assert!(
                    out.contains(&format!("same variant, decided by another rule: {a}\n")),
                    "{out}"
                );
            },
        ),
        (
            "a sticky rule renamed without a salt reshuffles its users",
            ("name: canary,", "name: canary-2,"),
            &["--users", "10000"],
            &|out| {
                let (a, _, _) = diff_row(out, "canary");
                let (_, b, _) = diff_row(out, "canary-2");
                assert!(out.contains("\ngray -> stable "), "{out}");
                assert!(out.contains("\nstable -> gray "), "{out}");
                assert!((a - b).abs() < 300, "about as many, other users: {out}");
            },
        ),
    ];
    for (i, (name, (from, to), extra, check)) in cases.iter().enumerate() {
        let new = scratch(&format!("diff-new-{i}.yaml"), &DIFF_OLD.replace(from, to));
        if !from.is_empty() {
            assert_ne!(DIFF_OLD.replace(from, to), DIFF_OLD, "{name}");
        }
        let mut args = vec!["diff", old.to_str().unwrap(), new.to_str().unwrap()];
        args.extend(extra.iter());
        let out = run(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}{stderr}");
        assert!(stdout.lines().count() <= 40, "{name}: one screen: {stdout}");
        check(&stdout);
    }
}

#[test]
fn diff_exit_codes() {
    let old = scratch("diff-x-old.yaml", DIFF_OLD);
    let invalid = scratch(
        "diff-x-invalid.yaml",
        "default: s\nrules: [ { name: r, to: g, percent: 150 } ]\n",
    );
    let bad_request = scratch(
        "diff-x-bad-request.yaml",
        "rules: diff-x-old.yaml\ncases:\n  - { name: bad, request: { headers: { 'bad name': x } }, expect: stable }\n",
    );
    let o = old.to_str().unwrap();
    // (case, arguments after `diff`, exit code, text on stdout or stderr)
    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            "an invalid NEW",
            &[o, invalid.to_str().unwrap()],
            1,
            "diff-x-invalid.yaml: invalid: rules[0] (r): percent 150",
        ),
        (
            "an invalid OLD",
            &[invalid.to_str().unwrap(), o],
            1,
            "diff-x-invalid.yaml: invalid:",
        ),
        (
            "a missing OLD",
            &["/nonexistent/old.yaml", o],
            2,
            "graymatch: error: /nonexistent/old.yaml: cannot read",
        ),
        (
            "a missing test file",
            &[o, o, "--tests", "/nonexistent/t.yaml"],
            2,
            "graymatch: error: /nonexistent/t.yaml: cannot read",
        ),
        (
            "a test request that cannot be built",
            &[o, o, "--tests", bad_request.to_str().unwrap()],
            2,
            "diff-x-bad-request.yaml: bad: invalid header name \"bad name\"",
        ),
        (
            "nothing to compare",
            &[o, o, "--users", "0"],
            2,
            "graymatch: error: nothing to compare",
        ),
        (
            "an unknown extension",
            &[o, "rules.txt"],
            2,
            "unknown extension",
        ),
    ];
    for (name, args, code, want) in cases {
        let mut all = vec!["diff"];
        all.extend(args.iter());
        let out = run(&all);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(*code), "{name}: {stdout}{stderr}");
        assert!(
            stdout.contains(want) || stderr.contains(want),
            "{name}: {stdout}{stderr}"
        );
        assert!(stderr.lines().count() <= 1, "{name}: {stderr}");
    }
}

#[test]
fn diff_fits_one_screen_with_many_rules() {
    let rules = |percent: u32| -> String {
        let mut s = String::from("default: stable\nrules:\n");
        for i in 0..80 {
            s.push_str(&format!(
                "  - {{ name: r{i}, to: v{}, percent: {percent}, sticky: {{ header: x-u{} }} }}\n",
                i % 20,
                i % 3
            ));
        }
        s
    };
    let old = scratch("diff-many-old.yaml", &rules(1));
    let new = scratch("diff-many-new.yaml", &rules(2));
    let out = run(&["diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.lines().count() <= 60, "{stdout}");
    assert!(stdout.contains(" more changes\n"), "{stdout}");
    assert!(
        stdout.contains(" more rules whose count changed\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sticky keys: header x-u0, header x-u1, header x-u2;"),
        "{stdout}"
    );
}

const SCHEDULED: &str = "default: stable
rules:
  - name: canary
    to: gray
    sticky: { header: x-user-id }
    schedule:
      start: 2026-11-24T10:00:00Z
      steps: [{ percent: 5, for: 10m }, { percent: 20, for: 30m }, { percent: 50, for: 1h }, { percent: 100 }]
";

#[test]
fn explain_and_simulate_at_a_moment() {
    let path = scratch("scheduled.yaml", SCHEDULED);
    let file = path.to_str().unwrap();
    // (name, args, what stdout must contain)
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "explain in step 2",
            vec![
                "explain",
                file,
                "-H",
                "x-user-id: user-51",
                "--at",
                "2026-11-24T10:15:00Z",
            ],
            "[schedule step 2 of 4: 20 percent, next at 2026-11-24T10:40:00Z]",
        ),
        (
            "explain before the start",
            vec![
                "explain",
                file,
                "-H",
                "x-user-id: user-51",
                "--at",
                "2026-11-24T09:00:00Z",
            ],
            "[schedule before its start: 0 percent, next at 2026-11-24T10:00:00Z]",
        ),
        (
            "simulate in step 3",
            vec![
                "simulate",
                file,
                "--users",
                "2000",
                "--at",
                "2026-11-24T11:00:00+00:00",
            ],
            "at 2026-11-24T11:00:00Z: canary is at step 3 of 4, 50 percent (next step at 2026-11-24T11:40:00Z)",
        ),
        (
            "simulate at the last step",
            vec![
                "simulate",
                file,
                "--users",
                "2000",
                "--at",
                "2026-11-25T10:00:00Z",
            ],
            "canary is at step 4 of 4, 100 percent (the last step)",
        ),
    ];
    for (name, args, want) in cases {
        let out = run(&args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{name}: {stdout}{stderr}");
        assert!(stdout.contains(want), "{name}: {stdout}");
    }
    let out = run(&["explain", file, "--at", "tomorrow"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("invalid --at: \"tomorrow\" is not an RFC 3339 time"),
        "{stderr}"
    );
}
