//! `decide` on the canonical decision, each leaf op alone, and how it scales
//! with exact-value rules, `in` sets and mixed string rules on one field,
//! and compiling large rule sets.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use graymatch_benches as b;

fn canonical(c: &mut Criterion) {
    let m = b::graymatch();
    let req = b::canonical();
    let want = b::graymatch_decide(&m, &req);
    let mut g = c.benchmark_group("canonical");
    g.bench_function("graymatch", |bench| {
        bench.iter(|| assert_eq!(b::graymatch_decide(black_box(&m), black_box(&req)), want));
    });
    g.bench_function("primitives", |bench| {
        bench.iter(|| assert_eq!(b::primitives(black_box(&req)), want));
    });
    g.finish();
}

fn ops(c: &mut Criterion) {
    let req = b::canonical();
    let mut g = c.benchmark_group("op");
    for (name, cond, holds) in b::OPS {
        let m = b::single(cond);
        g.bench_function(*name, |bench| {
            bench.iter(|| {
                assert_eq!(
                    black_box(&m).decide(black_box(&req)).variant() == "gray",
                    *holds
                )
            });
        });
    }
    g.finish();
}

fn scaling(c: &mut Criterion) {
    // The last rule's value: the worst case for a rule-by-rule scan.
    let mut g = c.benchmark_group("exact-rules");
    for n in [1usize, 10, 100, 1_000] {
        let m = b::exact_rules(n);
        let last = format!("k{}", n - 1);
        let req = b::request(b::USER, &[("x-id", &last)]);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| assert_eq!(black_box(&m).decide(black_box(&req)).variant(), "gray"));
        });
    }
    g.finish();
    let mut g = c.benchmark_group("in-set");
    for n in [1usize, 10, 100, 1_000, 10_000] {
        let m = b::in_set(n);
        let last = format!("k{}", n - 1);
        let req = b::request(b::USER, &[("x-id", &last)]);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| assert_eq!(black_box(&m).decide(black_box(&req)).variant(), "gray"));
        });
    }
    g.finish();
}

fn mixed(c: &mut Criterion) {
    // Per-tenant rules of mixed string operations on the path; the last one
    // decides (a regex, op 3).
    let mut g = c.benchmark_group("mixed-rules");
    for n in [1usize, 10, 100, 1_000] {
        let m = b::mixed_rules(n, 3);
        let req = b::mixed_request(3);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| assert_eq!(black_box(&m).decide(black_box(&req)).rule(), Some("r999")));
        });
    }
    g.finish();
}

fn compile(c: &mut Criterion) {
    // Compiling a rule set in the realistic mix of the compile binary.
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for n in [1_000usize, 10_000] {
        let set = b::realistic_rules(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| black_box(&set).compile().expect("compile"));
        });
    }
    g.finish();
}

criterion_group!(benches, canonical, ops, scaling, mixed, compile);
criterion_main!(benches);
