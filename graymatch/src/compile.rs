//! Compiling a rule set: every check and every allocation happens here, and
//! each error names the place it is about.

use std::time::{Duration, SystemTime};

use http::HeaderName;
use memchr::memmem::Finder;
use regex::RegexBuilder;
use regex_automata::nfa::thompson;
use regex_syntax::hir::{Hir, Look};

use crate::cond::{Cond, Leaf, Pattern, Source, StrOp, StrTest, ValueTest};
use crate::error::CompileError;
use crate::exact::ExactIndex;
use crate::fused::{Override, StickyShare};
use crate::guard::GuardSpec;
use crate::intern::{intern, intern_header};
use crate::literal::LiteralRun;
use crate::matcher::{CompiledRule, Draw, ExactRun, Matcher, Step, StickyKey, Tagging};
use crate::net::Networks;
use crate::rules::{
    Algorithm, Condition, Field, Incoming, Missing, Op, Rule, RuleSet, Sticky, Test,
};
use crate::scan::CookieName;
use crate::schedule::CompiledSchedule;
use crate::sticky::{Murmur3, PPM};
use crate::tag::{Tag, is_valid_name};
use crate::typed::{Cmp, TypedTest};

/// The deepest nesting of `all`/`any`/`not` a rule set may use.
pub const MAX_DEPTH: usize = 32;
/// The size limit of one compiled regex, in bytes.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// `in` lists longer than this are hashed; shorter ones are compared in turn.
const IN_LIST_MAX: usize = 8;
/// Runs of at least this many exact-value rules on one field share one index.
const RUN_MIN: usize = 4;

impl RuleSet {
    /// Checks the rule set and compiles it into a [`Matcher`].
    ///
    /// # Errors
    ///
    /// When the rule set is invalid; the error names the place and the
    /// problem (`rules[3] (canary-20): percents sum to 120, more than 100`).
    /// Among the checks: names (1 to 64 of `[A-Za-z0-9._-]`, rules unique),
    /// variants used but not declared when `variants` is given, the default,
    /// header and cookie names, regexes that do not compile or exceed
    /// [`REGEX_SIZE_LIMIT`](crate::REGEX_SIZE_LIMIT), percents out of range or
    /// with more than 4 decimals, percents summing past 100, non-integer
    /// percents under `algorithm: unleash`, rules with both or neither of `to`
    /// and `split`, and conditions nested deeper than
    /// [`MAX_DEPTH`](crate::MAX_DEPTH).
    ///
    /// ```
    /// let rules = graymatch::RuleSet::from_yaml(r#"
    /// default: stable
    /// variants: [stable, gray]
    /// rules:
    ///   - { name: canary, to: grey, percent: 5 }
    /// "#)?;
    /// let err = rules.compile().unwrap_err();
    /// assert_eq!(err.to_string(), "rules[0] (canary): variant `grey` is not declared in variants");
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    ///
    /// A rule with a [`schedule`](crate::Rule::schedule) gets the percent of
    /// the step in force now (the clock is read here, never while
    /// deciding); [`compile_at`](RuleSet::compile_at) picks the moment.
    pub fn compile(&self) -> Result<Matcher, CompileError> {
        let time = if self.rules.iter().any(|r| r.schedule.is_some()) {
            SystemTime::now()
        } else {
            SystemTime::UNIX_EPOCH
        };
        self.compile_at(time)
    }

    /// Compiles the rule set as it stands at `time`: each scheduled rule at
    /// the percent of its step then. [`Matcher::next_change`] tells when the
    /// next step begins; a [`Release`](crate::Release) swaps matchers at
    /// those moments by itself.
    ///
    /// # Errors
    ///
    /// As [`compile`](RuleSet::compile), whatever the time.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use graymatch::{Rule, RuleSet, Schedule};
    ///
    /// let mut rules = RuleSet::new("stable");
    /// rules.rules.push(Rule::to("canary", "gray").sticky_header("x-user-id").schedule(
    ///     Schedule::new("2026-11-24T10:00:00Z").step(5.0, "10m").step(20.0, "30m").last(100.0),
    /// ));
    /// let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_514_400);
    /// assert_eq!(rules.compile_at(start - Duration::from_secs(1))?.schedule("canary").unwrap().percent(), 0.0);
    /// assert_eq!(rules.compile_at(start)?.schedule("canary").unwrap().percent(), 5.0);
    /// assert_eq!(rules.compile_at(start + Duration::from_secs(3600))?.schedule("canary").unwrap().percent(), 100.0);
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn compile_at(&self, time: SystemTime) -> Result<Matcher, CompileError> {
        self.compile_moment(&Moment {
            time,
            shift: Duration::ZERO,
            frozen: false,
            halted: &[],
        })
    }

