//! `graymatch schema` and `graymatch fmt`, through the binary: every
//! conformance rule set validates against the schema and typical mistakes
//! do not; formatting keeps the rule set, is idempotent, and keeps the
//! comments it can place.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graymatch"))
        .args(args)
        .output()
        .expect("graymatch runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("graymatch-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The rule sets of every conformance and project rule-test file, as JSON
/// values (inline ones, and files they name).
fn rule_sets() -> Vec<(String, serde_json::Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        root.join("../../shared/conformance"),
        root.join("tests/rules"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    assert!(!files.is_empty(), "no rule-test files found");
    let mut sets = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        if doc.get("expect_error").is_some() {
            continue;
        }
        let rules = match &doc["rules"] {
            serde_json::Value::String(rel) => {
                let target = path.parent().unwrap().join(rel);
                serde_yaml_ng::from_str(&std::fs::read_to_string(target).unwrap()).unwrap()
            }
            inline => inline.clone(),
        };
        sets.push((path.display().to_string(), rules));
    }
    sets
}

fn schema() -> jsonschema::Validator {
    let out = run(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

#[test]
fn every_rule_set_validates_against_the_schema() {
    let validator = schema();
    let sets = rule_sets();
    for (name, set) in &sets {
        let errors: Vec<String> = validator.iter_errors(set).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    assert!(sets.len() >= 10, "only {} rule sets", sets.len());
}

#[test]
fn typical_mistakes_do_not_validate() {
    let validator = schema();
    // (case, rule set)
    let cases: &[(&str, &str)] = &[
        ("no default", r#"{"rules": []}"#),
        (
            "unknown top-level field",
            r#"{"default": "s", "colour": 1}"#,
        ),
        (
            "a percent as text",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "percent": "20"}]}"#,
        ),
        (
            "weight instead of percent",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "weight": 20}]}"#,
        ),
        (
            "two ops in a leaf",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "when": {"header": {"name": "x", "equals": "a", "prefix": "b"}}}]}"#,
        ),
        (
            "no op in a leaf",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "when": {"header": {"name": "x"}}}]}"#,
        ),
        (
            "two keys in a condition",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "when": {"header": {"name": "x", "present": true}, "path": {"prefix": "/"}}}]}"#,
        ),
        (
            "a header leaf without a name",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "when": {"header": {"equals": "a"}}}]}"#,
        ),
        (
            "a path leaf with a name",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "when": {"path": {"name": "x", "prefix": "/"}}}]}"#,
        ),
        (
            "unknown incoming",
            r#"{"default": "s", "propagation": {"incoming": "always"}}"#,
        ),
        (
            "unknown as",
            r#"{"default": "s", "rules": [{"name": "r", "to": "g", "when": {"header": {"name": "x", "gt": 1, "as": "int"}}}]}"#,
        ),
        (
            "a rule without a name",
            r#"{"default": "s", "rules": [{"to": "g"}]}"#,
        ),
    ];
    for (name, text) in cases {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(!validator.is_valid(&value), "case {name} validated");
    }
}

#[test]
fn fmt_keeps_every_rule_set_and_is_idempotent() {
    for (i, (name, set)) in rule_sets().iter().enumerate() {
        let yaml = serde_yaml_ng::to_string(set).unwrap();
        let path = scratch(&format!("set-{i}.yaml"), &yaml);
        let p = path.to_str().unwrap();
        let out = run(&["fmt", p]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let once = std::fs::read_to_string(&path).unwrap();
        // Same rule set: check accepts it and prints the same summary (but
        // for the version, the hash of the text, which formatting changes).
        let before = scratch(&format!("set-{i}-orig.yaml"), &yaml);
        let summary = |p: &Path| {
            stdout(&run(&["check", p.to_str().unwrap()]))
                .lines()
                .skip(1)
                .filter(|l| !l.starts_with("  version: "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(summary(&path), summary(&before), "{name}:\n{once}");
        // Idempotent.
        let again = run(&["fmt", "--check", p]);
        assert!(
            again.status.success(),
            "{name}: not idempotent:\n{once}\n{}",
            stdout(&again)
        );
    }
}

#[test]
fn fmt_canonical_form_comments_and_check() {
    let messy = "\
# shop rules
# owner: team-cart
rules:
  # testers first
  - when: { any: [ { header: { name: x-tester, equals: 'yes' } } ] }
    to: gray
    name: testers   # the QA team
  - { name: canary-20, percent: 20.0, to: gray, sticky: { header: x-user-id, algorithm: graymatch } }
  - name: new-app
    to: gray
    when:
      header:
        as: version
        gte: '5.10'
        name: x-app-version
variants: [stable, gray]
default: stable
";
    let want = "\
# shop rules
# owner: team-cart
default: stable
variants: [stable, gray]
rules:
  # testers first
  # the QA team
  - name: testers
    to: gray
    when: { any: [{ header: { name: x-tester, equals: \"yes\" } }] }
  - name: canary-20
    to: gray
    percent: 20
    sticky: { header: x-user-id }
  - name: new-app
    to: gray
    when: { header: { name: x-app-version, gte: \"5.10\", as: version } }
";
    let path = scratch("messy.yaml", messy);
    let p = path.to_str().unwrap();
    // --check reports and changes nothing.
    let out = run(&["fmt", "--check", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not formatted"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), messy);
    // fmt rewrites it.
    let out = run(&["fmt", p]);
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
    // A comment that has no rule to stay with is reported, not silently lost.
    let lost = scratch(
        "lost.yaml",
        "default: stable\nrules: []\n# trailing thoughts\n",
    );
    let out = run(&["fmt", lost.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 comment line could not be kept"));
    // JSON and TOML are written in canonical form too.
    let json = scratch(
        "r.json",
        r#"{"rules": [{"to": "g", "name": "r"}], "default": "s"}"#,
    );
    assert!(run(&["fmt", json.to_str().unwrap()]).status.success());
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(text.starts_with("{\n  \"default\": \"s\""), "{text}");
    let toml = scratch(
        "r.toml",
        "default = \"s\"\n[[rules]]\nto = \"g\"\nname = \"r\"\n",
    );
    assert!(run(&["fmt", toml.to_str().unwrap()]).status.success());
    assert!(
        run(&["fmt", "--check", toml.to_str().unwrap()])
            .status
            .success()
    );
    // An invalid file is an error and is left alone.
    let bad = scratch("bad.yaml", "default: stable\ncolour: red\n");
    let out = run(&["fmt", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        "default: stable\ncolour: red\n"
    );
}

#[test]
fn check_warns_of_trust_without_variants() {
    // (case, rule set, warns)
    let cases: &[(&str, &str, bool)] = &[
        (
            "trust, no variants",
            "default: stable\npropagation: { incoming: trust }\n",
            true,
        ),
        (
            "trust with variants",
            "default: stable\nvariants: [stable, gray]\npropagation: { incoming: trust }\n",
            false,
        ),
        ("ignore", "default: stable\n", false),
    ];
    for (i, (name, text, warns)) in cases.iter().enumerate() {
        let path = scratch(&format!("trust-{i}.yaml"), text);
        let out = run(&["check", path.to_str().unwrap()]);
        assert!(out.status.success(), "case {name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.contains("warning: incoming: trust without `variants`"),
            *warns,
            "case {name}: {stderr}"
        );
    }
}
