//! OpenTelemetry interop (feature `otel`): the decided tag in the OTel
//! context's baggage, and the outcome metrics as OpenTelemetry instruments.
//!
//! # Baggage
//!
//! OpenTelemetry's baggage propagator writes the whole `baggage` header from
//! the current context, and `Context::with_baggage` replaces the whole
//! baggage set: a service instrumented with OTel would drop the gray member
//! on its outbound calls. So [`Gray`](crate::Gray) runs the inner service
//! under a context whose baggage is the current one with the tag's member
//! merged in (the member `gray=<variant>`, or the rule set's baggage key;
//! every other member kept). A client that injects with OTel's propagator
//! (`opentelemetry_sdk::propagation::BaggagePropagator`, alone or in a
//! composite) then carries `gray=...` on every call, with no graymatch
//! layer on the client. Incoming, the `baggage` header is read as RULES.md
//! says whether or not an OTel propagator also extracted it.
//!
//! # Metrics
//!
//! The same outcomes as [`metrics`](crate::metrics), recorded through the
//! global meter provider (`opentelemetry::global::meter("graymatch")`),
//! looked up at the first request (install the provider before serving):
//!
//! | instrument | kind | unit | attributes |
//! |---|---|---|---|
//! | `graymatch.requests` | counter | `{request}` | `variant`, `rule`, `reason`, `status` |
//! | `graymatch.request.duration` | histogram | `s` | `variant` |
//! | `graymatch.requests.in_flight` | up-down counter | `{request}` | `variant` |
//! | `graymatch.fallbacks` | counter | `{request}` | `variant`, `served` |

use std::sync::OnceLock;
use std::time::Instant;

use graymatch::{Decision, Tag};
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};
use opentelemetry::{Context, KeyValue};

/// The current context with the tag merged into its baggage, or `None`
/// when the rule set carries no baggage member.
#[inline]
pub(crate) fn context_with(tag: &Tag) -> Option<Context> {
    let key = tag.baggage_key()?;
    let current = Context::current();
    let mut baggage: Baggage = current
        .baggage()
        .iter()
        .filter(|(k, _)| k.as_str() != key)
        .map(|(k, (v, m))| (k.clone(), (v.clone(), m.clone())))
        .collect();
    // A variant name is a valid baggage value: the insert cannot fail.
    let _ = baggage.insert(key, tag.variant());
    Some(current.with_baggage(baggage))
}

/// The OpenTelemetry instruments, from the global meter provider.
struct Instruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
    fallbacks: Counter<u64>,
}

fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let meter = opentelemetry::global::meter("graymatch");
        Instruments {
            requests: meter
                .u64_counter("graymatch.requests")
                .with_unit("{request}")
                .with_description("Requests served, by variant, rule, reason and status class")
                .build(),
            duration: meter
                .f64_histogram("graymatch.request.duration")
                .with_unit("s")
                .with_description("Time from the decision to the response head")
                .with_boundaries(crate::metrics::DURATION_BUCKETS.to_vec())
                .build(),
            in_flight: meter
                .i64_up_down_counter("graymatch.requests.in_flight")
                .with_unit("{request}")
                .with_description("Requests being served")
                .build(),
            fallbacks: meter
                .u64_counter("graymatch.fallbacks")
                .with_unit("{request}")
                .with_description("Requests served by the default's service")
                .build(),
        }
    })
}

/// One request's OpenTelemetry outcome.
pub(crate) struct Outcome {
    variant: &'static str,
    rule: &'static str,
    reason: &'static str,
    start: Instant,
    done: bool,
}

impl Outcome {
    pub(crate) fn start(d: &Decision) -> Self {
        instruments()
            .in_flight
            .add(1, &[KeyValue::new("variant", d.variant())]);
        Outcome {
            variant: d.variant(),
            rule: d.rule().unwrap_or(""),
            reason: d.reason().as_str(),
            start: Instant::now(),
            done: false,
        }
    }

    pub(crate) fn finish(mut self, status: &'static str) {
        self.done = true;
        let i = instruments();
        let variant = [KeyValue::new("variant", self.variant)];
        i.requests.add(
            1,
            &[
                KeyValue::new("variant", self.variant),
                KeyValue::new("rule", self.rule),
                KeyValue::new("reason", self.reason),
                KeyValue::new("status", status),
            ],
        );
        i.duration
            .record(self.start.elapsed().as_secs_f64(), &variant);
        i.in_flight.add(-1, &variant);
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.done {
            let i = instruments();
            i.requests.add(
                1,
                &[
                    KeyValue::new("variant", self.variant),
                    KeyValue::new("rule", self.rule),
                    KeyValue::new("reason", self.reason),
                    KeyValue::new("status", "error"),
                ],
            );
            i.in_flight
                .add(-1, &[KeyValue::new("variant", self.variant)]);
        }
    }
}

/// Counts a fallback.
pub(crate) fn fallback(variant: &'static str, served: &'static str) {
    instruments().fallbacks.add(
        1,
        &[
            KeyValue::new("variant", variant),
            KeyValue::new("served", served),
        ],
    );
}
