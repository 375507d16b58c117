//! OpenTelemetry interop over loopback: a three-hop chain where the middle
//! service sends on with OpenTelemetry's own baggage propagator (no
//! graymatch layer on its client) and the tag still arrives, with the other
//! baggage members kept; and the outcome metrics through an SDK meter
//! provider. Bounded in count and time.
#![cfg(feature = "otel")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::serve;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use graymatch::RuleSet;
use graymatch_tower::{GrayLayer, GrayPropagation};
use http::{HeaderMap, Request};
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::BaggagePropagator;
use tower::Layer;

struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(n, v);
        }
    }
}

struct Read<'a>(&'a HeaderMap);

impl Extractor for Read<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

const TRUSTING: &str =
    "default: stable\nvariants: [stable, gray]\npropagation: { incoming: trust }\n";

/// C: trusts tags; answers its variant and the baggage it got.
async fn hop_c() -> SocketAddr {
    let router = |name: &'static str| {
        Router::new().route(
            "/",
            get(move |headers: HeaderMap| async move {
                let baggage = headers
                    .get("baggage")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                format!("{name} [{baggage}]")
            }),
        )
    };
    let m = RuleSet::from_yaml(TRUSTING).unwrap().compile().unwrap();
    let app = GrayLayer::new(m)
        .route("gray", router("gray"))
        .layer(router("stable"));
    serve(Router::new().fallback_service(app)).await
}

/// B: OTel-instrumented the usual way: incoming baggage extracted into the
/// context by OTel's propagator, outgoing injected from the current context
/// by it; graymatch only decides (trusting), with no outbound layer.
async fn hop_b(c: SocketAddr) -> SocketAddr {
    let call_c = move || async move {
        let mut headers = HeaderMap::new();
        BaggagePropagator::new().inject_context(
            &opentelemetry::Context::current(),
            &mut Headers(&mut headers),
        );
        reqwest::Client::new()
            .get(format!("http://{c}/"))
            .headers(headers)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let m = RuleSet::from_yaml(TRUSTING).unwrap().compile().unwrap();
    let inner = Router::new().fallback(call_c);
    let gray = GrayLayer::new(m).layer(inner);
    // The OTel server side: extract the incoming baggage into the context the
    // request runs under, outside graymatch's layer.
    let app = tower::service_fn(move |req: Request<Body>| {
        let cx = BaggagePropagator::new().extract(&Read(req.headers()));
        let gray = gray.clone();
        async move { tower::ServiceExt::oneshot(gray, req).await }.with_context(cx)
    });
    serve(Router::new().fallback_service(app)).await
}

/// A: the edge: decides (testers gray, else half at random), calls B
/// through reqwest with graymatch's propagation, and reports both.
async fn hop_a(b: SocketAddr) -> SocketAddr {
    let m = RuleSet::from_yaml(
        // The edge sends the tag in its header only: the baggage member C
        // reads can only come from B's context, through graymatch's merge.
        "default: stable\npropagation: { baggage: null }\nrules:\n  - { name: testers, to: gray, when: { header: { name: x-tester, present: true } } }\n  - { name: half, to: gray, percent: 50 }\n",
    )
    .unwrap()
    .compile()
    .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(GrayPropagation::default())
        .build();
    let handler = move |d: axum::Extension<graymatch::Decision>| {
        let client = client.clone();
        async move {
            let downstream = client
                .get(format!("http://{b}/"))
                .header("baggage", "tenant=acme")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            format!("{} -> {downstream}", d.variant())
        }
    };
    let inner = Router::new().fallback(handler);
    serve(Router::new().fallback_service(GrayLayer::new(m).layer(inner))).await
}

#[tokio::test]
async fn three_hops_keep_the_tag_through_an_otel_propagator() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let a = hop_a(hop_b(hop_c().await).await).await;
        let client = reqwest::Client::new();
        let tester = client
            .get(format!("http://{a}/"))
            .header("x-tester", "1")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // B got `x-gray: gray` and `baggage: tenant=acme`; C got no x-gray
        // (B's client only runs OTel's propagator) but a baggage with the
        // gray member graymatch merged into B's context next to tenant.
        assert!(tester.starts_with("gray -> gray ["), "{tester}");
        assert!(
            tester.contains("tenant=acme") && tester.contains("gray=gray"),
            "{tester}"
        );
        // Random at the edge: every chain keeps the edge's variant.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let body = client
                .get(format!("http://{a}/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let (edge, rest) = body.split_once(" -> ").unwrap();
            assert!(rest.starts_with(&format!("{edge} [")), "{body}");
            seen.insert(edge.to_owned());
        }
        assert_eq!(
            seen.len(),
            2,
            "both variants over 40 random draws: {seen:?}"
        );
    })
    .await
    .unwrap();
}
