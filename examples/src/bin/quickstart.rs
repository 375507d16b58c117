//! The quickstart: an axum server routing requests between a stable and a
//! gray version by an embedded rule set (or `--rules FILE`, reloaded when
//! the file changes), with per-variant metrics in Prometheus text at
//! `/_gray/counters`.
//!
//! ```text
//! cargo run -p graymatch-examples --bin quickstart [-- --port 3000] [--rules rules.yaml]
//! ```

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use graymatch::{RuleSet, SharedMatcher};
use graymatch_axum::{GrayDecision, VariantRouter};
use graymatch_examples::{arg, bind, port, serve};
use graymatch_tower::metrics::{DURATION, DURATION_BUCKETS};
use metrics_exporter_prometheus::{Matcher as MetricName, PrometheusBuilder};

const EMBEDDED: &str = include_str!("../../rules/quickstart.yaml");

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("quickstart: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let port = port(3000)?;
    let rules_path = arg("--rules").map(PathBuf::from);
    let rules = match &rules_path {
        Some(p) => load(p)?,
        None => RuleSet::from_yaml(EMBEDDED).map_err(|e| e.to_string())?,
    };
    let shared = SharedMatcher::new(rules.compile().map_err(|e| e.to_string())?);

    // Per-variant metrics: install a recorder before serving; the layer
    // records into it through the `metrics` facade.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(MetricName::Full(DURATION.to_owned()), DURATION_BUCKETS)
        .map_err(|e| e.to_string())?
        .build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;

    // Two versions of one app; each response says who served it and why.
    let version = |name: &'static str| {
        Router::new().fallback(move |gray: GrayDecision| async move {
            format!(
                "served by {name}: variant={} rule={} reason={}\n",
                gray.variant(),
                gray.rule().unwrap_or("-"),
                gray.reason()
            )
        })
    };
    let app = VariantRouter::new(shared.clone())
        .variant("gray", version("gray"))
        .default(version("stable"))
        // Routes added to the finished app are not decided (nor counted).
        .route(
            "/_gray/counters",
            get(move || std::future::ready(prometheus.render())),
        );

    let (listener, addr) = bind(port)
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    println!("graymatch quickstart listening on http://{addr}");
    match &rules_path {
        Some(p) => println!("rules: {} (watched: a change is reloaded)", p.display()),
        None => println!(
            "rules: embedded (examples/rules/quickstart.yaml); pass --rules FILE to use your own"
        ),
    }
    if rules_path.is_none() {
        println!("try:");
        for line in curl_lines(&addr.to_string()) {
            println!("  {line}");
        }
    }
    println!(
        "metrics per variant: curl -s 'http://{addr}/_gray/counters' | grep graymatch_requests_total"
    );
    if let Some(path) = rules_path {
        tokio::spawn(watch(path, shared));
    }
    serve(listener, app).await.map_err(|e| e.to_string())
}

/// The curl lines printed at start: `curl ... # expected response`.
fn curl_lines(addr: &str) -> Vec<String> {
    [
        ("", "/", "stable: variant=stable rule=- reason=default"),
        (
            "-H 'x-tester: yes' ",
            "/",
            "gray: variant=gray rule=testers reason=rule",
        ),
        (
            "-b 'beta=1' ",
            "/",
            "gray: variant=gray rule=beta-cookie reason=rule",
        ),
        (
            "",
            "/?beta=on",
            "gray: variant=gray rule=beta-link reason=rule",
        ),
        (
            "-H 'x-user-id: user-3' ",
            "/",
            "gray: variant=gray rule=canary-20 reason=rule",
        ),
        (
            "-H 'x-user-id: user-1' ",
            "/",
            "stable: variant=stable rule=- reason=default",
        ),
        (
            "-H 'x-gray: gray' ",
            "/",
            "stable: variant=stable rule=- reason=default",
        ),
    ]
    .iter()
    .map(|(flags, path, expect)| {
        format!("curl -s {flags}'http://{addr}{path}'   # served by {expect}")
    })
    .collect()
}

fn load(path: &PathBuf) -> Result<RuleSet, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => RuleSet::from_json(&text),
        Some("toml") => RuleSet::from_toml(&text),
        _ => RuleSet::from_yaml(&text),
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

/// Polls the rules file and reloads it when it changes; a file that does not
/// compile is refused and the rules in force keep serving.
async fn watch(path: PathBuf, shared: SharedMatcher) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = modified(&path);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = modified(&path);
        if now == last {
            continue;
        }
        last = now;
        match load(&path).and_then(|r| shared.reload(&r).map_err(|e| e.to_string())) {
            Ok(()) => println!("reloaded {}", path.display()),
            Err(e) => println!(
                "refused {}: {e} (the old rules keep serving)",
                path.display()
            ),
        }
    }
}
