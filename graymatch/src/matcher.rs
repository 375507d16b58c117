//! The compiled matcher: decides a request through `&self` with no heap
//! allocation.

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName};

use crate::cond::{Cond, Occurrences, Source};
use crate::decision::{Decision, Reason};
use crate::exact::ExactIndex;
use crate::fused::{Override, StickyShare};
use crate::guard::GuardSpec;
use crate::literal::LiteralRun;
use crate::request::RequestHead;
use crate::rules::{Algorithm, Missing, RuleSet};
use crate::scan;
use crate::schedule::{CompiledSchedule, Position};
use crate::sticky::{Murmur3, PPM};
use crate::tag::Tag;
use crate::version::{RuleSetVersion, VersionId};

/// A compiled rule set. Immutable, `Send + Sync`, cheap to share in an
/// `Arc`; every allocation and check happened in
/// [`RuleSet::compile`](crate::RuleSet::compile).
///
/// See the [crate docs](crate#how-a-request-is-decided) for how a request is
/// decided.
///
/// ```
/// let m = graymatch::RuleSet::from_yaml(r#"
/// default: stable
/// rules:
///   - name: testers
///     to: gray
///     when: { cookie: { name: tester, equals: "1" } }
/// "#)?.compile()?;
///
/// let req = http::Request::get("/").header("cookie", "a=b; tester=1").body(())?;
/// assert_eq!(m.decide(&req).variant(), "gray");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Matcher {
    pub(crate) variants: Box<[&'static str]>,
    pub(crate) default: u16,
    pub(crate) rules: Box<[CompiledRule]>,
    pub(crate) program: Box<[Step]>,
    pub(crate) tagging: Tagging,
    pub(crate) source: RuleSet,
    pub(crate) reads_client_ip: bool,
    /// The version of the text this matcher was compiled from, when known.
    pub(crate) version: Option<RuleSetVersion>,
    /// `version`'s short id, stamped on every decision.
    pub(crate) version_id: Option<VersionId>,
    /// The guards of the rule set.
    pub(crate) guards: Box<[GuardSpec]>,
    /// Per variant: halted (its rules do not decide, its tags are not
    /// trusted).
    pub(crate) halted: Box<[bool]>,
    /// The schedules' clock this matcher was compiled for.
    pub(crate) moment: SystemTime,
    /// When a schedule's next step begins (wall clock), if one does.
    pub(crate) next_change: Option<SystemTime>,
}

/// Where tags are read and written.
#[derive(Debug)]
pub(crate) struct Tagging {
    pub(crate) header: Option<&'static HeaderName>,
    pub(crate) baggage: Option<&'static str>,
    /// `key=variant` per variant (same order as the variants), interned.
    pub(crate) members: Box<[&'static str]>,
    pub(crate) trust: bool,
}

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) name: &'static str,
    pub(crate) when: Option<Cond>,
    /// Targets with their cumulative upper bound in ppm, in list order.
    pub(crate) targets: Box<[(u16, u32)]>,
    pub(crate) draw: Draw,
    /// Per target, whether its variant is halted (a draw landing there goes
    /// on to the next rule); `None` when no target is.
    pub(crate) halted: Option<Box<[bool]>>,
    /// The rule's schedule, when its percent follows one.
    pub(crate) schedule: Option<Box<CompiledSchedule>>,
}

/// How a rule picks among its targets.
#[derive(Debug)]
pub(crate) enum Draw {
    /// The targets cover 100 % and there is nothing to skip: no draw.
    Always,
    /// The targets cover 0 %: the rule never decides.
    Never,
    /// A uniform random draw.
    Random,
    /// A hash of a request key.
    Sticky(StickyKey),
}

#[derive(Clone, Debug)]
pub(crate) struct StickyKey {
    pub(crate) source: Source,
    /// The hash state after `salt:`.
    pub(crate) prefix: Murmur3,
    pub(crate) algorithm: Algorithm,
    pub(crate) missing: Missing,
}

/// A step of the decision program: one rule, or a run of rules that all test
/// one field for exact values, decided with one hash lookup.
#[derive(Debug)]
pub(crate) enum Step {
    Rule(u32),
    /// A rule of the override shape (`fused.rs`).
    Override(Override),
    /// A rule of the sticky-share shape (`fused.rs`).
    Sticky(StickyShare),
    Exact(ExactRun),
    /// A run of string leaves on one field, scanned once (`literal.rs`).
    Literal(Box<LiteralRun>),
}

