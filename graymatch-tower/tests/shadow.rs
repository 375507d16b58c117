//! Shadow traffic over loopback: an axum server behind a `ShadowLayer`
//! whose copies go through a hyper client to a second axum server. Every
//! loop is bounded in count, and every wait in time.

mod support;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::serve;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use graymatch::{RuleSet, SharedMatcher};
use graymatch_tower::shadow::{CopyBody, RequestBody, ShadowLayer, ShadowSnapshot, ShadowStats};
use http::{HeaderMap, HeaderName, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt};

const LIMIT: Duration = Duration::from_secs(30);

type TestClient = Client<HttpConnector, BoxBody<Bytes, Infallible>>;

fn compile(yaml: &str) -> graymatch::Matcher {
    RuleSet::from_yaml(yaml).unwrap().compile().unwrap()
}

/// What a server received: headers and body, in arrival order.
type Log = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A server that logs every request, waits `delay`, and echoes the body.
async fn recording_server(delay: Duration) -> (SocketAddr, Log) {
    let log = Log::default();
    let kept = log.clone();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let log = kept.clone();
        async move {
            log.lock().unwrap().push((headers, body.clone()));
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            body
        }
    };
    let app = Router::new()
        .route("/", get(handler.clone()))
        .route("/echo", post(handler));
    (serve(app).await, log)
}

/// A shadow service that sends each copy to `addr` over a hyper client.
fn forward_to(
    addr: SocketAddr,
) -> impl Service<
    Request<CopyBody>,
    Response = Response<hyper::body::Incoming>,
    Error = hyper_util::client::legacy::Error,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let client: Client<HttpConnector, CopyBody> =
        Client::builder(TokioExecutor::new()).build_http();
    client.map_request(move |mut req: Request<CopyBody>| {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = format!("http://{addr}{path}").parse().unwrap();
        req
    })
}

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn full(bytes: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    Full::new(bytes.into()).boxed()
}

/// Sends one request and returns its status and body.
async fn send(
    client: &TestClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: BoxBody<Bytes, Infallible>,
) -> (u16, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let res = client.request(req.body(body).unwrap()).await.unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// Waits (bounded) until `done` holds for the stats, and returns them.
async fn wait_for(stats: &ShadowStats, done: impl Fn(&ShadowSnapshot) -> bool) -> ShadowSnapshot {
    let start = Instant::now();
    loop {
        let snap = stats.snapshot();
        if done(&snap) {
            return snap;
        }
        assert!(start.elapsed() < LIMIT, "gave up waiting: {snap:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const SPLIT: &str = r#"
default: none
variants: [none, gray]
rules:
  - { name: testers, to: gray, when: { header: { name: x-tester, present: true } } }
  - { name: mirror-30, to: gray, percent: 30, sticky: { header: x-user-id, missing: skip } }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_chosen_by_rules_is_copied_with_marker_and_tag() {
    let (shadow_addr, shadow_log) = recording_server(Duration::ZERO).await;
    let primary_log = Log::default();
    let layer = ShadowLayer::builder(compile(SPLIT))
        .mirror("gray", forward_to(shadow_addr))
        .build()
        .unwrap();
    let stats = layer.stats().clone();
    // The primary: logs what it sees, as the recording server does.
    let seen = primary_log.clone();
    let primary = Router::new().route(
        "/",
        get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((headers, Bytes::new()));
                "primary"
            }
        }),
    );
    let addr = serve(layer.layer(primary)).await;
    let client = client();

    // 60 users, sticky 30 %: the copies are exactly the users the rules pick.
    let m = compile(SPLIT);
    let mut expected = BTreeSet::new();
    for i in 0..60 {
        let user = format!("u{i}");
        let req = Request::get("/")
            .header("x-user-id", &user)
            .body(())
            .unwrap();
        if m.decide(&req).variant() == "gray" {
            expected.insert(user.clone());
        }
        // A tag from the client: the primary keeps it, the copy replaces it.
        let headers = [("x-user-id", user.as_str()), ("x-gray", "stable")];
        let (status, body) = send(&client, addr, "GET", "/?q=1", &headers, full("")).await;
        assert_eq!((status, &body[..]), (200, &b"primary"[..]));
    }
    // A tester is always copied; a request already marked never is.
    send(
        &client,
        addr,
        "GET",
        "/?q=1",
        &[("x-tester", "1")],
        full(""),
    )
    .await;
    let marked = [("x-tester", "1"), ("x-gray-shadow", "1")];
    send(&client, addr, "GET", "/?q=1", &marked, full("")).await;
    assert!(expected.len() > 5 && expected.len() < 35, "{expected:?}");
    let copies = expected.len() as u64 + 1;

    let snap = wait_for(&stats, |s| s.completed >= copies).await;
    assert_eq!(snap.selected, copies);
    assert_eq!(snap.enqueued, copies);
    assert_eq!(
        (snap.completed, snap.failed, snap.dropped()),
        (copies, 0, 0)
    );

    let shadow_log = shadow_log.lock().unwrap().clone();
    assert_eq!(shadow_log.len() as u64, copies);
    let mut users = BTreeSet::new();
    for (headers, body) in &shadow_log {
        assert_eq!(headers["x-gray-shadow"], "1");
        assert_eq!(headers["x-gray"], "gray");
        assert_eq!(headers["baggage"], "gray=gray");
        assert!(body.is_empty());
        if let Some(user) = headers.get("x-user-id") {
            users.insert(user.to_str().unwrap().to_owned());
        } else {
            assert!(headers.contains_key("x-tester"));
        }
    }
    assert_eq!(users, expected);

    // The primary saw every request, untouched: its own tag, no marker.
    let primary_log = primary_log.lock().unwrap();
    assert_eq!(primary_log.len(), 62);
    for (headers, _) in primary_log.iter().take(60) {
        assert_eq!(headers["x-gray"], "stable");
        assert!(headers.get("x-gray-shadow").is_none());
        assert!(headers.get("baggage").is_none());
    }
}

/// Sends `n` GETs with `concurrency` at once and returns their latencies.
async fn load(
    client: &TestClient,
    addr: SocketAddr,
    n: usize,
    concurrency: usize,
) -> Vec<Duration> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let client = client.clone();
        tasks.spawn(async move {
            let mut times = Vec::new();
            for _ in (worker..n).step_by(concurrency) {
                let start = Instant::now();
                let (status, _) = send(&client, addr, "GET", "/", &[], full("")).await;
                assert_eq!(status, 200);
                times.push(start.elapsed());
            }
            times
        });
    }
    let mut all = Vec::new();
    while let Some(times) = tasks.join_next().await {
        all.extend(times.unwrap());
    }
    all
}

