//! A gray gateway: an axum reverse proxy that sends each request to a stable
//! or a gray upstream by the rules, streaming bodies both ways and carrying
//! the tag (`x-gray`, `baggage`) to the upstream.
//!
//! ```text
//! cargo run -p graymatch-examples --bin gateway -- \
//!     --stable http://127.0.0.1:9001 --gray http://127.0.0.1:9002 [--rules rules.yaml] [--port 8080]
//! ```

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use graymatch::RuleSet;
use graymatch_axum::VariantRouter;
use graymatch_examples::{arg, bind, port, serve};
use graymatch_tower::{PropagateGray, PropagateGrayLayer};
use http::uri::{Authority, Scheme};
use http::{StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

/// Used when no `--rules` file is given.
const DEFAULT_RULES: &str = r#"
default: stable
variants: [stable, gray]
rules:
  - { name: testers, to: gray, when: { header: { name: x-tester, equals: "yes" } } }
  - { name: canary-10, to: gray, percent: 10, sticky: { header: x-user-id } }
"#;

type HttpClient = PropagateGray<Client<HttpConnector, Body>>;

#[derive(Clone)]
struct Upstream {
    authority: Authority,
    client: HttpClient,
}

/// Hop-by-hop headers a proxy must not forward (RFC 9110 section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn proxy(State(up): State<Upstream>, mut req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(up.authority.clone())
        .path_and_query(path)
        .build();
    let Ok(uri) = uri else {
        return (StatusCode::BAD_REQUEST, "bad request target").into_response();
    };
    *req.uri_mut() = uri;
    for h in HOP_BY_HOP {
        req.headers_mut().remove(*h);
    }
    req.headers_mut().remove(http::header::HOST);
    match up.client.oneshot(req).await {
        Ok(res) => {
            let (mut parts, body) = res.into_parts();
            for h in HOP_BY_HOP {
                parts.headers.remove(*h);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("upstream {}: {e}\n", up.authority),
        )
            .into_response(),
    }
}

fn upstream(flag: &str, client: &HttpClient) -> Result<Router, String> {
    let url = arg(flag)
        .ok_or_else(|| format!("missing {flag} URL (e.g. {flag} http://127.0.0.1:9001)"))?;
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid {flag} {url:?}: {e}"))?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(format!("invalid {flag} {url:?}: only http:// upstreams"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("invalid {flag} {url:?}: no host"))?;
    Ok(Router::new().fallback(proxy).with_state(Upstream {
        authority,
        client: client.clone(),
    }))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("gateway: {e}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
    let rules = match arg("--rules") {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            RuleSet::from_yaml(&text).map_err(|e| format!("{path}: {e}"))?
        }
        None => RuleSet::from_yaml(DEFAULT_RULES).map_err(|e| e.to_string())?,
    };
    let matcher = rules.compile().map_err(|e| e.to_string())?;
    // The request already carries the tag GrayLayer wrote; the propagation
    // layer also covers requests the proxy would make on its own.
    let client =
        PropagateGrayLayer::new().layer(Client::builder(TokioExecutor::new()).build_http());
    let app = VariantRouter::new(matcher)
        .variant("gray", upstream("--gray", &client)?)
        .default(upstream("--stable", &client)?);
    let (listener, addr) = bind(port(8080)?).await.map_err(|e| e.to_string())?;
    println!("graymatch gateway listening on http://{addr}");
    serve(listener, app).await.map_err(|e| e.to_string())
}
