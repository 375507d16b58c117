//! The rule-set model: what a rule file says, before it is compiled.
//!
//! These types mirror the YAML, JSON and TOML formats one to one (see the
//! project's `docs/rules.md`). They check only the shape of the text; every
//! semantic check (names, percents, regexes, variants) happens in
//! [`RuleSet::compile`], whose errors name the rule they are about.

use serde::{Deserialize, Serialize};

#[cfg(any(feature = "json", feature = "yaml", feature = "toml"))]
use crate::error::CompileError;

/// A whole rule set: the default variant, the ordered rules, and how the
/// decided variant travels to the next service.
///
/// Build one from text with [`RuleSet::from_yaml`], [`RuleSet::from_json`] or
/// [`RuleSet::from_toml`] (each behind its feature), with any serde format,
/// or in code; then [`compile`](RuleSet::compile) it into a [`Matcher`](crate::Matcher).
///
/// # Examples
///
/// ```
/// use graymatch::{Condition, Field, Op, Rule, RuleSet};
///
/// let mut rules = RuleSet::new("stable");
/// rules.rules.push(
///     Rule::to("testers", "gray")
///         .when(Condition::Header(Field::new("x-tester", Op::Equals("yes".into())))),
/// );
/// rules.rules.push(Rule::to("canary-20", "gray").percent(20.0).sticky_header("x-user-id"));
/// let matcher = rules.compile()?;
/// assert_eq!(matcher.variants().collect::<Vec<_>>(), ["stable", "gray"]);
/// # Ok::<(), graymatch::CompileError>(())
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// The variant that traffic no rule decides gets.
    pub default: String,
    /// The declared variants. When given, every variant a rule names (and the
    /// default) must be in it; when absent, the variants are the default and
    /// those the rules name, in order of first mention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<String>>,
    /// How the decided variant is carried to the next service.
    #[serde(default)]
    pub propagation: Propagation,
    /// The rules, in order: the first rule that decides wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Guards that halt a gray variant whose outcomes are worse than the
    /// default's (run by a [`Release`](crate::Release)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Guard>,
}

impl RuleSet {
    /// The JSON Schema (draft 2020-12) of rule files, generated from this
    /// model: editors (yaml-language-server's `# yaml-language-server:
    /// $schema=...` line, VS Code's `json.schemas`) check and complete rule
    /// files with it. It checks the shape (fields, types, one operation per
    /// leaf, one key per condition); [`compile`](RuleSet::compile) checks the
    /// rest.
    ///
    /// ```
    /// let schema = graymatch::RuleSet::json_schema();
    /// assert_eq!(schema["title"], "RuleSet");
    /// assert!(schema["required"].as_array().unwrap().contains(&"default".into()));
    /// ```
    #[cfg(feature = "schema")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
    pub fn json_schema() -> serde_json::Value {
        schemars::schema_for!(RuleSet).to_value()
    }

    /// A rule set with this default variant, no rules and default propagation.
    ///
    /// ```
    /// let m = graymatch::RuleSet::new("stable").compile().unwrap();
    /// let req = http::Request::new(());
    /// assert_eq!(m.decide(&req).variant(), "stable");
    /// ```
    pub fn new(default: impl Into<String>) -> Self {
        RuleSet {
            default: default.into(),
            variants: None,
            propagation: Propagation::default(),
            rules: Vec::new(),
            guards: Vec::new(),
        }
    }

    /// Reads a rule set from JSON.
    ///
    /// # Errors
    ///
    /// When the text is not JSON or not in the shape of a rule set (unknown
    /// fields included); the error names the rule (index and name) and the
    /// path inside it, and gives the line and column.
    ///
    /// ```
    /// let rules = graymatch::RuleSet::from_json(r#"{"default": "stable"}"#)?;
    /// assert_eq!(rules.default, "stable");
    /// assert!(graymatch::RuleSet::from_json(r#"{"default": "stable", "colour": 1}"#).is_err());
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn from_json(text: &str) -> Result<Self, CompileError> {
        crate::text::json(text)
    }

