//! Lanes through a real nats-server (core pub/sub and JetStream): each
//! message consumed by its lane, a gray consumer stopped and started again,
//! forged tags, malformed headers. Skips (one line) without nats-server.

#![cfg(feature = "nats")]

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graymatch::{Matcher, RuleSet, Tag};
use graymatch_messaging::{Incoming, Lane, Running, nats};
use support::{Nats, eventually};
use tokio::io::AsyncWriteExt;

const TRUSTING: &str =
    "{default: stable, variants: [stable, gray, v3], propagation: {incoming: trust}}";
const IGNORING: &str = "{default: stable, variants: [stable, gray, v3]}";

#[derive(Clone, Debug)]
struct Seen {
    consumer: &'static str,
    variant: &'static str,
    scope: Option<&'static str>,
    id: u32,
    rerouted: bool,
}

type Log = Arc<Mutex<Vec<Seen>>>;
type Handler = Box<
    dyn Fn(
            Incoming<async_nats::Message>,
        ) -> Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>
        + Send
        + Sync,
>;

fn recorder(consumer: &'static str, log: &Log) -> Handler {
    let log = log.clone();
    Box::new(move |m: Incoming<async_nats::Message>| {
        let log = log.clone();
        Box::pin(async move {
            let id = std::str::from_utf8(&m.message().payload)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u32::MAX);
            log.lock().unwrap().push(Seen {
                consumer,
                variant: m.variant(),
                scope: graymatch_tower::scope::current().map(|t| t.variant()),
                id,
                rerouted: m.rerouted(),
            });
            Ok(())
        })
    })
}

fn rules(text: &str) -> Arc<Matcher> {
    Arc::new(RuleSet::from_yaml(text).unwrap().compile().unwrap())
}

/// The variant message `i` is published under: untagged, stable, gray, v3.
fn variant_of(i: u32) -> Option<&'static str> {
    [None, Some("stable"), Some("gray"), Some("v3")][(i % 4) as usize]
}

async fn publish(p: &nats::Publisher, i: u32) {
    let payload = i.to_string().into();
    match variant_of(i) {
        Some(v) => graymatch_tower::scope::scope(Tag::new(v).unwrap(), p.publish(payload))
            .await
            .unwrap(),
        None => p.publish(payload).await.unwrap(),
    };
}

/// Ids per consumer.
fn by_consumer(log: &Log) -> HashMap<&'static str, Vec<u32>> {
    let mut out: HashMap<&'static str, Vec<u32>> = HashMap::new();
    for s in log.lock().unwrap().iter() {
        out.entry(s.consumer).or_default().push(s.id);
    }
    for ids in out.values_mut() {
        ids.sort_unstable();
    }
    out
}

enum Kind {
    Core,
    JetStream,
}

async fn consumer(
    kind: &Kind,
    client: &async_nats::Client,
    lane: Lane,
    name: &'static str,
    log: &Log,
) -> Running {
    let c = match kind {
        Kind::Core => nats::Consumer::core(client.clone(), "orders", lane),
        Kind::JetStream => nats::Consumer::jetstream(client.clone(), "ORDERS", "orders", lane)
            .ack_wait(Duration::from_secs(1), 10)
            .pull(64, Duration::from_millis(100)),
    };
    c.heartbeat(Duration::from_millis(100))
        .liveness_timeout(Duration::from_millis(500))
        .start(recorder(name, log))
        .await
        .unwrap()
}

async fn setup(kind: &Kind, nats: &Nats) -> (async_nats::Client, nats::Publisher) {
    let client = async_nats::connect(&nats.url).await.unwrap();
    let publisher = match kind {
        Kind::Core => nats::Publisher::core(client.clone(), "orders"),
        Kind::JetStream => {
            let js = async_nats::jetstream::new(client.clone());
            nats::ensure_stream(&js, "ORDERS", "orders").await.unwrap();
            nats::Publisher::jetstream(js, "orders")
        }
    };
    (client, publisher)
}

