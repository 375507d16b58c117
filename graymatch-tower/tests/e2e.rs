//! End to end over loopback: an edge service decides, its handlers call an
//! internal service through reqwest-middleware and a hyper client, and the
//! internal service (trusting tags) routes each hop the way the edge did.
//! Every loop is bounded in count, and every test in time.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use support::serve;

use axum::Router;
use axum::extract::{Extension, State};
use axum::routing::get;
use bytes::Bytes;
use graymatch::{Decision, Reason, RuleSet, SharedMatcher};
use graymatch_tower::reqwest::GrayPropagation;
use graymatch_tower::{GrayLayer, PinCookie, PropagateGray, PropagateGrayLayer, scope};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

const LIMIT: Duration = Duration::from_secs(60);

const EDGE_RULES: &str = r#"
default: stable
variants: [stable, gray]
rules:
  - { name: header-always, to: gray, when: { header: { name: x-canary, equals: always } } }
  - { name: cookie-always, to: gray, when: { cookie: { name: canary, equals: always } } }
  - { name: canary-20, to: gray, percent: 20, sticky: { header: x-user-id, missing: skip } }
"#;

const INTERNAL_RULES: &str = r#"
default: stable
variants: [stable, gray]
propagation: { incoming: trust }
"#;

fn compile(yaml: &str) -> graymatch::Matcher {
    RuleSet::from_yaml(yaml).unwrap().compile().unwrap()
}

/// The internal service: a stable and a gray router behind a trusting layer.
async fn internal() -> SocketAddr {
    let router = |name: &'static str| Router::new().route("/", get(move || async move { name }));
    let app = GrayLayer::new(compile(INTERNAL_RULES))
        .route("gray", router("gray"))
        .layer(router("stable"));
    serve(app).await
}

type HyperClient = PropagateGray<Client<HttpConnector, Full<Bytes>>>;

#[derive(Clone)]
struct Edge {
    name: &'static str,
    internal: SocketAddr,
    reqwest: reqwest_middleware::ClientWithMiddleware,
    hyper: HyperClient,
}

fn clients() -> (reqwest_middleware::ClientWithMiddleware, HyperClient) {
    let reqwest = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(GrayPropagation::new())
        .build();
    let hyper = PropagateGrayLayer::new().layer(Client::builder(TokioExecutor::new()).build_http());
    (reqwest, hyper)
}

/// The edge's handler: calls the internal service both ways, and through a
/// spawned task, and reports every hop.
async fn edge_handler(State(edge): State<Edge>, Extension(d): Extension<Decision>) -> String {
    let url = format!("http://{}/", edge.internal);
    let by_reqwest = edge
        .reqwest
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let req = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
    let res = edge.hyper.clone().oneshot(req).await.unwrap();
    let by_hyper =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let client = edge.reqwest.clone();
    let spawned =
        scope::spawn(async move { client.get(&url).send().await.unwrap().text().await.unwrap() })
            .await
            .unwrap();
    format!(
        "{}:{}:{by_reqwest}:{by_hyper}:{spawned}",
        edge.name,
        d.variant()
    )
}

async fn edge(
    matcher: impl Into<graymatch_tower::MatcherSource>,
) -> (SocketAddr, graymatch_tower::Counters) {
    let internal = internal().await;
    let (reqwest, hyper) = clients();
    let router = |name: &'static str| {
        Router::new()
            .route("/", get(edge_handler))
            .with_state(Edge {
                name,
                internal,
                reqwest: reqwest.clone(),
                hyper: hyper.clone(),
            })
    };
    let layer = GrayLayer::new(matcher).route("gray", router("gray-handler"));
    let counters = layer.counters().clone();
    (serve(layer.layer(router("stable-handler"))).await, counters)
}