    /// Compiles the rule set for a moment of a release.
    pub(crate) fn compile_moment(&self, moment: &Moment<'_>) -> Result<Matcher, CompileError> {
        Compiler::new(self, moment)?.finish(self)
    }
}

/// The moment a matcher is compiled for.
pub(crate) struct Moment<'a> {
    /// The schedules' clock.
    pub(crate) time: SystemTime,
    /// How far the schedules' clock is behind the wall clock (time spent
    /// frozen), to give the next change in wall-clock time.
    pub(crate) shift: Duration,
    /// The schedules are frozen: no next change.
    pub(crate) frozen: bool,
    /// Variants whose rules do not decide.
    pub(crate) halted: &'a [String],
}

struct Compiler<'m> {
    variants: Vec<&'static str>,
    declared: bool,
    default: u16,
    moment: &'m Moment<'m>,
    next_change: Option<SystemTime>,
}

impl<'m> Compiler<'m> {
    fn new(set: &RuleSet, moment: &'m Moment<'m>) -> Result<Self, CompileError> {
        let mut c = Compiler {
            variants: Vec::new(),
            declared: set.variants.is_some(),
            default: 0,
            moment,
            next_change: None,
        };
        if let Some(list) = &set.variants {
            for (i, v) in list.iter().enumerate() {
                let place = format!("variants[{i}]");
                check_name(&place, "variant", v)?;
                if c.variants.contains(&v.as_str()) {
                    return Err(CompileError::invalid(
                        place,
                        format!("variant `{v}` is declared twice"),
                    ));
                }
                c.variants.push(intern(v));
            }
        }
        check_name("default", "variant", &set.default)?;
        c.default = c.variant("default", &set.default)?;
        Ok(c)
    }

    fn variant(&mut self, place: &str, name: &str) -> Result<u16, CompileError> {
        if let Some(i) = self.variants.iter().position(|v| *v == name) {
            return Ok(i as u16);
        }
        if self.declared {
            return Err(CompileError::invalid(
                place,
                format!("variant `{name}` is not declared in variants"),
            ));
        }
        check_name(place, "variant", name)?;
        if self.variants.len() >= usize::from(u16::MAX) {
            return Err(CompileError::invalid(place, "more than 65535 variants"));
        }
        self.variants.push(intern(name));
        Ok((self.variants.len() - 1) as u16)
    }

