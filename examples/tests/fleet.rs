//! The fleet example against a real etcd: a push reaches all three
//! instances; an invalid push and a concurrent push are refused.

mod support;

use support::Running;

#[test]
fn a_push_changes_all_three_instances() {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()));
    if !on_path {
        assert!(
            std::env::var("GRAYMATCH_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "etcd is required (GRAYMATCH_REQUIRE_SERVERS=1) but not on PATH: apt-get install etcd-server"
        );
        // Straight to stderr, so the line shows even when output is captured.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: a_push_changes_all_three_instances: etcd not found on PATH (Debian package etcd-server)"
        );
        return;
    }
    let fleet = Running::start(env!("CARGO_BIN_EXE_fleet"), &[]);
    let lines = fleet.until("done");
    let text = lines.join("\n");
    let changed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" -> ") && l.contains("instance-"))
        .collect();
    assert_eq!(changed.len(), 3, "{text}");
    // Every instance went from the same version to the same new one.
    let versions: Vec<(&str, &str)> = changed
        .iter()
        .map(|l| {
            let v = l.split("version ").nth(1).unwrap();
            let (before, after) = v.split_once(" -> ").unwrap();
            (&before[..12], &after[..12])
        })
        .collect();
    assert!(
        versions.iter().all(|v| *v == versions[0]) && versions[0].0 != versions[0].1,
        "{text}"
    );
    assert!(
        changed.iter().all(|l| l.contains("ms after the push")),
        "{text}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("keeps version") && l.contains("percent 150"))
            .count(),
        3,
        "{text}"
    );
    assert!(text.contains("someone pushed since you looked"), "{text}");
}
