//! A run of rules that each test one field with one string leaf (prefix,
//! suffix, contains, equals, `in`, segment prefix, regex), decided with one
//! Aho-Corasick scan and one regex-set search per occurrence of the field.
//!
//! Per-tenant routing writes hundreds of such rules on one field
//! (`path: { prefix: /t/tenant-17/ }`, `host: { suffix: .tenant-42.example.com }`,
//! `regex: /api/v[0-9]+/tenant-9/.*`). Evaluated one by one they cost one
//! scan each; here the literal parts go into Aho-Corasick automata (an
//! anchored one for prefixes and whole values, which stops where no literal
//! can continue, and an unanchored one for suffixes and substrings; each
//! twice, case-sensitive and ASCII case-insensitive for `ignore_case` and
//! hosts), each hit checked for its anchoring (a suffix hit must end at the
//! value's end), and the regexes into one multi-pattern regex searched
//! anchored at both ends, whose leftmost-first answer is the lowest-numbered
//! regex that matches the whole value. Every occurrence of the field adds
//! the rules it satisfies to a bit set of candidates (a leaf holds when any
//! occurrence matches), and the candidates are then tried in rule order, so
//! the first rule whose condition holds *and* whose draw lands decides,
//! exactly as evaluating the rules one by one would. A draw that falls
//! outside goes on to the next candidate; when the rule it fell through was
//! a regex, the run's later regex rules are then tried one by one, each a
//! search of the same multi-pattern regex for that pattern alone (the first
//! search named only the first of them that matches). So a run's regex
//! rules never need engines of their own: theirs are not built unless
//! something evaluates the leaf alone (`explain`).
//!
//! Nothing allocates at decision time: the candidate bit set lives on the
//! stack (a run holds at most [`MAX_RUN`] rules), and the regex engine
//! keeps its per-thread scratch space as the regex crate's does.

use aho_corasick::{AhoCorasick, AhoCorasickKind, StartKind};
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, pikevm, pikevm::PikeVM};
use regex_automata::util::pool::Pool;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input, MatchKind, PatternID};
use regex_syntax::hir::Hir;

use crate::compile::REGEX_SIZE_LIMIT;
use crate::cond::{Cond, Leaf, Pattern, Source, StrOp, StrTest, ValueTest};
use crate::matcher::CompiledRule;
use crate::request::RequestHead;

/// The most rules one run holds: its candidate bit set is `MAX_RUN / 64`
/// words on the stack. Longer stretches are split into several runs.
pub(crate) const MAX_RUN: usize = 4096;
/// Runs shorter than this are left to the rule-by-rule program: below it,
/// scanning once does not pay for itself.
pub(crate) const MIN_RUN: usize = 8;
const WORDS: usize = MAX_RUN / 64;

/// Where a literal must sit in the value for its rule to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    /// `prefix`: starts at 0.
    Prefix,
    /// `suffix`: ends at the end.
    Suffix,
    /// `contains`: anywhere.
    Contains,
    /// `equals`, `in`: the whole value.
    Whole,
    /// A segment prefix: starts at 0 and ends at the end or before a `/`.
    Segment,
}

impl Anchor {
    #[inline]
    fn holds(self, v: &[u8], start: usize, end: usize) -> bool {
        match self {
            Anchor::Prefix => start == 0,
            Anchor::Suffix => end == v.len(),
            Anchor::Contains => true,
            Anchor::Whole => start == 0 && end == v.len(),
            Anchor::Segment => start == 0 && (end == v.len() || v[end] == b'/'),
        }
    }

    /// Whether an empty literal with this anchoring holds in `v`.
    #[inline]
    fn holds_empty(self, v: &[u8]) -> bool {
        self.holds(v, 0, 0) || self.holds(v, v.len(), v.len())
    }
}

/// An automaton whose states are a table lookup per byte is used while it
/// stays this small; past it, the compact automaton (slower per byte).
const DFA_MAX_BYTES: usize = 1 << 20;