fn p99(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[(times.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_shadow_leaves_the_primary_p99_and_memory_bounded() {
    let (shadow_addr, _) = recording_server(Duration::from_secs(1)).await;
    let (queue, concurrency) = (4, 2);
    let layer = ShadowLayer::builder(compile("{default: none, rules: [{name: all, to: gray}]}"))
        .mirror("gray", forward_to(shadow_addr))
        .queue(queue)
        .concurrency(concurrency)
        .build()
        .unwrap();
    let stats = layer.stats().clone();
    let app = || Router::new().route("/", get(|| async { "primary" }));
    let baseline = serve(app()).await;
    let shadowed = serve(layer.layer(app())).await;
    let client = client();

    // Alternate rounds so both see the same machine load; 400 requests each.
    let (mut base, mut shadow) = (Vec::new(), Vec::new());
    let mut held = 0;
    for _ in 0..4 {
        base.extend(load(&client, baseline, 100, 8).await);
        shadow.extend(load(&client, shadowed, 100, 8).await);
        // Copies held (queued or in flight) never exceed queue + concurrency.
        let s = stats.snapshot();
        held = held.max(s.enqueued - s.completed - s.failed);
    }
    let (base_p99, shadow_p99) = (p99(&mut base), p99(&mut shadow));
    eprintln!("p99: baseline {base_p99:?}, with a 1 s shadow {shadow_p99:?}");
    assert!(
        shadow_p99 <= base_p99 + Duration::from_millis(100),
        "p99 with shadow {shadow_p99:?}, baseline {base_p99:?}"
    );
    assert!(shadow_p99 < Duration::from_millis(500), "{shadow_p99:?}");

    let snap = stats.snapshot();
    assert_eq!(snap.selected, 400, "{snap:?}");
    assert_eq!(snap.enqueued + snap.queue_full, 400, "{snap:?}");
    assert!(snap.queue_full > 0, "{snap:?}");
    assert!(snap.max_in_flight <= concurrency as u64, "{snap:?}");
    assert!(
        held <= (queue + concurrency) as u64,
        "{held} held: {snap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_up_to_the_limit_are_copied_byte_exact() {
    let (shadow_addr, shadow_log) = recording_server(Duration::ZERO).await;
    let layer = ShadowLayer::builder(compile("{default: none, rules: [{name: all, to: gray}]}"))
        .mirror("gray", forward_to(shadow_addr))
        .body_limit(1024)
        .build()
        .unwrap();
    let stats = layer.stats().clone();
    // As an axum app adds it: Router::layer.
    let echo = Router::new()
        .route("/echo", post(|body: Bytes| async move { body }))
        .layer(layer);
    let addr = serve(echo).await;
    let client = client();
    let bytes = |n: usize, seed: u8| -> Bytes {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    };
    let chunked = |parts: Vec<Bytes>| -> BoxBody<Bytes, Infallible> {
        let frames = parts.into_iter().map(|b| Ok(Frame::data(b)));
        StreamBody::new(tokio_stream::iter(frames)).boxed()
    };

    // (case, body, mirrored)
    let small = bytes(1000, 1);
    let exact = bytes(1024, 2);
    let large = bytes(4096, 3);
    let chunked_small = [bytes(300, 4), bytes(300, 5), bytes(300, 6)];
    let chunked_large = [bytes(800, 7), bytes(800, 8)];
    let cases: Vec<(&str, BoxBody<Bytes, Infallible>, Bytes, bool)> = vec![
        ("within the limit", full(small.clone()), small.clone(), true),
        (
            "exactly the limit",
            full(exact.clone()),
            exact.clone(),
            true,
        ),
        (
            "Content-Length over the limit",
            full(large.clone()),
            large.clone(),
            false,
        ),
        (
            "chunked within the limit",
            chunked(chunked_small.to_vec()),
            chunked_small.concat().into(),
            true,
        ),
        (
            "chunked past the limit",
            chunked(chunked_large.to_vec()),
            chunked_large.concat().into(),
            false,
        ),
    ];
    let mut mirrored = Vec::new();
    for (name, body, sent, copied) in cases {
        let (status, echoed) = send(&client, addr, "POST", "/echo", &[], body).await;
        assert_eq!(status, 200, "case {name}");
        assert_eq!(echoed, sent, "case {name}: the primary gets the whole body");
        if copied {
            mirrored.push(sent);
        }
    }
    let snap = wait_for(&stats, |s| s.completed >= 3).await;
    assert_eq!(snap.body_too_large, 2, "{snap:?}");
    assert_eq!((snap.selected, snap.enqueued), (5, 3), "{snap:?}");
    let log = shadow_log.lock().unwrap();
    // Copies run concurrently: compare in any order.
    let mut got: Vec<Bytes> = log.iter().map(|(_, b)| b.clone()).collect();
    got.sort_unstable();
    mirrored.sort_unstable();
    assert_eq!(got, mirrored);
    for (headers, body) in log.iter() {
        assert_eq!(headers["content-length"], body.len().to_string());
        assert!(headers.get("transfer-encoding").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts() {
    // The shadow service blocks until released.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let blocked = tower::service_fn(move |_: Request<CopyBody>| {
        let gate = held.clone();
        async move {
            let _ = gate.acquire().await;
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }
    });
    let layer = ShadowLayer::builder(compile("{default: none, rules: [{name: all, to: gray}]}"))
        .mirror("gray", blocked)
        .queue(2)
        .concurrency(1)
        .build()
        .unwrap();
    let stats = layer.stats().clone();
    let addr = serve(layer.layer(Router::new().route("/", get(|| async { "primary" })))).await;
    let client = client();
    for _ in 0..10 {
        let (status, _) = send(&client, addr, "GET", "/", &[], full("")).await;
        assert_eq!(
            status, 200,
            "the primary does not wait for a blocked shadow"
        );
    }
    let snap = stats.snapshot();
    assert_eq!(snap.selected, 10);
    assert_eq!(snap.enqueued + snap.queue_full, 10, "{snap:?}");
    // The blocked worker holds one copy and the queue two: every other
    // copy is dropped, whatever the interleaving.
    assert!(snap.enqueued <= 3 && snap.queue_full >= 7, "{snap:?}");
    assert_eq!(snap.completed, 0);

    gate.add_permits(100);
    let snap = wait_for(&stats, |s| s.completed == s.enqueued).await;
    assert!(snap.max_in_flight <= 1, "{snap:?}");
    assert_eq!(snap.in_flight, 0);
}

#[tokio::test]
async fn slow_copies_time_out_and_are_counted() {
    let slow = tower::service_fn(|_: Request<CopyBody>| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let layer = ShadowLayer::builder(compile("{default: none, rules: [{name: all, to: gray}]}"))
        .mirror("gray", slow)
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let svc = layer.layer(tower::service_fn(
        |_: Request<RequestBody<Full<Bytes>>>| async { Ok::<_, Infallible>(Response::new(())) },
    ));
    for _ in 0..3 {
        svc.clone()
            .oneshot(Request::new(Full::new(Bytes::new())))
            .await
            .unwrap();
    }
    let snap = wait_for(layer.stats(), |s| s.timeout == 3).await;
    assert_eq!(
        (snap.failed, snap.completed, snap.in_flight),
        (3, 0, 0),
        "{snap:?}"
    );
}

#[tokio::test]
async fn a_reload_to_a_variant_without_a_shadow_service_is_counted() {
    let shared = SharedMatcher::new(compile(
        "{default: none, variants: [none, gray, blue], rules: [{name: all, to: gray}]}",
    ));
    let ok = tower::service_fn(|_: Request<CopyBody>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let layer = ShadowLayer::builder(shared.clone())
        .mirror("gray", ok)
        .build()
        .unwrap();
    let svc = layer.layer(tower::service_fn(
        |_: Request<RequestBody<Full<Bytes>>>| async { Ok::<_, Infallible>(Response::new(())) },
    ));
    svc.clone()
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap();
    shared
        .reload(
            &RuleSet::from_yaml(
                "{default: none, variants: [none, gray, blue], rules: [{name: all, to: blue}]}",
            )
            .unwrap(),
        )
        .unwrap();
    svc.clone()
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap();
    let snap = wait_for(layer.stats(), |s| s.completed == 1).await;
    assert_eq!((snap.selected, snap.no_service), (2, 1), "{snap:?}");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let rules = "{default: none, variants: [none, gray], rules: [{name: all, to: gray}]}";
    let ok = || {
        tower::service_fn(|_: Request<CopyBody>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        })
    };
    let builder = || ShadowLayer::builder(compile(rules));
    // (case, builder, message)
    let cases = [
        (
            "no shadow service",
            builder(),
            "shadow layer has no shadow service: add one with .mirror(variant, service)",
        ),
        (
            "unknown variant",
            builder().mirror("blue", ok()),
            r#"shadow service for variant "blue", which the rule set does not have (variants: none, gray)"#,
        ),
        (
            "the default variant",
            builder().mirror("none", ok()),
            r#"shadow service for variant "none", the rule set's default, which means "no copy": give the rule set another default"#,
        ),
        (
            "queue 0",
            builder().mirror("gray", ok()).queue(0),
            "shadow queue capacity must be 1 to 1048576, not 0",
        ),
        (
            "queue too large",
            builder().mirror("gray", ok()).queue(usize::MAX),
            &format!(
                "shadow queue capacity must be 1 to 1048576, not {}",
                usize::MAX
            ),
        ),
        (
            "concurrency 0",
            builder().mirror("gray", ok()).concurrency(0),
            "shadow concurrency must be 1 to 65536, not 0",
        ),
        (
            "body limit too large",
            builder().mirror("gray", ok()).body_limit(usize::MAX),
            &format!(
                "shadow body limit must be at most 67108864 bytes, not {}",
                usize::MAX
            ),
        ),
        (
            "zero timeout",
            builder().mirror("gray", ok()).timeout(Duration::ZERO),
            "shadow timeout must be more than zero",
        ),
        (
            "hop-by-hop marker",
            builder()
                .mirror("gray", ok())
                .marker(HeaderName::from_static("connection")),
            r#"shadow marker header "connection" is one a copy cannot carry: choose another name"#,
        ),
    ];
    for (name, builder, message) in cases {
        let err = builder.build().expect_err(name);
        assert_eq!(err.to_string(), message, "case {name}");
    }
    // Edge values are accepted.
    builder()
        .mirror("gray", ok())
        .queue(1)
        .concurrency(1)
        .body_limit(0)
        .timeout(Duration::from_nanos(1))
        .build()
        .unwrap();
}

#[test]
fn without_a_runtime_copies_are_dropped_and_counted() {
    let ok = tower::service_fn(|_: Request<CopyBody>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let layer = ShadowLayer::builder(compile("{default: none, rules: [{name: all, to: gray}]}"))
        .mirror("gray", ok)
        .build()
        .unwrap();
    let mut svc = layer.layer(tower::service_fn(
        |_: Request<RequestBody<Full<Bytes>>>| async { Ok::<_, Infallible>(Response::new(())) },
    ));
    // Called outside any runtime: the copy has no worker to run it.
    let fut = svc.call(Request::new(Full::new(Bytes::new())));
    drop(fut);
    let snap = layer.stats().snapshot();
    assert_eq!(
        (snap.selected, snap.no_worker, snap.enqueued),
        (1, 1, 0),
        "{snap:?}"
    );
}