    /// Reads a rule set from YAML (with `serde_yaml_ng`, the maintained
    /// continuation of `serde_yaml`).
    ///
    /// # Errors
    ///
    /// When the text is not YAML or not in the shape of a rule set (unknown
    /// fields included); the error names the rule (index and name) and the
    /// path inside it, and gives the line and column.
    ///
    /// ```
    /// let rules = graymatch::RuleSet::from_yaml("default: stable\nrules: []\n")?;
    /// assert_eq!(rules.default, "stable");
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    #[cfg(feature = "yaml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
    pub fn from_yaml(text: &str) -> Result<Self, CompileError> {
        crate::text::yaml(text)
    }

    /// Reads a rule set from TOML.
    ///
    /// # Errors
    ///
    /// When the text is not TOML or not in the shape of a rule set (unknown
    /// fields included); the error names the rule (index and name) and the
    /// path inside it, and gives the line and column.
    ///
    /// ```
    /// let rules = graymatch::RuleSet::from_toml("default = \"stable\"\n")?;
    /// assert_eq!(rules.default, "stable");
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml(text: &str) -> Result<Self, CompileError> {
        crate::text::toml(text)
    }
}

/// How the decided variant travels: as a header and as a W3C `baggage`
/// member, and whether incoming tags are trusted.
///
/// ```
/// let p = graymatch::Propagation::default();
/// assert_eq!(p.header.as_deref(), Some("x-gray"));
/// assert_eq!(p.baggage.as_deref(), Some("gray"));
/// assert_eq!(p.incoming, graymatch::Incoming::Ignore);
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Propagation {
    /// The header that carries the tag (`x-gray`); `None` (`null`) turns it off.
    #[serde(default = "default_header")]
    pub header: Option<String>,
    /// The `baggage` member key that carries the tag (`gray`); `None` turns it off.
    #[serde(default = "default_baggage")]
    pub baggage: Option<String>,
    /// Whether a tag on an incoming request picks its variant.
    #[serde(default)]
    pub incoming: Incoming,
}

fn default_header() -> Option<String> {
    Some(crate::tag::DEFAULT_HEADER.to_owned())
}

fn default_baggage() -> Option<String> {
    Some(crate::tag::DEFAULT_BAGGAGE_KEY.to_owned())
}

impl Default for Propagation {
    fn default() -> Self {
        Propagation {
            header: default_header(),
            baggage: default_baggage(),
            incoming: Incoming::Ignore,
        }
    }
}

/// What to do with a tag that arrives on a request.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Incoming {
    /// Incoming tags are ignored (and overwritten downstream): outsiders cannot
    /// pick a variant. Use it at the edge.
    #[default]
    Ignore,
    /// A tag naming a declared variant (header first, then baggage) decides
    /// the request without evaluating rules. Use it on internal services.
    Trust,
}

/// One rule: a condition, and the variant(s) it sends matching traffic to.
///
/// Exactly one of [`to`](Rule::to) and [`split`](Rule::split) must be set.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The rule's unique name: 1 to 64 of `[A-Za-z0-9._-]`.
    pub name: String,
    /// The condition; `None` holds for every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// The one variant this rule sends traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The share of matching traffic that [`to`](Rule::to) takes, 0 to 100
    /// with at most 4 decimals; `None` is 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Several variants by weight; what is left goes on to the next rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<Target>>,
    /// Makes the weight draw a hash of a request key instead of random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    /// Makes [`to`](Rule::to)'s percent follow steps in time, instead of
    /// [`percent`](Rule::percent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

impl Rule {
    /// A rule named `name` that sends every request to `variant`.
    ///
    /// ```
    /// let rule = graymatch::Rule::to("all-gray", "gray");
    /// assert_eq!(rule.to.as_deref(), Some("gray"));
    /// ```
    pub fn to(name: impl Into<String>, variant: impl Into<String>) -> Self {
        Rule {
            name: name.into(),
            when: None,
            to: Some(variant.into()),
            percent: None,
            split: None,
            sticky: None,
            schedule: None,
        }
    }

    /// A rule named `name` that splits traffic among `targets`.
    ///
    /// ```
    /// use graymatch::{Rule, Target};
    /// let rule = Rule::split("abc", [Target::new("v2", 5.0), Target::new("v3", 5.0)]);
    /// assert_eq!(rule.split.unwrap().len(), 2);
    /// ```
    pub fn split(name: impl Into<String>, targets: impl IntoIterator<Item = Target>) -> Self {
        Rule {
            name: name.into(),
            when: None,
            to: None,
            percent: None,
            split: Some(targets.into_iter().collect()),
            sticky: None,
            schedule: None,
        }
    }

