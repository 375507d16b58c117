//! A release's guard over loopback: an edge server with `GrayLayer::release`
//! routes to a stable and a gray router under a steady, bounded load. A gray
//! build failing 10 % of its requests is halted within one window while
//! stable serves without a failure; a gray build failing a little under
//! the threshold is never halted over 20 windows. Every loop is bounded in count
//! and time.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::serve;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use graymatch::{Release, RuleSet};
use graymatch_tower::GrayLayer;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::Layer;

#[derive(Default)]
struct Counts {
    stable: AtomicUsize,
    gray: AtomicUsize,
}

/// The edge: stable always answers 200; gray fails every `fail_every`-th
/// request with a 500.
async fn edge(release: &Release, counts: Arc<Counts>, fail_every: usize) -> SocketAddr {
    let c = counts.clone();
    let stable = Router::new().route(
        "/",
        get(move || {
            let c = c.clone();
            async move {
                c.stable.fetch_add(1, Ordering::Relaxed);
                (StatusCode::OK, "stable")
            }
        }),
    );
    let c = counts.clone();
    let gray = Router::new().route(
        "/",
        get(move || {
            let c = c.clone();
            async move {
                let n = c.gray.fetch_add(1, Ordering::Relaxed);
                if n % fail_every == fail_every - 1 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "gray failed")
                } else {
                    (StatusCode::OK, "gray")
                }
            }
        }),
    );
    serve(
        GrayLayer::release(release)
            .route("gray", gray)
            .layer(stable),
    )
    .await
}

/// Sends requests from `workers` loops until `stop` says so, at most
/// `max` in all; counts the failures seen while stable served.
async fn load(
    addr: SocketAddr,
    workers: usize,
    max: usize,
    deadline: Instant,
    stop: impl Fn() -> bool + Send + Sync + 'static,
) -> usize {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(stop);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, sent, stop) = (client.clone(), sent.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut stable_failures = 0;
            while !stop() && Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max
            {
                let res = client
                    .get(format!("http://{addr}/").parse().unwrap())
                    .await
                    .unwrap();
                let status = res.status();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                if body == "stable" && status != StatusCode::OK {
                    stable_failures += 1;
                }
                // A steady load, not a flood: about 1,000 requests a second.
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            stable_failures
        }));
    }
    let mut failures = 0;
    for t in tasks {
        failures += t.await.unwrap();
    }
    failures
}

fn release(window: &str, min_requests: u32) -> Release {
    Release::new(
        RuleSet::from_yaml(&format!(
            r#"
default: stable
variants: [stable, gray]
rules:
  - {{ name: canary, to: gray, percent: 50 }}
guards:
  - {{ variant: gray, window: {window}, min_requests: {min_requests}, max_failure_rate: 0.05 }}
"#
        ))
        .unwrap(),
        None,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gray_build_failing_10_percent_is_halted_within_one_window() {
    let window = Duration::from_secs(2);
    let release = release("2s", 50);
    let counts = Arc::new(Counts::default());
    let addr = edge(&release, counts.clone(), 10).await;
    let started = Instant::now();
    let halted_at = Arc::new(std::sync::Mutex::new(None));
    let (r, h) = (release.clone(), halted_at.clone());
    let watcher = std::thread::spawn(move || {
        while started.elapsed() < Duration::from_secs(20) {
            if !r.state().halted.is_empty() {
                *h.lock().unwrap() = Some(started.elapsed());
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    // Load until a window after the halt, at most 20 s or 20,000 requests.
    let (r, h2) = (release.clone(), halted_at.clone());
    let gray_at_halt = Arc::new(std::sync::Mutex::new(None));
    let (g, c) = (gray_at_halt.clone(), counts.clone());
    let stable_failures = load(
        addr,
        4,
        20_000,
        started + Duration::from_secs(20),
        move || {
            let halted = h2.lock().unwrap().is_some() || !r.state().halted.is_empty();
            if halted {
                let mut g = g.lock().unwrap();
                let now = (c.gray.load(Ordering::Relaxed), Instant::now());
                let first = *g.get_or_insert(now);
                return now.1.duration_since(first.1) > window;
            }
            false
        },
    )
    .await;
    watcher.join().unwrap();
    let after = halted_at.lock().unwrap().expect("gray was halted");
    println!("gray halted {after:?} after the load started (window {window:?})");
    assert!(
        after <= window,
        "halted after {after:?}, more than one window"
    );
    let halt = &release.state().halted[0];
    assert_eq!(halt.variant, "gray");
    assert!(
        halt.reason.starts_with("guard: failure rate"),
        "{}",
        halt.reason
    );
    assert_eq!(stable_failures, 0, "stable traffic saw failures");
    // After the halt no new request reaches gray (those in flight at the
    // moment of the halt may finish: at most one per worker).
    let (gray_then, _) = gray_at_halt
        .lock()
        .unwrap()
        .expect("load ran past the halt");
    let gray_now = counts.gray.load(Ordering::Relaxed);
    assert!(
        gray_now <= gray_then + 4,
        "gray got {} requests after the halt",
        gray_now - gray_then
    );
    assert!(counts.stable.load(Ordering::Relaxed) > 0);
    // An operator resumes it: gray serves again.
    assert!(release.resume(Some("gray")));
    assert!(release.state().halted.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_gray_build_is_never_halted_over_20_windows() {
    // One request in 30 failing (3.3 %) against a 5 % bound, judged over 1 s
    // windows with at least 100 requests: 20 windows of steady load, no
    // trip. (Completions reorder at most a worker's worth at a window's
    // edges, so even a 100-request window sees at most 5 failures.)
    let release = release("1s", 100);
    let counts = Arc::new(Counts::default());
    let addr = edge(&release, counts.clone(), 30).await;
    let started = Instant::now();
    let stable_failures = load(addr, 4, 40_000, started + Duration::from_secs(21), || false).await;
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "the load stopped early: {} gray requests",
        counts.gray.load(Ordering::Relaxed)
    );
    assert!(release.state().halted.is_empty(), "{:?}", release.state());
    assert_eq!(stable_failures, 0);
    let gray = counts.gray.load(Ordering::Relaxed);
    assert!(
        gray >= 20 * 100,
        "too little load to judge 20 windows: {gray} gray requests"
    );
}