    fn finish(mut self, set: &RuleSet) -> Result<Matcher, CompileError> {
        let mut tagging = tagging(set)?;
        let mut names = ahash::AHashSet::with_capacity(set.rules.len());
        let mut rules = Vec::with_capacity(set.rules.len());
        for (i, rule) in set.rules.iter().enumerate() {
            let place = if is_valid_name(&rule.name) {
                format!("rules[{i}] ({})", rule.name)
            } else {
                format!("rules[{i}]")
            };
            check_name(&place, "rule", &rule.name)?;
            if !names.insert(rule.name.as_str()) {
                return Err(CompileError::invalid(
                    place,
                    format!("rule name `{}` is used twice", rule.name),
                ));
            }
            rules.push(self.rule(&place, rule)?);
        }
        let guards = self.guards(set)?;
        let halted_variants: Box<[bool]> = self
            .variants
            .iter()
            .map(|v| self.moment.halted.iter().any(|h| h == v))
            .collect();
        let program = program(set, &rules, &self.variants);
        // The engines of the regex leaves the rule-by-rule program
        // evaluates; a literal run's own regex decides for its regex rules,
        // and when its NFA is well within one regex's size limit, so is
        // each of them alone (a pattern compiled alone is no larger than
        // its part of the run's: `Regexes::fit`). Otherwise, or when an
        // engine does not build, the rule is compiled again checking each
        // pattern's NFAs, for the error and its place.
        let mut fits = vec![None; rules.len()];
        for step in &program {
            if let Step::Literal(run) = step {
                fits[run.rules()].fill(Some(run.regexes_fit()));
            }
        }
        for (i, rule) in rules.iter().enumerate() {
            let Some(when) = &rule.when else { continue };
            match fits[i] {
                Some(true) => {}
                Some(false) => check_nfas(set, i)?,
                None => {
                    if when.patterns(&mut Pattern::build).is_err() {
                        check_nfas(set, i)?;
                        return Err(CompileError::invalid(
                            format!("rules[{i}] ({})", set.rules[i].name),
                            "a regex of this rule does not compile".to_owned(),
                        ));
                    }
                }
            }
        }
        if let Some(key) = tagging.baggage {
            tagging.members = self
                .variants
                .iter()
                .map(|v| Tag::member_of(key, v))
                .collect();
        }
        Ok(Matcher {
            variants: self.variants.into_boxed_slice(),
            default: self.default,
            rules: rules.into_boxed_slice(),
            program,
            tagging,
            source: set.clone(),
            reads_client_ip: set
                .rules
                .iter()
                .filter_map(|r| r.when.as_ref())
                .any(reads_client_ip),
            version: None,
            version_id: None,
            guards,
            halted: halted_variants,
            moment: self.moment.time,
            next_change: if self.moment.frozen {
                None
            } else {
                self.next_change.map(|t| t + self.moment.shift)
            },
        })
    }

    fn guards(&self, set: &RuleSet) -> Result<Box<[GuardSpec]>, CompileError> {
        let mut specs: Vec<GuardSpec> = Vec::with_capacity(set.guards.len());
        for (i, g) in set.guards.iter().enumerate() {
            let place = if is_valid_name(&g.variant) {
                format!("guards[{i}] ({})", g.variant)
            } else {
                format!("guards[{i}]")
            };
            let default = self.variants[usize::from(self.default)];
            let spec = GuardSpec::new(g, &self.variants, default).map_err(|(field, m)| {
                if field.is_empty() {
                    CompileError::invalid(&place, m)
                } else {
                    CompileError::invalid(format!("{place}.{field}"), m)
                }
            })?;
            if specs.iter().any(|s| s.variant == spec.variant) {
                return Err(CompileError::invalid(
                    place,
                    format!("variant `{}` is guarded twice", spec.variant),
                ));
            }
            specs.push(spec);
        }
        Ok(specs.into_boxed_slice())
    }

