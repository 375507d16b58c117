//! Prints the comparison table: ns, instructions and allocations per
//! decision for graymatch and its peers, and the ratio to graymatch.
//!
//! ```text
//! cargo run --release -p graymatch-benches --bin table
//! ```
//!
//! Timings come from a timed loop (median of 7 rounds); instruction counts
//! from `valgrind --tool=callgrind` when it is installed (this binary runs
//! itself under it with `--only NAME --iters N`, twice, and takes the
//! difference, so setup cost cancels out); allocations from a counting
//! global allocator. The counting allocator needs `unsafe`, allowed in this
//! file alone.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use graymatch_benches as b;
use tower::Service;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A contender: a closure deciding the canonical request once.
type Run = Box<dyn FnMut()>;

fn contenders() -> Vec<(&'static str, Run)> {
    let req = b::canonical();
    let m = b::graymatch();
    let want = b::graymatch_decide(&m, &req);
    let unleash = b::unleash();
    let un = b::unleash_decide(&unleash, &req);
    let growthbook = b::growthbook();
    let gb = b::growthbook_decide(&growthbook, &req);
    let exact1 = b::exact_rules(1);
    let exact1000 = b::exact_rules(1000);
    let req1 = b::request(b::USER, &[("x-id", "k0")]);
    let req1000 = b::request(b::USER, &[("x-id", "k999")]);
    let (mut bare, mut gray) = b::bare_and_layered();
    // Mixed string operations on the path: the last rule decides, a regex
    // (op 3) or a prefix (op 0); one rule alone is that same last rule.
    let mixed: Vec<(&'static str, graymatch::Matcher, http::Request<()>)> = vec![
        ("mixed-rules-1", b::mixed_rules(1, 3), b::mixed_request(3)),
        (
            "mixed-rules-1000",
            b::mixed_rules(1000, 3),
            b::mixed_request(3),
        ),
        ("mixed-prefix-1", b::mixed_rules(1, 0), b::mixed_request(0)),
        (
            "mixed-prefix-1000",
            b::mixed_rules(1000, 0),
            b::mixed_request(0),
        ),
    ];
    let typed_req = b::typed_request();
    let leaves: Vec<(&'static str, graymatch::Matcher)> = vec![
        (
            "leaf-string-equals",
            b::one_leaf("{ header: { name: x-app-version, equals: 5.10.2-beta.11 } }"),
        ),
        (
            "leaf-version-gte",
            b::one_leaf("{ header: { name: x-app-version, gte: '5.2', as: version } }"),
        ),
        (
            "leaf-semver-gte",
            b::one_leaf("{ header: { name: x-app-version, gte: '5.2.0', as: semver } }"),
        ),
        (
            "leaf-number-gt",
            b::one_leaf("{ header: { name: x-cart-items, gt: 20, as: number } }"),
        ),
        (
            "leaf-cidr",
            b::one_leaf("{ header: { name: x-real-ip, cidr: [192.168.0.0/16, 10.0.0.0/8] } }"),
        ),
    ];
    let (r1, r2, r3, r4, r5, r6, r7) = (
        req.clone(),
        req.clone(),
        req.clone(),
        req.clone(),
        req.clone(),
        req.clone(),
        // A clone like the others: cloning the original's header values
        // costs about 100 instructions more (`bytes`' promotable values).
        req.clone(),
    );
    let mut rows: Vec<(&'static str, Run)> = vec![
        (
            "graymatch",
            Box::new(move || assert_eq!(b::graymatch_decide(black_box(&m), black_box(&r1)), want)),
        ),
        (
            "primitives",
            Box::new(move || assert_eq!(b::primitives(black_box(&r2)), want)),
        ),
        (
            "unleash-yggdrasil",
            Box::new(move || {
                assert_eq!(b::unleash_decide(black_box(&unleash), black_box(&r3)), un)
            }),
        ),
        (
            "growthbook",
            Box::new(move || {
                assert_eq!(
                    b::growthbook_decide(black_box(&growthbook), black_box(&r4)),
                    gb
                )
            }),
        ),
        (
            "hand-written",
            Box::new(move || assert!(!b::handwritten(black_box(&r5)).1)),
        ),
        (
            "exact-rules-1",
            Box::new(move || assert_eq!(exact1.decide(black_box(&req1)).variant(), "gray")),
        ),
        (
            "exact-rules-1000",
            Box::new(move || assert_eq!(exact1000.decide(black_box(&req1000)).variant(), "gray")),
        ),
        (
            "bare-service",
            Box::new(move || {
                black_box(b::poll_now(bare.call(black_box(r6.clone()))).unwrap());
            }),
        ),
        (
            "gray-layer",
            Box::new(move || {
                black_box(b::poll_now(gray.call(black_box(r7.clone()))).unwrap());
            }),
        ),
    ];
    // The layer again, recording into a Prometheus recorder (installed for
    // the call's thread, as the global one would be).
    #[cfg(feature = "metrics")]
    {
        let (_, mut gray) = b::bare_and_layered();
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let r = b::canonical();
        rows.push((
            "gray-layer-recorder",
            Box::new(move || {
                metrics::with_local_recorder(&recorder, || {
                    black_box(b::poll_now(gray.call(black_box(r.clone()))).unwrap());
                });
            }),
        ));
    }
    // The other fixtures of `decide` against its primitives (issue #15).
    for (suffix, r) in b::fixtures().into_iter().skip(1) {
        let m = b::graymatch();
        let want = b::graymatch_decide(&m, &r);
        let r2 = r.clone();
        let g: &'static str = format!("graymatch{suffix}").leak();
        let p: &'static str = format!("primitives{suffix}").leak();
        rows.push((
            g,
            Box::new(move || assert_eq!(b::graymatch_decide(black_box(&m), black_box(&r)), want)),
        ));
        rows.push((
            p,
            Box::new(move || assert_eq!(b::primitives(black_box(&r2)), want)),
        ));
    }
    for (name, m, r) in mixed {
        rows.push((
            name,
            Box::new(move || assert_eq!(m.decide(black_box(&r)).rule(), Some("r999"))),
        ));
    }
    for (name, m) in leaves {
        let r = typed_req.clone();
        rows.push((
            name,
            Box::new(move || assert_eq!(m.decide(black_box(&r)).variant(), "gray")),
        ));
    }
    rows
}

