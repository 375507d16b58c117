//! `graymatch push` and `graymatch status` against a real etcd, and the
//! version hash `graymatch check` prints.

#[path = "../../graymatch-source/tests/support/etcd.rs"]
mod etcd_server;

use std::path::PathBuf;
use std::process::{Command, Output};

use etcd_server::{Etcd, TempDir, free_port};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graymatch"))
        .args(args)
        .output()
        .expect("graymatch runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const V1: &str = "default: stable\nrules:\n  - { name: canary, to: gray, percent: 5, sticky: { header: x-user-id } }\n";
const V2: &str = "default: stable\nrules:\n  - { name: canary, to: gray, percent: 20, sticky: { header: x-user-id } }\n";
const BAD: &str = "default: stable\nrules:\n  - { name: canary, to: gray, percent: 200 }\n";

#[test]
fn check_prints_the_version_hash() {
    let dir = TempDir::new("cli-check");
    let path = write(&dir, "rules.yaml", V1);
    let out = run(&["check", path.to_str().unwrap()]);
    assert!(out.status.success());
    let v = graymatch_source::version_of(V1.as_bytes());
    let want = format!("  version: {} (sha256 {})", v.id(), v.hash());
    assert!(stdout(&out).lines().any(|l| l == want), "{}", stdout(&out));
}

#[test]
fn push_writes_only_over_the_revision_last_seen() {
    let Some(etcd) = Etcd::start("push_writes_only_over_the_revision_last_seen") else {
        return;
    };
    let dir = TempDir::new("cli-push");
    let v1 = write(&dir, "v1.yaml", V1);
    let v2 = write(&dir, "v2.yaml", V2);
    let bad = write(&dir, "bad.yaml", BAD);
    let url = etcd.url();
    let key = "/graymatch/checkout";
    let e = ["--etcd", url.as_str(), "--key", key];
    let status = || run(&[&["status"][..], &e[..]].concat());
    let push = |file: &PathBuf, rev: &str| {
        run(&[
            &["push", file.to_str().unwrap()][..],
            &e[..],
            &["--revision", rev][..],
        ]
        .concat())
    };

    // (step, exit code, a line the output has)
    let out = status();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no such key"), "{}", stdout(&out));

    let out = push(&v1, "0");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let first = stdout(&out);
    let rev1: u64 = first
        .split("revision 0 -> ")
        .nth(1)
        .and_then(|r| r.lines().next())
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("{first}"));
    let id1 = graymatch_source::version_of(V1.as_bytes()).id().to_string();
    assert!(first.contains(&id1), "{first}");

    let out = status();
    assert_eq!(out.status.code(), Some(0));
    let s = stdout(&out);
    assert!(s.starts_with(&format!("{key}: revision {rev1}\n")), "{s}");
    assert!(s.contains(&format!("version: {id1} (sha256 ")), "{s}");
    assert!(s.contains("rules: ok (default stable, 1 rules)"), "{s}");

    let cases: [(&str, &PathBuf, String, i32, &str); 4] = [
        (
            "a concurrent push (stale revision)",
            &v2,
            "0".to_owned(),
            1,
            "someone pushed since you looked",
        ),
        (
            "an invalid rule set",
            &bad,
            rev1.to_string(),
            1,
            "invalid: rules[0] (canary)",
        ),
        (
            "over the revision last seen",
            &v2,
            rev1.to_string(),
            0,
            "pushed",
        ),
        (
            "again over the same, now stale, revision",
            &v1,
            rev1.to_string(),
            1,
            "nothing pushed",
        ),
    ];
    for (name, file, rev, code, want) in cases {
        let out = push(file, &rev);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", stdout(&out));
        assert!(stdout(&out).contains(want), "{name}: {}", stdout(&out));
    }
    let s = stdout(&status());
    let id2 = graymatch_source::version_of(V2.as_bytes()).id().to_string();
    assert!(s.contains(&id2), "the last good push is stored: {s}");
    assert!(s.contains("written 2 times"), "{s}");
}

#[test]
fn unreachable_etcd_is_one_line_and_exit_2() {
    let dir = TempDir::new("cli-unreachable");
    let v1 = write(&dir, "v1.yaml", V1);
    let url = format!("http://127.0.0.1:{}", free_port());
    let cases: [&[&str]; 2] = [
        &["status", "--etcd", &url, "--key", "/k"],
        &[
            "push",
            v1.to_str().unwrap(),
            "--etcd",
            &url,
            "--key",
            "/k",
            "--revision",
            "0",
        ],
    ];
    for args in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&url), "{err}");
    }
    for cmd in ["push", "status"] {
        let out = run(&[cmd, "--help"]);
        assert!(stdout(&out).contains("Example:"), "{cmd}");
    }
}

#[test]
fn halt_and_resume_write_the_fleets_marker() {
    let Some(etcd) = Etcd::start("halt_and_resume_write_the_fleets_marker") else {
        return;
    };
    let dir = TempDir::new("cli-halt");
    let v1 = write(&dir, "v1.yaml", V1);
    let url = etcd.url();
    let key = "/graymatch/halts";
    let e = ["--etcd", url.as_str(), "--key", key];
    let cmd = |args: &[&str]| run(&[args, &e[..]].concat());

    // (step, args, exit code, a line the output has)
    let cases: [(&str, Vec<&str>, i32, &str); 9] = [
        ("no rules yet", vec!["halt", "gray"], 1, "no such key"),
        (
            "push",
            vec!["push", v1.to_str().unwrap(), "--revision", "0"],
            0,
            "pushed",
        ),
        (
            "nothing halted",
            vec!["halt"],
            0,
            "no halt marker: nothing halted",
        ),
        (
            "halt gray",
            vec!["halt", "gray", "--reason", "errors up"],
            0,
            "halted gray since",
        ),
        (
            "shown",
            vec!["halt"],
            0,
            "in force for the rules at the key",
        ),
        ("again", vec!["halt", "gray"], 0, "gray is already halted"),
        (
            "the default cannot be halted",
            vec!["halt", "stable"],
            1,
            "`stable` is the default variant",
        ),
        (
            "an unknown variant",
            vec!["halt", "grey"],
            1,
            "`grey` is not a variant of the rules",
        ),
        ("resume", vec!["resume", "gray"], 0, "nothing halted"),
    ];
    for (name, args, code, want) in cases {
        let out = cmd(&args);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", stdout(&out));
        assert!(stdout(&out).contains(want), "{name}: {}", stdout(&out));
    }
    let out = cmd(&["halt"]);
    assert!(stdout(&out).contains("nothing halted"), "{}", stdout(&out));
    assert!(cmd(&["resume"]).status.success());
    assert!(stdout(&cmd(&["resume"])).contains("nothing to resume"));
}
