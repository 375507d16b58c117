//! A fleet: three instances of one service, each keeping its rules current
//! from one etcd key, with the version each one runs on its status route.
//! A push raises the gray share from 5 % to 20 % and reaches all three; an
//! invalid push and a concurrent push are refused.
//!
//! ```text
//! cargo run -p graymatch-examples --bin fleet                      # starts a throwaway etcd (Debian: etcd-server)
//! cargo run -p graymatch-examples --bin fleet -- --etcd http://127.0.0.1:2379
//! ```

#[path = "../../../graymatch-source/tests/support/etcd.rs"]
#[allow(dead_code, unreachable_pub, clippy::all)]
mod local_etcd;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use graymatch_axum::{GrayDecision, VariantRouter};
use graymatch_examples::{arg, bind, serve};
use graymatch_source::etcd::{Client, EtcdSource};
use graymatch_source::{Watcher, version_of};

const KEY: &str = "/graymatch/fleet-demo";

fn canary(percent: u32) -> String {
    format!(
        "default: stable\nrules:\n  - {{ name: canary, to: gray, percent: {percent}, sticky: {{ header: x-user-id }} }}\n"
    )
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("fleet: {e}");
        std::process::exit(1);
    }
}

/// One instance: a watcher of the key and a server whose responses carry
/// the version that decided them.
struct Instance {
    name: String,
    url: String,
    watcher: Arc<Watcher>,
}

async fn instance(n: usize, etcd: &str) -> Result<Instance, String> {
    let source = EtcdSource::new([etcd], KEY).map_err(|e| e.to_string())?;
    let watcher = Arc::new(
        Watcher::builder(source)
            .first_wait(Duration::from_secs(5))
            .default_text(canary(0), None)
            .start()
            .await
            .map_err(|e| e.to_string())?,
    );
    let name = format!("instance-{n}");
    let app = |variant: &'static str, watcher: Arc<Watcher>| {
        Router::new()
            .route(
                "/_gray/status",
                get(move || {
                    let w = watcher.clone();
                    async move { w.status().to_string() }
                }),
            )
            .fallback(move |gray: GrayDecision| async move {
                let version = gray.version().map(|v| v.to_string()).unwrap_or_default();
                format!(
                    "served by {variant}: variant={} version={version}\n",
                    gray.variant()
                )
            })
    };
    let router = VariantRouter::new(watcher.matcher())
        .variant("gray", app("gray", watcher.clone()))
        .default(app("stable", watcher.clone()));
    let (listener, addr) = bind(0).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = serve(listener, router).await;
    });
    Ok(Instance {
        name,
        url: format!("http://{addr}"),
        watcher,
    })
}

/// The `version:` line of an instance's status page, over HTTP.
async fn version_of_instance(http: &reqwest::Client, i: &Instance) -> String {
    let page = match http.get(format!("{}/_gray/status", i.url)).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => return format!("unreachable: {e}"),
    };
    page.lines()
        .find_map(|l| l.strip_prefix("version: "))
        .map(|v| v.trim_end_matches(", from the source").to_owned())
        .unwrap_or(page)
}

async fn run() -> Result<(), String> {
    let mut local = None;
    let etcd = match arg("--etcd") {
        Some(url) => {
            println!("etcd: {url}");
            url
        }
        None => {
            if local_etcd::on_path("etcd").is_none() {
                return Err(
                    "etcd not found on PATH: install Debian's etcd-server, or pass --etcd URL"
                        .to_owned(),
                );
            }
            let started = local_etcd::Etcd::start("fleet").ok_or("etcd could not start")?;
            let url = started.url();
            println!(
                "etcd: {url} (a throwaway etcd-server on loopback; pass --etcd URL to use yours)"
            );
            local = Some(started);
            url
        }
    };
    let client = Client::new([&etcd]).map_err(|e| e.to_string())?;
    let current = client.get(KEY).await.map_err(|e| e.to_string())?;
    let seen = current.kv.map_or(0, |kv| kv.mod_revision);
    let first = client
        .put_if(KEY, canary(5).as_bytes(), seen)
        .await
        .map_err(|e| e.to_string())?;
    println!("pushed canary 5% to {KEY} as revision {first}");

    let mut fleet = Vec::new();
    for n in 1..=3 {
        fleet.push(instance(n, &etcd).await?);
    }
    let http = reqwest::Client::new();
    println!("before:");
    let mut before = Vec::new();
    for i in &fleet {
        let v = version_of_instance(&http, i).await;
        println!("  {} {}  version {v}", i.name, i.url);
        before.push(v);
    }

    println!("pushing canary 20% over revision {first}");
    let want = version_of(canary(20).as_bytes());
    let started = Instant::now();
    let second = client
        .put_if(KEY, canary(20).as_bytes(), first)
        .await
        .map_err(|e| e.to_string())?;
    let mut took = Vec::new();
    for i in &fleet {
        let mut rx = i.watcher.subscribe();
        let arrived = tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|v| v.as_ref().is_some_and(|v| v.digest() == want.digest())),
        )
        .await;
        took.push(arrived.is_ok().then(|| started.elapsed()));
    }
    println!("after (revision {second}):");
    for ((i, b), t) in fleet.iter().zip(&before).zip(&took) {
        let after = version_of_instance(&http, i).await;
        let when = t.map_or_else(
            || "not within 5 s".to_owned(),
            |d| format!("{:.1} ms after the push", d.as_secs_f64() * 1000.0),
        );
        println!("  {} {}  version {b} -> {after}  ({when})", i.name, i.url);
    }
    let probe = http
        .get(format!("{}/cart", fleet[0].url))
        .header("x-user-id", "user-3")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    print!(
        "  curl -H 'x-user-id: user-3' {}/cart -> {probe}",
        fleet[0].url
    );

    println!(
        "pushing an invalid rule set (percent 150) over revision {second}, as a client that skips `graymatch push`'s check would"
    );
    let third = client
        .put_if(KEY, canary(150).as_bytes(), second)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in &fleet {
        let status = i.watcher.status();
        println!(
            "  {} keeps version {}; refused: {}",
            i.name,
            status.version.map(|v| v.to_string()).unwrap_or_default(),
            status.last_error.unwrap_or_default()
        );
    }
    println!("a second operator pushes over revision {second}, which they last saw:");
    match client.put_if(KEY, canary(30).as_bytes(), second).await {
        Ok(r) => println!("  written as revision {r} (unexpected)"),
        Err(e) => println!("  {e}"),
    }
    println!(
        "(the key is at revision {third}; `graymatch status --etcd {etcd} --key {KEY}` shows it)"
    );
    // Stop the throwaway etcd (and remove its data) before saying so.
    drop(fleet);
    drop(local.take());
    println!("done");
    Ok(())
}