/// Median ns per call over 7 rounds.
fn time(run: &mut Run) -> f64 {
    for _ in 0..2_000 {
        run();
    }
    let mut per_call = Vec::new();
    for _ in 0..7 {
        let iters = 20_000;
        let start = Instant::now();
        for _ in 0..iters {
            run();
        }
        per_call.push(start.elapsed().as_nanos() as f64 / f64::from(iters));
    }
    per_call.sort_by(f64::total_cmp);
    per_call[3]
}

fn allocations(run: &mut Run) -> f64 {
    run();
    let before = ALLOCS.load(Relaxed);
    for _ in 0..1_000 {
        run();
    }
    (ALLOCS.load(Relaxed) - before) as f64 / 1_000.0
}

/// The loop callgrind counts (`--toggle-collect`): `iters` calls of `run`.
#[inline(never)]
fn measured(run: &mut Run, iters: u32) {
    for _ in 0..iters {
        run();
    }
}

/// Instructions of `iters` calls of one contender, under callgrind: only
/// inside [`measured`], so the setup (which builds every contender, with
/// randomly seeded hash maps) is not counted.
fn callgrind(name: &str, iters: u32) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=*table::measured*",
        ])
        .arg(exe)
        .args(["--only", name, "--iters", &iters.to_string()])
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("Collected :"))?;
    // Nothing collected means the toggle named no function (`measured`
    // renamed or inlined): no count, rather than a row of zeros.
    line.rsplit(':')
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|&n: &u64| n > 0)
}

