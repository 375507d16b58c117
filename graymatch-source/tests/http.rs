//! The HTTP source against a real HTTP server on loopback: ETag and 304,
//! errors with backoff, a server that hangs (timeout), a refused text, and 3
//! watchers converging on 100 changes.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use graymatch_source::http::HttpSource;
use graymatch_source::{Watcher, version_of};
use support::{converge, converge_from, percentiles, rules};

/// What the server answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    Fail,
    Hang,
}

#[derive(Default)]
struct Counts {
    full: AtomicUsize,
    not_modified: AtomicUsize,
    failed: AtomicUsize,
}

#[derive(Clone)]
struct Server {
    body: Arc<Mutex<(String, Mode)>>,
    counts: Arc<Counts>,
    url: String,
}

async fn handle(State(s): State<Server>, headers: HeaderMap) -> Response {
    let (body, mode) = s.body.lock().unwrap().clone();
    match mode {
        Mode::Fail => {
            s.counts.failed.fetch_add(1, Ordering::SeqCst);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Mode::Serve => {}
    }
    let etag = format!("\"{}\"", version_of(body.as_bytes()).id());
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        s.counts.not_modified.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    s.counts.full.fetch_add(1, Ordering::SeqCst);
    ([(header::ETAG, etag)], body).into_response()
}

impl Server {
    async fn start(text: &str) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/rules.yaml", listener.local_addr().unwrap());
        let server = Server {
            body: Arc::new(Mutex::new((text.to_owned(), Mode::Serve))),
            counts: Arc::default(),
            url,
        };
        let app = axum::Router::new()
            .route("/rules.yaml", axum::routing::get(handle))
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    fn set(&self, text: &str, mode: Mode) {
        *self.body.lock().unwrap() = (text.to_owned(), mode);
    }
}

async fn watcher(url: &str, interval: Duration) -> Watcher {
    let source = HttpSource::new(url)
        .unwrap()
        .interval(interval)
        .jitter(interval / 4)
        .timeout(Duration::from_millis(300))
        .backoff(Duration::from_millis(50), Duration::from_millis(400));
    Watcher::builder(source)
        .first_wait(Duration::from_secs(2))
        .start()
        .await
        .expect("the watcher starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_rules_cost_a_304_and_no_parse() {
    let server = Server::start(&rules(1)).await;
    let w = watcher(&server.url, Duration::from_millis(20)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let full = server.counts.full.load(Ordering::SeqCst);
    let not_modified = server.counts.not_modified.load(Ordering::SeqCst);
    assert_eq!(full, 1, "one full fetch");
    assert!(not_modified >= 5, "then 304s: {not_modified}");
    let v = w.version().unwrap();
    assert_eq!(v.revision(), Some(format!("etag \"{}\"", v.id()).as_str()));
    server.set(&rules(2), Mode::Serve);
    assert!(
        converge(&w, &version_of(rules(2).as_bytes()), Duration::from_secs(1))
            .await
            .is_some()
    );
    assert_eq!(server.counts.full.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_back_off_and_keep_the_rules() {
    let server = Server::start(&rules(1)).await;
    let w = watcher(&server.url, Duration::from_millis(20)).await;
    // (mode, what the status says after a while)
    let cases = [(Mode::Fail, "503"), (Mode::Hang, "timed out")];
    for (mode, want) in cases {
        let before = server.counts.failed.load(Ordering::SeqCst);
        server.set(&rules(1), mode);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let status = w.status();
        assert_eq!(status.source_up, Some(false), "{status}");
        assert!(
            status.last_error.as_deref().unwrap_or("").contains(want),
            "{status}"
        );
        assert_eq!(
            status.version.unwrap().digest(),
            version_of(rules(1).as_bytes()).digest()
        );
        if mode == Mode::Fail {
            // Polling every 20 ms, 1.2 s would be ~60 requests; with backoff
            // from 50 ms doubling to 400 ms it is a handful.
            let failed = server.counts.failed.load(Ordering::SeqCst) - before;
            assert!((3..=10).contains(&failed), "{failed} failed polls");
        }
        // Decisions are never held up by the failing source.
        let started = Instant::now();
        for _ in 0..1000 {
            w.matcher().decide(&http::Request::new(()));
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        server.set(&rules(1), Mode::Serve);
        // Back within one timeout and one backoff step (bounded wait).
        let mut up = false;
        for _ in 0..40 {
            up = w.status().source_up == Some(true);
            if up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "{}", w.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_text_refused_once_then_fixed() {
    let server = Server::start(&rules(1)).await;
    let w = watcher(&server.url, Duration::from_millis(20)).await;
    server.set("default: stable\nrules: [{ name: r, to: gray, when: { header: { name: x, regex: '(' } } }]\n", Mode::Serve);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = w.status();
    assert_eq!(
        status.reload_failures, 1,
        "the same bad text counts once: {status}"
    );
    assert!(status.last_error.unwrap().contains("rules[0] (r)"));
    assert_eq!(
        status.version.unwrap().digest(),
        version_of(rules(1).as_bytes()).digest()
    );
    server.set(&rules(2), Mode::Serve);
    assert!(
        converge(&w, &version_of(rules(2).as_bytes()), Duration::from_secs(1))
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_watchers_converge_on_each_of_100_changes() {
    let server = Server::start(&rules(0)).await;
    let interval = Duration::from_millis(50);
    let watchers = [
        watcher(&server.url, interval).await,
        watcher(&server.url, interval).await,
        watcher(&server.url, interval).await,
    ];
    let mut delays = Vec::new();
    for i in 1..=100 {
        let want = version_of(rules(i).as_bytes());
        let started = Instant::now();
        server.set(&rules(i), Mode::Serve);
        let limit = Duration::from_secs(1);
        let (a, b, c) = tokio::join!(
            converge_from(&watchers[0], &want, started, limit),
            converge_from(&watchers[1], &want, started, limit),
            converge_from(&watchers[2], &want, started, limit),
        );
        for (n, took) in [a, b, c].into_iter().enumerate() {
            delays
                .push(took.unwrap_or_else(|| panic!("change {i} not seen by watcher {n} in 1 s")));
        }
    }
    let (p50, p99) = percentiles(&mut delays);
    println!(
        "http propagation over {} deliveries (interval 50 ms + up to 12.5 ms jitter): p50 {p50:?}, p99 {p99:?}",
        delays.len()
    );
}