    fn rule(&mut self, place: &str, rule: &Rule) -> Result<CompiledRule, CompileError> {
        let err = |m: String| CompileError::invalid(place, m);
        let schedule = match (&rule.schedule, &rule.to, rule.percent) {
            (None, ..) => None,
            (Some(_), None, _) => {
                return Err(err(
                    "a schedule goes with `to` (one variant whose percent rises)".into(),
                ));
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(err(
                    "`percent` or `schedule`, not both: the schedule sets the percent".into(),
                ));
            }
            (Some(s), Some(_), None) => {
                Some(Box::new(CompiledSchedule::new(s).map_err(|(at, m)| {
                    CompileError::invalid(format!("{place}.{at}"), m)
                })?))
            }
        };
        let scheduled = schedule.as_ref().map(|s| {
            let (_, ppm, next) = s.at(self.moment.time);
            if let Some(n) = next {
                self.next_change = Some(self.next_change.map_or(n, |c| c.min(n)));
            }
            f64::from(ppm) / 10_000.0
        });
        let targets: Vec<(&str, f64)> = match (&rule.to, &rule.split) {
            (Some(to), None) => vec![(to.as_str(), scheduled.or(rule.percent).unwrap_or(100.0))],
            (None, Some(split)) => {
                if rule.percent.is_some() {
                    return Err(err(
                        "`percent` goes with `to`; a split gives each target its own".into(),
                    ));
                }
                if split.is_empty() {
                    return Err(err("`split` needs at least one target".into()));
                }
                split.iter().map(|t| (t.to.as_str(), t.percent)).collect()
            }
            (Some(_), Some(_)) => return Err(err("a rule has `to` or `split`, not both".into())),
            (None, None) => return Err(err("a rule needs `to` or `split`".into())),
        };
        let algorithm = rule
            .sticky
            .as_ref()
            .map_or(Algorithm::Graymatch, |s| s.algorithm);
        if let (Some(s), Algorithm::Unleash) = (&rule.schedule, algorithm)
            && let Some((i, step)) = s
                .steps
                .iter()
                .enumerate()
                .find(|(_, st)| st.percent.fract() != 0.0)
        {
            return Err(CompileError::invalid(
                format!("{place}.schedule.steps[{i}]"),
                format!(
                    "percent {} is not a whole number, as algorithm: unleash needs",
                    step.percent
                ),
            ));
        }
        let mut compiled = Vec::with_capacity(targets.len());
        let mut total: u64 = 0;
        for (to, percent) in targets {
            let variant = self.variant(place, to)?;
            if compiled.iter().any(|&(v, _)| v == variant) {
                return Err(err(format!("variant `{to}` is a target twice")));
            }
            let ppm = ppm(percent).map_err(err)?;
            if algorithm == Algorithm::Unleash && ppm % 10_000 != 0 {
                return Err(err(format!(
                    "percent {percent} is not a whole number, as algorithm: unleash needs"
                )));
            }
            // u64: thousands of targets cannot overflow; a sum past 100 is
            // refused below, before the bounds are used.
            total += u64::from(ppm);
            compiled.push((variant, u32::try_from(total).unwrap_or(u32::MAX)));
        }
        if total > u64::from(PPM) {
            return Err(err(format!(
                "percents sum to {}, more than 100",
                show_ppm(total)
            )));
        }
        let total = total as u32;
        let when = rule
            .when
            .as_ref()
            .map(|c| compile_cond(c, &format!("{place}: when"), 0))
            .transpose()?;
        let single_full = compiled.len() == 1 && total == PPM;
        // The key is checked even where no draw needs it (0 or 100 percent).
        if let Some(s) = &rule.sticky {
            sticky_source(place, s)?;
        }
        let draw = match &rule.sticky {
            _ if total == 0 => Draw::Never,
            None if single_full => Draw::Always,
            None => Draw::Random,
            Some(s) if single_full && s.missing == Missing::Random => Draw::Always,
            Some(s) => {
                let source = sticky_source(place, s)?;
                let mut prefix = Murmur3::new(0);
                prefix.write(s.salt.as_deref().unwrap_or(&rule.name).as_bytes());
                prefix.write_byte(b':');
                Draw::Sticky(StickyKey {
                    source,
                    prefix,
                    algorithm: s.algorithm,
                    missing: s.missing,
                })
            }
        };
        let halted: Vec<bool> = compiled
            .iter()
            .map(|&(v, _)| {
                let name = self.variants[usize::from(v)];
                self.moment.halted.iter().any(|h| h == name)
            })
            .collect();
        let halted = halted.contains(&true).then(|| halted.into_boxed_slice());
        // Every target halted: the rule never decides, with no draw.
        let draw = match &halted {
            Some(h) if h.iter().all(|&x| x) => Draw::Never,
            _ => draw,
        };
        Ok(CompiledRule {
            name: intern(&rule.name),
            when,
            targets: compiled.into_boxed_slice(),
            draw,
            halted,
            schedule,
        })
    }
}

fn reads_client_ip(cond: &Condition) -> bool {
    match cond {
        Condition::All(cs) | Condition::Any(cs) => cs.iter().any(reads_client_ip),
        Condition::Not(c) => reads_client_ip(c),
        Condition::ClientIp(_) => true,
        _ => false,
    }
}

fn tagging(set: &RuleSet) -> Result<Tagging, CompileError> {
    let p = &set.propagation;
    let header = match &p.header {
        Some(h) => {
            let name = HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                CompileError::invalid("propagation.header", format!("invalid header name {h:?}"))
            })?;
            Some(intern_header(intern(name.as_str())))
        }
        None => None,
    };
    let baggage = match &p.baggage {
        Some(k) if !k.is_empty() && k.bytes().all(is_tchar) => Some(intern(k)),
        Some(k) => {
            return Err(CompileError::invalid(
                "propagation.baggage",
                format!(
                    "invalid baggage key {k:?}: a key is a token (letters, digits, !#$%&'*+-.^_`|~)"
                ),
            ));
        }
        None => None,
    };
    Ok(Tagging {
        header,
        baggage,
        members: Box::default(),
        trust: p.incoming == Incoming::Trust,
    })
}

