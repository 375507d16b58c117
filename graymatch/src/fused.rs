//! Fused steps: the commonest rule shapes compiled into one step each, which
//! `decide` runs without the general rule engine's dispatch.
//!
//! Two shapes are fused, and only where nothing about the rule needs the
//! general path (one target, no halted variant):
//! - an *override*: a rule that sends every request it matches to one
//!   variant, whose `when` is an `equals` without `ignore_case` on a header
//!   or a cookie, or a non-empty `any` of such leaves (ingress-nginx's
//!   canary-by-header and canary-by-cookie, imported, have this shape);
//! - a *sticky share*: a rule without `when` that sends a percent of the
//!   requests to one variant by the graymatch hash of a key.
//!
//! A fused step decides as the rule's own step does, by the same leaf
//! functions and the same hash: the tests below compare each shape with the
//! same rule unfused, and the model test checks every generated rule set,
//! whatever its steps, against the naive interpreter.

use http::HeaderMap;

use crate::cond::{Cond, Leaf, Source, StrOp, StrTest, ValueTest, header_equals};
use crate::matcher::{CompiledRule, Draw, StickyKey};
use crate::request::RequestHead;
use crate::rules::{Algorithm, Missing};
use crate::scan::CookieName;
use crate::sticky::PPM;

/// A rule sending the requests that carry one of its values to a variant.
#[derive(Debug)]
pub(crate) struct Override {
    pub(crate) name: &'static str,
    pub(crate) variant: &'static str,
    /// The first leaf of its `any` (or its one leaf), apart: most
    /// overrides have one, tested without a loop.
    first: Equals,
    /// The other leaves of its `any`: one holding is enough.
    more: Box<[Equals]>,
}

/// An `equals` leaf, without case folding.
#[derive(Debug)]
enum Equals {
    Header(http::HeaderName, Box<[u8]>),
    Cookie(CookieName, Box<[u8]>),
}

