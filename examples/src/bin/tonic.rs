//! gRPC behind `GrayLayer`: a tonic health service in a stable and a gray
//! version (the gray one reports NOT_SERVING, so each answer shows who
//! served it), and a tonic client whose `Channel` propagates the tag.
//!
//! ```text
//! cargo run -p graymatch-examples --bin tonic
//! ```

use graymatch::{RuleSet, Tag};
use graymatch_examples::{bind, serve};
use graymatch_tower::{GrayLayer, PropagateGrayLayer, scope};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::Layer;

const RULES: &str = r#"
default: stable
variants: [stable, gray]
propagation: { incoming: trust }
rules:
  - { name: beta-clients, to: gray, when: { header: { name: x-beta, equals: "1" } } }
"#;

async fn version(status: ServingStatus) -> axum::Router {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("orders", status).await;
    tonic::service::Routes::new(service).into_axum_router()
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("tonic: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let matcher = RuleSet::from_yaml(RULES)?.compile()?;
    let app = GrayLayer::new(matcher)
        .route("gray", version(ServingStatus::NotServing).await)
        .layer(version(ServingStatus::Serving).await);
    let (listener, addr) = bind(0).await?;
    tokio::spawn(serve(listener, app));
    println!("gRPC server on http://{addr}");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(PropagateGrayLayer::new().layer(channel));
    let check = || HealthCheckRequest {
        service: "orders".to_owned(),
    };
    let served = |status: i32| if status == 1 { "stable" } else { "gray" };

    let status = client.check(check()).await?.into_inner().status;
    println!("no tag in scope          -> served by {}", served(status));

    let status = scope::scope(Tag::new("gray")?, client.check(check()))
        .await?
        .into_inner()
        .status;
    println!("in a gray scope          -> served by {}", served(status));

    let mut req = tonic::Request::new(check());
    req.metadata_mut().insert("x-beta", "1".parse()?);
    let status = client.check(req).await?.into_inner().status;
    println!("x-beta: 1 metadata       -> served by {}", served(status));
    Ok(())
}
