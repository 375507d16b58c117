//! Start-up: the bounded first wait, then the backup file (a corrupt one is
//! ignored with a warning), then the embedded default; never serving with
//! nothing; readiness; and the refusal log naming the place. The source
//! that never answers is an etcd endpoint nobody listens on (no server
//! needed).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graymatch_source::etcd::EtcdSource;
use graymatch_source::file::FileSource;
use graymatch_source::{Feed, Format, Origin, Revision, Watcher, version_of};
use support::{TempDir, converge, free_port, rules};

/// Log lines written while the test's current-thread runtime runs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's logs until the guard drops.
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// An etcd source that never answers: nothing listens on its port.
fn unreachable() -> EtcdSource {
    EtcdSource::new(
        [format!("http://127.0.0.1:{}", free_port())],
        "/graymatch/none",
    )
    .unwrap()
}

const DEFAULT: &str = "default: stable\n";

#[tokio::test]
async fn corrupt_backup_at_startup_ignored_with_a_warning_default_used() {
    let dir = TempDir::new("corrupt");
    let backup = dir.join("rules.backup.json");
    // Write a good backup from a file source, then corrupt it in each way.
    let rules_file = dir.join("rules.yaml");
    std::fs::write(&rules_file, rules(7)).unwrap();
    let first = Watcher::builder(FileSource::new(&rules_file))
        .backup_file(&backup)
        .start()
        .await
        .unwrap();
    drop(first);
    let good = std::fs::read_to_string(&backup).unwrap();
    assert!(good.contains("\"sha256\""), "{good}");
    let cases = [
        (
            "garbage",
            "\u{1}\u{2} not json".to_owned(),
            "not a backup file",
        ),
        (
            "truncated",
            good[..good.len() / 3].to_owned(),
            "not a backup file",
        ),
        (
            "text edited",
            good.replace("percent: 7", "percent: 9"),
            "does not match its sha256",
        ),
        (
            "not a rule set",
            {
                let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
                let text = "default: [\n";
                v["text"] = text.into();
                v["sha256"] = version_of(text.as_bytes()).hash().into();
                v.to_string()
            },
            "backup file",
        ),
    ];
    for (name, content, want) in cases {
        std::fs::write(&backup, content).unwrap();
        let (logs, _guard) = Logs::capture();
        let started = Instant::now();
        let w = Watcher::builder(unreachable())
            .first_wait(Duration::from_millis(200))
            .backup_file(&backup)
            .default_text(DEFAULT, None)
            .start()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: bounded wait"
        );
        let status = w.status();
        assert_eq!(status.origin, Some(Origin::Default), "{name}");
        assert!(status.ready, "{name}");
        assert_eq!(
            status.version.unwrap().digest(),
            version_of(DEFAULT.as_bytes()).digest(),
            "{name}"
        );
        let logs = logs.text();
        assert!(logs.contains(" WARN "), "{name}: {logs}");
        assert!(
            logs.contains("rules.backup.json") && logs.contains(want),
            "{name}: {logs}"
        );
        assert!(
            logs.contains("serving the embedded default"),
            "{name}: {logs}"
        );
    }
}

#[tokio::test]
async fn backup_from_an_earlier_run_serves_until_the_source_answers() {
    let dir = TempDir::new("backup");
    let backup = dir.join("rules.backup.json");
    let rules_file = dir.join("rules.yaml");
    std::fs::write(&rules_file, rules(3)).unwrap();
    // An earlier run saved its last good rule set.
    let earlier = Watcher::builder(FileSource::new(&rules_file))
        .backup_file(&backup)
        .start()
        .await
        .unwrap();
    let saved = earlier.version().unwrap();
    drop(earlier);
    // Now the file is gone at start: the backup serves, with its revision.
    std::fs::remove_file(&rules_file).unwrap();
    let source = FileSource::new(&rules_file).debounce(Duration::from_millis(20));
    let w = Watcher::builder(source)
        .first_wait(Duration::from_millis(200))
        .backup_file(&backup)
        .default_text(DEFAULT, None)
        .start()
        .await
        .unwrap();
    let status = w.status();
    assert_eq!(status.origin, Some(Origin::Backup));
    assert_eq!(status.version.as_ref(), Some(&saved));
    assert!(
        status.to_string().contains("from the backup (fallback)"),
        "{status}"
    );
    // The source's first good rule set replaces the fallback.
    std::fs::write(&rules_file, rules(4)).unwrap();
    assert!(
        converge(&w, &version_of(rules(4).as_bytes()), Duration::from_secs(1))
            .await
            .is_some()
    );
    assert_eq!(w.status().origin, Some(Origin::Source));
}

#[tokio::test]
async fn never_starts_with_nothing() {
    let dir = TempDir::new("nothing");
    // (backup file content, default, what the error says)
    let cases: [(Option<&str>, Option<&str>, &[&str]); 3] = [
        (
            None,
            None,
            &[
                "no rule set to serve",
                "within 100ms",
                "no backup file",
                "no default",
            ],
        ),
        (Some("junk"), None, &["not a backup file", "no default"]),
        (
            None,
            Some("default: stable\nrules: [{ name: x, to: gray, percent: 101 }]\n"),
            &["the default", "rules[0] (x)"],
        ),
    ];
    for (backup, default, want) in cases {
        let path = dir.join("b.json");
        let _ = std::fs::remove_file(&path);
        if let Some(b) = backup {
            std::fs::write(&path, b).unwrap();
        }
        let mut builder = Watcher::builder(unreachable())
            .first_wait(Duration::from_millis(100))
            .backup_file(&path);
        if let Some(d) = default {
            builder = builder.default_text(d, None);
        }
        let ready = builder.readiness();
        let err = builder.start().await.unwrap_err().to_string();
        for w in want {
            assert!(err.contains(w), "{err} lacks {w}");
        }
        assert!(!ready.is_ready());
    }
}

#[tokio::test]
async fn readiness_turns_true_when_rules_are_in_force() {
    let dir = TempDir::new("ready");
    let path = dir.join("rules.json");
    std::fs::write(&path, r#"{"default": "stable"}"#).unwrap();
    let builder = Watcher::builder(FileSource::new(&path));
    let ready = builder.readiness();
    assert!(!ready.is_ready());
    let w = builder.start().await.unwrap();
    assert!(ready.is_ready() && w.readiness().is_ready());
    assert_eq!(w.status().origin, Some(Origin::Source));
    // The format came from the extension.
    assert_eq!(
        w.matcher().decide(&http::Request::new(())).variant(),
        "stable"
    );
}

#[test]
fn refusal_is_logged_with_its_place() {
    let (logs, _guard) = Logs::capture();
    let feed = Feed::new("etcd", Format::Yaml);
    feed.offer(DEFAULT.as_bytes(), Revision::ordered(1, "etcd revision 1"));
    let bad = "default: stable\nrules:\n  - { name: ok, to: gray, percent: 5 }\n  - { name: canary-20, split: [{ to: a, percent: 60 }, { to: b, percent: 60 }] }\n";
    feed.offer(bad.as_bytes(), Revision::ordered(2, "etcd revision 2"));
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("refused"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains("place=\"rules[1] (canary-20)\""), "{line}");
    assert!(line.contains("percents sum to 120"), "{line}");
    assert!(line.contains("source=etcd"), "{line}");
    assert!(
        line.contains("etcd revision 1"),
        "the version still serving: {line}"
    );
}