/// One automaton with the rules each of its patterns stands for.
#[derive(Debug)]
struct Literals {
    automaton: AhoCorasick,
    /// Only hits that start at 0 count (prefixes, whole values, segments).
    anchored: bool,
    /// Pattern `p`'s entries are `entries[starts[p]..starts[p + 1]]`.
    starts: Box<[u32]>,
    /// (rule offset in the run, anchoring).
    entries: Box<[(u16, Anchor)]>,
}

impl Literals {
    fn build(fold: bool, anchored: bool, literals: &[(Vec<u8>, u16, Anchor)]) -> Option<Self> {
        // One pattern per distinct literal (case-folded where the automaton
        // folds), with every rule that uses it.
        let mut ids: ahash::AHashMap<Vec<u8>, usize> = ahash::AHashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut per_pattern: Vec<Vec<(u16, Anchor)>> = Vec::new();
        for (lit, rule, anchor) in literals {
            let key = if fold {
                lit.to_ascii_lowercase()
            } else {
                lit.clone()
            };
            let id = *ids.entry(key.clone()).or_insert_with(|| {
                patterns.push(key);
                per_pattern.push(Vec::new());
                patterns.len() - 1
            });
            per_pattern[id].push((*rule, *anchor));
        }
        let build = |kind| {
            AhoCorasick::builder()
                .ascii_case_insensitive(fold)
                // Header values and paths are short: a prefilter's calls
                // cost more than the table lookups they would skip.
                .prefilter(false)
                .start_kind(if anchored {
                    StartKind::Anchored
                } else {
                    StartKind::Unanchored
                })
                .kind(kind)
                .build(&patterns)
                .ok()
        };
        let automaton = match build(Some(AhoCorasickKind::DFA)) {
            Some(dfa) if dfa.memory_usage() <= DFA_MAX_BYTES => dfa,
            _ => build(Some(AhoCorasickKind::ContiguousNFA)).or_else(|| build(None))?,
        };
        let mut starts = Vec::with_capacity(per_pattern.len() + 1);
        let mut entries = Vec::with_capacity(literals.len());
        for list in per_pattern {
            starts.push(entries.len() as u32);
            entries.extend(list);
        }
        starts.push(entries.len() as u32);
        Some(Literals {
            automaton,
            anchored,
            starts: starts.into_boxed_slice(),
            entries: entries.into_boxed_slice(),
        })
    }

    #[inline]
    fn scan<const W: usize>(&self, v: &[u8], bits: &mut [u64; W]) {
        let input = aho_corasick::Input::new(v).anchored(if self.anchored {
            aho_corasick::Anchored::Yes
        } else {
            aho_corasick::Anchored::No
        });
        // Most values hold no substring of the run's: a plain search (a
        // tighter loop than the overlapping one) says so first.
        if !self.anchored && !self.automaton.is_match(input.clone()) {
            return;
        }
        // Stepwise: the iterator refuses anchored searches.
        let mut state = aho_corasick::automaton::OverlappingState::start();
        loop {
            self.automaton.find_overlapping(input.clone(), &mut state);
            let Some(m) = state.get_match() else {
                break;
            };
            let p = m.pattern().as_usize();
            let (from, to) = (self.starts[p] as usize, self.starts[p + 1] as usize);
            for &(rule, anchor) in &self.entries[from..to] {
                if anchor.holds(v, m.start(), m.end()) {
                    set(bits, rule);
                }
            }
        }
    }
}

