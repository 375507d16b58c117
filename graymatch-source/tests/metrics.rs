//! The exported series: `graymatch_rules_info{source,version}`, the last
//! reload's success and time, reload failures, source health.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use graymatch_source::{Feed, Format, Revision, version_of};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

/// Every counter and gauge by `name{label=value,...}`.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<BTreeMap<String, f64>>>);

struct Handle(String, Recorded);

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.1
            .0
            .lock()
            .unwrap()
            .insert(self.0.clone(), value as f64);
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.1.0.lock().unwrap().insert(self.0.clone(), value);
    }
}

impl Recorded {
    fn name(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
    fn get(&self, name: &str) -> Option<f64> {
        self.0.lock().unwrap().get(name).copied()
    }
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle(Recorded::name(key), self.clone())))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Handle(Recorded::name(key), self.clone())))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn series_follow_reloads_refusals_and_source_health() {
    let recorded = Recorded::default();
    let r = recorded.clone();
    metrics::with_local_recorder(&r, || {
        let feed = Feed::new("etcd", Format::Yaml);
        let v1 = version_of(b"default: stable\n").id();
        let v2 = version_of(b"default: gray\n").id();
        // (step, series, value after it)
        let steps: [(&str, &[(String, f64)]); 4] = [
            (
                "first",
                &[
                    (
                        format!("graymatch_rules_info{{source=etcd,version={v1}}}"),
                        1.0,
                    ),
                    (
                        "graymatch_rules_last_reload_successful{source=etcd}".to_owned(),
                        1.0,
                    ),
                    ("graymatch_rules_reloads_total{source=etcd}".to_owned(), 1.0),
                    ("graymatch_rules_fallback{source=etcd}".to_owned(), 0.0),
                ],
            ),
            (
                "refused",
                &[
                    (
                        format!("graymatch_rules_info{{source=etcd,version={v1}}}"),
                        1.0,
                    ),
                    (
                        "graymatch_rules_last_reload_successful{source=etcd}".to_owned(),
                        0.0,
                    ),
                    (
                        "graymatch_rules_reload_failures_total{source=etcd}".to_owned(),
                        1.0,
                    ),
                ],
            ),
            (
                "second",
                &[
                    (
                        format!("graymatch_rules_info{{source=etcd,version={v1}}}"),
                        0.0,
                    ),
                    (
                        format!("graymatch_rules_info{{source=etcd,version={v2}}}"),
                        1.0,
                    ),
                    (
                        "graymatch_rules_last_reload_successful{source=etcd}".to_owned(),
                        1.0,
                    ),
                    ("graymatch_rules_reloads_total{source=etcd}".to_owned(), 2.0),
                ],
            ),
            (
                "source down",
                &[
                    ("graymatch_rules_source_up{source=etcd}".to_owned(), 0.0),
                    (
                        "graymatch_rules_source_errors_total{source=etcd}".to_owned(),
                        1.0,
                    ),
                ],
            ),
        ];
        for (step, want) in steps {
            match step {
                "first" => {
                    feed.offer(
                        b"default: stable\n",
                        Revision::ordered(1, "etcd revision 1"),
                    );
                }
                "refused" => {
                    feed.offer(b"default: [", Revision::ordered(2, "etcd revision 2"));
                }
                "second" => {
                    feed.offer(b"default: gray\n", Revision::ordered(3, "etcd revision 3"));
                }
                _ => {
                    feed.source_ok();
                    feed.source_error("etcd http://127.0.0.1:1: connection refused");
                }
            }
            for (series, value) in want {
                assert_eq!(recorded.get(series), Some(*value), "{step}: {series}");
            }
        }
        let t = recorded
            .get("graymatch_rules_last_reload_success_timestamp_seconds{source=etcd}")
            .unwrap();
        assert!(t > 1.7e9, "{t}");
    });
}
