//! Compile time and memory held of a large rule set (issue #15: 10,000
//! rules in a realistic mix compile in at most 50 ms and hold at most
//! 20 MB).
//!
//! ```text
//! cargo run --release -p graymatch-benches --bin compile -- [RULES]
//! ```
//!
//! Memory is counted by a global allocator that keeps the bytes live: the
//! matcher's share is what is still live after the first compile (interned
//! names included: they live for the process) less what was live before,
//! with the parsed rule set already built. The peak is the most that was
//! live during that compile. Time is the median of 11 compiles after one
//! warm-up. The counting allocator needs `unsafe`, allowed in this file
//! alone.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use graymatch_benches as b;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(live, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        grew(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let set = b::realistic_rules(n);
    let text_live = LIVE.load(Relaxed);
    PEAK.store(text_live, Relaxed);
    let start = Instant::now();
    let m = set.compile().expect("compile");
    let first = start.elapsed();
    let held = LIVE.load(Relaxed) - text_live;
    let peak = PEAK.load(Relaxed) - text_live;
    drop(m);
    let mut times: Vec<f64> = (0..12)
        .map(|_| {
            let start = Instant::now();
            let m = set.compile().expect("compile");
            let t = start.elapsed().as_secs_f64() * 1e3;
            drop(m);
            t
        })
        .skip(1)
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{n} rules (realistic mix):");
    println!(
        "  compile: median {:.1} ms of 11 (min {:.1}, max {:.1}; first {:.1} ms)",
        times[5],
        times[0],
        times[10],
        first.as_secs_f64() * 1e3
    );
    println!(
        "  held after compile: {:.2} MB; peak during compile: {:.2} MB",
        mb(held),
        mb(peak)
    );
}
