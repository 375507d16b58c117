//! Full-link gray through a message queue, in one process on loopback:
//!
//! ```text
//! client -> edge (HTTP, decides 50 %) -> orders (HTTP) -> NATS JetStream "orders"
//!        -> stable or gray consumer -> inventory (HTTP)
//! ```
//!
//! The edge decides (clients cannot pick: `incoming: ignore`); orders and
//! inventory run a stable and a gray version and trust the tag; orders
//! publishes from its handler, so the message carries the request's tag;
//! the consumer of that variant's lane takes it and calls inventory inside
//! the message's scope. A table shows the variant of every hop.
//!
//! ```text
//! cargo run -p graymatch-messaging --features nats --example full_link_mq
//! ```
//!
//! It uses the NATS server at `NATS_URL`, else starts `nats-server -js`
//! from `PATH` on a free loopback port (Debian: `apt-get install
//! nats-server`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use graymatch::{Matcher, RuleSet};
use graymatch_axum::{GrayDecision, VariantRouter};
use graymatch_messaging::{Incoming, Lane, Running, nats};
use graymatch_tower::reqwest::GrayPropagation;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

const EDGE: &str =
    "{default: stable, variants: [stable, gray], rules: [{name: half, to: gray, percent: 50}]}";
const INTERNAL: &str =
    "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}";

/// One request's hops: the variant each one ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// The request's number.
    pub(crate) id: u32,
    /// The edge's decision.
    pub(crate) edge: String,
    /// The orders version that served it.
    pub(crate) orders: String,
    /// The consumer that took its message.
    pub(crate) consumer: String,
    /// The inventory version the consumer's call reached.
    pub(crate) inventory: String,
}

impl Row {
    /// Whether every hop ran the edge's variant.
    pub(crate) fn consistent(&self) -> bool {
        [&self.orders, &self.consumer, &self.inventory]
            .iter()
            .all(|v| **v == self.edge)
    }
}

fn rules(text: &str) -> Result<Arc<Matcher>, String> {
    RuleSet::from_yaml(text)
        .and_then(|r| r.compile())
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

fn client() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(GrayPropagation::new())
        .build()
}