    /// Sets the condition.
    ///
    /// ```
    /// use graymatch::{Condition, Field, Op, Rule};
    /// let rule = Rule::to("t", "gray").when(Condition::Cookie(Field::new("t", Op::Present(true))));
    /// assert!(rule.when.is_some());
    /// ```
    #[must_use]
    pub fn when(mut self, condition: Condition) -> Self {
        self.when = Some(condition);
        self
    }

    /// Sets the percent of [`to`](Rule::to).
    ///
    /// ```
    /// assert_eq!(graymatch::Rule::to("t", "gray").percent(12.5).percent, Some(12.5));
    /// ```
    #[must_use]
    pub fn percent(mut self, percent: f64) -> Self {
        self.percent = Some(percent);
        self
    }

    /// Makes the draw sticky by a header, with the default salt, algorithm
    /// and missing-key policy.
    ///
    /// ```
    /// let rule = graymatch::Rule::to("t", "gray").percent(5.0).sticky_header("x-user-id");
    /// assert_eq!(rule.sticky.unwrap().header.as_deref(), Some("x-user-id"));
    /// ```
    #[must_use]
    pub fn sticky_header(mut self, header: impl Into<String>) -> Self {
        self.sticky = Some(Sticky {
            header: Some(header.into()),
            ..Sticky::default()
        });
        self
    }

    /// Makes the percent follow `schedule` (and clears [`percent`](Rule::percent)).
    ///
    /// ```
    /// use graymatch::{Rule, Schedule};
    /// let rule = Rule::to("canary", "gray")
    ///     .sticky_header("x-user-id")
    ///     .schedule(Schedule::new("2026-11-24T10:00:00Z").step(5.0, "10m").step(20.0, "30m").last(100.0));
    /// assert_eq!(rule.schedule.unwrap().steps.len(), 3);
    /// ```
    #[must_use]
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.percent = None;
        self.schedule = Some(schedule);
        self
    }

    /// Sets the sticky key and its options.
    ///
    /// ```
    /// use graymatch::{Missing, Rule, Sticky};
    /// let sticky = Sticky { cookie: Some("uid".into()), missing: Missing::Skip, ..Sticky::default() };
    /// let rule = Rule::to("t", "gray").percent(5.0).sticky(sticky);
    /// assert!(rule.sticky.is_some());
    /// ```
    #[must_use]
    pub fn sticky(mut self, sticky: Sticky) -> Self {
        self.sticky = Some(sticky);
        self
    }
}

/// A percent that rises in steps from a start time: every instance computes
/// the same step from its clock, so a fleet moves together with no
/// coordinator.
///
/// Before `start` the rule sends no traffic; each step holds for its `for`;
/// after the last step (whose `for` may be left out) its percent holds.
/// Percents never go down, so with a sticky key a rising step only adds
/// users.
///
/// ```yaml
/// schedule:
///   start: 2026-11-24T10:00:00Z
///   steps:
///     - { percent: 5, for: 10m }
///     - { percent: 20, for: 30m }
///     - { percent: 50, for: 1h }
///     - { percent: 100 }
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// When the first step begins: an RFC 3339 time with an offset
    /// (`2026-11-24T10:00:00Z`, `2026-11-24T18:00:00+08:00`).
    pub start: String,
    /// The steps, in order, each at least the percent of the one before.
    pub steps: Vec<ScheduleStep>,
}

impl Schedule {
    /// A schedule starting at `start` (RFC 3339), with no steps yet.
    ///
    /// ```
    /// let s = graymatch::Schedule::new("2026-11-24T10:00:00Z").step(5.0, "10m").last(100.0);
    /// assert_eq!(s.steps[0].duration.as_deref(), Some("10m"));
    /// assert_eq!(s.steps[1].duration, None);
    /// ```
    pub fn new(start: impl Into<String>) -> Self {
        Schedule {
            start: start.into(),
            steps: Vec::new(),
        }
    }

    /// Adds a step of `percent` that holds for `duration` (`10m`, `1h30m`,
    /// `90s`).
    #[must_use]
    pub fn step(mut self, percent: f64, duration: impl Into<String>) -> Self {
        self.steps.push(ScheduleStep {
            percent,
            duration: Some(duration.into()),
        });
        self
    }

