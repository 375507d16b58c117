//! A release run by the middleware: each request's outcome feeds its guards,
//! and its changes (halts, resumes, schedule steps) are logged and exported.
//!
//! [`GrayLayer::release`](crate::GrayLayer::release) decides with a
//! [`Release`]'s matcher, counts each response against the decided variant
//! (a failure is a `5xx`, a gRPC `UNKNOWN`, `DEADLINE_EXCEEDED`, `INTERNAL`,
//! `UNAVAILABLE` or `DATA_LOSS` status in the response head, or an error
//! from the service), and calls [`observe`] so that every change is logged
//! and counted:
//!
//! | event | log (`tracing`, target `graymatch`) | metrics (feature `metrics`) |
//! |---|---|---|
//! | a guard trips | WARN `variant halted` with the reason | `graymatch_guard_trips_total{variant}` +1, `graymatch_variant_halted{variant}` 1 |
//! | an operator or the fleet halts | WARN `variant halted` | `graymatch_variant_halted{variant}` 1 |
//! | a resume | INFO `variant resumed` | `graymatch_variant_halted{variant}` 0 |
//! | a schedule steps | INFO `schedule stepped` with each rule's percent | `graymatch_schedule_percent{rule}` |
//! | new rules | INFO `release rules in force` | gauges set afresh |
//!
//! ```
//! use std::time::Duration;
//! use graymatch::{Release, RuleSet};
//! use graymatch_tower::GrayLayer;
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let release = Release::new(RuleSet::from_yaml(r#"
//! default: stable
//! rules: [{ name: all, to: gray }]
//! guards: [{ variant: gray, min_requests: 20, max_failure_rate: 0.05, window: 1s }]
//! "#)?, None)?;
//! let svc = GrayLayer::release(&release).layer(tower::service_fn(|req: Request<()>| async move {
//!     let d = *req.extensions().get::<graymatch::Decision>().unwrap();
//!     // The gray build fails every request.
//!     let status = if d.variant() == "gray" { StatusCode::BAD_GATEWAY } else { StatusCode::OK };
//!     let mut res = Response::new(d.variant());
//!     *res.status_mut() = status;
//!     Ok::<_, std::convert::Infallible>(res)
//! }));
//! for _ in 0..20 {
//!     svc.clone().oneshot(Request::new(())).await?;
//! }
//! tokio::time::sleep(Duration::from_millis(110)).await; // the next tenth of the window
//! svc.clone().oneshot(Request::new(())).await?;
//! assert_eq!(release.state().halted[0].variant, "gray");
//! let res = svc.oneshot(Request::new(())).await?;
//! assert_eq!(*res.body(), "stable");
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use graymatch::{ChangedBy, Release, ReleaseEvent, SharedMatcher};
use http::{HeaderMap, StatusCode};

/// Logs and counts every change of `release` (see the [module
/// docs](self)). [`GrayLayer::release`](crate::GrayLayer::release) calls it;
/// call it yourself for a release whose outcomes you record by other means.
/// Each call adds an observer, so call it once per release.
pub fn observe(release: &Release) {
    let matcher = release.matcher();
    publish_percents(&matcher);
    release.subscribe(move |event| match event {
        ReleaseEvent::Halted {
            variant,
            reason,
            origin,
        } => {
            tracing::warn!(
                target: "graymatch",
                variant = variant.as_str(),
                by = by(*origin),
                reason = reason.as_str(),
                "variant halted: its rules stop deciding until resumed or new rules arrive"
            );
            #[cfg(feature = "metrics")]
            {
                if *origin == ChangedBy::Guard {
                    metrics::counter!("graymatch_guard_trips_total", "variant" => variant.clone())
                        .increment(1);
                }
                metrics::gauge!("graymatch_variant_halted", "variant" => variant.clone()).set(1.0);
            }
        }
        ReleaseEvent::Resumed { variant, origin } => {
            tracing::info!(
                target: "graymatch",
                variant = variant.as_str(),
                by = by(*origin),
                "variant resumed"
            );
            #[cfg(feature = "metrics")]
            metrics::gauge!("graymatch_variant_halted", "variant" => variant.clone()).set(0.0);
        }
        ReleaseEvent::Stepped { next_change } => {
            let m = matcher.load();
            for rule in m.rule_names() {
                if let Some(pos) = m.schedule(rule) {
                    tracing::info!(
                        target: "graymatch",
                        rule,
                        percent = pos.percent(),
                        step = pos.step().map_or(0, |s| s + 1),
                        steps = pos.steps(),
                        next = next_change.map(graymatch::schedule::rfc3339).as_deref(),
                        "schedule stepped"
                    );
                }
            }
            publish_percents(&matcher);
        }
        ReleaseEvent::Rules { version, reset } => {
            tracing::info!(
                target: "graymatch",
                version = version.as_ref().map(ToString::to_string).as_deref(),
                reset,
                "release rules in force"
            );
            #[cfg(feature = "metrics")]
            if *reset {
                for v in matcher.load().variants() {
                    metrics::gauge!("graymatch_variant_halted", "variant" => v).set(0.0);
                }
            }
            publish_percents(&matcher);
        }
        _ => {}
    });
}

fn by(origin: ChangedBy) -> &'static str {
    match origin {
        ChangedBy::Guard => "guard",
        ChangedBy::Operator => "operator",
        _ => "fleet",
    }
}

/// Sets `graymatch_schedule_percent{rule}` for every scheduled rule.
fn publish_percents(matcher: &SharedMatcher) {
    #[cfg(feature = "metrics")]
    {
        let m = matcher.load();
        for rule in m.rule_names() {
            if let Some(pos) = m.schedule(rule) {
                metrics::gauge!("graymatch_schedule_percent", "rule" => rule).set(pos.percent());
            }
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = matcher;
}

/// What a response needs to be counted by a release's guards.
pub(crate) struct Ticket {
    release: Release,
    variant: &'static str,
    start: Instant,
}

impl Ticket {
    pub(crate) fn new(release: &Release, variant: &'static str) -> Self {
        Ticket {
            release: release.clone(),
            variant,
            start: Instant::now(),
        }
    }

    /// Counts the outcome: `None` is an error from the service.
    pub(crate) fn finish(self, head: Option<(StatusCode, &HeaderMap)>) {
        let failed = head.is_none_or(|(status, headers)| failed(status, headers));
        let now = Instant::now();
        let latency = now.saturating_duration_since(self.start);
        self.release
            .record_at(self.variant, failed, latency.max(Duration::ZERO), now);
    }
}

/// A `5xx`, or a gRPC status in the head that says the server failed.
fn failed(status: StatusCode, headers: &HeaderMap) -> bool {
    if status.is_server_error() {
        return true;
    }
    // UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS
    // (trailers-only responses carry the status in the head).
    headers
        .get("grpc-status")
        .is_some_and(|v| matches!(v.as_bytes(), b"2" | b"4" | b"13" | b"14" | b"15"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures() {
        let grpc = |code: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("grpc-status", http::HeaderValue::from_static(code));
            h
        };
        let cases = [
            ("200", StatusCode::OK, HeaderMap::new(), false),
            (
                "404 is the client's",
                StatusCode::NOT_FOUND,
                HeaderMap::new(),
                false,
            ),
            (
                "500",
                StatusCode::INTERNAL_SERVER_ERROR,
                HeaderMap::new(),
                true,
            ),
            (
                "503",
                StatusCode::SERVICE_UNAVAILABLE,
                HeaderMap::new(),
                true,
            ),
            ("grpc ok", StatusCode::OK, grpc("0"), false),
            ("grpc not found", StatusCode::OK, grpc("5"), false),
            ("grpc unavailable", StatusCode::OK, grpc("14"), true),
            ("grpc internal", StatusCode::OK, grpc("13"), true),
        ];
        for (name, status, headers, want) in cases {
            assert_eq!(failed(status, &headers), want, "{name}");
        }
    }
}
