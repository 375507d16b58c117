//! Full-link gray in one process: edge -> orders -> inventory on loopback.
//! The edge decides (clients cannot pick: `incoming: ignore`); orders and
//! inventory each run a stable and a gray version and trust the tag that
//! reqwest carries from hop to hop. Prints which version served each hop for
//! a set of sample requests.
//!
//! ```text
//! cargo run -p graymatch-examples --bin full_link
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use graymatch::RuleSet;
use graymatch_axum::{GrayDecision, VariantRouter};
use graymatch_examples::{bind, serve};
use graymatch_tower::reqwest::GrayPropagation;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

const EDGE: &str = r#"
default: stable
variants: [stable, gray]
rules:
  - { name: testers, to: gray, when: { header: { name: x-tester, equals: "yes" } } }
  - { name: canary-20, to: gray, percent: 20, sticky: { header: x-user-id, missing: skip } }
"#;

const INTERNAL: &str = r#"
default: stable
variants: [stable, gray]
propagation: { incoming: trust }
"#;

#[derive(Clone)]
struct Hop {
    name: String,
    next: Option<SocketAddr>,
    client: ClientWithMiddleware,
}

/// A service version: names itself and what the next hop answered.
async fn handle(State(hop): State<Hop>, gray: GrayDecision) -> String {
    let mut out = format!("{}@{}", hop.name, gray.variant());
    if let Some(next) = hop.next {
        match hop.client.get(format!("http://{next}/")).send().await {
            Ok(res) => match res.text().await {
                Ok(text) => {
                    out.push(' ');
                    out.push_str(&text);
                }
                Err(e) => out.push_str(&format!(" ({e})")),
            },
            Err(e) => out.push_str(&format!(" ({e})")),
        }
    }
    out
}

async fn service(
    rules: &str,
    name: &'static str,
    next: Option<SocketAddr>,
) -> Result<SocketAddr, String> {
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(GrayPropagation::new())
        .build();
    let version = |v: &'static str| {
        Router::new().fallback(handle).with_state(Hop {
            name: format!("{name}-{v}"),
            next,
            client: client.clone(),
        })
    };
    let matcher = RuleSet::from_yaml(rules)
        .and_then(|r| r.compile())
        .map_err(|e| e.to_string())?;
    let app = VariantRouter::new(matcher)
        .variant("gray", version("gray"))
        .default(version("stable"));
    let (listener, addr) = bind(0).await.map_err(|e| e.to_string())?;
    tokio::spawn(serve(listener, app));
    Ok(addr)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("full_link: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let inventory = service(INTERNAL, "inventory", None).await?;
    let orders = service(INTERNAL, "orders", Some(inventory)).await?;
    let edge = service(EDGE, "edge", Some(orders)).await?;
    println!("edge http://{edge} -> orders http://{orders} -> inventory http://{inventory}");
    println!();
    println!(
        "{:<34} {:<8} {:<16} {:<16} {:<20}",
        "request", "edge", "orders", "inventory", "consistent"
    );

    // A plain client: what an outside caller sends.
    let client = reqwest::Client::new();
    let samples: Vec<(String, Vec<(&str, String)>)> = [
        ("(no headers)".to_owned(), vec![]),
        (
            "x-tester: yes".to_owned(),
            vec![("x-tester", "yes".to_owned())],
        ),
        (
            "x-gray: gray (spoofed)".to_owned(),
            vec![("x-gray", "gray".to_owned())],
        ),
        (
            "baggage: gray=gray (spoofed)".to_owned(),
            vec![("baggage", "gray=gray".to_owned())],
        ),
    ]
    .into_iter()
    .chain((1..=8).map(|i| {
        (
            format!("x-user-id: user-{i}"),
            vec![("x-user-id", format!("user-{i}"))],
        )
    }))
    .collect();
    let mut consistent = 0;
    for (label, headers) in &samples {
        let mut req = client.get(format!("http://{edge}/"));
        for (n, v) in headers {
            req = req.header(*n, v);
        }
        let text = req
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        // "edge-gray@gray orders-gray@gray inventory-gray@gray"
        let hops: Vec<&str> = text.split(' ').collect();
        let served: Vec<&str> = hops
            .iter()
            .map(|h| h.split('@').next().unwrap_or("?"))
            .collect();
        let variants: Vec<&str> = hops
            .iter()
            .map(|h| h.rsplit('@').next().unwrap_or("?"))
            .collect();
        let same = served.len() == 3
            && variants.iter().all(|v| *v == variants[0])
            && served.iter().all(|s| s.ends_with(variants[0]));
        consistent += usize::from(same);
        println!(
            "{:<34} {:<8} {:<16} {:<16} {:<20}",
            label,
            variants.first().copied().unwrap_or("?"),
            served.get(1).copied().unwrap_or("?"),
            served.get(2).copied().unwrap_or("?"),
            if same { "yes" } else { "NO" }
        );
    }
    println!();
    println!(
        "{consistent} of {} requests kept their variant on every hop",
        samples.len()
    );
    if consistent == samples.len() {
        Ok(())
    } else {
        Err("a request changed variant between hops".to_owned())
    }
}
