//! The sticky hash never changes: fixed vectors from the reference
//! MurmurHash3, Unleash's published normalisations, graymatch's own buckets,
//! and an independent implementation as an oracle.

use graymatch::sticky::{bucket, murmur3_x86_32, unleash_normalized};
use graymatch::{RuleSet, Target};
use proptest::prelude::*;

#[test]
fn murmur3_reference_vectors() {
    let cases: &[(&str, &[u8], u32, u32)] = &[
        ("hello", b"hello", 0, 0x248b_fa47),
        ("empty", b"", 0, 0),
        ("empty seed 1", b"", 1, 0x514e_28b7),
        ("one byte", b"a", 0, 0x3c25_69b2),
        (
            "quick fox",
            b"The quick brown fox jumps over the lazy dog",
            0,
            0x2e4f_f723,
        ),
    ];
    for (name, input, seed, want) in cases {
        assert_eq!(murmur3_x86_32(input, *seed), *want, "case {name}");
    }
}

#[test]
fn unleash_normalisation_vectors() {
    // From Unleash's client specification and SDK test suites.
    let cases: &[(&str, &str, u32)] = &[
        ("AB12A", "122", 23),
        ("AB12A", "155", 100),
        ("Feature.flexibleRollout.10", "174", 10),
        ("Feature.flexibleRollout.10", "499", 32),
    ];
    for (group, id, want) in cases {
        assert_eq!(
            unleash_normalized(group, id.as_bytes()),
            *want,
            "{group}:{id}"
        );
    }
}

#[test]
fn graymatch_bucket_vectors() {
    // Fixed forever: changing any of these moves users between variants.
    let cases: &[(&str, &str, u32, u32)] = &[
        ("canary-20", "user-1", 0x6dd1_ab39, 0x6dd1_ab39 % 1_000_000),
        ("canary-20", "user-3", 0x9dc9_0332, 0x9dc9_0332 % 1_000_000),
        ("abc-2026", "42", 0xebad_f964, 0xebad_f964 % 1_000_000),
    ];
    for (salt, id, hash, want_bucket) in cases {
        let key = format!("{salt}:{id}");
        assert_eq!(murmur3_x86_32(key.as_bytes(), 0), *hash, "{key}");
        assert_eq!(bucket(salt, id.as_bytes()), *want_bucket, "{key}");
    }
}

#[test]
fn conformance_sticky_users() {
    // shared/conformance/sticky-murmur3.yaml: which of user-1..40 are gray at 20 %.
    let gray = [3, 6, 10, 20, 29, 33, 34, 37];
    for i in 1..=40 {
        let b = bucket("canary-20", format!("user-{i}").as_bytes());
        assert_eq!(b < 200_000, gray.contains(&i), "user-{i} bucket {b}");
    }
}

proptest! {
    #[test]
    fn matches_the_murmur3_crate(bytes in proptest::collection::vec(any::<u8>(), 0..100), seed in any::<u32>()) {
        let oracle = murmur3::murmur3_32(&mut std::io::Cursor::new(&bytes), seed).unwrap();
        prop_assert_eq!(murmur3_x86_32(&bytes, seed), oracle);
    }

    /// Raising a percent never moves a user out of the first target.
    #[test]
    fn raising_a_percent_keeps_first_target_users(low in 0u32..=1_000_000, raise in 0u32..=1_000_000, second in 0u32..=1_000_000) {
        let high = low.max(raise);
        let second = second.min(1_000_000 - high);
        let compile = |first: u32| {
            let mut rules = RuleSet::new("stable");
            rules.rules.push(graymatch::Rule::split("r", [
                Target::new("a", f64::from(first) / 10_000.0),
                Target::new("b", f64::from(second) / 10_000.0),
            ]).sticky_header("x-user-id"));
            rules.compile().unwrap()
        };
        let (before, after) = (compile(low), compile(high));
        for i in 0..200 {
            let req = http::Request::get("/").header("x-user-id", format!("u{i}")).body(()).unwrap();
            if before.decide(&req).variant() == "a" {
                prop_assert_eq!(after.decide(&req).variant(), "a");
            }
        }
    }
}
