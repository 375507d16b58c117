//! The canonical decision through graymatch and its peers, from the same
//! `http::Request`, each asserting its answer inside the timed loop.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use graymatch_benches as b;

fn peers(c: &mut Criterion) {
    let req = b::canonical();
    let m = b::graymatch();
    let unleash = b::unleash();
    let growthbook = b::growthbook();
    let (gm, un, gb) = (
        b::graymatch_decide(&m, &req),
        b::unleash_decide(&unleash, &req),
        b::growthbook_decide(&growthbook, &req),
    );
    let mut g = c.benchmark_group("peers");
    g.bench_function("graymatch", |bench| {
        bench.iter(|| assert_eq!(b::graymatch_decide(black_box(&m), black_box(&req)), gm));
    });
    g.bench_function("unleash-yggdrasil", |bench| {
        bench.iter(|| assert_eq!(b::unleash_decide(black_box(&unleash), black_box(&req)), un));
    });
    g.bench_function("growthbook", |bench| {
        bench.iter(|| {
            assert_eq!(
                b::growthbook_decide(black_box(&growthbook), black_box(&req)),
                gb
            )
        });
    });
    g.bench_function("hand-written", |bench| {
        // Random draw: assert the deterministic part (no override, 5 params).
        bench.iter(|| assert!(!b::handwritten(black_box(&req)).1));
    });
    g.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
