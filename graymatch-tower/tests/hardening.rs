//! Hardening through `GrayLayer`: hostile requests, spoofing at an ignoring
//! edge, reload under load over loopback, and memory over a million
//! decisions. Bounded in count and time.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use graymatch::{Decision, RuleSet, SharedMatcher};
use graymatch_tower::GrayLayer;
use http::{HeaderValue, Request, Response};
use tower::{Layer, ServiceExt};

fn compile(yaml: &str) -> graymatch::Matcher {
    RuleSet::from_yaml(yaml).unwrap().compile().unwrap()
}

/// A service that reports the decision and the tag headers it received.
fn echo()
-> impl tower::Service<Request<()>, Response = Response<String>, Error = Infallible, Future: Send>
+ Clone {
    tower::service_fn(|req: Request<()>| async move {
        let d = req.extensions().get::<Decision>().unwrap().variant();
        let tag = req
            .headers()
            .get_all("x-gray")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        let baggage = req
            .headers()
            .get_all("baggage")
            .iter()
            .map(|v| v.len())
            .collect::<Vec<_>>();
        Ok(Response::new(format!("{d} {tag:?} {baggage:?}")))
    })
}

#[tokio::test]
async fn hostile_requests_through_the_layer() {
    let edge = GrayLayer::new(compile("default: stable\nvariants: [stable, gray]\nrules:\n  - { name: c, to: gray, when: { cookie: { name: uid, equals: last } } }\n")).layer(echo());
    let huge_cookie = format!("x={}; uid=last", "y".repeat(64 * 1024));
    let many = (0..10_000)
        .map(|i| format!("c{i}=v"))
        .collect::<Vec<_>>()
        .join("; ")
        + "; uid=last";
    let big_baggage = "k=v,".repeat(4_000);
    let cases: Vec<(&str, Vec<(&str, Vec<u8>)>, &str)> = vec![
        (
            "64 KiB cookie",
            vec![("cookie", huge_cookie.into_bytes())],
            // No tag arrived, so none is written on the request.
            "gray [] []",
        ),
        (
            "10,000 cookies",
            vec![("cookie", many.into_bytes())],
            "gray [] []",
        ),
        (
            "1,000 x-gray lines",
            (0..1_000).map(|_| ("x-gray", b"gray".to_vec())).collect(),
            "stable [\"stable\"] [11]",
        ),
        (
            "non-UTF-8",
            vec![
                ("x-gray", b"\xffgray".to_vec()),
                ("cookie", b"uid=\xff".to_vec()),
            ],
            "stable [\"stable\"] [11]",
        ),
        (
            "oversized baggage",
            vec![("baggage", big_baggage.into_bytes())],
            "",
        ),
        (
            "spoofed baggage",
            vec![
                ("baggage", b"gray=gray, a=1".to_vec()),
                ("baggage", b"gray=gray".to_vec()),
            ],
            "stable [\"stable\"] [15]",
        ),
    ];
    for (name, headers, want) in cases {
        let mut req = Request::new(());
        for (n, v) in headers {
            req.headers_mut()
                .append(n, HeaderValue::from_bytes(&v).unwrap());
        }
        let body = edge.clone().oneshot(req).await.unwrap().into_body();
        if want.is_empty() {
            // Merged within the W3C limits, the tag kept.
            let len: usize = body
                .rsplit('[')
                .next()
                .unwrap()
                .trim_end_matches(']')
                .parse()
                .unwrap();
            assert!(len <= graymatch::scan::BAGGAGE_MAX_BYTES, "{name}: {body}");
            assert!(body.starts_with("stable [\"stable\"]"), "{name}: {body}");
        } else {
            assert_eq!(body, want, "{name}");
        }
    }
}