    /// Adds the last step, which holds from then on.
    #[must_use]
    pub fn last(mut self, percent: f64) -> Self {
        self.steps.push(ScheduleStep {
            percent,
            duration: None,
        });
        self
    }
}

/// One step of a [`Schedule`]: a percent and how long it holds.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleStep {
    /// The percent of the rule's `to` during this step, 0 to 100 with at
    /// most 4 decimals.
    pub percent: f64,
    /// How long the step holds (`10m`, `1h30m`, `90s`, `2d`); only the last
    /// step may leave it out.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// A guard on a gray variant: over a sliding window, its failure rate and
/// latency are compared with the default variant's, and when a threshold is
/// crossed the variant is halted (its rules stop deciding) until an
/// operator resumes it or a new rule-set version arrives.
///
/// A failure is a `5xx` response or an error from the service. At least one
/// threshold must be set.
///
/// ```yaml
/// guards:
///   - variant: gray
///     window: 60s
///     min_requests: 100
///     max_failure_rate: 0.05     # more than 5 % of gray's requests fail
///     max_failure_ratio: 2       # gray fails twice as often as the default
///     max_p99: 800ms             # gray's p99 latency is above 800 ms
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// The guarded variant: a variant of the rule set, not the default.
    pub variant: String,
    /// The sliding window judged (`60s` when absent), 1 s to 1 day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The requests the variant (and, for ratios, the default) must have in
    /// the window before it is judged (100 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u32>,
    /// Trips when more than this share (0 to 1) of the variant's requests
    /// fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_rate: Option<f64>,
    /// Trips when the variant's failure rate is more than this many times
    /// the default's (at least 1; both rates add-one smoothed, so a default
    /// with no failures does not make one gray failure infinitely worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<f64>,
    /// Trips when the variant's p99 latency is above this (`800ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99: Option<String>,
    /// Trips when the variant's p99 latency is more than this many times
    /// the default's (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ratio: Option<f64>,
}

impl Guard {
    /// A guard on `variant` with no thresholds yet (set at least one).
    ///
    /// ```
    /// let mut g = graymatch::Guard::new("gray");
    /// g.max_failure_rate = Some(0.05);
    /// assert_eq!(g.window, None);
    /// ```
    pub fn new(variant: impl Into<String>) -> Self {
        Guard {
            variant: variant.into(),
            window: None,
            min_requests: None,
            max_failure_rate: None,
            max_failure_ratio: None,
            max_p99: None,
            max_p99_ratio: None,
        }
    }
}

/// One target of a [`split`](Rule::split): a variant and its percent.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The variant.
    pub to: String,
    /// Its percent, 0 to 100 with at most 4 decimals.
    pub percent: f64,
}

impl Target {
    /// A target.
    ///
    /// ```
    /// let t = graymatch::Target::new("v2", 5.0);
    /// assert_eq!((t.to.as_str(), t.percent), ("v2", 5.0));
    /// ```
    pub fn new(to: impl Into<String>, percent: f64) -> Self {
        Target {
            to: to.into(),
            percent,
        }
    }
}

/// What makes a rule's weight draw sticky: the request key to hash, and how.
///
/// Exactly one of `header`, `cookie` and `query` must be set.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sticky {
    /// Hash the first value of this header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Hash the first value of this cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// Hash the first (decoded) value of this query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The salt hashed before the key; `None` is the rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// How the hash becomes a bucket.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// What to do with a request that has no key.
    #[serde(default)]
    pub missing: Missing,
}

/// How a sticky hash becomes a place among the targets.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// `bucket = h % 1_000_000`, targets in ppm ranges in list order.
    #[default]
    Graymatch,
    /// `n = h % 100 + 1`, the first target whose cumulative integer percent
    /// is at least `n`: the users of an Unleash gradual rollout.
    Unleash,
}

/// What a sticky rule does with a request that carries no key.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// Draw at random.
    #[default]
    Random,
    /// The rule does not decide; the request goes on to the next rule.
    Skip,
}

