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

/// Runs `graymatch import SOURCE -` on `input` (extra args before `-`).
fn import_stdin(source: &str, extra: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    let mut child = bin()
        .arg("import")
        .arg(source)
        .args(extra)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const MAIN: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: shop, namespace: web }\nspec:\n  rules:\n    - host: shop.example.com\n      http: { paths: [ { path: /, pathType: Prefix, backend: { service: { name: shop, port: { number: 80 } } } } ] }\n";

fn canary(annotations: &str) -> String {
    format!(
        "{MAIN}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: shop-canary\n  namespace: web\n  annotations: {{ {annotations} }}\nspec:\n  rules:\n    - host: shop.example.com\n      http: {{ paths: [ {{ path: /, pathType: Prefix, backend: {{ service: {{ name: shop-v2, port: {{ number: 80 }} }} }} }} ] }}\n"
    )
}

#[test]
fn bad_input_is_named() {
    let typo = canary(
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-by-heder: x-canary",
    );
    let weight = canary(
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-weight: abc",
    );
    let not_enabled = canary("nginx.ingress.kubernetes.io/canary-by-header: x-canary");
    let with_service = format!(
        "{MAIN}---\napiVersion: v1\nkind: Service\nmetadata: {{ name: shop, namespace: web }}\n"
    );
    let unquoted = canary("nginx.ingress.kubernetes.io/canary: true");
    let lookahead = canary(
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-by-header: x-canary, nginx.ingress.kubernetes.io/canary-by-header-pattern: \"^a(?=b)\"",
    );
    let affinity = canary(
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/affinity: cookie",
    );
    // (name, source, extra args, input, exit code, stdout has, stderr has)
    let cases: &[(&str, &str, &[&str], &str, i32, &str, &str)] = &[
        (
            "unknown kinds are skipped with a warning",
            "ingress-nginx",
            &[],
            &with_service,
            0,
            "ingress.shop.rules-0.paths-0",
            "graymatch: warning: Service/web/shop: Service (v1) is not imported; skipped",
        ),
        (
            "malformed YAML names the document",
            "ingress-nginx",
            &[],
            "kind: List\n---\nkind: [Ingress\n",
            1,
            "",
            "graymatch: error: <stdin>, document 2: not YAML",
        ),
        (
            "a field of the wrong shape names document and field",
            "ingress-nginx",
            &[],
            &format!(
                "{MAIN}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: bad }}\nspec: {{ rules: 3 }}\n"
            ),
            1,
            "",
            "graymatch: error: <stdin>, document 2 (Ingress/default/bad): spec.rules: invalid type",
        ),
        (
            "an unquoted annotation is an error naming it",
            "ingress-nginx",
            &[],
            &unquoted,
            1,
            "",
            "metadata.annotations.nginx.ingress.kubernetes.io/canary: invalid type: boolean `true`, expected a string",
        ),
        (
            "an annotation typo names the closest annotation",
            "ingress-nginx",
            &[],
            &typo,
            0,
            "default: unmatched",
            "Ingress/web/shop-canary: metadata.annotations.nginx.ingress.kubernetes.io/canary-by-heder: unknown annotation, ingress-nginx ignores it; did you mean nginx.ingress.kubernetes.io/canary-by-header?",
        ),
        (
            "a weight of abc counts as unset",
            "ingress-nginx",
            &[],
            &weight,
            0,
            "ingress.shop.rules-0.paths-0",
            "Ingress/web/shop-canary: metadata.annotations.nginx.ingress.kubernetes.io/canary-weight: \"abc\" is not an integer; ingress-nginx reads it as unset",
        ),
        (
            "canary annotations without canary true",
            "ingress-nginx",
            &[],
            &not_enabled,
            0,
            // A main Ingress now, read before `shop` (equal ages, later name).
            "ingress.shop-canary.rules-0.paths-0",
            "canary annotations are set but canary is not \"true\"",
        ),
        (
            "PCRE-only syntax is refused with a warning",
            "ingress-nginx",
            &[],
            &lookahead,
            0,
            "ingress.shop.rules-0.paths-0",
            "uses PCRE-only syntax (lookahead",
        ),
        (
            "session affinity is a warning",
            "ingress-nginx",
            &[],
            &affinity,
            0,
            "",
            "session affinity cannot be reproduced",
        ),
        (
            "strict turns warnings into exit 1",
            "ingress-nginx",
            &["--strict"],
            &weight,
            1,
            "",
            "warning(s) and --strict: no rule set written",
        ),
        (
            "--default renames unmatched",
            "ingress-nginx",
            &["--default", "stable"],
            MAIN,
            0,
            "default: stable",
            "",
        ),
        (
            "a bad --default is a usage error",
            "ingress-nginx",
            &["--default", "no way"],
            MAIN,
            2,
            "",
            "--default \"no way\"",
        ),
        (
            "JSON input",
            "gateway-api",
            &[],
            r#"{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}, "spec": {"rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}}"#,
            0,
            "httproute.r.rules-0.matches-0",
            "",
        ),
        (
            "a List of HTTPRoutes",
            "gateway-api",
            &[],
            "apiVersion: v1\nkind: List\nitems:\n  - { apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: { name: a }, spec: { rules: [ { backendRefs: [ { name: a, port: 80 } ] } ] } }\n",
            0,
            "to: a",
            "",
        ),
        (
            "a typo in an HTTPRoute field is a warning",
            "gateway-api",
            &[],
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: a }\nspec: { rules: [ { backendRef: [ { name: a, port: 80 } ] } ] }\n",
            0,
            "to: no-backend",
            "HTTPRoute/default/a: spec.rules[0].backendRef: unknown field",
        ),
        (
            "an HTTPRoute of the wrong shape names the field",
            "gateway-api",
            &[],
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: a }\nspec: { rules: [ { backendRefs: [ { port: 80 } ] } ] }\n",
            1,
            "",
            "spec.rules[0].backendRefs[0]: missing field `name`",
        ),
    ];
    for (name, source, extra, input, code, out_has, err_has) in cases {
        let out = import_stdin(source, extra, input);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(*code), "case {name}: {stderr}");
        assert!(stdout.contains(out_has), "case {name}: stdout {stdout}");
        assert!(stderr.contains(err_has), "case {name}: stderr {stderr}");
        if *code == 0 {
            // What import writes, check accepts.
            let dir = std::env::temp_dir().join(format!("graymatch-import-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("out.yaml");
            std::fs::write(&path, &stdout).unwrap();
            let check = bin().arg("check").arg(&path).output().unwrap();
            assert!(
                check.status.success(),
                "case {name}: check refused:\n{stdout}"
            );
        }
    }
}