fn check_name(place: &str, what: &str, name: &str) -> Result<(), CompileError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(CompileError::invalid(
            place,
            format!("invalid {what} name {name:?}: names are 1 to 64 of [A-Za-z0-9._-]"),
        ))
    }
}

/// A percent as ppm: 0 to 100 with at most 4 decimals.
pub(crate) fn ppm(percent: f64) -> Result<u32, String> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(format!("percent {percent} is not between 0 and 100"));
    }
    let scaled = percent * 10_000.0;
    let rounded = scaled.round();
    // An absolute tolerance: a fifth decimal is 0.1 ppm, far above the
    // float error of `percent * 10_000` (about 1e-10 at 100).
    if (scaled - rounded).abs() > 1e-6 {
        return Err(format!("percent {percent} has more than 4 decimals"));
    }
    Ok(rounded as u32)
}

/// `120`, `12.5`, `0.0001`: a ppm amount as the percent a user wrote.
fn show_ppm(ppm: u64) -> String {
    let whole = ppm / 10_000;
    let frac = ppm % 10_000;
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:04}")
            .trim_end_matches('0')
            .to_owned()
    }
}

fn sticky_source(place: &str, s: &Sticky) -> Result<Source, CompileError> {
    let err = |m: String| CompileError::invalid(format!("{place}: sticky"), m);
    match (&s.header, &s.cookie, &s.query) {
        (Some(h), None, None) => header_name(h).map(Source::Header).map_err(err),
        (None, Some(c), None) => cookie_name(c)
            .map(|n| Source::Cookie(CookieName::new(&n)))
            .map_err(err),
        (None, None, Some(q)) => query_name(q).map(Source::Query).map_err(err),
        _ => Err(err("needs exactly one of header, cookie, query".into())),
    }
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

fn cookie_name(name: &str) -> Result<Box<str>, String> {
    if !name.is_empty() && name.bytes().all(is_tchar) {
        Ok(name.into())
    } else {
        Err(format!(
            "invalid cookie name {name:?}: a cookie name is a token"
        ))
    }
}

fn query_name(name: &str) -> Result<Box<str>, String> {
    if name.is_empty() {
        Err("a query parameter name cannot be empty".into())
    } else {
        Ok(name.into())
    }
}

/// An RFC 9110 token character.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn compile_cond(cond: &Condition, place: &str, depth: usize) -> Result<Cond, CompileError> {
    if depth >= MAX_DEPTH {
        return Err(CompileError::invalid(
            place,
            format!("conditions nest deeper than {MAX_DEPTH} levels"),
        ));
    }
    let list = |cs: &[Condition], key: &str| -> Result<Box<[Cond]>, CompileError> {
        cs.iter()
            .enumerate()
            .map(|(i, c)| compile_cond(c, &format!("{place}.{key}[{i}]"), depth + 1))
            .collect()
    };
    let err = |key: &str, m: String| CompileError::invalid(format!("{place}.{key}"), m);
    Ok(match cond {
        Condition::All(cs) => Cond::All(list(cs, "all")?),
        Condition::Any(cs) => Cond::Any(list(cs, "any")?),
        Condition::Not(c) => Cond::Not(Box::new(compile_cond(
            c,
            &format!("{place}.not"),
            depth + 1,
        )?)),
        Condition::Header(f) | Condition::Query(f) if f.name_ignore_case => {
            return Err(err(
                cond.keyword(),
                format!(
                    "name_ignore_case goes with cookie conditions ({} names are {})",
                    cond.keyword(),
                    if matches!(cond, Condition::Header(_)) {
                        "always compared without case"
                    } else {
                        "compared exactly"
                    }
                ),
            ));
        }
        Condition::Header(f) => leaf(
            header_name(&f.name)
                .map(Source::Header)
                .map_err(|m| err("header", m))?,
            &f.test,
        )
        .map_err(|m| err("header", m))?,
        Condition::Cookie(f) => leaf(
            cookie_name(&f.name)
                .map(|n| {
                    if f.name_ignore_case {
                        Source::CookieAnyCase(n)
                    } else {
                        Source::Cookie(CookieName::new(&n))
                    }
                })
                .map_err(|m| err("cookie", m))?,
            &f.test,
        )
        .map_err(|m| err("cookie", m))?,
        Condition::Query(f) => leaf(
            query_name(&f.name)
                .map(Source::Query)
                .map_err(|m| err("query", m))?,
            &f.test,
        )
        .map_err(|m| err("query", m))?,
        Condition::Path(t) => leaf(Source::Path, t).map_err(|m| err("path", m))?,
        Condition::Method(t) => leaf(Source::Method, t).map_err(|m| err("method", m))?,
        Condition::Host(t) => leaf(Source::Host, t).map_err(|m| err("host", m))?,
        Condition::ClientIp(t) => leaf(Source::ClientIp, t).map_err(|m| err("client_ip", m))?,
    })
}

