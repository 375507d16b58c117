//! `decide` allocates nothing: a counting global allocator watches it for
//! every leaf kind and operation, exact-value runs, runs of mixed string
//! leaves on one field (literal and regex), both sticky algorithms,
//! random draws, and trusted tags read from the header and from baggage.
//!
//! The library forbids `unsafe`; a global allocator cannot be written
//! without it, so this test file alone allows it.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use support::{req, yaml};

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

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

const RULES: &str = r#"
default: stable
propagation: { incoming: trust }
variants: [stable, gray, v2, v3]
rules:
  - { name: h-eq, to: gray, when: { header: { name: x-a, equals: nope } } }
  - { name: h-in, to: gray, when: { header: { name: x-a, in: [a, b, c, d, e, f, g, h, i, j], ignore_case: true } } }
  - { name: h-prefix, to: gray, when: { header: { name: x-a, prefix: zz } } }
  - { name: h-suffix, to: gray, when: { header: { name: x-a, suffix: zz, ignore_case: true } } }
  - { name: h-contains, to: gray, when: { header: { name: x-a, contains: zz } } }
  - { name: h-contains-ci, to: gray, when: { header: { name: x-a, contains: ZZ, ignore_case: true } } }
  - { name: h-regex, to: gray, when: { header: { name: x-a, regex: 'z+[0-9]' } } }
  - { name: h-present, to: gray, when: { header: { name: x-none, present: true } } }
  - { name: c-eq, to: gray, when: { cookie: { name: sid, equals: nope } } }
  - { name: c-regex, to: gray, when: { cookie: { name: sid, regex: 'z.*' } } }
  - { name: q-eq, to: gray, when: { query: { name: team, equals: nope } } }
  - { name: q-prefix, to: gray, when: { query: { name: team name, prefix: zz } } }
  - { name: path, to: gray, when: { path: { prefix: /admin } } }
  - { name: method, to: gray, when: { method: { in: [DELETE, PATCH] } } }
  - { name: t-version, to: gray, when: { header: { name: x-app-version, gte: "99.0", as: version } } }
  - { name: t-semver, to: gray, when: { header: { name: x-app-version, in: ["1.0.0-rc.1.long-pre-release-id", "9.9.9"], as: semver } } }
  - { name: t-number, to: gray, when: { query: { name: page, gt: 1e3, as: number } } }
  - { name: cidr-h, to: gray, when: { header: { name: x-real-ip, cidr: [10.0.0.0/8, "2001:db8::/32"] } } }
  - { name: cidr-c, to: gray, when: { client_ip: { cidr: [192.0.2.0/24] } } }
  - { name: ip-text, to: gray, when: { client_ip: { prefix: "2001:db8:ffff" } } }
  - { name: host, to: gray, when: { host: { in: [shop.example.org, a.example.org] } } }
  - { name: host-suffix, to: gray, when: { host: { suffix: .preview.example.org } } }
  - { name: word, to: gray, when: { header: { name: x-w, regex: '\w+\bé' } } }
  - { name: combo, to: gray, when: { all: [ { not: { cookie: { name: sid, present: true } } }, { any: [] } ] } }
  - { name: run1, to: v2, when: { header: { name: x-id, equals: k1 } } }
  - { name: run2, to: v2, when: { header: { name: x-id, equals: k2 } } }
  - { name: run3, to: v2, when: { header: { name: x-id, equals: k3 } } }
  - { name: run4, to: v2, when: { header: { name: x-id, in: [k4, k5] } } }
  - { name: lit0, to: v2, when: { header: { name: x-t, prefix: /t/tenant-1/ } } }
  - { name: lit1, to: v2, when: { header: { name: x-t, suffix: .tenant-2.example.com, ignore_case: true } } }
  - { name: lit2, to: v2, percent: 0, when: { header: { name: x-t, regex: '/api/v[0-9]+/tenant-3/.*' } } }
  - { name: lit3, to: v2, when: { header: { name: x-t, contains: acme-4 } } }
  - { name: lit4, to: v2, when: { header: { name: x-t, regex: '/api/v[0-9]+/tenant-.*', ignore_case: true } } }
  - { name: lit5, to: v2, when: { header: { name: x-t, equals: "" } } }
  - { name: lit6, to: v2, when: { header: { name: x-t, in: [k1, k2] } } }
  - { name: lit7, to: v2, when: { header: { name: x-t, segment_prefix: /seg } } }
  - { name: lit8, to: v2, when: { header: { name: x-t, regex: '\w+\bé' } } }
  - { name: random, to: v3, percent: 0.0001 }
  - { name: unleash, to: v3, percent: 1, sticky: { cookie: uid, algorithm: unleash, salt: s } }
  - { name: sticky-q, split: [ { to: v2, percent: 10 }, { to: v3, percent: 10 } ], sticky: { query: u } }
  - { name: sticky-h, to: gray, percent: 100, sticky: { header: x-user-id, missing: skip } }
