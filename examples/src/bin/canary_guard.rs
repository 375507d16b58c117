//! A canary halted by its guard: a gray build that fails 10 % of its
//! requests rises by schedule from 5 % until the guard on gray sees its
//! failure rate and halts it; from then on every request goes to stable and
//! the schedule stays frozen. All on loopback, in about 10 seconds.
//!
//! An edge server with `GrayLayer::release` decides each request with the
//! release's matcher and feeds every response to the guard (a `5xx` is a
//! failure); a load loop prints, every half second, the schedule's step, the
//! shares of the responses and gray's failures; the release's events are
//! printed as they happen.
//!
//! ```text
//! cargo run -p graymatch-examples --bin canary_guard [-- --seconds 10]
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::get;
use graymatch::{ChangedBy, Release, ReleaseEvent, RuleSet};
use graymatch_examples::{arg, bind};
use graymatch_tower::GrayLayer;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::Layer;

/// The rule set: a sticky canary whose schedule starts at `start` and rises
/// every 2 s, and a guard on gray judged over a 2 s window.
///
/// The load is about 200 requests a second, so gray gets about 20 in a
/// window at 5 % and about 80 at 20 %: `min_requests: 40` lets the guard
/// judge once the schedule has risen (it never judges on too few requests).
fn rules(start: &str) -> String {
    format!(
        r#"
default: stable
variants: [stable, gray]
rules:
  - name: canary
    to: gray
    sticky: {{ header: x-user-id }}
    schedule:
      start: {start}
      steps:
        - {{ percent: 5, for: 2s }}
        - {{ percent: 20, for: 2s }}
        - {{ percent: 50, for: 2s }}
        - {{ percent: 100 }}
guards:
  # Halt gray when more than 5 % of its requests fail over the last 2 s
  # (or when its failure rate is more than twice stable's).
  - {{ variant: gray, window: 2s, min_requests: 40, max_failure_rate: 0.05, max_failure_ratio: 2 }}
"#
    )
}

/// Concurrent clients, each sending one request every `PACE`.
const WORKERS: u64 = 4;
const PACE: Duration = Duration::from_millis(20);
/// How often a line of figures is printed.
const REPORT: Duration = Duration::from_millis(500);

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("canary_guard: {e}");
        std::process::exit(1);
    }
}

/// The responses the clients saw, by who served them.
#[derive(Default)]
struct Tally {
    stable: AtomicU64,
    stable_failed: AtomicU64,
    gray: AtomicU64,
    gray_failed: AtomicU64,
    errors: AtomicU64,
}

impl Tally {
    /// The counts since the last call (stable, stable failed, gray, gray
    /// failed, errors), starting the next interval from zero.
    fn take(&self) -> [u64; 5] {
        [
            &self.stable,
            &self.stable_failed,
            &self.gray,
            &self.gray_failed,
            &self.errors,
        ]
        .map(|n| n.swap(0, Ordering::Relaxed))
    }
}

/// What the release told its subscriber about the halt.
struct Tripped {
    at: Duration,
    percent: f64,
}