async fn serve(app: Router) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// A service with a stable and a gray version of `app(variant)`.
async fn versions(
    rules_text: &str,
    app: impl Fn(&'static str) -> Router,
) -> Result<SocketAddr, String> {
    let router = VariantRouter::new(rules(rules_text)?)
        .variant("gray", app("gray"))
        .default(app("stable"));
    serve(router).await
}

#[derive(Clone)]
struct Hop {
    next: SocketAddr,
    client: ClientWithMiddleware,
    publisher: Option<nats::Publisher>,
}

async fn get(client: &ClientWithMiddleware, url: String) -> String {
    match client.get(url).send().await {
        Ok(res) => res.text().await.unwrap_or_else(|e| format!("({e})")),
        Err(e) => format!("({e})"),
    }
}

/// The whole chain, `requests` requests through it: a row per request.
///
/// # Errors
///
/// When a service or the broker cannot be set up, or a message is not
/// consumed within 20 seconds.
pub(crate) async fn run(nats_url: &str, requests: u32) -> Result<Vec<Row>, String> {
    let nc = async_nats::connect(nats_url)
        .await
        .map_err(|e| e.to_string())?;
    let js = async_nats::jetstream::new(nc.clone());
    nats::ensure_stream(&js, "ORDERS", "orders")
        .await
        .map_err(|e| e.to_string())?;
    let publisher = nats::Publisher::jetstream(js, "orders");

    // inventory: names its version.
    let inventory = versions(INTERNAL, |v| {
        Router::new().fallback(move |d: GrayDecision| async move { format!("{v}@{}", d.variant()) })
    })
    .await?;

    // The consumers: one per lane; each calls inventory inside the
    // message's scope and records what it saw.
    let seen: Arc<Mutex<HashMap<u32, (String, String)>>> = Arc::default();
    let internal = rules(INTERNAL)?;
    let mut consumers: Vec<Running> = Vec::new();
    for variant in ["gray", "stable"] {
        let lane =
            Lane::new(internal.clone(), "orders-workers", variant).map_err(|e| e.to_string())?;
        let (seen, http) = (seen.clone(), client());
        let running = nats::Consumer::jetstream(nc.clone(), "ORDERS", "orders", lane)
            .pull(64, Duration::from_millis(100))
            .start(move |m: Incoming<async_nats::Message>| {
                let (seen, http) = (seen.clone(), http.clone());
                async move {
                    let id: u32 = std::str::from_utf8(&m.message().payload)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or("bad payload")?;
                    let answer = get(&http, format!("http://{inventory}/")).await;
                    seen.lock()
                        .map_err(|_| "poisoned")?
                        .insert(id, (variant.to_owned(), answer));
                    Ok::<_, &'static str>(())
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        consumers.push(running);
    }

    // orders: publishes the order, from inside its request's scope.
    let hop = Hop {
        next: inventory,
        client: client(),
        publisher: Some(publisher),
    };
    let orders = versions(INTERNAL, |v| {
        Router::new()
            .fallback(
                move |State(hop): State<Hop>,
                      Query(q): Query<HashMap<String, String>>,
                      d: GrayDecision| async move {
                    let id = q.get("id").cloned().unwrap_or_default();
                    let sent = match &hop.publisher {
                        Some(p) => match p.publish(id.into()).await {
                            Ok(_) => String::new(),
                            Err(e) => format!(" ({e})"),
                        },
                        None => String::new(),
                    };
                    format!("{v}@{}{sent}", d.variant())
                },
            )
            .with_state(hop.clone())
    })
    .await?;

    // The edge: decides, then calls orders.
    let hop = Hop {
        next: orders,
        client: client(),
        publisher: None,
    };
    let edge = serve(
        VariantRouter::new(rules(EDGE)?).default(
            Router::new()
                .fallback(
                    |State(hop): State<Hop>,
                     Query(q): Query<HashMap<String, String>>,
                     d: GrayDecision| async move {
                        let id = q.get("id").cloned().unwrap_or_default();
                        let orders =
                            get(&hop.client, format!("http://{}/?id={id}", hop.next)).await;
                        format!("{} {orders}", d.variant())
                    },
                )
                .with_state(hop),
        ),
    )
    .await?;

    let outside = reqwest::Client::new();
    let mut rows = Vec::new();
    for id in 0..requests {
        let text = outside
            .get(format!("http://{edge}/?id={id}"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        // "gray gray@gray": the edge's decision, then the orders version.
        let mut parts = text.split(' ');
        let edge_variant = parts.next().unwrap_or("?").to_owned();
        let orders_version = parts
            .next()
            .unwrap_or("?")
            .split('@')
            .next()
            .unwrap_or("?")
            .to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let (consumer, inventory) = loop {
            if let Some(found) = seen.lock().map_err(|_| "poisoned")?.get(&id).cloned() {
                break found;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "request {id}: its message was not consumed within 20 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        rows.push(Row {
            id,
            edge: edge_variant,
            orders: orders_version,
            consumer,
            inventory: inventory.split('@').next().unwrap_or("?").to_owned(),
        });
    }
    for c in consumers {
        c.stop().await.map_err(|e| e.to_string())?;
    }
    Ok(rows)
}

/// A nats-server on a free loopback port, killed on drop.
struct Server(std::process::Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start_nats() -> Result<(String, Server), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let dir = std::env::temp_dir().join(format!("graymatch-full-link-mq-{}", std::process::id()));
    let child = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start nats-server ({e}): set NATS_URL, or apt-get install nats-server")
        })?;
    let server = Server(child, dir);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((format!("127.0.0.1:{port}"), server));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("nats-server did not start within 10 s".to_owned())
}

#[tokio::main]
async fn main() {
    let (url, _server) = match std::env::var("NATS_URL") {
        Ok(url) => (url, None),
        Err(_) => match start_nats() {
            Ok((url, server)) => (url, Some(server)),
            Err(e) => {
                eprintln!("full_link_mq: {e}");
                std::process::exit(1);
            }
        },
    };
    let rows = match run(&url, 12).await {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("full_link_mq: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "edge (50 % gray) -> orders -> NATS JetStream orders.<variant> -> consumer -> inventory"
    );
    println!();
    println!(
        "{:<8} {:<8} {:<8} {:<10} {:<10} consistent",
        "request", "edge", "orders", "consumer", "inventory"
    );
    let mut consistent = 0;
    for r in &rows {
        let ok = r.consistent();
        consistent += usize::from(ok);
        println!(
            "{:<8} {:<8} {:<8} {:<10} {:<10} {}",
            r.id,
            r.edge,
            r.orders,
            r.consumer,
            r.inventory,
            if ok { "yes" } else { "NO" }
        );
    }
    println!();
    println!(
        "{consistent} of {} requests kept their variant on every hop",
        rows.len()
    );
    if consistent != rows.len() {
        std::process::exit(1);
    }
}
