//! gRPC through `GrayLayer`: a tonic server with a stable and a gray
//! version, and a tonic client whose `Channel` propagates the tag.

use std::time::Duration;

use graymatch::{RuleSet, Tag};
use graymatch_tower::{GrayLayer, PropagateGrayLayer, scope};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;
use tower::Layer;

/// A health service reporting `status` for `orders`: the gray version says
/// NOT_SERVING, so a response tells which version served it.
async fn version(status: ServingStatus) -> axum::Router {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("orders", status).await;
    tonic::service::Routes::new(service).into_axum_router()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_follow_the_propagated_tag() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let rules = RuleSet::from_yaml(
            "default: stable\nvariants: [stable, gray]\npropagation: { incoming: trust }\nrules:\n  - { name: beta, to: gray, when: { header: { name: x-beta, present: true } } }\n",
        )
        .unwrap()
        .compile()
        .unwrap();
        let layer = GrayLayer::new(rules).route("gray", version(ServingStatus::NotServing).await);
        let counters = layer.counters().clone();
        let app = layer.layer(version(ServingStatus::Serving).await);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service(app))
                .await
                .unwrap();
        });

        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(PropagateGrayLayer::new().layer(channel));
        let check = || HealthCheckRequest { service: "orders".to_owned() };

        // No tag in scope: the stable version.
        let status = client.check(check()).await.unwrap().into_inner().status;
        assert_eq!(status, Status::Serving as i32);

        // Within a gray scope (as in a handler behind an edge GrayLayer): gray.
        let gray = Tag::new("gray").unwrap();
        let status = scope::scope(gray, client.check(check())).await.unwrap().into_inner().status;
        assert_eq!(status, Status::NotServing as i32);

        // A tag as request metadata works too; an unknown one is ignored.
        let mut req = tonic::Request::new(check());
        req.metadata_mut().insert("x-gray", "gray".parse().unwrap());
        assert_eq!(client.check(req).await.unwrap().into_inner().status, Status::NotServing as i32);
        let mut req = tonic::Request::new(check());
        req.metadata_mut().insert("x-gray", "v9".parse().unwrap());
        assert_eq!(client.check(req).await.unwrap().into_inner().status, Status::Serving as i32);

        let snap = counters.snapshot();
        assert_eq!(snap.propagated, 2);
        assert_eq!(snap.defaults, 2);
    })
    .await
    .unwrap();
}