impl Override {
    /// The override `rule` compiles to, if it has the shape.
    pub(crate) fn of(rule: &CompiledRule, variants: &[&'static str]) -> Option<Self> {
        if !matches!(rule.draw, Draw::Always) {
            return None;
        }
        let variant = one_target(rule)?;
        let leaves = match rule.when.as_ref()? {
            Cond::Leaf(leaf) => vec![equals(leaf)?],
            Cond::Any(children) => children
                .iter()
                .map(|c| match c {
                    Cond::Leaf(leaf) => equals(leaf),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        let mut leaves = leaves.into_iter();
        Some(Override {
            name: rule.name,
            variant: variants[usize::from(variant)],
            first: leaves.next()?,
            more: leaves.collect(),
        })
    }

    /// Whether one of the leaves holds.
    #[inline]
    pub(crate) fn holds(&self, headers: &HeaderMap) -> bool {
        self.first.holds(headers) || self.more.iter().any(|leaf| leaf.holds(headers))
    }
}

impl Equals {
    #[inline(always)]
    fn holds(&self, headers: &HeaderMap) -> bool {
        match self {
            Equals::Header(name, want) => header_equals(headers, name, want),
            Equals::Cookie(name, want) => name.any_equals(headers, want),
        }
    }
}

fn equals(leaf: &Leaf) -> Option<Equals> {
    let ValueTest::Str(StrTest {
        op: StrOp::Equals(want),
        fold: false,
    }) = &leaf.test
    else {
        return None;
    };
    match &leaf.source {
        Source::Header(name) => Some(Equals::Header(name.clone(), want.clone())),
        Source::Cookie(name) => Some(Equals::Cookie(name.clone(), want.clone())),
        _ => None,
    }
}

/// A rule without `when` sending a sticky share of the requests to a
/// variant.
#[derive(Debug)]
pub(crate) struct StickyShare {
    pub(crate) name: &'static str,
    pub(crate) variant: &'static str,
    /// The rule's key (with the graymatch algorithm).
    key: StickyKey,
    /// The bucket bound: a bucket below it is the variant's.
    upper: u32,
}

impl StickyShare {
    /// The sticky share `rule` compiles to, if it has the shape.
    pub(crate) fn of(rule: &CompiledRule, variants: &[&'static str]) -> Option<Self> {
        if rule.when.is_some() {
            return None;
        }
        let Draw::Sticky(key) = &rule.draw else {
            return None;
        };
        if key.algorithm != Algorithm::Graymatch {
            return None;
        }
        let variant = one_target(rule)?;
        Some(StickyShare {
            name: rule.name,
            variant: variants[usize::from(variant)],
            key: key.clone(),
            upper: rule.targets[0].1,
        })
    }

    /// Whether the request lands in the share: its key's bucket, or with no
    /// key a uniform draw (`missing: random`) or not (`missing: skip`), as
    /// the rule's own draw finds.
    #[inline]
    pub(crate) fn lands<R: RequestHead + ?Sized>(&self, req: &R) -> bool {
        // The rule's own hash, spelled out rather than shared: one
        // `Source::first` instance per caller is inlined into it, one shared
        // by three is not (measured: 25 instructions a decision).
        let bucket = match self.key.source.first(req, |v| self.key.prefix.hash_with(v)) {
            Some(h) => h % PPM,
            None if self.key.missing == Missing::Skip => return false,
            None => fastrand::u32(0..PPM),
        };
        bucket < self.upper
    }
}

/// The variant of a rule's one target, when no target is halted.
fn one_target(rule: &CompiledRule) -> Option<u16> {
    match &*rule.targets {
        [(variant, _)] if rule.halted.is_none() => Some(*variant),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::compile::Moment;
    use crate::matcher::{Matcher, Step};
    use crate::rules::{Condition, RuleSet};

    fn kinds(m: &Matcher) -> Vec<&'static str> {
        m.program.iter().map(Step::kind).collect()
    }

    fn set(rule: &str) -> RuleSet {
        RuleSet::from_yaml(&format!(
            "default: stable\nvariants: [stable, gray, blue]\nrules:\n  - {rule}\n"
        ))
        .expect("parses")
    }

    /// (case, rule, the step it compiles to).
    const SHAPES: &[(&str, &str, &str)] = &[
        (
            "header equals",
            "{ name: o, to: gray, when: { header: { name: x-gray, equals: 'true' } } }",
            "override",
        ),
        (
            "cookie equals",
            "{ name: o, to: gray, when: { cookie: { name: gray, equals: 'true' } } }",
            "override",
        ),
        (
            "any of a header and a cookie",
            "{ name: o, to: gray, when: { any: [ { header: { name: x-gray, equals: 'true' } }, \
             { cookie: { name: gray, equals: 'true' } }, { header: { name: x-b, equals: '' } } ] } }",
            "override",
        ),
        // An override tests its first leaf apart, so it has one: an empty
        // `any` (which never holds) keeps the general step.
        (
            "an empty any, which never holds",
            "{ name: o, to: gray, when: { any: [] } }",
            "rule",
        ),
        (
            "ignore_case is a rule",
            "{ name: o, to: gray, when: { header: { name: x-gray, equals: 'true', ignore_case: true } } }",
            "rule",
        ),
        (
            "a cookie name in any case is a rule",
            "{ name: o, to: gray, when: { cookie: { name: gray, name_ignore_case: true, equals: 'true' } } }",
            "rule",
        ),
        (
            "a query parameter is a rule",
            "{ name: o, to: gray, when: { query: { name: gray, equals: 'true' } } }",
            "rule",
        ),
        (
            "a prefix is a rule",
            "{ name: o, to: gray, when: { header: { name: x-gray, prefix: t } } }",
            "rule",
        ),
        (
            "all is a rule",
            "{ name: o, to: gray, when: { all: [ { header: { name: x-gray, equals: 'true' } } ] } }",
            "rule",
        ),
        (
            "a nested any is a rule",
            "{ name: o, to: gray, when: { any: [ { any: [ { header: { name: x-gray, equals: 'true' } } ] } ] } }",
            "rule",
        ),
        (
            "an override below 100 % is a rule",
            "{ name: o, to: gray, percent: 50, when: { header: { name: x-gray, equals: 'true' } } }",
            "rule",
        ),
        (
            "a split override is a rule",
            "{ name: o, split: [ { to: gray, percent: 50 }, { to: blue, percent: 50 } ], \
             when: { header: { name: x-gray, equals: 'true' } } }",
            "rule",
        ),
        (
            "sticky by a header",
            "{ name: c, to: gray, percent: 20, sticky: { header: x-user-id, missing: skip } }",
            "sticky",
        ),
        (
            "sticky by a cookie, missing: random",
            "{ name: c, to: gray, percent: 20, sticky: { cookie: uid } }",
            "sticky",
        ),
        (
            "sticky with the unleash algorithm is a rule",
            "{ name: c, to: gray, percent: 20, sticky: { header: x-user-id, algorithm: unleash } }",
            "rule",
        ),
        (
            "sticky under a when is a rule",
            "{ name: c, to: gray, percent: 20, sticky: { header: x-user-id }, \
             when: { header: { name: x-gray, equals: 'true' } } }",
            "rule",
        ),
        (
            "a sticky split is a rule",
            "{ name: c, split: [ { to: gray, percent: 20 }, { to: blue, percent: 20 } ], \
             sticky: { header: x-user-id } }",
            "rule",
        ),
        (
            "a random percent is a rule",
            "{ name: c, to: gray, percent: 20 }",
            "rule",
        ),
    ];

    #[test]
    fn shapes_that_fuse() {
        for (case, rule, want) in SHAPES {
            let m = set(rule).compile().expect("compiles");
            assert_eq!(kinds(&m), [*want], "case {case}");
        }
    }

    #[test]
    fn a_halted_target_is_a_rule() {
        for (case, rule, want) in SHAPES {
            if *want == "rule" {
                continue;
            }
            let halted = ["gray".to_owned()];
            let m = set(rule)
                .compile_moment(&Moment {
                    time: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
                    shift: Duration::ZERO,
                    frozen: false,
                    halted: &halted,
                })
                .expect("compiles");
            assert_eq!(kinds(&m), ["rule"], "case {case}");
            let req = http::Request::get("/")
                .header("x-gray", "true")
                .header("x-user-id", "u-1")
                .body(())
                .unwrap();
            assert_eq!(m.decide(&req).variant(), "stable", "case {case}");
        }
    }

    /// The requests both shapes are tried on: header lines, cookies in one
    /// or two lines, quoted and spaced values, keys present or not.
    fn requests() -> Vec<http::Request<()>> {
        let lines: &[&[(&str, &str)]] = &[
            &[],
            &[("x-gray", "true")],
            &[("x-gray", "false"), ("x-gray", "true")],
            &[("x-gray", "True")],
            &[("x-b", "")],
            &[("cookie", "gray=true")],
            &[("cookie", "a=1; gray = \"true\" ; b=2")],
            &[("cookie", "grayscale=true; xgray=true")],
            &[("cookie", "a=1"), ("cookie", "gray=true")],
            &[("cookie", "gray=false; gray=true")],
            &[("cookie", "uid=u-7")],
            &[("cookie", "uid=\"u-7\"; uid=u-8")],
        ];
        let mut out = Vec::new();
        for extra in lines {
            for user in [None, Some("u-1"), Some("user-42"), Some("")] {
                for i in 0..40 {
                    let mut b = http::Request::get("/");
                    for (n, v) in *extra {
                        b = b.header(*n, *v);
                    }
                    if let Some(u) = user {
                        b = b.header("x-user-id", format!("{u}{i}"));
                    }
                    out.push(b.body(()).unwrap());
                }
            }
        }
        out
    }

    /// A fused rule decides as the same rule compiled unfused does (its
    /// condition in a one-child `all`, or an empty `all` added), in a rule
    /// set ending in a catch-all so that "went on" shows.
    #[test]
    fn fused_decides_as_the_rule_does() {
        let reqs = requests();
        for (case, rule, want) in SHAPES {
            // `missing: random` draws at random for a request without the key.
            if *want == "rule" || rule.contains("cookie: uid") {
                continue;
            }
            let mut fused = set(rule);
            fused.rules.push(crate::rules::Rule::to("rest", "blue"));
            let mut plain = fused.clone();
            plain.rules[0].when = Some(Condition::All(
                plain.rules[0].when.take().into_iter().collect(),
            ));
            let (fused, plain) = (fused.compile().unwrap(), plain.compile().unwrap());
            assert_eq!(kinds(&fused)[0], *want, "case {case}");
            assert_eq!(kinds(&plain)[0], "rule", "case {case}");
            for req in &reqs {
                assert_eq!(fused.decide(req), plain.decide(req), "case {case}: {req:?}");
            }
        }
    }

    /// A sticky share with `missing: random` draws at random for a request
    /// without the key, about as often in the share as its percent, and
    /// hashes one with it.
    #[test]
    fn sticky_share_without_the_key_draws() {
        let mut fused = set("{ name: c, to: gray, percent: 20, sticky: { cookie: uid } }");
        fused.rules.push(crate::rules::Rule::to("rest", "blue"));
        let mut plain = fused.clone();
        plain.rules[0].when = Some(Condition::All(Vec::new()));
        let (fused, plain) = (fused.compile().unwrap(), plain.compile().unwrap());
        assert_eq!(kinds(&fused)[0], "sticky");
        let mut gray = 0;
        for req in requests() {
            let d = fused.decide(&req);
            if crate::scan::cookies(req.headers(), "uid").next().is_some() {
                assert_eq!(d, plain.decide(&req), "{req:?}");
            } else {
                assert!(matches!(d.variant(), "gray" | "blue"), "{d:?}");
                gray += usize::from(d.variant() == "gray");
            }
        }
        // 1,600 requests without the key, 20 % of them gray.
        assert!((250..450).contains(&gray), "{gray}");
    }
}
