//! `graymatch import`: upstream scenarios translated into manifests
//! (`tests/import/<source>/NAME.in.yaml`), the rule set each must give
//! (`NAME.rules.yaml`, golden), its warnings (`NAME.warnings.txt`, golden),
//! and rule-test cases that run against it end to end (`NAME.test.yaml`).
//! `GRAYMATCH_BLESS=1 cargo test -p graymatch-cli --test import` rewrites
//! the golden files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_graymatch"))
}

fn dir(source: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/import")
        .join(source)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn golden(path: &Path, got: &str, failures: &mut Vec<String>) {
    if std::env::var_os("GRAYMATCH_BLESS").is_some() {
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if want != got {
        failures.push(format!(
            "{} differs from the import's output:\n--- want\n{want}\n--- got\n{got}",
            path.display()
        ));
    }
}

/// Imports every scenario of `source` and runs its cases: the number of
/// cases that passed.
fn scenarios(source: &str) -> usize {
    let dir = dir(source);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".in.yaml").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no scenarios in {}", dir.display());
    let mut failures = Vec::new();
    let mut passed = 0;
    for name in &names {
        let input = format!("{name}.in.yaml");
        let out = bin()
            .current_dir(&dir)
            .args(["import", source, &input])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        if out.status.code() != Some(0) {
            failures.push(format!(
                "{name}: import exited {:?}: {stderr}",
                out.status.code()
            ));
            continue;
        }
        golden(
            &dir.join(format!("{name}.rules.yaml")),
            &stdout,
            &mut failures,
        );
        golden(
            &dir.join(format!("{name}.warnings.txt")),
            &stderr,
            &mut failures,
        );
        let cases = dir.join(format!("{name}.test.yaml"));
        assert!(cases.exists(), "{name} has no {name}.test.yaml");
        let out = bin().arg("test").arg(&cases).output().unwrap();
        let (stdout, stderr) = text(&out);
        let last = stdout.lines().last().unwrap_or("");
        let counts: Vec<usize> = last
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        match counts.as_slice() {
            [p, 0] if out.status.success() && *p > 0 => passed += p,
            _ => failures.push(format!("{name}: cases failed:\n{stdout}{stderr}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    println!("{source}: {} scenarios, {passed} cases passed", names.len());
    passed
}

#[test]
fn ingress_nginx_scenarios_route_as_ingress_nginx() {
    assert!(scenarios("ingress-nginx") > 0);
}

#[test]
fn gateway_api_scenarios_route_as_the_spec_orders() {
    assert!(scenarios("gateway-api") > 0);
}