/// A condition on a request: one leaf, or `all`/`any`/`not` of conditions.
///
/// In YAML: `{ header: { name: x-region, in: [hz, sh] } }`,
/// `{ all: [ ... ] }`, `{ not: { ... } }`.
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(with = "CondRepr")
)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CondRepr", into = "CondRepr")]
pub enum Condition {
    /// Every condition holds (an empty list holds).
    All(Vec<Condition>),
    /// At least one condition holds (an empty list never holds).
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
    /// A header (name case-insensitive; every line, as sent).
    Header(Field),
    /// A cookie (name case-sensitive; every pair of every `Cookie` header).
    Cookie(Field),
    /// A query parameter (names and values percent-decoded, `+` is space).
    Query(Field),
    /// The URI path, not decoded.
    Path(Test),
    /// The method.
    Method(Test),
    /// The request's host: the URI's authority, else the first `Host`
    /// header; port removed, ASCII-lowercased, one trailing `.` removed.
    /// Compared without case.
    Host(Test),
    /// The client's address: a [`ClientIp`](crate::ClientIp) in the request's
    /// extensions, else absent.
    ClientIp(Test),
}

/// A named field of a request (header, cookie or query parameter) and the
/// test its values must pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FieldRepr", into = "FieldRepr")]
pub struct Field {
    /// The header, cookie or parameter name.
    pub name: String,
    /// The test.
    pub test: Test,
    /// Cookie leaves only: compare the cookie's name without ASCII case, as
    /// nginx's `$cookie_NAME` does (`name_ignore_case: true`).
    pub name_ignore_case: bool,
}

impl Field {
    /// A field test, case-sensitive.
    ///
    /// ```
    /// use graymatch::{Field, Op};
    /// let f = Field::new("x-region", Op::In(vec!["hz".into(), "sh".into()])).ignore_case();
    /// assert!(f.test.ignore_case);
    /// ```
    pub fn new(name: impl Into<String>, op: Op) -> Self {
        Field {
            name: name.into(),
            test: Test::new(op),
            name_ignore_case: false,
        }
    }

    /// Compares a cookie's name without ASCII case (cookie leaves only).
    ///
    /// ```
    /// use graymatch::{Condition, Field, Op, Rule, RuleSet};
    /// let mut rules = RuleSet::new("stable");
    /// let leaf = Field::new("canary", Op::Equals("always".into())).name_ignore_case();
    /// rules.rules.push(Rule::to("c", "gray").when(Condition::Cookie(leaf)));
    /// let m = rules.compile()?;
    /// let req = http::Request::get("/").header("cookie", "Canary=always").body(())?;
    /// assert_eq!(m.decide(&req).variant(), "gray");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn name_ignore_case(mut self) -> Self {
        self.name_ignore_case = true;
        self
    }

    /// Makes the string comparison ASCII case-insensitive.
    #[must_use]
    pub fn ignore_case(mut self) -> Self {
        self.test.ignore_case = true;
        self
    }

    /// Compares values as this type (`as:` in a rule file).
    #[must_use]
    pub fn value_type(mut self, value_type: ValueType) -> Self {
        self.test.value_type = Some(value_type);
        self
    }
}

/// A test on a value: one operation, whether case is ignored, and the type
/// the value is compared as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FieldRepr", into = "FieldRepr")]
pub struct Test {
    /// The operation.
    pub op: Op,
    /// Compare ASCII letters case-insensitively (string operations only).
    pub ignore_case: bool,
    /// `as`: compare by value as a number or version instead of as text.
    /// Goes with `equals`, `in`, `gt`, `gte`, `lt` and `lte`; the last four
    /// require it.
    pub value_type: Option<ValueType>,
}

/// The type a typed comparison (`as:`) parses values as.
///
/// ```
/// use graymatch::{Field, Op, ValueType};
/// let f = Field::new("x-app-version", Op::Gte("5.2".into())).value_type(ValueType::Version);
/// assert_eq!(f.test.value_type, Some(ValueType::Version));
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// A decimal number as JSON writes it, a leading `+` allowed; compared by
    /// value (`12` equals `12.0`, `1e3` equals `1000`).
    Number,
    /// SemVer 2.0.0 exactly (three numeric parts, no leading zeros, no `v`),
    /// ordered by its precedence rules; build metadata is ignored.
    Semver,
    /// Dotted versions as apps send them: an optional `v`, 1 to 4 numbers
    /// (missing parts are 0), then optionally `-pre.release` and `+build`,
    /// ordered as semver orders them.
    Version,
}

impl ValueType {
    /// The type's name as a rule file writes it.
    ///
    /// ```
    /// assert_eq!(graymatch::ValueType::Semver.keyword(), "semver");
    /// ```
    pub fn keyword(self) -> &'static str {
        match self {
            ValueType::Number => "number",
            ValueType::Semver => "semver",
            ValueType::Version => "version",
        }
    }
}

