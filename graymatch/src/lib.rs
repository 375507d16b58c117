//! Gray-release (canary) routing rules, compiled into a matcher that decides
//! a request with no heap allocation.
//!
//! A [`RuleSet`] (YAML, JSON or TOML, or built in code) says which requests
//! go to which variant of a service: by header, cookie, query parameter, path
//! or method, by a random percentage, or by a sticky percentage that hashes a
//! user key so a user stays on one variant across requests, processes and
//! releases. [`RuleSet::compile`] checks it and builds a [`Matcher`];
//! [`Matcher::decide`] returns a small `Copy` [`Decision`]; a [`Tag`] carries
//! the decided variant to the next service in a header and a W3C `baggage`
//! member. [`SharedMatcher`] swaps rule sets atomically for hot reload; a
//! [`RuleSetVersion`] labels a matcher (and its decisions) with the text it
//! came from.
//!
//! ```
//! # #[cfg(feature = "yaml")] {
//! use graymatch::{Reason, RuleSet};
//!
//! let matcher = RuleSet::from_yaml(r#"
//! default: stable
//! rules:
//!   - name: testers
//!     to: gray
//!     when:
//!       any:
//!         - header: { name: x-tester, equals: "yes" }
//!         - cookie: { name: tester, equals: "yes" }
//!   - name: canary-20
//!     to: gray
//!     percent: 20
//!     sticky: { header: x-user-id }
//! "#)?.compile()?;
//!
//! let req = http::Request::get("/cart").header("cookie", "tester=yes").body(())?;
//! let decision = matcher.decide(&req);
//! assert_eq!(decision.variant(), "gray");
//! assert_eq!(decision.rule(), Some("testers"));
//! assert_eq!(decision.reason(), Reason::Rule);
//!
//! // The tag for the next service.
//! let mut outbound = http::HeaderMap::new();
//! matcher.tag(&decision).write(&mut outbound);
//! assert_eq!(outbound["x-gray"], "gray");
//! assert_eq!(outbound["baggage"], "gray=gray");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a request is decided
//!
//! 1. With `propagation.incoming: trust`, a tag on the request that names a
//!    declared variant decides it: the configured header (`x-gray`) first,
//!    then the `baggage` member (`gray`). An unknown name is ignored, and so
//!    is a baggage member past the W3C limits (the first 8,192 bytes and 180
//!    members are read). With `incoming: ignore` (the default) incoming tags
//!    are never read.
//! 2. Otherwise the rules are tried in order. A rule decides when its `when`
//!    holds (no `when` always holds) and its weight draw lands in one of its
//!    targets. A draw outside every target (the remaining percent) goes on to
//!    the next rule, so "5 % of the users who send `x-region: hz`" is one
//!    rule, and ingress-nginx's header > cookie > weight order is three.
//! 3. No rule decides: the default variant.
//!
//! A [`Release`] adds time and safety: a rule's percent can follow a
//! [`Schedule`] (the matcher is compiled for a moment, and swapped at the
//! next step), and a variant can be *halted* (by a [`Guard`] that saw it
//! fail, or by an operator): a draw that lands on a halted variant goes on to
//! the next rule as if it had landed outside, and a trusted tag naming it is
//! ignored. See [`schedule`] and [`guard`].
//!
//! Leaves look at: every line of a header (name case-insensitive, value as
//! sent, not split on commas); every `name=value` pair of every `Cookie`
//! header (name case-sensitive; surrounding spaces and one pair of double
//! quotes removed); every query parameter (names and values percent-decoded,
//! `+` is space); the path (not decoded); the method; the host (the URI's
//! authority, else the first `Host` header, port and one trailing dot
//! removed, compared without case; [`scan::host`]); the client's address (a
//! [`ClientIp`] in the request's extensions; see [`client_ip`] for where it
//! comes from and whom to trust). A value operation holds
//! when any occurrence matches; an absent field never matches one, and
//! `present: false` holds only when there is no occurrence. `regex` must match
//! the whole value and never matches a value that is not UTF-8; other
//! operations compare bytes. `gt`, `gte`, `lt` and `lte` (and `equals` and
//! `in` with `as`) parse the value as a `number`, `semver` or `version`
//! ([`ValueType`]) and compare by value; a value that does not parse never
//! matches. `cidr` holds for an address inside one of its networks, an
//! IPv4-mapped IPv6 address counting as IPv4. `ignore_case` folds ASCII letters only (as
//! Envoy's `ignore_case` does); on a regex it makes the regex
//! case-insensitive. A malformed escape (`%zz`) is kept as written.
//!
//! Percents are in parts per million (4 decimals). Without `sticky`, the draw
//! is uniform per request. With it, the draw is a hash of the request key.
//!
//! # Stickiness guarantees
//!
//! A sticky rule hashes `salt + ":" + value` (salt defaults to the rule name;
//! value is the first occurrence, decoded for query parameters) with
//! MurmurHash3 x86_32, seed 0. `algorithm: graymatch` takes
//! `bucket = h % 1_000_000` and gives targets consecutive ppm ranges in list
//! order; `algorithm: unleash` takes `n = h % 100 + 1` and matches the users
//! of an Unleash gradual rollout with `groupId = salt`. The hash is computed
//! in this crate, never with a hasher whose output may change, and is tested
//! against fixed vectors: the same user lands in the same place on every
//! machine, process and graymatch version. Raising a percent only adds users
//! to the first target; none leave it. Changing the salt (or renaming a rule
//! without a salt) reshuffles users on purpose. See [`sticky`].
//!
//! # Allocation
//!
//! [`Matcher::decide`] allocates nothing: header names are prebuilt, cookies,
//! query parameters and baggage are scanned in the request's own bytes for
//! the one name wanted ([`scan`]), a value is percent-decoded only when it is
//! tested (in a 256-byte stack buffer; only a longer escaped value
//! allocates), `in` lists of more than 8 values are hashed into sets at
//! compile time, and a run of 4 or more consecutive rules whose condition is
//! one `equals`/`in` leaf on the same field shares one index, so a thousand
//! such rules cost about one lookup (when the field occurs more than once,
//! the run's rules are tried one by one: same answer, slower). Typed values
//! and addresses are parsed from the request's bytes in place (rule values
//! once, at compile time), and a client address is written as text into a
//! stack buffer for string operations. A regex
//! allocates its per-thread cache on a thread's first use only. A [`Decision`]
//! holds names interned at compile time. Each distinct variant and rule name
//! is stored once for the life of the process, however often rule sets are
//! reloaded. Writing a [`Tag`] into a `HeaderMap` allocates only to merge an
//! existing `baggage` header. The commonest rule shapes, an override on
//! equal header or cookie values (`any` of such leaves, to one variant) and
//! a sticky share with no condition, are compiled into one step each and
//! decided without the general per-leaf dispatch, with the same answers.
//!
//! # Features
//!
//! | feature | enables |
//! |---|---|
//! | `json` | [`RuleSet::from_json`] (serde_json) |
//! | `yaml` | [`RuleSet::from_yaml`] (serde_yaml_ng, the maintained continuation of serde_yaml) |
//! | `toml` | [`RuleSet::from_toml`] (toml) |
//!
//! Any serde format works with [`RuleSet`] directly.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod carrier;
pub mod client_ip;
mod compile;
mod cond;
mod decision;
mod error;
mod exact;
mod explain;
mod fused;
pub mod guard;
mod intern;
mod literal;
mod matcher;
mod net;
mod release;
mod request;
mod rules;
pub mod scan;
pub mod schedule;
mod shared;
pub mod sticky;
pub mod tag;
#[cfg(any(feature = "json", feature = "yaml", feature = "toml"))]
mod text;
mod typed;
mod version;

