//! Helpers shared by the loopback tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Body;
use http::Request;

/// Serves `app` (an axum `Router` or any service of axum requests, such as
/// one wrapped in `GrayLayer`) on a free port of 127.0.0.1, in a spawned
/// task; its address.
pub async fn serve<S>(app: S) -> SocketAddr
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<Request<Body>>::into_make_service(app),
        )
        .await
        .expect("the server runs");
    });
    addr
}

/// `name{labels}` -> value, from Prometheus text.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}