async fn run() -> Result<(), String> {
    let seconds: u64 = match arg("--seconds") {
        Some(s) => s
            .parse()
            .ok()
            .filter(|s| (1..=600).contains(s))
            .ok_or_else(|| format!("invalid --seconds {s:?} (1 to 600)"))?,
        None => 10,
    };

    // The schedule starts now (RFC 3339 keeps whole seconds, so its start is
    // up to a second ago); times below count from it, so steps fall on +2s,
    // +4s, +6s.
    let start_text = graymatch::schedule::rfc3339(SystemTime::now());
    let start = graymatch::schedule::parse_time(&start_text)?;
    let since = move || SystemTime::now().duration_since(start).unwrap_or_default();
    let release = Release::new(
        RuleSet::from_yaml(&rules(&start_text)).map_err(|e| e.to_string())?,
        None,
    )
    .map_err(|e| e.to_string())?;
    // Steps happen on time: a thread swaps in each step's matcher.
    release.run_clock().map_err(|e| e.to_string())?;

    // Print the release's changes as they happen (the middleware also logs
    // them through `tracing` and exports them as metrics).
    let halted = Arc::new(AtomicBool::new(false));
    let tripped = Arc::new(Mutex::new(None::<Tripped>));
    {
        let (matcher, halted, tripped) = (release.matcher(), halted.clone(), tripped.clone());
        release.subscribe(move |event| {
            let t = format!("{:>6}", format!("+{:.1}s", since().as_secs_f64()));
            let pos = matcher.load().schedule("canary");
            match event {
                ReleaseEvent::Stepped { next_change } => {
                    let Some(pos) = pos else { return };
                    let next = next_change
                        .and_then(|n| n.duration_since(start).ok())
                        .map_or_else(
                            || "the last step".to_owned(),
                            |n| format!("the next at +{:.1}s", n.as_secs_f64()),
                        );
                    println!(
                        "{t}  event: schedule stepped to {}: canary at {}% ({next})",
                        step(pos.step(), pos.steps()),
                        pos.percent()
                    );
                }
                ReleaseEvent::Halted {
                    variant,
                    reason,
                    origin,
                } => {
                    let by = match origin {
                        ChangedBy::Guard => "the guard",
                        ChangedBy::Operator => "an operator",
                        _ => "the fleet",
                    };
                    let percent = pos.map_or(0.0, |p| p.percent());
                    println!(
                        "{t}  event: {variant} HALTED by {by} at step {} ({percent}%): {reason}",
                        pos.map_or_else(|| "-".to_owned(), |p| step(p.step(), p.steps()))
                    );
                    println!(
                        "{t}  event: from now on every request goes to stable, and the schedule is frozen"
                    );
                    *tripped.lock().unwrap_or_else(|e| e.into_inner()) = Some(Tripped {
                        at: since(),
                        percent,
                    });
                    halted.store(true, Ordering::SeqCst);
                }
                other => println!("{t}  event: {other:?}"),
            }
        });
    }

    // Two builds of one app: stable never fails; gray fails every tenth
    // request with a 500. Each response says which build served it.
    let stable = Router::new().route("/", get(|| async { (StatusCode::OK, "stable") }));
    let gray_served = Arc::new(AtomicU64::new(0));
    let gray = Router::new().route(
        "/",
        get(move || {
            let n = gray_served.fetch_add(1, Ordering::Relaxed);
            async move {
                if n % 10 == 9 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "gray failed")
                } else {
                    (StatusCode::OK, "gray")
                }
            }
        }),
    );
    // The edge decides with the release, routes gray to the gray build and
    // the rest to stable, and counts every response for the guard.
    let edge = GrayLayer::release(&release)
        .route("gray", gray)
        .layer(stable);
    let (listener, addr) = bind(0).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let app = axum::ServiceExt::<Request<Body>>::into_make_service(edge);
        let _ = axum::serve(listener, app).await;
    });

    println!("graymatch canary_guard: edge on http://{addr}, load for {seconds} s");
    println!(
        "  rule canary: gray for a sticky share of x-user-id, 5% for 2s, 20% for 2s, 50% for 2s, then 100%, from {start_text}"
    );
    println!(
        "  guard on gray: over 2s, with at least 40 requests: at most 5% failed (and at most 2x stable's rate)"
    );
    println!("  gray fails 1 request in 10 with a 500; stable never fails");
    println!(
        "  load: {WORKERS} clients, one request each every {PACE:?}, each request from a new user"
    );
    println!();
    println!(
        "{:>6}  {:>4}  {:>6}  {:>8}  {:>6}  {:>6}  {:>8}  guard",
        "time", "step", "canary", "requests", "stable", "gray", "gray 5xx"
    );

    // The load: every request from a new user, so the gray share follows
    // the schedule's percent.
    let tally = Arc::new(Tally::default());
    let gray_after_halt = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (client, tally, stop) = (client.clone(), tally.clone(), stop.clone());
        let (halted, gray_after_halt) = (halted.clone(), gray_after_halt.clone());
        workers.push(tokio::spawn(async move {
            let mut pace = tokio::time::interval(PACE);
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut user = w;
            while !stop.load(Ordering::Relaxed) {
                pace.tick().await;
                user += WORKERS;
                // Sent after the halt was announced: decided by the matcher
                // without gray's rules.
                let after_halt = halted.load(Ordering::SeqCst);
                match send(&client, addr, user).await {
                    Some((status, body)) if body.starts_with(b"gray") => {
                        tally.gray.fetch_add(1, Ordering::Relaxed);
                        if status.is_server_error() {
                            tally.gray_failed.fetch_add(1, Ordering::Relaxed);
                        }
                        if after_halt {
                            gray_after_halt.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some((status, _)) => {
                        tally.stable.fetch_add(1, Ordering::Relaxed);
                        if status != StatusCode::OK {
                            tally.stable_failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // A line every half second, for `seconds`.
    let mut totals = [0u64; 5];
    let mut report = tokio::time::interval_at(tokio::time::Instant::now() + REPORT, REPORT);
    for _ in 0..seconds * 2 {
        report.tick().await;
        let counts = tally.take();
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        let [stable, _, gray, gray_failed, _] = counts;
        let all = (stable + gray).max(1) as f64;
        let pos = release.matcher().load().schedule("canary");
        let guard = if release.state().is_halted("gray") {
            "gray HALTED, schedule frozen"
        } else {
            "watching"
        };
        println!(
            "{:>6}  {:>4}  {:>6}  {:>8}  {:>6}  {:>6}  {:>8}  {guard}",
            format!("+{:.1}s", since().as_secs_f64()),
            pos.map_or_else(|| "-".to_owned(), |p| step(p.step(), p.steps())),
            format!("{}%", pos.map_or(0.0, |p| p.percent())),
            stable + gray,
            format!("{:.1}%", stable as f64 * 100.0 / all),
            format!("{:.1}%", gray as f64 * 100.0 / all),
            format!("{gray_failed}/{gray}"),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    for (t, c) in totals.iter_mut().zip(tally.take()) {
        *t += c;
    }

    let [stable, stable_failed, gray, gray_failed, errors] = totals;
    println!();
    println!(
        "summary: {} requests: stable {stable}, gray {gray} ({gray_failed} failed), errors {errors}",
        stable + gray + errors
    );
    match tripped.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(t) => {
            println!(
                "  the schedule rose from 5% to {}% before the guard halted gray at +{:.1}s",
                t.percent,
                t.at.as_secs_f64()
            );
            println!(
                "  gray responses to requests sent after the halt: {}",
                gray_after_halt.load(Ordering::Relaxed)
            );
            let now = release.matcher().load().schedule("canary");
            println!(
                "  the schedule stayed at {}%; resume with release.resume(Some(\"gray\")) once the build is fixed",
                now.map_or(0.0, |p| p.percent())
            );
        }
        None => println!("  the guard did not trip (too little load? try more --seconds)"),
    }
    println!("  stable failures: {stable_failed}");
    println!("done");
    Ok(())
}

/// One request from user `user`: the status and body, or `None` on an error.
async fn send(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    user: u64,
) -> Option<(StatusCode, Bytes)> {
    let req = Request::get(format!("http://{addr}/"))
        .header("x-user-id", format!("user-{user}"))
        .body(Empty::new())
        .ok()?;
    let res = client.request(req).await.ok()?;
    let status = res.status();
    let body = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

/// `2/4`: the step in force (counting from 1) of how many.
fn step(step: Option<usize>, steps: usize) -> String {
    step.map_or_else(|| format!("-/{steps}"), |s| format!("{}/{steps}", s + 1))
}
