//! `GrayLayer` over a no-op service against the bare service: the cost the
//! layer adds to each request (decide, tag, extensions, scope, routing).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use graymatch_benches as b;
use tower::Service;

fn layer(c: &mut Criterion) {
    let (mut bare, mut gray) = b::bare_and_layered();
    let mut g = c.benchmark_group("layer");
    g.bench_function("bare", |bench| {
        bench.iter_batched(
            b::canonical,
            |req| b::poll_now(bare.call(black_box(req))).unwrap(),
            criterion::BatchSize::SmallInput,
        );
    });
    g.bench_function("gray-layer", |bench| {
        bench.iter_batched(
            b::canonical,
            |req| b::poll_now(gray.call(black_box(req))).unwrap(),
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