fn instructions(name: &str) -> Option<f64> {
    let iters = 10_000;
    Some(callgrind(name, iters)? as f64 / f64::from(iters))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--only") {
        let name = &args[i + 1];
        let iters: u32 = args
            .iter()
            .position(|a| a == "--iters")
            .and_then(|j| args.get(j + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000);
        let (_, mut run) = contenders()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no contender {name}"));
        // One call first: lazy statics and caches are filled outside the
        // counted loop.
        run();
        measured(&mut run, iters);
        return;
    }
    let with_valgrind = Command::new("valgrind").arg("--version").output().is_ok()
        && !args.iter().any(|a| a == "--no-valgrind");
    let mut rows = Vec::new();
    for (name, mut run) in contenders() {
        let ns = time(&mut run);
        let allocs = allocations(&mut run);
        let instr = if with_valgrind {
            instructions(name)
        } else {
            None
        };
        rows.push((name, ns, instr, allocs));
    }
    let base = rows[0];
    println!(
        "| contender | ns/decision | instructions | allocations | ns ratio to graymatch | instructions ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, ns, instr, allocs) in &rows {
        let ratio_i = match (instr, base.2) {
            (Some(i), Some(b)) => format!("{:.1}×", i / b),
            _ => "-".to_owned(),
        };
        println!(
            "| {name} | {ns:.0} | {} | {allocs:.1} | {:.1}× | {ratio_i} |",
            instr.map_or_else(|| "-".to_owned(), |i| format!("{i:.0}")),
            ns / base.1,
        );
    }
    let find = |n: &str| rows.iter().find(|r| r.0 == n).copied();
    if let (Some(bare), Some(gray)) = (find("bare-service"), find("gray-layer")) {
        println!();
        println!(
            "GrayLayer adds {:.0} ns per request over the bare no-op service ({:.0} instructions).",
            gray.1 - bare.1,
            gray.2.zip(bare.2).map_or(f64::NAN, |(g, b)| g - b)
        );
    }
    if let (Some(bare), Some(gray), Some(rec)) = (
        find("bare-service"),
        find("gray-layer"),
        find("gray-layer-recorder"),
    ) {
        println!(
            "With a Prometheus recorder, GrayLayer adds {:.0} ns ({:.0} instructions): {:.2}x its cost without one.",
            rec.1 - bare.1,
            rec.2.zip(bare.2).map_or(f64::NAN, |(r, b)| r - b),
            rec.2
                .zip(gray.2)
                .zip(bare.2)
                .map_or(f64::NAN, |((r, g), b)| (r - b) / (g - b))
        );
    }
    if let (Some(one), Some(thousand)) = (find("exact-rules-1"), find("exact-rules-1000")) {
        println!(
            "1,000 exact-value rules cost {:.2}× one rule in time{}.",
            thousand.1 / one.1,
            thousand
                .2
                .zip(one.2)
                .map_or(String::new(), |(t, o)| format!(
                    ", {:.2}× in instructions",
                    t / o
                ))
        );
    }
    for (one, thousand) in [
        ("mixed-rules-1", "mixed-rules-1000"),
        ("mixed-prefix-1", "mixed-prefix-1000"),
    ] {
        if let (Some(one), Some(thousand)) = (find(one), find(thousand)) {
            println!(
                "{} costs {:.2}× {} in time{}.",
                thousand.0,
                thousand.1 / one.1,
                one.0,
                thousand
                    .2
                    .zip(one.2)
                    .map_or(String::new(), |(t, o)| format!(
                        ", {:.2}× in instructions",
                        t / o
                    ))
            );
        }
    }
    if let Some(string) = find("leaf-string-equals") {
        for name in [
            "leaf-version-gte",
            "leaf-semver-gte",
            "leaf-number-gt",
            "leaf-cidr",
        ] {
            if let Some(typed) = find(name) {
                println!(
                    "{name} costs {:+.0} ns{} against a string equals leaf.",
                    typed.1 - string.1,
                    typed
                        .2
                        .zip(string.2)
                        .map_or(String::new(), |(t, s)| format!(
                            ", {:+.0} instructions",
                            t - s
                        ))
                );
            }
        }
    }
    if let (Some(p), Some(g)) = (find("primitives"), find("graymatch")) {
        println!(
            "graymatch decide is {:.2}× the sum of its primitives in time{}.",
            g.1 / p.1,
            g.2.zip(p.2).map_or(String::new(), |(g, p)| format!(
                ", {:.2}× in instructions",
                g / p
            ))
        );
    }
}