"#;

#[test]
fn decide_allocates_nothing() {
    let m = yaml(RULES);
    let canonical = || {
        req(
            "GET",
            "/cart?page=2&team%20name=blue+sky&team=red%20x&u=user%2D7&x=1",
            &[
                ("host", b"example.com"),
                ("user-agent", b"curl/8"),
                ("accept", b"*/*"),
                ("x-a", b"value-\xff"),
                ("x-a", b"other"),
                ("x-id", b"k9"),
                ("cookie", b"a=1; b=2; sid=\"abc\"; uid=u-1"),
                ("cookie", b"c=3; d=4"),
                ("x-user-id", b"user-42"),
                ("baggage", b"k=v, other=1;p"),
                ("x-app-version", b"v5.10.2-beta.11+build.7"),
                ("x-real-ip", b"2001:db9::1"),
            ],
        )
    };
    let with_client = |ip: &str| {
        let mut r = canonical();
        r.extensions_mut()
            .insert(graymatch::ClientIp(ip.parse().expect("address")));
        r
    };
    // (case, request, the rule that decides; `None` where a draw is random)
    let cases: Vec<(&str, http::Request<()>, Option<&str>)> = vec![
        (
            "canonical, decided by a sticky rule",
            canonical(),
            Some("sticky-h"),
        ),
        (
            "exact run hit",
            req("GET", "/", &[("x-id", b"k5")]),
            Some("run4"),
        ),
        (
            "exact run, two lines",
            req("GET", "/", &[("x-id", b"k9"), ("x-id", b"k2")]),
            Some("run2"),
        ),
        (
            "literal run, suffix without case",
            req("GET", "/", &[("x-t", b"shop.TENANT-2.example.com")]),
            Some("lit1"),
        ),
        (
            "literal run, a regex whose draw falls outside, then the next regex",
            req("GET", "/", &[("x-t", b"/api/v2/tenant-3/x")]),
            Some("lit4"),
        ),
        (
            "literal run, two lines, not UTF-8",
            req(
                "GET",
                "/",
                &[("x-t", b"/api/\xff"), ("x-t", b"/seg/acme-4")],
            ),
            Some("lit3"),
        ),
        (
            // The lazy DFA quits at a Unicode word boundary before a
            // non-ASCII byte: the run's PikeVM answers, with no allocation.
            "literal run, the PikeVM behind the lazy DFA",
            req("GET", "/", &[("x-t", "hé".as_bytes())]),
            None,
        ),
        (
            "literal run, no rule holds",
            req("GET", "/", &[("x-t", b"/t/tenant-9/")]),
            None,
        ),
        (
            "trusted header tag",
            req("GET", "/", &[("x-gray", b"v2")]),
            Some(""),
        ),
        (
            "trusted baggage tag",
            req(
                "GET",
                "/",
                &[("x-gray", b"nope"), ("baggage", b"a=1, gray=%67ray;p=1")],
            ),
            Some(""),
        ),
        (
            "long escaped query",
            req("GET", &format!("/?team={}", "%41".repeat(80)), &[]),
            None,
        ),
        ("no key: random draws", req("POST", "/", &[]), None),
        (
            "typed semver with a long pre-release",
            req(
                "GET",
                "/",
                &[("x-app-version", b"1.0.0-rc.1.long-pre-release-id+b")],
            ),
            Some("t-semver"),
        ),
        (
            "typed number",
            req("GET", "/?page=1001.5", &[]),
            Some("t-number"),
        ),
        (
            "cidr on a header",
            req("GET", "/", &[("x-real-ip", b"10.9.8.7")]),
            Some("cidr-h"),
        ),
        (
            "cidr on the client address, IPv4-mapped",
            with_client("::ffff:192.0.2.9"),
            Some("cidr-c"),
        ),
        (
            "string op on the client address",
            with_client("2001:db8:ffff::1"),
            Some("ip-text"),
        ),
        (
            // A Unicode word boundary before a non-ASCII byte, where a lazy
            // DFA quits (and reports it in an allocated error).
            "regex leaf, a Unicode word boundary over non-ASCII",
            req("GET", "/", &[("x-w", "hé".as_bytes())]),
            None,
        ),
        (
            "host from an absolute URI",
            req("GET", "http://SHOP.example.org.:8080/", &[]),
            Some("host"),
        ),
        (
            "host from the header",
            req("GET", "/", &[("host", b"pr-1.Preview.example.org:443")]),
            Some("host-suffix"),
        ),
    ];
    for (name, r, want) in &cases {
        if let Some(want) = want {
            assert_eq!(m.decide(r).rule().unwrap_or(""), *want, "case {name}");
        }
        // Warm up: regex engines cache per-thread scratch space on first use.
        m.decide(r);
        for _ in 0..100 {
            let n = allocations(|| {
                std::hint::black_box(m.decide(r));
            });
            assert_eq!(n, 0, "case {name}");
        }
    }
    // The shared matcher loads without allocating, too.
    let shared = graymatch::SharedMatcher::new(yaml(RULES));
    let r = canonical();
    shared.decide(&r);
    assert_eq!(
        allocations(|| {
            std::hint::black_box(shared.decide(&r));
        }),
        0
    );
}