impl Test {
    /// A case-sensitive test.
    ///
    /// ```
    /// let t = graymatch::Test::new(graymatch::Op::Prefix("/api/".into()));
    /// assert!(!t.ignore_case);
    /// ```
    pub fn new(op: Op) -> Self {
        Test {
            op,
            ignore_case: false,
            value_type: None,
        }
    }
}

/// The operation of a leaf condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The value equals this string.
    Equals(String),
    /// The value equals one of these strings.
    In(Vec<String>),
    /// The value starts with this string.
    Prefix(String),
    /// The value ends with this string.
    Suffix(String),
    /// The value contains this string.
    Contains(String),
    /// The whole value matches this regular expression.
    Regex(String),
    /// `true`: there is at least one occurrence; `false`: there is none.
    Present(bool),
    /// The value, as its [`ValueType`], is greater than this one.
    Gt(String),
    /// The value, as its [`ValueType`], is greater than or equal to this one.
    Gte(String),
    /// The value, as its [`ValueType`], is less than this one.
    Lt(String),
    /// The value, as its [`ValueType`], is less than or equal to this one.
    Lte(String),
    /// The value is an IP address inside one of these networks
    /// (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a single host).
    Cidr(Vec<String>),
    /// The value is this path or lies under it, segment by segment: it
    /// equals the prefix, or starts with it followed by `/`. One trailing
    /// `/` of the prefix is ignored, so `/api` and `/api/` both hold for
    /// `/api`, `/api/` and `/api/v1`, never for `/apis`; `/` holds for every
    /// path. (Gateway API's `PathPrefix`, Kubernetes Ingress's `Prefix`.)
    SegmentPrefix(String),
}

/// The operations' keywords, in the order errors list them and the schema
/// offers them ([`Op::keyword`] of each).
const OP_KEYWORDS: [&str; 13] = [
    "equals",
    "in",
    "prefix",
    "suffix",
    "contains",
    "regex",
    "present",
    "gt",
    "gte",
    "lt",
    "lte",
    "cidr",
    "segment_prefix",
];

impl Op {
    /// The operation's name as it is written in a rule file.
    ///
    /// ```
    /// assert_eq!(graymatch::Op::In(vec![]).keyword(), "in");
    /// ```
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Equals(_) => "equals",
            Op::In(_) => "in",
            Op::Prefix(_) => "prefix",
            Op::Suffix(_) => "suffix",
            Op::Contains(_) => "contains",
            Op::Regex(_) => "regex",
            Op::Present(_) => "present",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::Cidr(_) => "cidr",
            Op::SegmentPrefix(_) => "segment_prefix",
        }
    }
}

/// The flat text form of a leaf: `{name?, <one op>, ignore_case?}`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<Scalar>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    in_: Option<Vec<Scalar>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    present: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gt: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gte: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lt: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lte: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cidr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    segment_prefix: Option<String>,
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    as_: Option<ValueType>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ignore_case: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    name_ignore_case: bool,
}

/// A value a rule file may write as a number or boolean too (`gt: 20`,
/// `equals: 1`): it is kept as the text of that number. A number with a
/// fraction or exponent has lost its spelling (YAML reads an unquoted `5.10`
/// as 5.1), so it is refused unless the leaf compares `as: number`.
#[derive(Clone, Debug)]
struct Scalar {
    text: String,
    /// Read from a float, whose text may differ from what was written.
    float: bool,
}

impl From<String> for Scalar {
    fn from(text: String) -> Self {
        Scalar { text, float: false }
    }
}

impl Serialize for Scalar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(v.to_owned().into())
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(v.into())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(v.to_string().into())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(v.to_string().into())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar {
                    text: v.to_string(),
                    float: true,
                })
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(v.to_string().into())
            }
        }
        d.deserialize_any(Visit)
    }
}