/// 50,000 requests from 8 concurrent clients over loopback while the rules
/// are swapped 500 times, one in five swaps invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load() {
    tokio::time::timeout(Duration::from_secs(300), async {
        // Two rule sets alternate; with x-t a request is gray (A) or v3 (B),
        // without it stable (A) or v2 (B).
        let a = "default: stable\nvariants: [stable, gray, v2, v3]\nrules:\n  - { name: t, to: gray, when: { header: { name: x-t, present: true } } }\n";
        let b = "default: v2\nvariants: [stable, gray, v2, v3]\nrules:\n  - { name: t, to: v3, when: { header: { name: x-t, present: true } } }\n";
        let invalid = "default: stable\nvariants: [stable]\nrules:\n  - { name: t, to: bad, when: { header: { name: x-t, present: true } } }\n";
        let shared = SharedMatcher::new(compile(a));
        let app = GrayLayer::new(shared.clone()).layer(Router::new().route(
            "/",
            get(|d: axum::Extension<Decision>| async move { d.variant() }),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, axum::ServiceExt::<Request<Body>>::into_make_service(app)).await.unwrap();
        });

        let served = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for c in 0..8 {
            let served = served.clone();
            clients.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut seen = HashSet::new();
                for i in 0..6_250 {
                    let tester = (i + c) % 2 == 0;
                    let mut req = client.get(format!("http://{addr}/"));
                    if tester {
                        req = req.header("x-t", "1");
                    }
                    let res = req.send().await.expect("no request fails");
                    assert!(res.status().is_success());
                    let v = res.text().await.unwrap();
                    let allowed: &[&str] = if tester { &["gray", "v3"] } else { &["stable", "v2"] };
                    assert!(allowed.contains(&v.as_str()), "tester={tester}: {v}");
                    seen.insert(v);
                    served.fetch_add(1, Ordering::Relaxed);
                }
                seen
            }));
        }
        // One swap per 100 requests served, so swaps span the whole load.
        let (mut refused, mut swaps) = (0, 0);
        while swaps < 500 {
            if served.load(Ordering::Relaxed) < swaps * 100 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            let text = match swaps % 5 {
                4 => invalid,
                n if n % 2 == 0 => b,
                _ => a,
            };
            if let Err(e) = shared.reload(&RuleSet::from_yaml(text).unwrap()) {
                assert!(e.to_string().contains("variant `bad` is not declared"), "{e}");
                refused += 1;
            }
            swaps += 1;
        }
        let mut seen = HashSet::new();
        for c in clients {
            seen.extend(c.await.unwrap());
        }
        assert_eq!(served.load(Ordering::Relaxed), 50_000);
        assert_eq!(refused, 100);
        eprintln!("50,000 requests, {swaps} swaps ({refused} refused), variants seen: {seen:?}");
    })
    .await
    .unwrap();
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_decisions_do_not_grow_memory() {
    let shared = SharedMatcher::new(compile(
        "default: stable\nvariants: [stable, gray]\nrules:\n  - { name: c, to: gray, percent: 30, sticky: { header: x-u } }\n",
    ));
    let svc = GrayLayer::new(shared.clone()).layer(echo());
    let run = |n: usize| {
        let svc = svc.clone();
        async move {
            let mut tasks = Vec::new();
            for t in 0..4 {
                let svc = svc.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..n / 4 {
                        let req = Request::get("/")
                            .header("x-u", format!("u{}", i * 4 + t))
                            .header("baggage", "a=1")
                            .body(())
                            .unwrap();
                        svc.clone().oneshot(req).await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    run(100_000).await;
    // Reloads with the same names store nothing new.
    for _ in 0..1_000 {
        shared.reload(shared.load().rule_set()).unwrap();
    }
    let before = rss_kib();
    run(1_000_000).await;
    let after = rss_kib();
    let counts = svc.counters().snapshot();
    eprintln!(
        "RSS after warm-up {before} KiB, after 1,000,000 more decisions {after} KiB; {counts:?}"
    );
    assert_eq!(counts.variant("gray") + counts.variant("stable"), 1_100_000);
    assert!(
        after <= before + 8 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}
