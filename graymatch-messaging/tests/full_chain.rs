//! The full chain HTTP -> broker -> consumer -> HTTP keeps one variant per
//! request: 200 requests at 50 % through the `full_link_mq` example's
//! services and a real nats-server. Skips (one line) without nats-server.

#![cfg(feature = "nats")]

mod support;

#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../examples/full_link_mq.rs"]
mod example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_broker_consumer_http_keeps_one_variant_per_request() {
    let Some(server) =
        support::Nats::start("http_broker_consumer_http_keeps_one_variant_per_request")
    else {
        return;
    };
    let rows = example::run(&server.url, 200).await.unwrap();
    assert_eq!(rows.len(), 200);
    let inconsistent: Vec<_> = rows.iter().filter(|r| !r.consistent()).collect();
    assert!(inconsistent.is_empty(), "{inconsistent:#?}");
    let gray = rows.iter().filter(|r| r.edge == "gray").count();
    // 50 % at random: 200 draws land within 60..140 (far past 5 sigma).
    assert!((60..=140).contains(&gray), "{gray} of 200 gray");
    for r in &rows {
        assert!(["stable", "gray"].contains(&r.edge.as_str()), "{r:?}");
    }
}