impl FieldRepr {
    fn into_test(self) -> Result<(Option<String>, Test), String> {
        let mut ops = Vec::new();
        let FieldRepr {
            name,
            equals,
            in_,
            prefix,
            suffix,
            contains,
            regex,
            present,
            gt,
            gte,
            lt,
            lte,
            cidr,
            segment_prefix,
            as_,
            ignore_case,
            name_ignore_case: _,
        } = self;
        // A float keeps its spelling only as a number.
        let numeric = as_ == Some(ValueType::Number);
        let spelled = |v: Scalar| -> Result<String, String> {
            if v.float && !numeric {
                Err(format!(
                    "{} was read as a number and may have lost digits (YAML reads 5.10 as 5.1): \
                     write the value in quotes",
                    v.text
                ))
            } else {
                Ok(v.text)
            }
        };
        let one = |v: Option<Scalar>| v.map(&spelled).transpose();
        let (equals, gt, gte, lt, lte) = (one(equals)?, one(gt)?, one(gte)?, one(lt)?, one(lte)?);
        let in_ = in_
            .map(|list| {
                list.into_iter()
                    .map(&spelled)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        ops.extend(equals.map(Op::Equals));
        ops.extend(in_.map(Op::In));
        ops.extend(prefix.map(Op::Prefix));
        ops.extend(suffix.map(Op::Suffix));
        ops.extend(contains.map(Op::Contains));
        ops.extend(regex.map(Op::Regex));
        ops.extend(present.map(Op::Present));
        ops.extend(gt.map(Op::Gt));
        ops.extend(gte.map(Op::Gte));
        ops.extend(lt.map(Op::Lt));
        ops.extend(lte.map(Op::Lte));
        ops.extend(cidr.map(Op::Cidr));
        ops.extend(segment_prefix.map(Op::SegmentPrefix));
        if ops.len() != 1 {
            let found: Vec<&str> = ops.iter().map(Op::keyword).collect();
            return Err(format!(
                "a condition needs exactly one of {} (found {})",
                OP_KEYWORDS.join(", "),
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.join(", ")
                }
            ));
        }
        let op = ops.pop().expect("one op");
        Ok((
            name,
            Test {
                op,
                ignore_case,
                value_type: as_,
            },
        ))
    }

    fn from_test(name: Option<String>, test: Test) -> Self {
        let mut repr = FieldRepr {
            name,
            ignore_case: test.ignore_case,
            as_: test.value_type,
            ..FieldRepr::default()
        };
        match test.op {
            Op::Equals(s) => repr.equals = Some(s.into()),
            Op::In(v) => repr.in_ = Some(v.into_iter().map(Scalar::from).collect()),
            Op::Prefix(s) => repr.prefix = Some(s),
            Op::Suffix(s) => repr.suffix = Some(s),
            Op::Contains(s) => repr.contains = Some(s),
            Op::Regex(s) => repr.regex = Some(s),
            Op::Present(b) => repr.present = Some(b),
            Op::Gt(s) => repr.gt = Some(s.into()),
            Op::Gte(s) => repr.gte = Some(s.into()),
            Op::Lt(s) => repr.lt = Some(s.into()),
            Op::Lte(s) => repr.lte = Some(s.into()),
            Op::Cidr(v) => repr.cidr = Some(v),
            Op::SegmentPrefix(s) => repr.segment_prefix = Some(s),
        }
        repr
    }
}

impl TryFrom<FieldRepr> for Field {
    type Error = String;
    fn try_from(repr: FieldRepr) -> Result<Self, String> {
        let name_ignore_case = repr.name_ignore_case;
        match repr.into_test()? {
            (Some(name), test) => Ok(Field {
                name,
                test,
                name_ignore_case,
            }),
            (None, _) => Err("a header, cookie or query condition needs a `name`".to_owned()),
        }
    }
}

impl From<Field> for FieldRepr {
    fn from(field: Field) -> Self {
        FieldRepr {
            name_ignore_case: field.name_ignore_case,
            ..FieldRepr::from_test(Some(field.name), field.test)
        }
    }
}

impl TryFrom<FieldRepr> for Test {
    type Error = String;
    fn try_from(repr: FieldRepr) -> Result<Self, String> {
        if repr.name_ignore_case {
            return Err("name_ignore_case goes with cookie conditions".to_owned());
        }
        match repr.into_test()? {
            (None, test) => Ok(test),
            (Some(_), _) => {
                Err("a path, method, host or client_ip condition takes no `name`".to_owned())
            }
        }
    }
}

impl From<Test> for FieldRepr {
    fn from(test: Test) -> Self {
        FieldRepr::from_test(None, test)
    }
}

/// The schema of a leaf's text form: [`FieldRepr`]'s, with exactly one
/// operation, and `name` required (header, cookie, query) or absent (path,
/// method, host, client_ip).
#[cfg(feature = "schema")]
fn leaf_schema(generator: &mut schemars::SchemaGenerator, named: bool) -> schemars::Schema {
    let mut schema = <FieldRepr as schemars::JsonSchema>::json_schema(generator);
    let one_of: Vec<serde_json::Value> = OP_KEYWORDS
        .iter()
        .map(|op| serde_json::json!({ "required": [op] }))
        .collect();
    schema.insert("oneOf".into(), one_of.into());
    if named {
        schema.insert("required".into(), serde_json::json!(["name"]));
    } else if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.remove("name");
    }
    schema
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Field {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Field".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        leaf_schema(generator, true)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Test {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Test".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        leaf_schema(generator, false)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Scalar {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// The text form of a condition: a map with exactly one key. (A struct of
/// options rather than serde's externally tagged enum, which YAML reads as
/// `!tags`.)
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(extend("minProperties" = 1, "maxProperties" = 1))
)]
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CondRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not: Option<Box<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cookie: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<Test>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<Test>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<Test>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_ip: Option<Test>,
}