/// The regex leaves of a run, as one multi-pattern regex: a lazy DFA over
/// the patterns' forward NFA, and a PikeVM over the same NFA for the
/// searches the lazy DFA gives up on (its cache cleared too often) or quits
/// (a Unicode word boundary before a non-ASCII byte), as the regex crate's
/// meta engine does. Every search a run makes is anchored and only wants
/// the matching pattern, which the forward engines answer: the reverse
/// NFA, the reverse DFA and the prefilter the meta engine would also build
/// (most of its build time) are never needed.
struct Regexes {
    dfa: Option<hybrid::dfa::DFA>,
    /// Whether a pattern has a Unicode word boundary, on which the lazy
    /// DFA quits at a non-ASCII byte: such values go to the PikeVM
    /// directly (a quit is an error, and building it allocates).
    quits_on_non_ascii: bool,
    vm: PikeVM,
    caches: Pool<Caches, Box<dyn Fn() -> Caches + Send + Sync + UnwindSafe + RefUnwindSafe>>,
    /// Pattern id → rule offset in the run.
    rules: Box<[u16]>,
}

/// The engines' scratch space for one thread's searches.
struct Caches {
    dfa: Option<hybrid::dfa::Cache>,
    vm: pikevm::Cache,
    /// Room for a match's bounds, which the PikeVM wants (or allocates)
    /// when a pattern can match the empty string.
    slots: Vec<Option<NonMaxUsize>>,
}

