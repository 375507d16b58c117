//! `VariantRouter` boxes no handler per request: a counting global
//! allocator compares one request through it with the same request through
//! a `GrayLayer` over Routers made into routes once, and over Routers
//! called as plain services.
//!
//! The library forbids `unsafe`; a global allocator cannot be written
//! without it, so this test file alone allows it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use graymatch::RuleSet;
use graymatch_axum::{GrayLayer, VariantRouter};
use http::Request;
use tower::{Layer, ServiceExt};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations of one request through `app` (after a first, warming one),
/// on this thread: a current-thread runtime polls it here.
async fn per_request(app: Router) -> usize {
    let request = || {
        Request::get("/")
            .header("x-t", "1")
            .body(Body::empty())
            .unwrap()
    };
    app.clone().oneshot(request()).await.unwrap();
    let mut fewest = usize::MAX;
    for _ in 0..5 {
        let req = request();
        let before = ALLOCS.with(Cell::get);
        let res = app.clone().oneshot(req).await.unwrap();
        drop(res);
        fewest = fewest.min(ALLOCS.with(Cell::get) - before);
    }
    fewest
}

#[tokio::test]
async fn variant_router_boxes_no_handler_per_request() {
    let handlers = || Router::new().route("/", get(|| async { "hello" }));
    let m = || {
        RuleSet::from_yaml(
            "default: stable\nrules:\n  - { name: t, to: gray, when: { header: { name: x-t, present: true } } }\n",
        )
        .unwrap()
        .compile()
        .unwrap()
    };
    let plain = Router::new().fallback_service(handlers().with_state(()));
    let layered = |routers: &dyn Fn() -> Router| {
        Router::new().fallback_service(
            GrayLayer::new(m())
                .route("gray", routers())
                .layer(routers()),
        )
    };
    let finished = layered(&|| handlers().with_state(()));
    let unfinished = layered(&handlers);
    let variant_router = VariantRouter::new(m())
        .variant("gray", handlers())
        .default(handlers());
    let plain = per_request(plain).await;
    let finished = per_request(finished).await;
    let unfinished = per_request(unfinished).await;
    let variant_router = per_request(variant_router).await;
    let counts = format!(
        "plain {plain}, layered {finished}, layered over unfinished Routers {unfinished}, VariantRouter {variant_router}"
    );
    // A Router called as a plain service boxes its handler per request.
    assert_eq!(unfinished, finished + 1, "{counts}");
    // Regression: VariantRouter called its Routers unfinished.
    assert_eq!(variant_router, finished, "{counts}");
    // What the layer adds: the Decision (and, with graymatch-tower's `otel`
    // feature, which workspace builds turn on, the OpenTelemetry context).
    assert!(finished > plain, "{counts}");
}
