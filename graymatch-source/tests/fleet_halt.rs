//! Fleet-wide halts through the etcd marker, against a real etcd (Debian's
//! etcd-server, started on loopback ports): three instances follow one key;
//! one instance's guard trips and all three stop sending to gray within 1 s;
//! `halt::resume` (what `graymatch resume` runs) resumes all three; a new
//! push clears the halt; a marker that is not a release state is ignored.
//!
//! Without `etcd` on PATH each test prints one `skipped:` line and passes,
//! unless `GRAYMATCH_REQUIRE_SERVERS=1`.

mod support;

use std::time::{Duration, Instant};

use graymatch_source::Watcher;
use graymatch_source::etcd::{Client, EtcdSource, halt};

use support::Etcd;

const KEY: &str = "/graymatch/fleet";

const RULES: &str = "default: stable
variants: [stable, gray]
rules:
  - { name: all, to: gray }
guards:
  - { variant: gray, window: 10s, min_requests: 10, max_failure_rate: 0.05 }
";

async fn instance(url: &str) -> Watcher {
    let source = EtcdSource::new([url], KEY)
        .unwrap()
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .share_halts();
    Watcher::builder(source)
        .first_wait(Duration::from_secs(5))
        .start()
        .await
        .expect("the instance starts")
}

fn serves(w: &Watcher) -> &'static str {
    w.matcher().decide(&http::Request::new(())).variant()
}

/// Waits (at most `limit`) until every instance serves `variant`; how long
/// it took, from `since`.
async fn all_serve(fleet: &[Watcher], variant: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        if fleet.iter().all(|w| serves(w) == variant) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "not every instance serves {variant} within {limit:?}: {:?}",
            fleet.iter().map(serves).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_trips_and_the_fleet_stops_sending_to_gray_within_a_second() {
    let Some(etcd) =
        Etcd::start("one_instance_trips_and_the_fleet_stops_sending_to_gray_within_a_second")
    else {
        return;
    };
    let client = Client::new([etcd.url()]).unwrap();
    client.put_if(KEY, RULES.as_bytes(), 0).await.unwrap();
    let fleet = [
        instance(&etcd.url()).await,
        instance(&etcd.url()).await,
        instance(&etcd.url()).await,
    ];
    all_serve(&fleet, "gray", Instant::now(), Duration::from_secs(5)).await;
    // Let the marker followers start their watches.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Instance 0's gray fails every other request: its guard trips.
    let release = fleet[0].release();
    let t0 = Instant::now();
    for i in 0..20u64 {
        release.record_at(
            "gray",
            i % 2 == 0,
            Duration::from_millis(2),
            t0 + Duration::from_millis(i * 100),
        );
    }
    let tripped = Instant::now();
    assert_eq!(
        serves(&fleet[0]),
        "stable",
        "the tripping instance halts at once"
    );
    let took = all_serve(&fleet, "stable", tripped, Duration::from_secs(1)).await;
    println!("fleet halted {took:?} after one instance's trip");
    let (marker, version) = halt::status(&client, KEY).await.unwrap();
    let marker = marker.expect("a marker was written");
    assert_eq!(marker.version, version);
    assert_eq!(marker.halted.len(), 1);
    assert!(
        marker.halted[0].reason.starts_with("guard: failure rate"),
        "{:?}",
        marker.halted
    );
    for w in &fleet {
        assert_eq!(w.release().state().halted[0].variant, "gray");
    }

    // `graymatch resume`: the whole fleet serves gray again.
    let update = halt::resume(&client, KEY, None).await.unwrap();
    assert!(update.state.expect("the marker changed").halted.is_empty());
    all_serve(&fleet, "gray", Instant::now(), Duration::from_secs(1)).await;

    // `graymatch halt` from a terminal halts them all; refusals name the
    // problem.
    halt::halt(&client, KEY, "gray", "operator: bad build")
        .await
        .unwrap();
    all_serve(&fleet, "stable", Instant::now(), Duration::from_secs(1)).await;
    let again = halt::halt(&client, KEY, "gray", "again").await.unwrap();
    assert_eq!(again.state, None, "already halted: nothing written");
    let err = halt::halt(&client, KEY, "stable", "no")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is the default variant"), "{err}");
    let err = halt::halt(&client, KEY, "grey", "no")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`grey` is not a variant"), "{err}");

    // A new version of the rules clears every halt.
    let current = client.get(KEY).await.unwrap().kv.unwrap().mod_revision;
    let v2 = format!("{RULES}# v2\n");
    client.put_if(KEY, v2.as_bytes(), current).await.unwrap();
    all_serve(&fleet, "gray", Instant::now(), Duration::from_secs(2)).await;

    // A marker that is not a release state is ignored.
    client
        .put(&halt::marker_key(KEY), b"{not json")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fleet.iter().all(|w| serves(w) == "gray"));
}