#[test]
fn a_release_with_a_halted_variant_and_a_schedule_decides_without_allocating() {
    let release = graymatch::Release::new(
        graymatch::RuleSet::from_yaml(
            r#"
default: stable
variants: [stable, gray, blue]
propagation: { incoming: trust }
rules:
  - { name: testers, to: gray, when: { header: { name: x-tester, equals: "1" } } }
  - { name: ab, split: [{ to: gray, percent: 50 }, { to: blue, percent: 50 }], sticky: { header: x-user-id } }
  - name: canary
    to: gray
    sticky: { header: x-user-id }
    schedule: { start: "2020-01-01T00:00:00Z", steps: [{ percent: 5, for: 1h }, { percent: 50 }] }
"#,
        )
        .expect("parses"),
        None,
    )
    .expect("compiles");
    release.halt("gray", "test").expect("halts");
    let shared = release.matcher();
    let cases = [
        (
            "a halted rule goes on",
            req("GET", "/", &[("x-tester", b"1")]),
        ),
        (
            "a split half halted",
            req("GET", "/", &[("x-user-id", b"user-7")]),
        ),
        (
            "a trusted tag naming the halted variant",
            req("GET", "/", &[("x-gray", b"gray")]),
        ),
        (
            "halted baggage",
            req("GET", "/", &[("baggage", b"gray=gray")]),
        ),
    ];
    for (name, r) in &cases {
        shared.decide(r);
        for _ in 0..100 {
            let n = allocations(|| {
                std::hint::black_box(shared.decide(r));
            });
            assert_eq!(n, 0, "case {name}");
        }
    }
}

#[test]
fn counting_allocator_counts() {
    // The watcher itself works: a Vec allocates.
    assert!(
        allocations(|| {
            std::hint::black_box(vec![1u8; 16]);
        }) >= 1
    );
}
