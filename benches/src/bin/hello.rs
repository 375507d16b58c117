//! An axum hello-world for the load comparison, with `--gray` behind
//! `GrayLayer` (the canonical rules). Listens on `--port` (default 8088) on
//! 127.0.0.1, one worker thread.
//!
//! ```text
//! cargo run --release -p graymatch-benches --bin hello -- [--gray] [--port 8088]
//! ```

use axum::Router;
use axum::routing::get;
use graymatch_tower::GrayLayer;
use tower::Layer;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let gray = args.iter().any(|a| a == "--gray");
    let port: u16 = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(8088);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = Router::new().route("/", get(|| async { "hello" }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        if gray {
            // Handlers made into routes once, as `axum::serve` does for the
            // bare Router (`VariantRouter` does it too).
            let app: Router = app.with_state(());
            // Gray routed to a Router of its own, as the table's layered row
            // routes it (a variant without a route falls back to the
            // default's service, and counts the fallback).
            let app = GrayLayer::new(graymatch_benches::graymatch())
                .route("gray", app.clone())
                .layer(app);
            axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
            )
            .await
        } else {
            axum::serve(listener, app).await
        }
    })
}
