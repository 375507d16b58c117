//! Outcome metrics and evaluation events after a known sequence of
//! requests: the real Prometheus exporter's text, parsed back, and a
//! tracing subscriber's output. One test per process: the recorder is
//! global.

mod support;

use std::sync::{Arc, Mutex};
use support::parse;

use graymatch::RuleSet;
use graymatch_tower::GrayLayer;
use graymatch_tower::metrics::{DURATION, DURATION_BUCKETS};
use http::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tower::{Layer, ServiceExt, service_fn};

const RULES: &str = r#"
default: stable
variants: [stable, gray, broken, v4]
rules:
  - { name: testers, to: gray, when: { header: { name: x-tester, present: true } } }
  - { name: crash, to: broken, when: { header: { name: x-crash, present: true } } }
  - { name: unrouted, to: v4, when: { header: { name: x-v4, present: true } } }
"#;

type Svc = tower::util::BoxCloneSyncService<Request<()>, Response<()>, std::io::Error>;

/// A service that answers with the status in `x-status` (200 by default).
fn answering() -> Svc {
    Svc::new(service_fn(|req: Request<()>| async move {
        let status = req
            .headers()
            .get("x-status")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(200);
        let mut res = Response::new(());
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        Ok(res)
    }))
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn metrics_and_events_after_a_known_sequence() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), DURATION_BUCKETS)
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let broken = Svc::new(service_fn(|_: Request<()>| async {
        Err::<Response<()>, _>(std::io::Error::other("down"))
    }));
    let m = RuleSet::from_yaml(RULES).unwrap().compile().unwrap();
    let svc = GrayLayer::new(m)
        .route("gray", answering())
        .route("broken", broken)
        .layer(answering());

    // (headers, how many times)
    let sequence: &[(&[(&str, &str)], usize)] = &[
        (&[], 5),                                       // stable 2xx
        (&[("x-status", "503")], 2),                    // stable 5xx
        (&[("x-tester", "1")], 3),                      // gray 2xx
        (&[("x-tester", "1"), ("x-status", "500")], 1), // gray 5xx
        (&[("x-tester", "1"), ("x-status", "404")], 1), // gray 4xx
        (&[("x-crash", "1")], 2),                       // broken: inner error
        (&[("x-v4", "1")], 1),                          // v4: fallback to stable
    ];
    for (headers, times) in sequence {
        for _ in 0..*times {
            let mut req = Request::new(());
            for (n, v) in *headers {
                req.headers_mut().insert(*n, v.parse().unwrap());
            }
            let _ = svc.clone().oneshot(req).await;
        }
    }

    let series = parse(&handle.render());
    let get = |s: &str| series.get(s).copied();
    let req = |variant: &str, rule: &str, reason: &str, status: &str| {
        get(&format!(
            "graymatch_requests_total{{variant=\"{variant}\",rule=\"{rule}\",reason=\"{reason}\",status=\"{status}\"}}"
        ))
    };
    // (case, series, expected)
    let cases = [
        ("stable 2xx", req("stable", "", "default", "2xx"), Some(5.0)),
        ("stable 5xx", req("stable", "", "default", "5xx"), Some(2.0)),
        ("gray 2xx", req("gray", "testers", "rule", "2xx"), Some(3.0)),
        ("gray 5xx", req("gray", "testers", "rule", "5xx"), Some(1.0)),
        ("gray 4xx", req("gray", "testers", "rule", "4xx"), Some(1.0)),
        (
            "inner errors",
            req("broken", "crash", "rule", "error"),
            Some(2.0),
        ),
        (
            "fallback counted by decided variant",
            req("v4", "unrouted", "rule", "2xx"),
            Some(1.0),
        ),
        // Declared, never decided: its series exist, at zero.
        ("zero series for v4", req("v4", "", "", "5xx"), Some(0.0)),
        (
            "zero series for gray",
            req("gray", "", "", "2xx"),
            Some(0.0),
        ),
        (
            "fallbacks",
            get("graymatch_fallbacks_total{variant=\"v4\",served=\"stable\"}"),
            Some(1.0),
        ),
        (
            "in flight back to zero",
            get("graymatch_requests_in_flight{variant=\"gray\"}"),
            Some(0.0),
        ),
        (
            "histogram count",
            get("graymatch_request_duration_seconds_count{variant=\"gray\"}"),
            Some(5.0),
        ),
        (
            "OTel buckets: the largest bound is 10 s",
            get("graymatch_request_duration_seconds_bucket{variant=\"gray\",le=\"10\"}"),
            Some(5.0),
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "case {name}");
    }
    // Cardinality: only variant and rule names in labels.
    assert!(
        series
            .keys()
            .all(|k| !k.contains("x-tester") && !k.contains('/')),
        "{series:#?}"
    );

    // A versioned rule set: its events carry feature_flag.version.
    let versioned = RuleSet::new("stable")
        .compile()
        .unwrap()
        .with_version(graymatch::RuleSetVersion::new([0xab; 32]));
    let svc = GrayLayer::new(versioned).layer(answering());
    svc.oneshot(Request::new(())).await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logs.matches("feature_flag.evaluation").count(),
        16,
        "{logs}"
    );
    assert_eq!(
        logs.matches("feature_flag.version=abababababab").count(),
        1,
        "{logs}"
    );
    assert!(
        logs.contains("feature_flag.key=\"testers\"")
            && logs.contains("feature_flag.result.variant=\"gray\"")
            && logs.contains("feature_flag.result.reason=\"targeting_match\""),
        "{logs}"
    );
    assert!(
        logs.contains("feature_flag.result.reason=\"default\""),
        "{logs}"
    );
}