impl fmt::Debug for Regexes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Regexes")
            .field("patterns", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl Regexes {
    fn build(regexes: &[(&Pattern, u16)]) -> Option<Self> {
        if regexes.is_empty() {
            return None;
        }
        // The patterns as parsed when the rule set compiled: taken, since
        // the run's members build no engines of their own.
        let hirs = regexes
            .iter()
            .map(|(p, _)| p.take_hir())
            .collect::<Option<Vec<Box<Hir>>>>()?;
        let patterns: Vec<&Hir> = hirs.iter().map(|h| &**h).collect();
        // The regex crate's NFA settings, with the per-regex limit scaled
        // by the number of regexes; no capture groups (only the pattern
        // that matches is asked for).
        let limit = REGEX_SIZE_LIMIT.saturating_mul(regexes.len());
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .utf8(true)
                    .nfa_size_limit(Some(limit))
                    .shrink(false)
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build_many_from_hir(&patterns)
            .ok()?;
        let vm = PikeVM::builder()
            .configure(PikeVM::config().match_kind(MatchKind::LeftmostFirst))
            .build_from_nfa(nfa.clone())
            .ok()?;
        // As the meta engine configures its lazy DFA, prefilter aside.
        let dfa = hybrid::dfa::Builder::new()
            .configure(
                hybrid::dfa::Config::new()
                    .match_kind(MatchKind::LeftmostFirst)
                    .starts_for_each_pattern(true)
                    .unicode_word_boundary(true)
                    .cache_capacity(REGEX_SIZE_LIMIT * 2)
                    .skip_cache_capacity_check(false)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa)
            .ok();
        let quits_on_non_ascii = vm.get_nfa().look_set_any().contains_word_unicode();
        let (d, v) = (dfa.clone(), vm.clone());
        let create: Box<dyn Fn() -> Caches + Send + Sync + UnwindSafe + RefUnwindSafe> =
            Box::new(move || Caches {
                dfa: d.as_ref().map(hybrid::dfa::DFA::create_cache),
                vm: v.create_cache(),
                slots: vec![None; v.get_nfa().group_info().implicit_slot_len()],
            });
        Some(Regexes {
            dfa,
            quits_on_non_ascii,
            vm,
            caches: Pool::new(create),
            rules: regexes.iter().map(|&(_, r)| r).collect(),
        })
    }

    /// The pattern that matches `input` first (leftmost-first: the
    /// lowest-numbered, since every pattern spans the whole value).
    #[inline]
    fn search(&self, input: &Input<'_>) -> Option<PatternID> {
        let mut caches = self.caches.get();
        let caches = &mut *caches;
        if let (Some(dfa), Some(cache)) = (&self.dfa, caches.dfa.as_mut())
            && (!self.quits_on_non_ascii || input.haystack().is_ascii())
            && let Ok(hit) = dfa.try_search_fwd(cache, input)
        {
            return hit.map(|h| h.pattern());
        }
        self.vm
            .search_slots(&mut caches.vm, input, &mut caches.slots)
    }

    /// Whether each pattern alone is within one regex's size limit: the
    /// run's forward NFA holds every pattern's (without capture groups,
    /// which add a few states), and within a quarter of the limit it leaves
    /// room for a pattern's reverse NFA, which the regex engine also builds
    /// and which came to 1.3 to 2.2 times the forward one on the patterns
    /// measured (Unicode classes reverse into larger automata).
    fn fit(&self) -> bool {
        self.vm.get_nfa().memory_usage() <= REGEX_SIZE_LIMIT / 4
    }

    /// The lowest-numbered regex that matches all of `v`. Every pattern is
    /// `^(?:..)$`, so every match spans the whole value and leftmost-first
    /// picks the first pattern in the list that has one.
    #[inline]
    fn first<const W: usize>(&self, v: &[u8], bits: &mut [u64; W]) {
        let input = Input::new(v).anchored(Anchored::Yes);
        if let Some(hit) = self.search(&input)
            // A value that is not UTF-8 never matches a regex (the patterns
            // only match UTF-8 already; checked where it is cheap, on a hit).
            && (v.is_ascii() || std::str::from_utf8(v).is_ok())
        {
            set(bits, self.rules[hit.as_usize()]);
        }
    }

    /// Whether the regex of the rule at `offset` matches all of `v`: the
    /// regexes searched for that one pattern.
    #[inline]
    fn holds(&self, offset: u16, v: &[u8]) -> bool {
        let Ok(pattern) = self.rules.binary_search(&offset) else {
            return false;
        };
        let input = Input::new(v).anchored(Anchored::Pattern(PatternID::new_unchecked(pattern)));
        self.search(&input).is_some() && (v.is_ascii() || std::str::from_utf8(v).is_ok())
    }
}

#[inline]
fn set<const W: usize>(bits: &mut [u64; W], rule: u16) {
    bits[usize::from(rule) / 64] |= 1 << (rule % 64);
}

/// A run of rules `first..first + len`, each one string leaf on `source`.
#[derive(Debug)]
pub(crate) struct LiteralRun {
    source: Source,
    first: u32,
    len: u32,
    literals: Box<[Literals]>,
    regexes: Option<Regexes>,
    /// The offsets of the regex rules, as a bit set.
    regex_rules: Box<[u64]>,
    /// Rules whose literal is empty: they hold by anchoring alone.
    empty: Box<[(u16, Anchor)]>,
}

/// The string leaf a rule is, when it can join a run: its source and test.
fn string_leaf(rule: &CompiledRule) -> Option<(&Source, &StrTest)> {
    match &rule.when {
        Some(Cond::Leaf(Leaf {
            source,
            test: ValueTest::Str(t),
        })) if !matches!(t.op, StrOp::InSet(_)) => Some((source, t)),
        _ => None,
    }
}

impl LiteralRun {
    /// The run that starts at `rules[start]`, with the index after it, when
    /// at least [`MIN_RUN`] rules from there are string leaves on one field.
    pub(crate) fn build(rules: &[CompiledRule], start: usize) -> Option<(Self, usize)> {
        let (source, _) = string_leaf(&rules[start])?;
        let end = rules[start..]
            .iter()
            .take(MAX_RUN)
            .position(|r| string_leaf(r).is_none_or(|(s, _)| s != source))
            .map_or((start + MAX_RUN).min(rules.len()), |n| start + n);
        if end - start < MIN_RUN {
            return None;
        }
        // Literals by (anchored, folded).
        let mut groups: [Vec<(Vec<u8>, u16, Anchor)>; 4] = Default::default();
        let mut regexes = Vec::new();
        let mut empty = Vec::new();
        let mut regex_rules = vec![0u64; (end - start).div_ceil(64)];
        for (offset, rule) in rules[start..end].iter().enumerate() {
            let offset = offset as u16;
            let (_, test) = string_leaf(rule)?;
            let mut literal = |lit: &[u8], anchor: Anchor| {
                if lit.is_empty() {
                    empty.push((offset, anchor));
                } else {
                    let anchored =
                        matches!(anchor, Anchor::Prefix | Anchor::Whole | Anchor::Segment);
                    groups[usize::from(anchored) * 2 + usize::from(test.fold)].push((
                        lit.to_vec(),
                        offset,
                        anchor,
                    ));
                }
            };
            match &test.op {
                StrOp::Equals(s) => literal(s, Anchor::Whole),
                StrOp::InList(list) => list.iter().for_each(|s| literal(s, Anchor::Whole)),
                StrOp::Prefix(p) => literal(p, Anchor::Prefix),
                StrOp::Suffix(s) => literal(s, Anchor::Suffix),
                StrOp::Contains(finder) => literal(finder.needle(), Anchor::Contains),
                StrOp::ContainsFolded(needle) => literal(needle, Anchor::Contains),
                StrOp::SegmentPrefix(p) => literal(p, Anchor::Segment),
                StrOp::Regex(re) => {
                    // Parsed with its case folding and anchored already.
                    regexes.push((re, offset));
                    set_bit(&mut regex_rules, offset);
                }
                StrOp::InSet(_) => return None,
            }
        }
        let mut literals = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            if !group.is_empty() {
                // An automaton that would not build: leave the rules to the
                // rule-by-rule program.
                literals.push(Literals::build(i % 2 == 1, i >= 2, group)?);
            }
        }
        let run = LiteralRun {
            source: source.clone(),
            first: start as u32,
            len: (end - start) as u32,
            literals: literals.into_boxed_slice(),
            regexes: if regexes.is_empty() {
                None
            } else {
                Some(Regexes::build(&regexes)?)
            },
            regex_rules: regex_rules.into_boxed_slice(),
            empty: empty.into_boxed_slice(),
        };
        Some((run, end))
    }

    /// Whether each of the run's regexes alone is within one regex's size
    /// limit, as the run's engines show ([`Regexes::fit`]).
    pub(crate) fn regexes_fit(&self) -> bool {
        self.regexes.as_ref().is_none_or(Regexes::fit)
    }

    /// The rules of the run, as indices into the matcher's rules.
    pub(crate) fn rules(&self) -> std::ops::Range<usize> {
        self.first as usize..(self.first + self.len) as usize
    }

    /// The first rule of the run, in order, whose leaf holds for `request`
    /// and for which `land` decides.
    #[inline]
    pub(crate) fn decide<R: RequestHead + ?Sized, T>(
        &self,
        request: &R,
        land: impl FnMut(u32) -> Option<T>,
    ) -> Option<T> {
        // The candidate set sized to the run: zeroing it is part of the cost.
        match self.len {
            0..=64 => self.decide_in::<1, R, T>(request, land),
            65..=256 => self.decide_in::<4, R, T>(request, land),
            257..=1024 => self.decide_in::<16, R, T>(request, land),
            _ => self.decide_in::<WORDS, R, T>(request, land),
        }
    }

    #[inline]
    fn decide_in<const W: usize, R: RequestHead + ?Sized, T>(
        &self,
        request: &R,
        mut land: impl FnMut(u32) -> Option<T>,
    ) -> Option<T> {
        let mut bits = [0u64; W];
        let mut any = false;
        self.source.any(request, |v| {
            any = true;
            for &(rule, anchor) in &self.empty {
                if anchor.holds_empty(v) {
                    set(&mut bits, rule);
                }
            }
            for l in &self.literals {
                l.scan(v, &mut bits);
            }
            if let Some(r) = &self.regexes {
                r.first(v, &mut bits);
            }
            false
        });
        if !any {
            return None;
        }
        let words = (self.len as usize).div_ceil(64);
        let mut all_regexes = false;
        let mut w = 0;
        while w < words {
            let word = bits[w];
            if word == 0 {
                w += 1;
                continue;
            }
            let bit = word.trailing_zeros();
            bits[w] &= word - 1;
            let offset = (w as u32) * 64 + bit;
            if let Some(t) = land(self.first + offset) {
                return Some(t);
            }
            // The draw fell outside. The search named only the first regex
            // that matches each occurrence: the later ones are candidates
            // too, found one by one (once), each searched for alone.
            if !all_regexes
                && self.regex_rules[w] & (1 << bit) != 0
                && let Some(regexes) = &self.regexes
            {
                all_regexes = true;
                for later in offset + 1..self.len {
                    if self.regex_rules[later as usize / 64] & (1 << (later % 64)) != 0
                        && self.source.any(request, |v| regexes.holds(later as u16, v))
                    {
                        set(&mut bits, later as u16);
                    }
                }
            }
        }
        None
    }
}