pub use client_ip::{ClientIp, ClientIpSource};
pub use compile::{MAX_DEPTH, REGEX_SIZE_LIMIT};
pub use decision::{Decision, Reason};
pub use error::{CompileError, InvalidTag};
pub use explain::{Explanation, RuleTrace};
pub use matcher::Matcher;
pub use release::{ChangedBy, Halt, Release, ReleaseEvent, ReleaseState};
pub use request::RequestHead;
pub use rules::{
    Algorithm, Condition, Field, Guard, Incoming, Missing, Op, Propagation, Rule, RuleSet,
    Schedule, ScheduleStep, Sticky, Target, Test, ValueType,
};
pub use shared::SharedMatcher;
pub use tag::Tag;
pub use version::{RuleSetVersion, VersionId};

/// Every public type is `Send + Sync + Unpin + UnwindSafe`: a stray `Rc` or
/// `Cell` breaks the build here.
#[allow(dead_code)]
mod auto_traits {
    use super::*;
    use std::panic::{RefUnwindSafe, UnwindSafe};

    fn assert_all<T: Send + Sync + Unpin + UnwindSafe + RefUnwindSafe>() {}

    fn check() {
        assert_all::<Matcher>();
        assert_all::<SharedMatcher>();
        assert_all::<Decision>();
        assert_all::<Tag>();
        assert_all::<RuleSet>();
        assert_all::<CompileError>();
        assert_all::<InvalidTag>();
        assert_all::<Explanation>();
        assert_all::<RuleSetVersion>();
        assert_all::<VersionId>();
    }
}
