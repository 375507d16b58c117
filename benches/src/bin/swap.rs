//! Decision latency while another thread swaps the shared matcher (issue
//! #15: swaps add no spike over 100 µs at p99.9).
//!
//! ```text
//! cargo run --release -p graymatch-benches --bin swap -- [READERS] [SWAPS] [RULES]
//! ```
//!
//! `READERS` threads (default 2) decide the canonical request through one
//! `SharedMatcher` in a loop, timing each `decide` with `Instant`. Two
//! phases of equal length: without swaps, then while one more thread
//! compiles a fresh matcher of `RULES` rules (default 1,000, the realistic
//! mix of the compile bench) and stores it, `SWAPS` times (default 1,000),
//! as a reload does. Each phase prints p50, p99, p99.9 and the maximum over
//! every reader's decisions.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use graymatch::SharedMatcher;
use graymatch_benches as b;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds of every decision each reader made until `stop`.
fn readers(
    shared: &SharedMatcher,
    n: usize,
    stop: &Arc<AtomicBool>,
    go: &Arc<Barrier>,
) -> Vec<std::thread::JoinHandle<Vec<u32>>> {
    (0..n)
        .map(|_| {
            let shared = shared.clone();
            let stop = Arc::clone(stop);
            let go = Arc::clone(go);
            std::thread::spawn(move || {
                let req = b::canonical();
                let mut ns = Vec::with_capacity(40_000_000);
                // Warm up: the regex engines' per-thread caches.
                for _ in 0..1_000 {
                    std::hint::black_box(shared.decide(&req));
                }
                go.wait();
                while !stop.load(Relaxed) {
                    let start = Instant::now();
                    std::hint::black_box(shared.decide(std::hint::black_box(&req)));
                    let t = start.elapsed().as_nanos();
                    if ns.len() < ns.capacity() {
                        ns.push(u32::try_from(t).unwrap_or(u32::MAX));
                    }
                }
                ns
            })
        })
        .collect()
}

fn report(label: &str, mut ns: Vec<u32>) {
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)];
    println!(
        "{label}: {} decisions; p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        ns.len(),
        q(0.50),
        q(0.99),
        q(0.999),
        ns[ns.len() - 1]
    );
}

fn main() {
    let n_readers = arg(1, 2);
    let swaps = arg(2, 1_000);
    let rules = arg(3, 1_000);
    let set = b::realistic_rules(rules);
    let shared = SharedMatcher::new(set.compile().expect("compile"));

    // The same work on the swapping thread in both phases (a compile per
    // round), so that only the store differs: a 2-core machine shares its
    // cores between the readers and the compiles either way.
    let phase = |store: bool| {
        let stop = Arc::new(AtomicBool::new(false));
        let go = Arc::new(Barrier::new(n_readers + 1));
        let handles = readers(&shared, n_readers, &stop, &go);
        go.wait();
        let start = Instant::now();
        for _ in 0..swaps {
            let m = set.compile().expect("compile");
            if store {
                shared.store(m);
            } else {
                drop(std::hint::black_box(m));
            }
        }
        let took = start.elapsed();
        stop.store(true, Relaxed);
        let ns: Vec<u32> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("reader"))
            .collect();
        (took, ns)
    };
    let (_, without) = phase(false);
    let (took, with) = phase(true);
    println!(
        "{n_readers} readers, {swaps} swaps of a {rules}-rule matcher in {:.2} s",
        took.as_secs_f64()
    );
    report("without swaps", without);
    report("with swaps   ", with);
}
