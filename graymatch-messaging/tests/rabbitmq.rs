//! Lanes through a real RabbitMQ node: each message consumed by its lane,
//! a gray consumer stopped and started again, forged tags from untrusted
//! producers, malformed headers. Skips (one line) without rabbitmq-server.

#![cfg(feature = "rabbitmq")]

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graymatch::{Matcher, RuleSet, Tag};
use graymatch_messaging::rabbitmq::{self, Message};
use graymatch_messaging::{Incoming, Lane, Running};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ExchangeKind};
use support::{Rabbit, eventually};

const TRUSTING: &str =
    "{default: stable, variants: [stable, gray, v3], propagation: {incoming: trust}}";

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
    dyn Fn(Incoming<Message>) -> Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>
        + Send
        + Sync,
>;

fn recorder(consumer: &'static str, log: &Log) -> Handler {
    let log = log.clone();
    Box::new(move |m: Incoming<Message>| {
        let log = log.clone();
        Box::pin(async move {
            let id = std::str::from_utf8(&m.message().data)
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

fn rules() -> Arc<Matcher> {
    Arc::new(RuleSet::from_yaml(TRUSTING).unwrap().compile().unwrap())
}

fn variant_of(i: u32) -> Option<&'static str> {
    [None, Some("stable"), Some("gray"), Some("v3")][(i % 4) as usize]
}

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

async fn connect(rabbit: &Rabbit) -> Connection {
    Connection::connect(&rabbit.url, Default::default())
        .await
        .unwrap()
}

/// A publisher to a fresh topic exchange in confirm mode.
async fn publisher(conn: &Connection, exchange: &str) -> rabbitmq::Publisher {
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let p = rabbitmq::Publisher::new(ch, exchange);
    p.declare(ExchangeKind::Topic).await.unwrap();
    p
}

async fn consumer(
    conn: &Connection,
    exchange: &str,
    lane: Lane,
    name: &'static str,
    log: &Log,
) -> Running {
    rabbitmq::Consumer::new(conn.create_channel().await.unwrap(), exchange, lane)
        .lane_timeout(Duration::from_millis(1000))
        .start(recorder(name, log))
        .await
        .unwrap()
}

async fn publish(p: &rabbitmq::Publisher, i: u32, variant: Option<&str>) {
    let payload = i.to_string();
    let send = p.publish(
        "order.created",
        payload.as_bytes(),
        BasicProperties::default(),
    );
    match variant {
        Some(v) => graymatch_tower::scope::scope(Tag::new(v).unwrap(), send)
            .await
            .unwrap(),
        None => send.await.unwrap(),
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_consumed_by_its_lane() {
    let Some(rabbit) = Rabbit::get("each_message_consumed_by_its_lane") else {
        return;
    };
    let conn = connect(&rabbit).await;
    let p = publisher(&conn, "orders-a").await;
    let log: Log = Arc::default();
    let m = rules();
    let gray = consumer(
        &conn,
        "orders-a",
        Lane::new(m.clone(), "workers-a", "gray").unwrap(),
        "gray",
        &log,
    )
    .await;
    let base = consumer(
        &conn,
        "orders-a",
        Lane::new(m, "workers-a", "stable").unwrap(),
        "base",
        &log,
    )
    .await;
    for i in 0..1000 {
        publish(&p, i, variant_of(i)).await;
    }
    assert!(
        eventually(Duration::from_secs(30), || log.lock().unwrap().len()
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
        assert_eq!(s.rerouted, want == "v3", "{s:?}");
    }
    // The broker filtered: nobody skipped anything.
    assert_eq!(gray.stats().skipped + base.stats().skipped, 0);
    assert_eq!((base.stats().processed, base.stats().rerouted), (500, 250));
    gray.stop().await.unwrap();
    base.stop().await.unwrap();
}

async fn stopped_then_started(crash: bool, n: &str, test: &str) {
    let Some(rabbit) = Rabbit::get(test) else {
        return;
    };
    let conn = connect(&rabbit).await;
    let exchange = format!("orders-{n}");
    let group = format!("workers-{n}");
    let p = publisher(&conn, &exchange).await;
    let log: Log = Arc::default();
    let m = rules();
    let lane = Lane::new(m.clone(), &group, "gray").unwrap();
    let gray_conn = connect(&rabbit).await;
    let gray = consumer(&gray_conn, &exchange, lane.clone(), "gray", &log).await;
    let base = consumer(
        &conn,
        &exchange,
        Lane::new(m, &group, "stable").unwrap(),
        "base",
        &log,
    )
    .await;
    for i in 0..100 {
        publish(&p, i, Some("gray")).await;
    }
    assert!(eventually(Duration::from_secs(10), || log.lock().unwrap().len() >= 100).await);

    if crash {
        gray.abort();
        gray_conn.close(200, "crash".into()).await.unwrap();
    } else {
        gray.stop().await.unwrap();
    }
    let stopped = std::time::Instant::now();
    for i in 100..200 {
        publish(&p, i, Some("gray")).await;
    }
    // The lane timeout is 1 s: then the base has them, none lost.
    assert!(
        eventually(Duration::from_secs(10), || {
            let base = by_consumer(&log).get("base").cloned().unwrap_or_default();
            (100..200).all(|i| base.binary_search(&i).is_ok())
        })
        .await,
        "the base did not take the stopped lane's messages"
    );
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    for s in log.lock().unwrap().iter().filter(|s| s.consumer == "base") {
        assert!(
            s.rerouted && s.variant == "gray" && s.scope == Some("gray"),
            "{s:?}"
        );
    }

    // Gray again: its messages are its own at once.
    let gray_conn = connect(&rabbit).await;
    let again = consumer(&gray_conn, &exchange, lane, "gray", &log).await;
    let before = by_consumer(&log).get("base").map_or(0, Vec::len);
    for i in 200..300 {
        publish(&p, i, Some("gray")).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || {
            let seen = by_consumer(&log);
            (200..300).all(|i| seen["gray"].binary_search(&i).is_ok())
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = by_consumer(&log);
    assert_eq!(seen["base"].len(), before, "the base took none of them");
    let mut all: Vec<u32> = seen.values().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (0..300).collect::<Vec<_>>(), "none lost");
    again.stop().await.unwrap();
    base.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gray_stopped_gracefully_none_lost_then_started_again() {
    stopped_then_started(
        false,
        "b",
        "gray_stopped_gracefully_none_lost_then_started_again",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gray_crashed_none_lost_then_started_again() {
    stopped_then_started(true, "c", "gray_crashed_none_lost_then_started_again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tag_from_an_untrusted_producer_goes_to_the_base() {
    let Some(rabbit) = Rabbit::get("forged_tag_from_an_untrusted_producer_goes_to_the_base") else {
        return;
    };
    let conn = connect(&rabbit).await;
    let p = publisher(&conn, "orders-d").await;
    let log: Log = Arc::default();
    let m = rules();
    let start = |v: &str, who: &'static str| {
        let conn = &conn;
        let log = &log;
        let lane = Lane::new(m.clone(), "workers-d", v).unwrap();
        async move {
            rabbitmq::Consumer::new(conn.create_channel().await.unwrap(), "orders-d", lane)
                .trusted_users(["guest"])
                .start(recorder(who, log))
                .await
                .unwrap()
        }
    };
    let gray = start("gray", "gray").await;
    let base = start("stable", "base").await;
    let tagged = |user: Option<&str>| {
        let mut h = FieldTable::default();
        h.insert("x-gray".into(), AMQPValue::LongString("gray".into()));
        let p = BasicProperties::default().with_headers(h);
        match user {
            Some(u) => p.with_user_id(u.into()),
            None => p,
        }
    };
    // (name, user_id, handled by, as variant)
    let cases: &[(&str, Option<&str>, &str, &str)] = &[
        (
            "trusted producer (broker-checked user_id)",
            Some("guest"),
            "gray",
            "gray",
        ),
        (
            "no user_id: forged, forwarded to the base",
            None,
            "base",
            "stable",
        ),
    ];
    for (i, (name, user, who, variant)) in cases.iter().enumerate() {
        let before = log.lock().unwrap().len();
        p.publish("order.created", i.to_string().as_bytes(), tagged(*user))
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(5), || log.lock().unwrap().len()
                > before)
            .await,
            "case {name}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = log.lock().unwrap()[before..].to_vec();
        assert_eq!(seen.len(), 1, "case {name}: {seen:?}");
        assert_eq!(
            (seen[0].consumer, seen[0].variant, seen[0].scope),
            (*who, *variant, Some(*variant)),
            "case {name}"
        );
    }
    assert_eq!(
        gray.stats().skipped,
        1,
        "the gray lane forwarded the forged one"
    );
    // The broker refuses a user_id that is not the connection's user: a
    // producer cannot pass as a trusted one.
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let liar = rabbitmq::Publisher::new(ch, "orders-d");
    let refused = liar
        .publish("order.created", b"99", tagged(Some("orders-service")))
        .await;
    assert!(refused.is_err(), "the broker accepted a forged user_id");
    gray.stop().await.unwrap();
    base.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_are_read_by_the_rules() {
    let Some(rabbit) = Rabbit::get("malformed_headers_are_read_by_the_rules") else {
        return;
    };
    let conn = connect(&rabbit).await;
    let p = publisher(&conn, "orders-e").await;
    let log: Log = Arc::default();
    let m = rules();
    let gray = consumer(
        &conn,
        "orders-e",
        Lane::new(m.clone(), "workers-e", "gray").unwrap(),
        "gray",
        &log,
    )
    .await;
    let base = consumer(
        &conn,
        "orders-e",
        Lane::new(m, "workers-e", "stable").unwrap(),
        "base",
        &log,
    )
    .await;
    let oversized = format!("{}gray=gray", "k=v,".repeat(3000));
    // (name, headers, handled by, as variant)
    let cases: Vec<(&str, Vec<(&str, AMQPValue)>, &str, &str)> = vec![
        (
            "non-UTF-8 tag",
            vec![(
                "x-gray",
                AMQPValue::LongString(LongString::from(vec![b'g', 0xff])),
            )],
            "base",
            "stable",
        ),
        (
            "tag as a number",
            vec![("x-gray", AMQPValue::LongInt(7))],
            "base",
            "stable",
        ),
        (
            "oversized baggage: the tag past the limits is not read",
            vec![("baggage", AMQPValue::LongString(oversized.into()))],
            "base",
            "stable",
        ),
        (
            "unknown variant",
            vec![("x-gray", AMQPValue::LongString("blue".into()))],
            "base",
            "stable",
        ),
        (
            "tag in baggage only: the base reroutes it in the gray scope",
            vec![("baggage", AMQPValue::LongString("gray=gray".into()))],
            "base",
            "gray",
        ),
    ];
    for (i, (name, headers, who, variant)) in cases.into_iter().enumerate() {
        let before = log.lock().unwrap().len();
        let mut h = FieldTable::default();
        for (k, v) in headers {
            h.insert(k.into(), v);
        }
        p.publish(
            "order.created",
            i.to_string().as_bytes(),
            BasicProperties::default().with_headers(h),
        )
        .await
        .unwrap();
        assert!(
            eventually(Duration::from_secs(5), || log.lock().unwrap().len()
                > before)
            .await,
            "case {name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = log.lock().unwrap()[before..].to_vec();
        assert_eq!(seen.len(), 1, "case {name}: {seen:?}");
        assert_eq!(
            (seen[0].consumer, seen[0].variant),
            (who, variant),
            "case {name}"
        );
    }
    assert!(!gray.is_finished() && !base.is_finished());
    gray.stop().await.unwrap();
    base.stop().await.unwrap();
}
