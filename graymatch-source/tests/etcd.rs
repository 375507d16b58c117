//! The etcd source against a real etcd (Debian's etcd-server, started per
//! test on loopback ports): convergence, refusals, a crash and restart,
//! compaction while a watcher is behind, compare-and-swap.
//!
//! Without `etcd` on PATH each test prints one `skipped:` line and passes,
//! unless `GRAYMATCH_REQUIRE_SERVERS=1`.

mod support;

use graymatch_source::etcd::{Client, EtcdSource};
use graymatch_source::{Origin, Watcher, version_of};
use std::time::Duration;
use std::time::Instant;

use support::{Etcd, Proxy, converge, converge_from, percentiles, rules};

const KEY: &str = "/graymatch/test";

async fn watcher(url: &str) -> Watcher {
    let source = EtcdSource::new([url], KEY)
        .unwrap()
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .resync(Duration::from_secs(2));
    Watcher::builder(source)
        .first_wait(Duration::from_secs(5))
        .start()
        .await
        .expect("the watcher starts")
}

/// Pushes `text` over the current revision; the new revision.
async fn push(client: &Client, text: &str) -> u64 {
    let current = client
        .get(KEY)
        .await
        .unwrap()
        .kv
        .map_or(0, |kv| kv.mod_revision);
    client.put_if(KEY, text.as_bytes(), current).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_watchers_converge_on_each_of_100_pushes() {
    let Some(etcd) = Etcd::start("three_watchers_converge_on_each_of_100_pushes") else {
        return;
    };
    let client = Client::new([etcd.url()]).unwrap();
    push(&client, &rules(0)).await;
    let watchers = [
        watcher(&etcd.url()).await,
        watcher(&etcd.url()).await,
        watcher(&etcd.url()).await,
    ];
    let mut delays = Vec::new();
    for i in 1..=100 {
        let text = rules(i);
        let want = version_of(text.as_bytes());
        // From just before the write to each watcher serving it.
        let started = Instant::now();
        let revision = push(&client, &text).await;
        let limit = Duration::from_secs(1);
        let (a, b, c) = tokio::join!(
            converge_from(&watchers[0], &want, started, limit),
            converge_from(&watchers[1], &want, started, limit),
            converge_from(&watchers[2], &want, started, limit),
        );
        for (n, took) in [a, b, c].into_iter().enumerate() {
            let took = took.unwrap_or_else(|| {
                panic!(
                    "push {i} (revision {revision}) did not reach watcher {n} within 1 s: {}",
                    watchers[n].status()
                )
            });
            delays.push(took);
        }
    }
    let (p50, p99) = percentiles(&mut delays);
    println!(
        "etcd propagation over {} deliveries: p50 {p50:?}, p99 {p99:?}",
        delays.len()
    );
    for w in &watchers {
        let status = w.status();
        assert_eq!(status.origin, Some(Origin::Source));
        assert_eq!(status.reload_failures, 0);
        assert!(
            status
                .version
                .unwrap()
                .revision()
                .unwrap()
                .starts_with("etcd revision ")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_push_refused_while_every_watcher_keeps_its_version() {
    let Some(etcd) = Etcd::start("invalid_push_refused_while_every_watcher_keeps_its_version")
    else {
        return;
    };
    let client = Client::new([etcd.url()]).unwrap();
    let good = rules(5);
    push(&client, &good).await;
    let watchers = [
        watcher(&etcd.url()).await,
        watcher(&etcd.url()).await,
        watcher(&etcd.url()).await,
    ];
    let good_version = version_of(good.as_bytes());
    let bad_cases = [
        (
            "percent over 100",
            "default: stable\nrules: [{ name: c, to: gray, percent: 120 }]\n",
        ),
        ("not yaml", "default: [stable\n"),
        ("unknown field", "default: stable\ncolour: blue\n"),
    ];
    for (name, bad) in bad_cases {
        push(&client, bad).await;
        // Give the watchers time to see (and refuse) it.
        let bad_version = version_of(bad.as_bytes());
        for w in &watchers {
            assert!(
                converge(w, &bad_version, Duration::from_millis(300))
                    .await
                    .is_none(),
                "{name}: applied"
            );
            assert_eq!(
                w.version().unwrap().digest(),
                good_version.digest(),
                "{name}"
            );
            let req = http::Request::get("/")
                .header("x-user-id", "u")
                .body(())
                .unwrap();
            assert_eq!(
                w.matcher().decide(&req).version(),
                Some(good_version.id()),
                "{name}"
            );
        }
    }
    for w in &watchers {
        let status = w.status();
        assert_eq!(status.reload_failures, 3, "{status}");
        assert!(!status.last_reload_successful);
        assert!(status.last_error.unwrap().contains("unknown field"));
    }
    // The next good push is applied everywhere.
    let next = rules(6);
    push(&client, &next).await;
    for w in &watchers {
        assert!(
            converge(w, &version_of(next.as_bytes()), Duration::from_secs(1))
                .await
                .is_some()
        );
        assert!(w.status().last_reload_successful);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_killed_and_restarted_watchers_serve_then_catch_up() {
    let Some(mut etcd) = Etcd::start("etcd_killed_and_restarted_watchers_serve_then_catch_up")
    else {
        return;
    };
    let client = Client::new([etcd.url()]).unwrap();
    push(&client, &rules(1)).await;
    let watchers = [
        watcher(&etcd.url()).await,
        watcher(&etcd.url()).await,
        watcher(&etcd.url()).await,
    ];
    // A burst of pushes, killed right after the last one was acknowledged:
    // some watchers may not have it yet.
    for i in 2..=10 {
        push(&client, &rules(i)).await;
    }
    etcd.kill();
    let latest = version_of(rules(10).as_bytes());
    // Down: every watcher keeps serving what it has.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for w in &watchers {
        let req = http::Request::get("/")
            .header("x-user-id", "u")
            .body(())
            .unwrap();
        assert!(w.matcher().decide(&req).version().is_some());
        assert!(w.status().ready);
    }
    etcd.restart();
    // Up again: each catches up with the last push made before the crash.
    for (n, w) in watchers.iter().enumerate() {
        assert!(
            converge(w, &latest, Duration::from_secs(10))
                .await
                .is_some(),
            "watcher {n} lost the latest push: {}",
            w.status()
        );
        assert!(w.status().source_errors > 0);
    }
    // Reachable again (a pooled connection to the old process may fail
    // once more first).
    for w in &watchers {
        let mut up = false;
        for _ in 0..50 {
            up = w.status().source_up == Some(true);
            if up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "{}", w.status());
    }
    // And keeps watching.
    let after = rules(11);
    push(&client, &after).await;
    for w in &watchers {
        assert!(
            converge(w, &version_of(after.as_bytes()), Duration::from_secs(2))
                .await
                .is_some()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_a_watcher_is_behind() {
    let Some(etcd) = Etcd::start("compaction_while_a_watcher_is_behind") else {
        return;
    };
    let client = Client::new([etcd.url()]).unwrap();
    push(&client, &rules(1)).await;
    let proxy = Proxy::start(etcd.url().trim_start_matches("http://").parse().unwrap()).await;
    let behind = watcher(&proxy.url()).await;
    let direct = watcher(&etcd.url()).await;
    // Cut the first watcher off; push on; compact everything it has not seen.
    proxy.cut();
    let mut last = 0;
    for i in 2..=6 {
        last = push(&client, &rules(i)).await;
        assert!(
            converge(
                &direct,
                &version_of(rules(i).as_bytes()),
                Duration::from_secs(1)
            )
            .await
            .is_some()
        );
    }
    client.compact(last).await.unwrap();
    assert_eq!(
        behind.version().unwrap().digest(),
        version_of(rules(1).as_bytes()).digest()
    );
    proxy.restore();
    // It resumes from a compacted revision, reads the key again, and has
    // the latest push.
    let latest = version_of(rules(6).as_bytes());
    assert!(
        converge(&behind, &latest, Duration::from_secs(5))
            .await
            .is_some(),
        "{}",
        behind.status()
    );
    assert_eq!(
        behind.version().unwrap().revision(),
        Some(format!("etcd revision {last}").as_str())
    );
    // And keeps watching from there.
    push(&client, &rules(7)).await;
    assert!(
        converge(
            &behind,
            &version_of(rules(7).as_bytes()),
            Duration::from_secs(1)
        )
        .await
        .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_refuses_a_concurrent_push() {
    let Some(etcd) = Etcd::start("put_if_refuses_a_concurrent_push") else {
        return;
    };
    let client = Client::new([etcd.url()]).unwrap();
    // (expected revision, outcome): 0 creates; a stale revision is refused.
    let first = client.put_if(KEY, b"default: stable\n", 0).await.unwrap();
    let err = client.put_if(KEY, b"default: gray\n", 0).await.unwrap_err();
    assert_eq!(err.conflict_revisions(), Some((0, first)));
    let second = client.put_if(KEY, b"default: gray\n", first).await.unwrap();
    assert!(second > first);
    let err = client
        .put_if(KEY, b"default: blue\n", first)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_revisions(), Some((first, second)));
    assert!(
        err.to_string()
            .contains(&format!("it is at revision {second}")),
        "{err}"
    );
    let read = client.get(KEY).await.unwrap();
    assert_eq!(read.kv.unwrap().value, b"default: gray\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_key_keeps_the_rules_until_it_returns() {
    let Some(etcd) = Etcd::start("deleted_key_keeps_the_rules_until_it_returns") else {
        return;
    };
    let client = Client::new([etcd.url()]).unwrap();
    push(&client, &rules(3)).await;
    let w = watcher(&etcd.url()).await;
    // Delete through the gateway (the client has no delete: nobody should).
    let body = format!(r#"{{"key":"{}"}}"#, "L2dyYXltYXRjaC90ZXN0");
    let resp = reqwest::Client::new()
        .post(format!("{}/v3/kv/deleterange", etcd.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.version().unwrap().digest(),
        version_of(rules(3).as_bytes()).digest()
    );
    assert!(w.status().last_error.unwrap().contains("no such key"));
    push(&client, &rules(4)).await;
    assert!(
        converge(&w, &version_of(rules(4).as_bytes()), Duration::from_secs(1))
            .await
            .is_some()
    );
}