async fn get_text(client: &reqwest::Client, addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let mut req = client.get(format!("http://{addr}/"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_hops_follow_the_edge() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = edge(compile(EDGE_RULES)).await;
        let client = reqwest::Client::new();
        let cases: &[(&str, &[(&str, &str)], &str)] = &[
            ("header rule", &[("x-canary", "always")], "gray"),
            ("cookie rule", &[("cookie", "a=1; canary=always")], "gray"),
            ("no rule", &[("x-canary", "never")], "stable"),
            ("sticky user-3", &[("x-user-id", "user-3")], "gray"),
            ("sticky user-1", &[("x-user-id", "user-1")], "stable"),
        ];
        for (name, headers, variant) in cases {
            let body = get_text(&client, addr, headers).await;
            let want = format!("{variant}-handler:{variant}:{variant}:{variant}:{variant}");
            assert_eq!(body, want, "{name}");
        }
        // The sticky users of the conformance file, through every hop.
        let gray = [3, 6, 10, 20, 29, 33, 34, 37];
        for i in 1..=40 {
            let user = format!("user-{i}");
            let body = get_text(&client, addr, &[("x-user-id", &user)]).await;
            let v = if gray.contains(&i) { "gray" } else { "stable" };
            assert_eq!(body, format!("{v}-handler:{v}:{v}:{v}:{v}"), "{user}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_split_keeps_its_variant_on_every_hop() {
    tokio::time::timeout(LIMIT, async {
        let (addr, counters) = edge(compile(
            "default: stable\nvariants: [stable, gray]\nrules:\n  - { name: half, to: gray, percent: 50 }\n",
        ))
        .await;
        let client = reqwest::Client::new();
        let mut gray = 0;
        for _ in 0..1_000 {
            let body = get_text(&client, addr, &[]).await;
            let parts: Vec<&str> = body.split(':').collect();
            let v = parts[1];
            assert_eq!(parts, [&format!("{v}-handler"), v, v, v, v], "{body}");
            gray += usize::from(v == "gray");
        }
        assert!((400..600).contains(&gray), "{gray} of 1000 gray");
        let snap = counters.snapshot();
        assert_eq!(snap.variant("gray") + snap.variant("stable"), 1_000);
        assert_eq!(snap.rule("half") as usize, gray);
        assert_eq!(snap.defaults as usize, 1_000 - gray);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_steer_an_ignoring_edge() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = edge(compile(EDGE_RULES)).await;
        let client = reqwest::Client::new();
        let spoofs: &[&[(&str, &str)]] = &[
            &[("x-gray", "gray")],
            &[("baggage", "gray=gray")],
            &[("x-gray", "gray"), ("baggage", "k=v,gray=gray;p=1")],
            &[("x-gray", "gray"), ("x-gray", "gray")],
        ];
        for headers in spoofs {
            let body = get_text(&client, addr, headers).await;
            assert_eq!(
                body, "stable-handler:stable:stable:stable:stable",
                "{headers:?}"
            );
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_without_a_service_falls_back_to_the_default() {
    tokio::time::timeout(LIMIT, async {
        let m = compile("default: stable\nrules:\n  - { name: to-v3, to: v3, when: { header: { name: x-v3, present: true } } }\n");
        let router = |name: &'static str| {
            Router::new().route(
                "/",
                get(move |Extension(d): Extension<Decision>, headers: http::HeaderMap| async move {
                    // The tag outbound calls carry: in the task's scope. The
                    // request arrived without one, so none is written on it.
                    assert!(headers.get("x-gray").is_none());
                    let tag = graymatch_tower::scope::current().unwrap();
                    format!("{name}:{}:{}", d.variant(), tag.variant())
                }),
            )
        };
        let layer = GrayLayer::new(m).route("gray", router("gray"));
        let counters = layer.counters().clone();
        let addr = serve(layer.layer(router("stable"))).await;
        let client = reqwest::Client::new();
        // The request is served by the default service but keeps its tag.
        assert_eq!(get_text(&client, addr, &[("x-v3", "1")]).await, "stable:v3:v3");
        assert_eq!(get_text(&client, addr, &[]).await, "stable:stable:stable");
        let snap = counters.snapshot();
        assert_eq!(snap.fallback("v3"), 1);
        assert_eq!(snap.fallback("stable"), 0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_while_serving() {
    tokio::time::timeout(LIMIT, async {
        let shared = SharedMatcher::new(compile("default: stable\nvariants: [stable, gray]\n"));
        let router =
            |name: &'static str| Router::new().route("/", get(move || async move { name }));
        let addr = serve(
            GrayLayer::new(shared.clone())
                .route("gray", router("gray"))
                .layer(router("stable")),
        )
        .await;

        let done = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let mut load = Vec::new();
        for _ in 0..4 {
            let (done, served) = (done.clone(), served.clone());
            load.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for _ in 0..10_000 {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = get_text(&client, addr, &[]).await;
                    assert!(body == "stable" || body == "gray", "{body}");
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let client = reqwest::Client::new();
        for round in 0..40 {
            let variant = if round % 2 == 0 { "gray" } else { "stable" };
            let rules =
                RuleSet::from_yaml(&format!("default: {variant}\nvariants: [stable, gray]\n"))
                    .unwrap();
            shared.reload(&rules).unwrap();
            assert_eq!(get_text(&client, addr, &[]).await, variant, "round {round}");
            // An invalid rule set is refused; the current one keeps serving.
            let bad = RuleSet::from_yaml(
                "default: stable\nvariants: [stable, gray]\nrules: [ { name: r, to: nope } ]\n",
            )
            .unwrap();
            let err = shared.reload(&bad).unwrap_err();
            assert!(
                err.to_string().contains("variant `nope` is not declared"),
                "{err}"
            );
            assert_eq!(get_text(&client, addr, &[]).await, variant, "round {round}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        done.store(true, Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
        assert!(served.load(Ordering::Relaxed) > 0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_cookie_is_set_until_the_browser_has_it() {
    tokio::time::timeout(LIMIT, async {
        let m = compile("default: stable\nrules:\n  - { name: t, to: gray, when: { header: { name: x-t, present: true } } }\n");
        let router = Router::new().route("/", get(|| async { "ok" }));
        let addr = serve(GrayLayer::new(m).pin(PinCookie::new("gray-pin")).layer(router)).await;
        let client = reqwest::Client::new();
        let cases: &[(&str, &[(&str, &str)], Option<&str>)] = &[
            ("first visit", &[("x-t", "1")], Some("gray-pin=gray; HttpOnly; SameSite=Lax; Path=/; Max-Age=86400")),
            ("already pinned", &[("x-t", "1"), ("cookie", "gray-pin=gray")], None),
            ("pinned elsewhere", &[("cookie", "gray-pin=gray")], Some("gray-pin=stable; HttpOnly; SameSite=Lax; Path=/; Max-Age=86400")),
        ];
        for (name, headers, want) in cases {
            let mut req = client.get(format!("http://{addr}/"));
            for (n, v) in *headers {
                req = req.header(*n, *v);
            }
            let res = req.send().await.unwrap();
            let got = res.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(got.as_deref(), *want, "{name}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn decision_in_the_extensions_and_tag_in_scope() {
    let m = compile("default: stable\npropagation: { header: x-lane, baggage: lane }\n");
    let svc = GrayLayer::new(m).layer(tower::service_fn(|req: Request<()>| async move {
        let d = *req.extensions().get::<Decision>().unwrap();
        // The tag is in the task's scope (one extension insert per request).
        assert!(req.extensions().get::<graymatch::Tag>().is_none());
        let t = graymatch_tower::scope::current().unwrap();
        let h = req.headers().clone();
        Ok::<_, Infallible>(http::Response::new((d, t, h)))
    }));
    let req = Request::get("/")
        .header("x-lane", "gray")
        .header("baggage", "lane=gray,a=1")
        .body(())
        .unwrap();
    let (d, t, headers) = svc.oneshot(req).await.unwrap().into_body();
    assert_eq!((d.variant(), d.reason()), ("stable", Reason::Default));
    assert_eq!(
        (t.variant(), t.header(), t.baggage_key()),
        ("stable", Some("x-lane"), Some("lane"))
    );
    // The client's tag is overwritten, other baggage kept.
    assert_eq!(headers["x-lane"], "stable");
    assert_eq!(headers["baggage"], "a=1,lane=stable");
}
