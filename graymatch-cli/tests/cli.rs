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
    assert!(stdout.ends_with("1 passed, 0 failed\n"), "{stdout}");

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
    for cmd in ["check", "explain", "test", "simulate"] {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success());
        let (stdout, _) = text(&out);
        assert!(stdout.contains("Example:"), "{cmd}: {stdout}");
    }
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out).1.contains("panicked"));
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
            "rules: invalid YAML rule set: rules[0].when: a condition needs exactly one of equals, in, prefix, suffix, contains, regex, present (found equals, prefix) at line 8 column 9",
        ),
        (
            "YAML: an unknown field",
            "yaml",
            "rules:\n  default: s\n  rules:\n    - { name: r, to: g, weight: 5 }\ncases: [ { name: a, expect: s } ]\n".to_owned(),
            "rules: invalid YAML rule set: rules[0]: unknown field `weight`",
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
            "(found equals, prefix) at line 5",
        ),
        (
            "TOML: the line in the test file, on one line",
            "toml",
            "[rules]\ndefault = \"s\"\n\n[[rules.rules]]\nname = \"r\"\nto = \"g\"\nweight = 5\n\n[[cases]]\nname = \"a\"\nexpect = \"s\"\n".to_owned(),
            "rules: invalid TOML rule set: unknown field `weight`",
        ),
    ];
    for (i, (name, ext, contents, want)) in cases.iter().enumerate() {
        let path = scratch(&format!("place-{i}.{ext}"), contents);
        let out = run(&["test", path.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {stdout}{stderr}");
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
