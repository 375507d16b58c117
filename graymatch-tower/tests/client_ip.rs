//! `client_ip` rules over loopback: the address comes from axum's
//! `ConnectInfo`, or from `X-Forwarded-For` with trusted hops, never from
//! what the client put further left. Bounded in count and time.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use graymatch::{ClientIp, ClientIpSource, RuleSet};
use graymatch_tower::GrayLayer;
use tower::Layer;

const RULES: &str = r#"
default: stable
variants: [stable, gray, office]
rules:
  - { name: office, to: office, when: { client_ip: { cidr: [10.0.0.0/8] } } }
  - { name: loopback, to: gray, when: { client_ip: { cidr: [127.0.0.0/8, "::1"] } } }
"#;

/// Serves a layered app with connect info; the handler answers
/// `variant client-address`.
async fn serve(source: ClientIpSource) -> SocketAddr {
    let m = RuleSet::from_yaml(RULES).unwrap().compile().unwrap();
    let router = |name: &'static str| {
        Router::new().route(
            "/",
            get(
                move |Extension(ip): Extension<ClientIp>| async move { format!("{name} {}", ip.0) },
            ),
        )
    };
    let app = Router::new().fallback_service(
        GrayLayer::new(m)
            .client_ip(source)
            .route("gray", router("gray"))
            .route("office", router("office"))
            .layer(router("stable")),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn get_text(addr: SocketAddr, xff: Option<&str>) -> String {
    let client = reqwest::Client::new();
    let mut req = client.get(format!("http://{addr}/"));
    if let Some(v) = xff {
        req = req.header("x-forwarded-for", v);
    }
    req.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn peer_address_from_connect_info() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let addr = serve(ClientIpSource::Peer).await;
        // The peer is loopback whatever the client claims.
        for xff in [None, Some("10.1.2.3")] {
            assert_eq!(get_text(addr, xff).await, "gray 127.0.0.1", "{xff:?}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn forwarded_for_with_trusted_hops() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let addr = serve(ClientIpSource::XForwardedFor { trusted_hops: 1 }).await;
        // (case, header, expected body)
        let cases = [
            // Our one proxy appended 10.1.2.3; the client forged 127.0.0.1.
            (
                "rightmost entry",
                Some("127.0.0.1, 10.1.2.3"),
                Some("office 10.1.2.3"),
            ),
            (
                "a single entry",
                Some("192.0.2.1"),
                Some("stable 192.0.2.1"),
            ),
            // No header: the request did not come through the proxy, no address.
            ("no header", None, None),
        ];
        for (name, xff, want) in cases {
            let body = get_text(addr, xff).await;
            match want {
                Some(w) => assert_eq!(body, w, "case {name}"),
                // The handler's extractor rejects a request without ClientIp.
                None => assert!(
                    !body.starts_with("office") && !body.starts_with("gray"),
                    "case {name}: {body}"
                ),
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn no_lookup_without_client_ip_rules() {
    use tower::ServiceExt;
    // A rule set without client_ip leaves leaves the extensions alone.
    let m = RuleSet::new("stable").compile().unwrap();
    let svc = GrayLayer::new(m).layer(tower::service_fn(|req: http::Request<()>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(
            req.extensions().get::<ClientIp>().is_some(),
        ))
    }));
    let mut req = http::Request::new(());
    req.extensions_mut()
        .insert(SocketAddr::from(([10, 0, 0, 1], 1)));
    assert!(!*svc.oneshot(req).await.unwrap().body());
}