async fn each_message_to_its_lane(kind: Kind, test: &str) {
    let Some(server) = Nats::start(test) else {
        return;
    };
    let (client, publisher) = setup(&kind, &server).await;
    let log: Log = Arc::default();
    let m = rules(TRUSTING);
    let gray = consumer(
        &kind,
        &client,
        Lane::new(m.clone(), "workers", "gray").unwrap(),
        "gray",
        &log,
    )
    .await;
    let base = consumer(
        &kind,
        &client,
        Lane::new(m, "workers", "stable").unwrap(),
        "base",
        &log,
    )
    .await;
    for i in 0..1000 {
        publish(&publisher, i).await;
    }
    assert!(
        eventually(Duration::from_secs(20), || log.lock().unwrap().len()
            >= 1000)
        .await,
        "only {} of 1000 handled",
        log.lock().unwrap().len()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = by_consumer(&log);
    let want_gray: Vec<u32> = (0..1000)
        .filter(|i| variant_of(*i) == Some("gray"))
        .collect();
    let want_base: Vec<u32> = (0..1000)
        .filter(|i| variant_of(*i) != Some("gray"))
        .collect();
    assert_eq!(
        seen["gray"], want_gray,
        "the gray lane: exactly the gray messages"
    );
    assert_eq!(seen["base"], want_base, "the base: everything else, once");
    for s in log.lock().unwrap().iter() {
        let want = variant_of(s.id).unwrap_or("stable");
        assert_eq!((s.variant, s.scope), (want, Some(want)), "{s:?}");
        assert_eq!(s.rerouted, want == "v3", "{s:?}: only v3 has no lane");
    }
    let (g, b) = (gray.stats(), base.stats());
    assert_eq!((g.processed, g.rerouted, g.failed), (250, 0, 0));
    assert_eq!((b.processed, b.rerouted, b.failed), (500, 250, 0));
    match kind {
        // Core: the base hears the gray subject too, and skips it.
        Kind::Core => assert_eq!((g.skipped, b.skipped), (0, 250)),
        // JetStream: the base's durable holds the lane subjects, skipped.
        Kind::JetStream => assert_eq!((g.skipped, b.skipped), (0, 500)),
    }
    gray.stop().await.unwrap();
    base.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_each_message_consumed_by_its_lane() {
    each_message_to_its_lane(Kind::Core, "core_each_message_consumed_by_its_lane").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_each_message_consumed_by_its_lane() {
    each_message_to_its_lane(
        Kind::JetStream,
        "jetstream_each_message_consumed_by_its_lane",
    )
    .await;
}

/// Publishes `ids` tagged gray.
async fn publish_gray(p: &nats::Publisher, ids: std::ops::Range<u32>) {
    for i in ids {
        graymatch_tower::scope::scope(Tag::new("gray").unwrap(), p.publish(i.to_string().into()))
            .await
            .unwrap();
    }
}

/// Gray stops (gracefully or by crashing): its messages go to the base
/// within the liveness timeout, none lost; gray starts again: its messages
/// go back to it.
async fn gray_stops_and_starts(kind: Kind, crash: bool, test: &str) {
    let Some(server) = Nats::start(test) else {
        return;
    };
    let (client, publisher) = setup(&kind, &server).await;
    let log: Log = Arc::default();
    let m = rules(TRUSTING);
    let lane = Lane::new(m.clone(), "workers", "gray").unwrap();
    // Gray on its own connection, so a crash can take it down alone.
    let gray_client = async_nats::connect(&server.url).await.unwrap();
    let gray = consumer(&kind, &gray_client, lane.clone(), "gray", &log).await;
    let base = consumer(
        &kind,
        &client,
        Lane::new(m, "workers", "stable").unwrap(),
        "base",
        &log,
    )
    .await;

    publish_gray(&publisher, 0..100).await;
    assert!(eventually(Duration::from_secs(10), || log.lock().unwrap().len() >= 100).await);

    if crash {
        gray.abort();
        drop(gray_client);
        // Core NATS is at most once: what is published before the base
        // sees the heartbeats stop is lost. Wait that out (timeout 500 ms).
        if matches!(kind, Kind::Core) {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
    } else {
        gray.stop().await.unwrap();
    }
    publish_gray(&publisher, 100..200).await;
    // Within the liveness timeout (plus the pull wait), the base has them all.
    assert!(
        eventually(Duration::from_secs(10), || {
            let seen = by_consumer(&log);
            let mut base: Vec<u32> = seen.get("base").cloned().unwrap_or_default();
            base.dedup();
            (100..200).all(|i| base.binary_search(&i).is_ok())
        })
        .await,
        "the base did not take the stopped lane's messages: {:?}",
        by_consumer(&log).get("base")
    );
    for s in log.lock().unwrap().iter().filter(|s| s.consumer == "base") {
        assert!(
            s.rerouted && s.variant == "gray" && s.scope == Some("gray"),
            "{s:?}"
        );
    }

    // Gray again: from its first beat its messages are its own.
    let gray_client = async_nats::connect(&server.url).await.unwrap();
    let again = consumer(&kind, &gray_client, lane, "gray", &log).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = by_consumer(&log).get("base").map_or(0, Vec::len);
    publish_gray(&publisher, 200..300).await;
    assert!(
        eventually(Duration::from_secs(10), || {
            let seen = by_consumer(&log);
            (200..300).all(|i| seen["gray"].binary_search(&i).is_ok())
        })
        .await,
        "the restarted gray consumer did not get its messages back"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = by_consumer(&log);
    assert_eq!(seen["base"].len(), before, "the base took none of them");
    // None lost: every id handled by someone.
    let mut all: Vec<u32> = seen.values().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (0..300).collect::<Vec<_>>());
    again.stop().await.unwrap();
    base.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_gray_stopped_gracefully_then_started_again() {
    gray_stops_and_starts(
        Kind::Core,
        false,
        "core_gray_stopped_gracefully_then_started_again",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_gray_crashed_then_started_again() {
    gray_stops_and_starts(Kind::Core, true, "core_gray_crashed_then_started_again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_gray_stopped_gracefully_then_started_again() {
    gray_stops_and_starts(
        Kind::JetStream,
        false,
        "jetstream_gray_stopped_gracefully_then_started_again",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_gray_crashed_none_lost_then_started_again() {
    gray_stops_and_starts(
        Kind::JetStream,
        true,
        "jetstream_gray_crashed_none_lost_then_started_again",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tag_is_handled_as_configured() {
    let Some(server) = Nats::start("forged_tag_is_handled_as_configured") else {
        return;
    };
    // (name, rule set, who handles a gray-tagged message, as which variant)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "incoming: ignore: the tag is not followed",
            IGNORING,
            "base",
            "stable",
        ),
        (
            "incoming: trust: the tag is followed",
            TRUSTING,
            "gray",
            "gray",
        ),
    ];
    for (n, (name, text, who, variant)) in cases.iter().enumerate() {
        let (client, _) = setup(&Kind::Core, &server).await;
        let subject = format!("orders{n}");
        let log: Log = Arc::default();
        let m = rules(text);
        let start = |v: &str, who: &'static str| {
            nats::Consumer::core(
                client.clone(),
                subject.clone(),
                Lane::new(m.clone(), "workers", v).unwrap(),
            )
            .heartbeat(Duration::from_millis(100))
            .start(recorder(who, &log))
        };
        let gray = start("gray", "gray").await.unwrap();
        let base = start("stable", "base").await.unwrap();
        // An outsider publishes straight to the lane subject with the tag.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("x-gray", "gray");
        client
            .publish_with_headers(format!("{subject}.gray"), headers, "7".into())
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(5), || !log.lock().unwrap().is_empty()).await,
            "case {name}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "case {name}: handled once: {seen:?}");
        assert_eq!(
            (seen[0].consumer, seen[0].variant, seen[0].scope),
            (*who, *variant, Some(*variant)),
            "case {name}"
        );
        gray.stop().await.unwrap();
        base.stop().await.unwrap();
    }
}

/// Raw NATS protocol, to send headers the client would refuse to build.
async fn raw_publish(url: &str, subject: &str, headers: &[u8], payload: &[u8]) {
    let mut s = tokio::net::TcpStream::connect(url).await.unwrap();
    let mut hdr = b"NATS/1.0\r\n".to_vec();
    hdr.extend_from_slice(headers);
    hdr.extend_from_slice(b"\r\n");
    let mut out = br#"CONNECT {"verbose":false,"headers":true,"protocol":1}"#.to_vec();
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(
        format!(
            "HPUB {subject} {} {}\r\n",
            hdr.len(),
            hdr.len() + payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\nPING\r\n");
    s.write_all(&out).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_are_read_by_the_rules() {
    let Some(server) = Nats::start("malformed_headers_are_read_by_the_rules") else {
        return;
    };
    let (client, _) = setup(&Kind::Core, &server).await;
    let log: Log = Arc::default();
    let m = rules(TRUSTING);
    let start = |v: &str, who: &'static str| {
        nats::Consumer::core(
            client.clone(),
            "orders",
            Lane::new(m.clone(), "workers", v).unwrap(),
        )
        .heartbeat(Duration::from_millis(100))
        .start(recorder(who, &log))
    };
    let gray = start("gray", "gray").await.unwrap();
    let base = start("stable", "base").await.unwrap();
    let oversized = format!("baggage: {},gray=gray\r\n", "k=v,".repeat(3000));
    // (name, subject, header lines, handled by and as variant; None: the
    // NATS client drops the message before any handler, and goes on)
    let cases: Vec<(&str, &str, Vec<u8>, Option<(&str, &str)>)> = vec![
        (
            "non-UTF-8 tag: dropped by async-nats",
            "orders.gray",
            b"x-gray: gr\xffay\r\n".to_vec(),
            None,
        ),
        (
            "oversized baggage: the tag past the limits is not read",
            "orders.gray",
            oversized.into_bytes(),
            Some(("base", "stable")),
        ),
        (
            "unknown variant",
            "orders.blue",
            b"x-gray: blue\r\n".to_vec(),
            Some(("base", "stable")),
        ),
        (
            "tag in baggage only",
            "orders.gray",
            b"baggage: a=1, gray=gray;p=1\r\n".to_vec(),
            Some(("gray", "gray")),
        ),
        (
            "no header block content",
            "orders",
            Vec::new(),
            Some(("base", "stable")),
        ),
    ];
    for (i, (name, subject, headers, want)) in cases.iter().enumerate() {
        let before = log.lock().unwrap().len();
        raw_publish(&server.url, subject, headers, i.to_string().as_bytes()).await;
        let limit = if want.is_some() { 3 } else { 1 };
        let handled = eventually(Duration::from_secs(limit), || {
            log.lock().unwrap().len() > before
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = log.lock().unwrap()[before..].to_vec();
        match want {
            None => assert!(!handled && seen.is_empty(), "case {name}: {seen:?}"),
            Some((who, variant)) => {
                assert_eq!(seen.len(), 1, "case {name}: {seen:?}");
                assert_eq!(
                    (seen[0].consumer, seen[0].variant),
                    (*who, *variant),
                    "case {name}"
                );
            }
        }
    }
    // Both consumers still run.
    assert!(!gray.is_finished() && !base.is_finished());
    gray.stop().await.unwrap();
    base.stop().await.unwrap();
}