fn leaf(source: Source, test: &Test) -> Result<Cond, String> {
    // Hosts compare without case, whatever the rule says.
    let fold = test.ignore_case || source == Source::Host;
    let bytes = |s: &String| -> Box<[u8]> { s.as_bytes().into() };
    let typed = |cmp: Cmp, values: &[String]| -> Result<Cond, String> {
        let ty = test.value_type.ok_or_else(|| {
            format!(
                "`{}` needs `as: number`, `as: semver` or `as: version`",
                test.op.keyword()
            )
        })?;
        if test.ignore_case {
            return Err(format!(
                "ignore_case goes with string operations, not `{}` with `as`",
                test.op.keyword()
            ));
        }
        Ok(Cond::Leaf(Leaf {
            source: source.clone(),
            test: ValueTest::Typed(TypedTest::new(ty, cmp, values)?),
        }))
    };
    match (&test.op, test.value_type) {
        (Op::Equals(v), Some(_)) => return typed(Cmp::Eq, std::slice::from_ref(v)),
        (Op::In(list), Some(_)) if !list.is_empty() => return typed(Cmp::Eq, list),
        (Op::In(_) | Op::Gt(_) | Op::Gte(_) | Op::Lt(_) | Op::Lte(_), _)
        | (Op::Equals(_), None) => {}
        (op, Some(ty)) => {
            return Err(format!(
                "`as: {}` goes with equals, in, gt, gte, lt and lte, not `{}`",
                ty.keyword(),
                op.keyword()
            ));
        }
        _ => {}
    }
    // A host rule value with a trailing dot names the same host as the
    // request's host, whose one trailing dot is removed.
    let host_value = |s: &String| -> Box<[u8]> {
        match &source {
            Source::Host => s.strip_suffix('.').unwrap_or(s).as_bytes().into(),
            _ => s.as_bytes().into(),
        }
    };
    let op = match &test.op {
        Op::Present(want) => {
            if test.ignore_case {
                return Err("ignore_case goes with string operations, not present".into());
            }
            return Ok(Cond::Leaf(Leaf {
                source,
                test: ValueTest::Present(*want),
            }));
        }
        Op::Cidr(list) => {
            if test.ignore_case {
                return Err("ignore_case goes with string operations, not cidr".into());
            }
            return Ok(Cond::Leaf(Leaf {
                source,
                test: ValueTest::Cidr(Networks::new(list)?),
            }));
        }
        Op::Gt(v) => return typed(Cmp::Gt, std::slice::from_ref(v)),
        Op::Gte(v) => return typed(Cmp::Gte, std::slice::from_ref(v)),
        Op::Lt(v) => return typed(Cmp::Lt, std::slice::from_ref(v)),
        Op::Lte(v) => return typed(Cmp::Lte, std::slice::from_ref(v)),
        Op::Equals(s) => StrOp::Equals(host_value(s)),
        Op::In(list) if list.is_empty() => return Err("`in` needs at least one value".into()),
        Op::In(list) if list.len() <= IN_LIST_MAX => {
            StrOp::InList(list.iter().map(host_value).collect())
        }
        Op::In(list) => {
            let mut set = ExactIndex::new(fold);
            for v in list {
                set.entry(&host_value(v), || ());
            }
            StrOp::InSet(Box::new(set))
        }
        Op::Prefix(s) => StrOp::Prefix(bytes(s)),
        Op::Suffix(s) => StrOp::Suffix(bytes(s)),
        Op::Contains(s) if fold => {
            StrOp::ContainsFolded(s.to_ascii_lowercase().into_bytes().into())
        }
        Op::Contains(s) => StrOp::Contains(Box::new(Finder::new(s.as_bytes()).into_owned())),
        Op::Regex(r) => StrOp::Regex(regex(r, fold)?),
        Op::SegmentPrefix(s) => {
            StrOp::SegmentPrefix(s.strip_suffix('/').unwrap_or(s).as_bytes().into())
        }
    };
    Ok(Cond::Leaf(Leaf {
        source,
        test: ValueTest::Str(StrTest { op, fold }),
    }))
}

