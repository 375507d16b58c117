//! Shared pieces of the graymatch examples: argument parsing and serving.

use std::net::SocketAddr;

use axum::extract::Request;
use tokio::net::TcpListener;

/// The value after `--name` on the command line, if any.
pub fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_owned());
        }
    }
    None
}

/// `--port N`, else `PORT`, else `default`.
///
/// # Errors
///
/// When the port is not a number.
pub fn port(default: u16) -> Result<u16, String> {
    match arg("--port").or_else(|| std::env::var("PORT").ok()) {
        Some(p) => p.parse().map_err(|_| format!("invalid port {p:?}")),
        None => Ok(default),
    }
}

/// Binds `127.0.0.1:port` (0 for any free port).
///
/// # Errors
///
/// When the port cannot be bound.
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves `app` (any axum-compatible service) on `listener` until the
/// process ends.
///
/// # Errors
///
/// When serving fails.
pub async fn serve<S>(listener: TcpListener, app: S) -> std::io::Result<()>
where
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .await
}