fn set_bit(bits: &mut [u64], rule: u16) {
    bits[usize::from(rule) / 64] |= 1 << (rule % 64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Step;
    use crate::rules::{Condition, Field, Op, Rule, RuleSet};

    fn path_rules(ops: Vec<Op>) -> RuleSet {
        let mut set = RuleSet::new("stable");
        set.rules = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| {
                let mut r = Rule::to(format!("r{i}"), "gray");
                r.when = Some(Condition::Path(crate::rules::Test::new(op)));
                r
            })
            .collect();
        set
    }

    fn steps(set: &RuleSet) -> Vec<&'static str> {
        let m = set.compile().expect("compiles");
        m.program.iter().map(Step::kind).collect()
    }

    #[test]
    fn mixed_string_leaves_on_one_field_form_one_run() {
        let ops = |n: usize| -> Vec<Op> {
            (0..n)
                .map(|i| match i % 4 {
                    0 => Op::Prefix(format!("/t/{i}/")),
                    1 => Op::Suffix(format!(".{i}")),
                    2 => Op::Contains(format!("-{i}-")),
                    _ => Op::Regex(format!("/api/v[0-9]+/{i}/.*")),
                })
                .collect()
        };
        assert_eq!(steps(&path_rules(ops(MIN_RUN))), ["literal"]);
        assert_eq!(steps(&path_rules(ops(MIN_RUN - 1))), ["rule"; MIN_RUN - 1]);
        // A leaf on another field ends the run.
        let mut set = path_rules(ops(2 * MIN_RUN));
        set.rules[MIN_RUN].when =
            Some(Condition::Header(Field::new("x-a", Op::Prefix("a".into()))));
        let got = steps(&set);
        assert_eq!(got[0], "literal");
        assert_eq!(got.len(), 1 + MIN_RUN);
        // Runs longer than MAX_RUN are split.
        let got = steps(&path_rules(ops(MAX_RUN + MIN_RUN)));
        assert_eq!(got, ["literal", "literal"]);
    }

    /// Whether each rule's regex leaves have their own engine built; and
    /// no parsed pattern is left once the rule set is compiled.
    fn built(m: &crate::Matcher) -> Vec<bool> {
        m.rules
            .iter()
            .map(|r| {
                let mut built = true;
                if let Some(c) = &r.when {
                    let _ = c.patterns(&mut |p| {
                        assert!(!p.holds_hir(), "a parsed pattern left: {}", p.anchored);
                        built &= p.is_built();
                        Ok::<(), ()>(())
                    });
                }
                built
            })
            .collect()
    }

    #[test]
    fn a_runs_regex_rules_build_no_engines_of_their_own() {
        let regexes =
            |n: usize| -> Vec<Op> { (0..n).map(|i| Op::Regex(format!("/t/{i}/.*"))).collect() };
        let run = path_rules(regexes(10)).compile().unwrap();
        assert_eq!(built(&run), [false; 10]);
        // Deciding through the run builds none either.
        let req = http::Request::get("/t/7/x").body(()).unwrap();
        assert_eq!(run.decide(&req).rule(), Some("r7"));
        assert_eq!(built(&run), [false; 10]);
        // Explaining evaluates leaves alone: their engines are built then.
        let trace = run.explain(&req);
        assert_eq!(trace.decision().rule(), Some("r7"));
        assert!(built(&run)[..8].iter().all(|b| *b));
        // Too few rules for a run: the rule-by-rule program's leaves are
        // built when the rule set compiles.
        let short = path_rules(regexes(MIN_RUN - 1)).compile().unwrap();
        assert_eq!(built(&short), [true; MIN_RUN - 1]);
    }

    #[test]
    fn a_run_of_many_large_regexes_is_past_one_regexs_limit() {
        let regexes = |n: usize| -> Vec<Op> {
            (0..n)
                .map(|i| Op::Regex(format!("/t/{i}/\\w+/.*")))
                .collect()
        };
        let fit = |n| {
            let m = path_rules(regexes(n)).compile().unwrap();
            match &m.program[..] {
                [Step::Literal(run)] => run.regexes_fit(),
                _ => panic!("one run"),
            }
        };
        assert!(fit(MIN_RUN));
        // Each pattern checked alone then (and all fit).
        assert!(!fit(300));
    }

    /// A run that vouches for its patterns, with one near a quarter of
    /// the limit (Unicode classes, whose reverse NFA is the larger): that
    /// pattern's own engine, both NFAs within the limit, builds.
    #[test]
    fn a_pattern_a_fitting_run_vouches_for_builds_alone() {
        let mut ops: Vec<Op> = (0..MIN_RUN)
            .map(|i| Op::Regex(format!("/t/{i}/.*")))
            .collect();
        ops.push(Op::Regex("\\w{12}".into()));
        let m = path_rules(ops).compile().unwrap();
        let [Step::Literal(run)] = &m.program[..] else {
            panic!("one run");
        };
        assert!(run.regexes_fit());
        let forward = run.regexes.as_ref().unwrap().vm.get_nfa().memory_usage();
        assert!(forward > REGEX_SIZE_LIMIT / 8, "near the bound: {forward}");
        let big = &m.rules[MIN_RUN];
        let Some(Cond::Leaf(Leaf {
            test:
                ValueTest::Str(StrTest {
                    op: StrOp::Regex(pattern),
                    ..
                }),
            ..
        })) = &big.when
        else {
            panic!("a regex leaf");
        };
        assert_eq!(pattern.build(), Ok(()));
    }

    #[test]
    fn anchors() {
        let cases: &[(&str, Anchor, &[u8], usize, usize, bool)] = &[
            ("prefix at 0", Anchor::Prefix, b"abc", 0, 1, true),
            ("prefix later", Anchor::Prefix, b"abc", 1, 2, false),
            ("suffix at end", Anchor::Suffix, b"abc", 1, 3, true),
            ("suffix before end", Anchor::Suffix, b"abc", 0, 2, false),
            ("whole", Anchor::Whole, b"abc", 0, 3, true),
            ("whole, part", Anchor::Whole, b"abc", 0, 2, false),
            ("segment, whole", Anchor::Segment, b"/a", 0, 2, true),
            ("segment, then slash", Anchor::Segment, b"/a/b", 0, 2, true),
            ("segment, then letter", Anchor::Segment, b"/ab", 0, 2, false),
        ];
        for (name, anchor, v, s, e, want) in cases {
            assert_eq!(anchor.holds(v, *s, *e), *want, "case {name}");
        }
        let empty: &[(&str, Anchor, &[u8], bool)] = &[
            ("empty prefix", Anchor::Prefix, b"x", true),
            ("empty suffix", Anchor::Suffix, b"x", true),
            ("empty contains", Anchor::Contains, b"x", true),
            ("empty whole on x", Anchor::Whole, b"x", false),
            ("empty whole on empty", Anchor::Whole, b"", true),
            ("empty segment on /x", Anchor::Segment, b"/x", true),
            ("empty segment on x", Anchor::Segment, b"x", false),
            ("empty segment on empty", Anchor::Segment, b"", true),
        ];
        for (name, anchor, v, want) in empty {
            assert_eq!(anchor.holds_empty(v), *want, "case {name}");
        }
    }
}