/// A regex that must match the whole value.
fn regex(pattern: &str, fold: bool) -> Result<Pattern, String> {
    // The messages of the regex crate, which users know: built only when
    // the pattern is refused.
    let message = |p: &str| {
        let err = match RegexBuilder::new(p)
            .case_insensitive(fold)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(_) => return None,
            Err(e) => e.to_string(),
        };
        let last = err.lines().last().unwrap_or("").trim();
        Some(format!(
            "regex {pattern:?} does not compile: {}",
            last.strip_prefix("error: ").unwrap_or(last)
        ))
    };
    // Parsed alone, so that the anchoring cannot be undone by an unbalanced
    // `)` in the pattern, then anchored as `^(?:pattern)$` would be.
    let config = regex_automata::util::syntax::Config::new().case_insensitive(fold);
    let hir = match regex_automata::util::syntax::parse_with(pattern, &config) {
        Ok(hir) => hir,
        Err(e) => {
            return Err(message(pattern)
                .unwrap_or_else(|| format!("regex {pattern:?} does not compile: {e}")));
        }
    };
    let anchored = format!("^(?:{pattern})$");
    let whole = Hir::concat(vec![Hir::look(Look::Start), hir, Hir::look(Look::End)]);
    if !CHECK_NFAS.get() {
        return Ok(Pattern::new(anchored.into(), fold, whole));
    }
    // Checking: both NFAs the engine builds, within its size limit, which
    // decides whether it builds. Compilers reused across the patterns of a
    // thread keep their UTF-8 state tables (a fresh one allocates and
    // clears about 300 KB per pattern, most of a small regex's build).
    let checked = NFA.with(|[forward, reverse]| {
        let check = |c: &thompson::Compiler| c.build_from_hir(&whole).map_err(|e| e.to_string());
        check(forward).and_then(|_| check(reverse)).map(drop)
    });
    match checked {
        Ok(()) => Ok(Pattern::new(anchored.into(), fold, whole)),
        Err(e) => Err(message(&anchored)
            .unwrap_or_else(|| format!("regex {pattern:?} does not compile: {e}"))),
    }
}

/// Compiles rule `i`'s condition again, building each regex pattern's NFAs
/// (the engine's size check): for a rule whose engine did not build, or
/// whose literal run's regex is past one regex's size limit.
///
/// # Errors
///
/// The first pattern past the limit, with its place.
#[cold]
fn check_nfas(set: &RuleSet, i: usize) -> Result<(), CompileError> {
    let Some(when) = &set.rules[i].when else {
        return Ok(());
    };
    CHECK_NFAS.set(true);
    let again = compile_cond(
        when,
        &format!("rules[{i}] ({}): when", set.rules[i].name),
        0,
    );
    CHECK_NFAS.set(false);
    again.map(drop)
}

thread_local! {
    /// Whether [`regex`] builds each pattern's NFAs (the engine's size
    /// check) rather than parsing it only: set while a rule is compiled
    /// again for its error.
    static CHECK_NFAS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };

    /// The forward and reverse NFA compilers of the regex engine, with its
    /// configuration (`meta::Config::to_thompson_config`): UTF-8 empty
    /// matches, the size limit, no shrinking; no captures in reverse.
    static NFA: [thompson::Compiler; 2] = {
        let config = thompson::Config::new()
            .utf8(true)
            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
            .shrink(false);
        let mut forward = thompson::Compiler::new();
        forward.configure(config.clone());
        let mut reverse = thompson::Compiler::new();
        reverse.configure(config.which_captures(thompson::WhichCaptures::None).reverse(true));
        [forward, reverse]
    };
}