#[cfg(test)]
impl Step {
    /// The step's kind, for tests of what a rule set compiles to.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Step::Rule(_) => "rule",
            Step::Override(_) => "override",
            Step::Sticky(_) => "sticky",
            Step::Exact(_) => "exact",
            Step::Literal(_) => "literal",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ExactRun {
    pub(crate) source: Source,
    /// Value → the rules of the run that hold for it, ascending.
    pub(crate) index: ExactIndex<Vec<u32>>,
    pub(crate) rules: Range<u32>,
}

/// Where a weight draw landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Landing {
    /// In this target (index into the rule's targets).
    Target(usize),
    /// Outside every target.
    Outside,
    /// No sticky key and `missing: skip`.
    NoKey,
}

/// A draw: where it landed and the number drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Drawn {
    pub(crate) landing: Landing,
    /// The ppm bucket (graymatch, random) or `n` in 1..=100 (unleash).
    pub(crate) value: u32,
    pub(crate) sticky: bool,
}

impl Matcher {
    /// Decides which variant `request` goes to.
    ///
    /// Allocates nothing: values are scanned in the request's own bytes, and
    /// the decision holds interned names. Sticky rules hash; random rules
    /// draw from a thread-local generator.
    ///
    /// ```
    /// use graymatch::{Reason, RuleSet};
    /// let m = RuleSet::from_json(r#"{"default": "stable",
    ///     "propagation": {"incoming": "trust"},
    ///     "variants": ["stable", "gray"]}"#)?.compile()?;
    /// let req = http::Request::get("/").header("baggage", "gray=gray").body(())?;
    /// let d = m.decide(&req);
    /// assert_eq!((d.variant(), d.reason()), ("gray", Reason::Propagated));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn decide<R: RequestHead + ?Sized>(&self, request: &R) -> Decision {
        if self.tagging.trust
            && let Some(v) = self.incoming(request.headers())
        {
            return self.decision(self.variants[v], None, Reason::Propagated);
        }
        // Each arm returns its decision itself: the fused steps then never
        // build an `Option<Decision>` (merged after the match, its moves
        // cost about 30 instructions a decision).
        for step in &self.program {
            let decided = match step {
                Step::Override(o) => {
                    if o.holds(request.headers()) {
                        return self.decision(o.variant, Some(o.name), Reason::Rule);
                    }
                    continue;
                }
                Step::Sticky(s) => {
                    if s.lands(request) {
                        return self.decision(s.variant, Some(s.name), Reason::Rule);
                    }
                    continue;
                }
                Step::Rule(i) => {
                    let rule = &self.rules[*i as usize];
                    if rule.when.as_ref().is_none_or(|c| c.eval(request)) {
                        self.land(rule, request)
                    } else {
                        None
                    }
                }
                Step::Exact(run) => self.run(run, request),
                Step::Literal(run) => {
                    run.decide(request, |i| self.land(&self.rules[i as usize], request))
                }
            };
            if let Some(decision) = decided {
                return decision;
            }
        }
        self.default_decision()
    }

    #[inline]
    fn default_decision(&self) -> Decision {
        self.decision(
            self.variants[usize::from(self.default)],
            None,
            Reason::Default,
        )
    }

    /// A decision of this matcher, stamped with its version.
    #[inline]
    pub(crate) fn decision(
        &self,
        variant: &'static str,
        rule: Option<&'static str>,
        reason: Reason,
    ) -> Decision {
        Decision::new(variant, rule, reason, self.version_id)
    }

    #[inline]
    fn run<R: RequestHead + ?Sized>(&self, run: &ExactRun, request: &R) -> Option<Decision> {
        let only = run.source.only(request, |v| {
            let list = run.index.get(v)?;
            list.iter()
                .find_map(|&i| self.land(&self.rules[i as usize], request))
        });
        match only {
            Occurrences::None => None,
            Occurrences::One(decided) => decided,
            // Several occurrences: each rule of the run in order.
            Occurrences::Several => run.rules.clone().find_map(|i| {
                let rule = &self.rules[i as usize];
                if rule.when.as_ref().is_none_or(|c| c.eval(request)) {
                    self.land(rule, request)
                } else {
                    None
                }
            }),
        }
    }

    /// The decision of a rule whose condition holds, if its draw lands.
    #[inline]
    fn land<R: RequestHead + ?Sized>(&self, rule: &CompiledRule, request: &R) -> Option<Decision> {
        let target = match &rule.draw {
            Draw::Always => 0,
            Draw::Never => return None,
            // The common sticky case, without `draw`'s bookkeeping: the
            // same hash, bucket and target as `draw` finds.
            Draw::Sticky(key) if key.algorithm == Algorithm::Graymatch => {
                match key.source.first(request, |v| key.prefix.hash_with(v)) {
                    Some(h) => {
                        let value = h % PPM;
                        rule.targets.iter().position(|&(_, upper)| value < upper)?
                    }
                    None if key.missing == Missing::Skip => return None,
                    None => match self.draw(rule, request).landing {
                        Landing::Target(t) => t,
                        Landing::Outside | Landing::NoKey => return None,
                    },
                }
            }
            _ => match self.draw(rule, request).landing {
                Landing::Target(t) => t,
                Landing::Outside | Landing::NoKey => return None,
            },
        };
        if let Some(halted) = &rule.halted
            && halted[target]
        {
            return None;
        }
        let variant = rule.targets[target].0;
        Some(self.decision(
            self.variants[usize::from(variant)],
            Some(rule.name),
            Reason::Rule,
        ))
    }

    /// Draws for `rule` and finds the target the draw lands in.
    pub(crate) fn draw<R: RequestHead + ?Sized>(&self, rule: &CompiledRule, request: &R) -> Drawn {
        let random = |algorithm: Algorithm| match algorithm {
            Algorithm::Graymatch => fastrand::u32(0..PPM),
            Algorithm::Unleash => fastrand::u32(1..=100),
        };
        let (value, algorithm, sticky) = match &rule.draw {
            Draw::Always => (0, Algorithm::Graymatch, false),
            Draw::Never => (PPM, Algorithm::Graymatch, false),
            Draw::Random => (random(Algorithm::Graymatch), Algorithm::Graymatch, false),
            Draw::Sticky(key) => {
                let hash = key.source.first(request, |v| key.prefix.hash_with(v));
                match (hash, key.missing) {
                    (Some(h), _) => (
                        match key.algorithm {
                            Algorithm::Graymatch => h % PPM,
                            Algorithm::Unleash => h % 100 + 1,
                        },
                        key.algorithm,
                        true,
                    ),
                    (None, Missing::Random) => (random(key.algorithm), key.algorithm, false),
                    (None, Missing::Skip) => {
                        return Drawn {
                            landing: Landing::NoKey,
                            value: 0,
                            sticky: true,
                        };
                    }
                }
            }
        };
        let position = rule.targets.iter().position(|&(_, upper)| match algorithm {
            Algorithm::Graymatch => value < upper,
            Algorithm::Unleash => value * 10_000 <= upper,
        });
        Drawn {
            landing: position.map_or(Landing::Outside, Landing::Target),
            value,
            sticky,
        }
    }

    /// The declared variant named by a tag on `headers`: the configured
    /// header first, then the baggage member. Unknown names are ignored.
    pub(crate) fn incoming(&self, headers: &HeaderMap) -> Option<usize> {
        if let Some(name) = self.tagging.header
            && let Some(v) = headers.get(name)
            && let Some(i) = self.variant_index(v.as_bytes())
        {
            return (!self.halted[i]).then_some(i);
        }
        let key = self.tagging.baggage?;
        let raw = scan::baggage(headers, key)?;
        scan::with_decoded(raw, false, |v| self.variant_index(v)).filter(|&i| !self.halted[i])
    }

    #[inline]
    fn variant_index(&self, name: &[u8]) -> Option<usize> {
        self.variants.iter().position(|v| v.as_bytes() == name)
    }

    /// The tag to write for `decision`, with this rule set's propagation
    /// settings (header and baggage key, either possibly off).
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_json(r#"{"default": "stable",
    ///     "propagation": {"header": "x-lane", "baggage": null}}"#)?.compile()?;
    /// let d = m.decide(&http::Request::new(()));
    /// let mut headers = http::HeaderMap::new();
    /// m.tag(&d).write(&mut headers);
    /// assert_eq!(headers["x-lane"], "stable");
    /// assert!(headers.get("baggage").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tag(&self, decision: &Decision) -> Tag {
        // Interned names: the variant is found by address.
        let member = self
            .variants
            .iter()
            .position(|v| std::ptr::eq(*v, decision.variant()))
            .and_then(|i| self.tagging.members.get(i).copied());
        Tag::from_parts(
            decision.variant(),
            self.tagging.header,
            self.tagging.baggage,
            member,
        )
    }

    /// The variants, default first if it was not declared, in declaration
    /// order otherwise.
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_json(r#"{"default": "b", "variants": ["a", "b"]}"#)?.compile()?;
    /// assert_eq!(m.variants().collect::<Vec<_>>(), ["a", "b"]);
    /// assert_eq!(m.default_variant(), "b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn variants(&self) -> impl ExactSizeIterator<Item = &'static str> + '_ {
        self.variants.iter().copied()
    }

    /// The default variant.
    pub fn default_variant(&self) -> &'static str {
        self.variants[usize::from(self.default)]
    }

    /// The names of the rules, in order.
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_json(r#"{"default": "s", "rules": [
    ///     {"name": "one", "to": "g"}, {"name": "two", "to": "g"}]}"#)?.compile()?;
    /// assert_eq!(m.rule_names().collect::<Vec<_>>(), ["one", "two"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rule_names(&self) -> impl ExactSizeIterator<Item = &'static str> + '_ {
        self.rules.iter().map(|r| r.name)
    }

    /// The rule set this matcher was compiled from.
    ///
    /// ```
    /// let rules = graymatch::RuleSet::new("stable");
    /// assert_eq!(rules.compile()?.rule_set(), &rules);
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn rule_set(&self) -> &RuleSet {
        &self.source
    }

    /// Whether incoming tags are trusted (`incoming: trust`).
    pub fn trusts_incoming(&self) -> bool {
        self.tagging.trust
    }

    /// Whether a rule reads the client's address (a `client_ip` leaf), so a
    /// server must put a [`ClientIp`](crate::ClientIp) in the request's
    /// extensions; `GrayLayer` looks the address up only then.
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_yaml(
    ///     "default: s\nrules: [{name: o, to: g, when: {client_ip: {cidr: [10.0.0.0/8]}}}]")?.compile()?;
    /// assert!(m.reads_client_ip());
    /// assert!(!graymatch::RuleSet::new("s").compile()?.reads_client_ip());
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn reads_client_ip(&self) -> bool {
        self.reads_client_ip
    }

    /// This matcher, labelled with the version of the text it was compiled
    /// from; every [`Decision`] it makes then carries the version's
    /// [`VersionId`]. Sources (`graymatch-source`) label what they load.
    ///
    /// ```
    /// use graymatch::{RuleSet, RuleSetVersion};
    ///
    /// let version = RuleSetVersion::new([7; 32]).with_revision("etcd revision 42");
    /// let m = RuleSet::new("stable").compile()?.with_version(version.clone());
    /// assert_eq!(m.version(), Some(&version));
    /// assert_eq!(m.decide(&http::Request::new(())).version(), Some(version.id()));
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn with_version(mut self, version: RuleSetVersion) -> Self {
        self.version_id = Some(version.id());
        self.version = Some(version);
        self
    }

    /// The version of the text this matcher was compiled from, if it was
    /// labelled with one ([`with_version`](Self::with_version)).
    ///
    /// ```
    /// assert!(graymatch::RuleSet::new("stable").compile()?.version().is_none());
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn version(&self) -> Option<&RuleSetVersion> {
        self.version.as_ref()
    }

    /// The guards of the rule set, as compiled (a [`Release`](crate::Release)
    /// runs them).
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_yaml(
    ///     "{default: stable, rules: [{name: c, to: gray, percent: 5}], guards: [{variant: gray, max_failure_rate: 0.1}]}",
    /// )?.compile()?;
    /// assert_eq!(m.guards()[0].variant(), "gray");
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn guards(&self) -> &[GuardSpec] {
        &self.guards
    }

    /// The halted variants: their rules' draws go on to the next rule and
    /// incoming tags naming them are not trusted. A [`Release`](crate::Release)
    /// compiles matchers with the variants its guards or operators halted.
    ///
    /// ```
    /// let m = graymatch::RuleSet::new("stable").compile()?;
    /// assert_eq!(m.halted().count(), 0);
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn halted(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.variants
            .iter()
            .zip(self.halted.iter())
            .filter_map(|(v, &h)| h.then_some(*v))
    }

    /// When the next step of a schedule begins, if any rule's percent will
    /// change (`None` with no schedule, after the last step, or while a
    /// release is frozen). Compile again at that time (or let a
    /// [`Release`](crate::Release) do it) to follow the schedule.
    ///
    /// ```
    /// let m = graymatch::RuleSet::new("stable").compile()?;
    /// assert_eq!(m.next_change(), None);
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn next_change(&self) -> Option<SystemTime> {
        self.next_change
    }

    /// The moment on the schedules' clock this matcher was compiled for.
    pub fn moment(&self) -> SystemTime {
        self.moment
    }

    /// Where the schedule of rule `name` stands in this matcher, or `None`
    /// when there is no such rule or it has no schedule.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let m = graymatch::RuleSet::from_yaml(r#"
    /// default: stable
    /// rules:
    ///   - name: canary
    ///     to: gray
    ///     schedule: { start: "2026-11-24T10:00:00Z", steps: [{ percent: 5, for: 10m }, { percent: 50 }] }
    /// "#)?.compile_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_514_700))?;
    /// let step = m.schedule("canary").unwrap();
    /// assert_eq!((step.step(), step.steps(), step.percent()), (Some(0), 2, 5.0));
    /// assert!(m.schedule("nothing").is_none());
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn schedule(&self, name: &str) -> Option<Position> {
        let rule = self.rules.iter().find(|r| r.name == name)?;
        Some(rule.schedule.as_ref()?.step_at(self.moment))
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("variants", &self.variants)
            .field("default", &self.default_variant())
            .field(
                "rules",
                &self.rules.iter().map(|r| r.name).collect::<Vec<_>>(),
            )
            .field("tagging", &self.tagging)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}
