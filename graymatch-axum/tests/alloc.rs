//! What `VariantRouter` adds to a request's allocations: the `Decision` in
//! the extensions, and nothing per handler. A counting global allocator
//! compares one request through it with the same request through the same
//! `Router` shape without the layer.
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
use graymatch_axum::VariantRouter;
use http::Request;
use tower::ServiceExt;

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
async fn variant_router_adds_only_the_decision() {
    let handlers = || Router::new().route("/", get(|| async { "hello" }));
    let m = RuleSet::from_yaml(
        "default: stable\nrules:\n  - { name: t, to: gray, when: { header: { name: x-t, present: true } } }\n",
    )
    .unwrap()
    .compile()
    .unwrap();
    let plain = Router::new().fallback_service(handlers().with_state(()));
    let gray = VariantRouter::new(m)
        .variant("gray", handlers())
        .default(handlers());
    let (plain, gray) = (per_request(plain).await, per_request(gray).await);
    // Regression: the inner Routers were called as plain services, which
    // clone and box their handler on every request (one more allocation).
    assert_eq!(
        gray,
        plain + 1,
        "plain {plain}, through VariantRouter {gray}"
    );
}