/// What a rule tests when it is one exact-value leaf: the field, whether case
/// folds, and the values.
/// The field an exact leaf tests: (kind, normalised name, ignore_case).
type FieldKey = (u8, String, bool);

fn exact_leaf(rule: &Rule) -> Option<(FieldKey, Vec<&str>)> {
    let (kind, field): (u8, &Field) = match rule.when.as_ref()? {
        Condition::Header(f) => (0, f),
        Condition::Cookie(f) if f.name_ignore_case => (3, f),
        Condition::Cookie(f) => (1, f),
        Condition::Query(f) => (2, f),
        _ => return None,
    };
    // Typed values compare by value, not by bytes: no shared byte index.
    if field.test.value_type.is_some() {
        return None;
    }
    let values = match &field.test.op {
        Op::Equals(v) => vec![v.as_str()],
        Op::In(vs) => vs.iter().map(String::as_str).collect(),
        _ => return None,
    };
    let name = if kind == 0 || kind == 3 {
        field.name.to_ascii_lowercase()
    } else {
        field.name.clone()
    };
    Some(((kind, name, field.test.ignore_case), values))
}

fn program(set: &RuleSet, rules: &[CompiledRule], variants: &[&'static str]) -> Box<[Step]> {
    let keys: Vec<_> = set.rules.iter().map(exact_leaf).collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < rules.len() {
        let mut j = i + 1;
        if let Some((key, _)) = &keys[i] {
            while j < rules.len() && keys[j].as_ref().is_some_and(|(k, _)| k == key) {
                j += 1;
            }
        }
        if j - i < RUN_MIN {
            if let Some((run, end)) = LiteralRun::build(rules, i) {
                steps.push(Step::Literal(Box::new(run)));
                i = end;
                continue;
            }
            let rule = &rules[i];
            let index = i as u32;
            steps.push(if let Some(o) = Override::of(rule, variants) {
                Step::Override(o)
            } else if let Some(s) = StickyShare::of(rule, variants) {
                Step::Sticky(s)
            } else {
                Step::Rule(index)
            });
            i += 1;
            continue;
        }
        let ((_, _, fold), _) = keys[i].as_ref().expect("a run starts at an exact leaf");
        let mut index: ExactIndex<Vec<u32>> = ExactIndex::new(*fold);
        for (r, key) in keys.iter().enumerate().take(j).skip(i) {
            let (_, values) = key.as_ref().expect("runs hold exact leaves");
            for v in values {
                let list = index.entry(v.as_bytes(), Vec::new);
                if list.last() != Some(&(r as u32)) {
                    list.push(r as u32);
                }
            }
        }
        let source = match &rules[i].when {
            Some(Cond::Leaf(leaf)) => leaf.source.clone(),
            _ => unreachable!("exact leaves compile to leaves"),
        };
        steps.push(Step::Exact(ExactRun {
            source,
            index,
            rules: i as u32..j as u32,
        }));
        i = j;
    }
    steps.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_cases() {
        let cases: &[(&str, f64, Result<u32, ()>)] = &[
            ("zero", 0.0, Ok(0)),
            ("whole", 20.0, Ok(200_000)),
            ("hundred", 100.0, Ok(PPM)),
            ("four decimals", 0.0001, Ok(1)),
            ("four decimals large", 99.9999, Ok(999_999)),
            ("five decimals", 0.00001, Err(())),
            ("negative", -1.0, Err(())),
            ("over", 100.0001, Err(())),
            ("nan", f64::NAN, Err(())),
            ("inf", f64::INFINITY, Err(())),
            ("decimal", 12.3456, Ok(123_456)),
            // Regression: a relative tolerance let a fifth decimal through
            // above a few percent (20.00001 compiled as 20).
            ("fifth decimal at 20", 20.00001, Err(())),
            ("fifth decimal near 100", 99.99995, Err(())),
        ];
        for (name, p, want) in cases {
            assert_eq!(ppm(*p).map_err(|_| ()), *want, "case {name}");
        }
    }

    #[test]
    fn show_ppm_cases() {
        assert_eq!(show_ppm(1_200_000), "120");
        assert_eq!(show_ppm(125_000), "12.5");
        assert_eq!(show_ppm(1), "0.0001");
    }
}
