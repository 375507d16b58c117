//! Shadow metrics after a known sequence: the real Prometheus exporter's
//! text, parsed back. One test per process: the recorder is global.

mod support;

use std::convert::Infallible;
use std::time::{Duration, Instant};
use support::parse;

use bytes::Bytes;
use graymatch::RuleSet;
use graymatch_tower::shadow::{CopyBody, RequestBody, ShadowLayer};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::{Layer, ServiceExt, service_fn};

/// A service that answers with the status in `x-status` (200 by default).
fn status_of<B>(req: &Request<B>) -> StatusCode {
    req.headers()
        .get("x-status")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(StatusCode::OK)
}

#[tokio::test(flavor = "current_thread")]
async fn primary_and_shadow_sides_after_a_known_sequence() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let rules = "{default: none, rules: [{name: all, to: gray, when: {header: {name: x-copy, present: true}}}]}";
    let m = RuleSet::from_yaml(rules).unwrap().compile().unwrap();
    // The shadow fails every copy with a 503 status, the primary answers 200.
    let shadow = service_fn(|_: Request<CopyBody>| async {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        Ok::<_, Infallible>(res)
    });
    let layer = ShadowLayer::builder(m)
        .mirror("gray", shadow)
        .body_limit(4)
        .build()
        .unwrap();
    let svc = layer.layer(service_fn(
        |req: Request<RequestBody<Full<Bytes>>>| async move {
            let mut res = Response::new(());
            *res.status_mut() = status_of(&req);
            Ok::<_, Infallible>(res)
        },
    ));
    let request = |copy: bool, status: &str, body: &'static str| {
        let mut req = Request::builder().header("x-status", status);
        if copy {
            req = req.header("x-copy", "1");
        }
        req.body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    // (copied, primary status, body, times)
    for (copy, status, body, times) in [
        (true, "200", "", 3),
        (true, "404", "", 1),
        (true, "200", "too large", 2),
        (false, "200", "", 5),
    ] {
        for _ in 0..times {
            svc.clone()
                .oneshot(request(copy, status, body))
                .await
                .unwrap();
        }
    }
    let start = Instant::now();
    while layer.stats().snapshot().completed < 4 {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let series = parse(&handle.render());
    let get = |s: &str| series.get(s).copied();
    let side = |side: &str, status: &str| {
        get(&format!(
            "graymatch_shadow_requests_total{{variant=\"gray\",side=\"{side}\",status=\"{status}\"}}"
        ))
    };
    // (case, series, expected)
    let cases = [
        ("primary 2xx", side("primary", "2xx"), Some(3.0)),
        ("primary 4xx", side("primary", "4xx"), Some(1.0)),
        ("shadow 5xx", side("shadow", "5xx"), Some(4.0)),
        ("shadow 2xx", side("shadow", "2xx"), None),
        (
            "too large",
            get(r#"graymatch_shadow_dropped_total{variant="gray",reason="body_too_large"}"#),
            Some(2.0),
        ),
        (
            "primary latency",
            get(
                r#"graymatch_shadow_request_duration_seconds_count{variant="gray",side="primary"}"#,
            ),
            Some(4.0),
        ),
        (
            "shadow latency",
            get(r#"graymatch_shadow_request_duration_seconds_count{variant="gray",side="shadow"}"#),
            Some(4.0),
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "case {name}:\n{}", handle.render());
    }
}