impl TryFrom<CondRepr> for Condition {
    type Error = String;
    fn try_from(r: CondRepr) -> Result<Self, String> {
        let mut found = Vec::new();
        found.extend(r.all.map(Condition::All));
        found.extend(r.any.map(Condition::Any));
        found.extend(r.not.map(Condition::Not));
        found.extend(r.header.map(Condition::Header));
        found.extend(r.cookie.map(Condition::Cookie));
        found.extend(r.query.map(Condition::Query));
        found.extend(r.path.map(Condition::Path));
        found.extend(r.method.map(Condition::Method));
        found.extend(r.host.map(Condition::Host));
        found.extend(r.client_ip.map(Condition::ClientIp));
        if found.len() == 1 {
            return Ok(found.pop().expect("one condition"));
        }
        let keys: Vec<&str> = found.iter().map(Condition::keyword).collect();
        Err(format!(
            "a condition has exactly one of all, any, not, header, cookie, query, path, method, host, client_ip (found {})",
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.join(", ")
            }
        ))
    }
}

impl From<Condition> for CondRepr {
    fn from(c: Condition) -> Self {
        let mut r = CondRepr::default();
        match c {
            Condition::All(cs) => r.all = Some(cs),
            Condition::Any(cs) => r.any = Some(cs),
            Condition::Not(c) => r.not = Some(c),
            Condition::Header(f) => r.header = Some(f),
            Condition::Cookie(f) => r.cookie = Some(f),
            Condition::Query(f) => r.query = Some(f),
            Condition::Path(t) => r.path = Some(t),
            Condition::Method(t) => r.method = Some(t),
            Condition::Host(t) => r.host = Some(t),
            Condition::ClientIp(t) => r.client_ip = Some(t),
        }
        r
    }
}

impl Condition {
    /// The condition's key as a rule file writes it (`all`, `header`, ...).
    ///
    /// ```
    /// assert_eq!(graymatch::Condition::All(vec![]).keyword(), "all");
    /// ```
    pub fn keyword(&self) -> &'static str {
        match self {
            Condition::All(_) => "all",
            Condition::Any(_) => "any",
            Condition::Not(_) => "not",
            Condition::Header(_) => "header",
            Condition::Cookie(_) => "cookie",
            Condition::Query(_) => "query",
            Condition::Path(_) => "path",
            Condition::Method(_) => "method",
            Condition::Host(_) => "host",
            Condition::ClientIp(_) => "client_ip",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_keywords_list_every_op_once() {
        let s = String::new;
        let ops = [
            Op::Equals(s()),
            Op::In(vec![]),
            Op::Prefix(s()),
            Op::Suffix(s()),
            Op::Contains(s()),
            Op::Regex(s()),
            Op::Present(true),
            Op::Gt(s()),
            Op::Gte(s()),
            Op::Lt(s()),
            Op::Lte(s()),
            Op::Cidr(vec![]),
            Op::SegmentPrefix(s()),
        ];
        let keywords: Vec<&str> = ops.iter().map(Op::keyword).collect();
        assert_eq!(keywords, OP_KEYWORDS);
    }
}
