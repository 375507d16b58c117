//! The outcome metrics as OpenTelemetry instruments, read back from the
//! SDK's in-memory exporter after a known sequence of requests. Its own
//! process: the global meter provider is installed before any request.
#![cfg(feature = "otel")]

use graymatch::RuleSet;
use graymatch_tower::GrayLayer;
use http::{Request, Response, StatusCode};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use tower::{Layer, ServiceExt, service_fn};

fn has(attrs: &[&KeyValue], key: &str, value: &str) -> bool {
    attrs
        .iter()
        .any(|kv| kv.key.as_str() == key && kv.value.as_str() == value)
}

#[tokio::test(flavor = "current_thread")]
async fn otel_instruments_after_a_known_sequence() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());

    let m = RuleSet::from_yaml(
        "default: stable\nvariants: [stable, gray, v3]\nrules:\n  - { name: testers, to: gray, when: { header: { name: x-tester, present: true } } }\n  - { name: v3, to: v3, when: { header: { name: x-v3, present: true } } }\n",
    )
    .unwrap()
    .compile()
    .unwrap();
    let inner = service_fn(|req: Request<()>| async move {
        let mut res = Response::new(());
        if req.headers().contains_key("x-fail") {
            *res.status_mut() = StatusCode::BAD_GATEWAY;
        }
        Ok::<_, std::convert::Infallible>(res)
    });
    // gray has a service; v3 has none and falls back to stable's.
    let svc = GrayLayer::new(m).route("gray", inner).layer(inner);
    // (headers, times): 3 gray 2xx, 1 stable 5xx, 2 v3 (a fallback) 2xx.
    let sequence: &[(&[&str], usize)] = &[(&["x-tester"], 3), (&["x-fail"], 1), (&["x-v3"], 2)];
    for (headers, times) in sequence {
        for _ in 0..*times {
            let mut req = Request::new(());
            for h in *headers {
                req.headers_mut().insert(*h, "1".parse().unwrap());
            }
            svc.clone().oneshot(req).await.unwrap();
        }
    }
    provider.force_flush().unwrap();

    let mut requests = Vec::new();
    let mut fallbacks = 0;
    let mut durations = 0;
    for rm in exporter.get_finished_metrics().unwrap() {
        for scope in rm.scope_metrics() {
            for metric in scope.metrics() {
                match (metric.name(), metric.data()) {
                    ("graymatch.requests", AggregatedMetrics::U64(MetricData::Sum(sum))) => {
                        for p in sum.data_points() {
                            let attrs: Vec<&KeyValue> = p.attributes().collect();
                            let pick = |k: &str| {
                                attrs
                                    .iter()
                                    .find(|kv| kv.key.as_str() == k)
                                    .map(|kv| kv.value.as_str().into_owned())
                                    .unwrap_or_default()
                            };
                            requests.push((
                                pick("variant"),
                                pick("rule"),
                                pick("status"),
                                p.value(),
                            ));
                        }
                    }
                    ("graymatch.fallbacks", AggregatedMetrics::U64(MetricData::Sum(sum))) => {
                        for p in sum.data_points() {
                            let attrs: Vec<&KeyValue> = p.attributes().collect();
                            assert!(
                                has(&attrs, "variant", "v3") && has(&attrs, "served", "stable"),
                                "{attrs:?}"
                            );
                            fallbacks += p.value();
                        }
                    }
                    (
                        "graymatch.request.duration",
                        AggregatedMetrics::F64(MetricData::Histogram(h)),
                    ) => {
                        assert_eq!(metric.unit(), "s");
                        durations += h.data_points().map(|p| p.count()).sum::<u64>();
                    }
                    _ => {}
                }
            }
        }
    }
    requests.sort();
    let want = |v: &str, r: &str, s: &str, n: u64| (v.to_owned(), r.to_owned(), s.to_owned(), n);
    assert_eq!(
        requests,
        [
            want("gray", "testers", "2xx", 3),
            want("stable", "", "5xx", 1),
            want("v3", "v3", "2xx", 2),
        ]
    );
    assert_eq!(fallbacks, 2);
    assert_eq!(durations, 6);
}
