//! Compiled conditions: leaves with prebuilt header names, needles, sets and
//! regexes, evaluated over a borrowed request.

use std::sync::{Mutex, OnceLock};

use http::{HeaderMap, HeaderName};
use memchr::memmem::Finder;
use regex_syntax::hir::Hir;

use crate::compile::REGEX_SIZE_LIMIT;
use crate::exact::{ExactIndex, eq};
use crate::net::{self, Networks};
use crate::request::RequestHead;
use crate::scan;
use crate::typed::TypedTest;

/// A compiled `when`.
#[derive(Debug)]
pub(crate) enum Cond {
    All(Box<[Cond]>),
    Any(Box<[Cond]>),
    Not(Box<Cond>),
    Leaf(Leaf),
}

impl Cond {
    #[inline]
    pub(crate) fn eval<R: RequestHead + ?Sized>(&self, req: &R) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.eval_child(req)),
            Cond::Any(cs) => cs.iter().any(|c| c.eval_child(req)),
            Cond::Not(c) => !c.eval_child(req),
            Cond::Leaf(leaf) => leaf.eval(req),
        }
    }

    /// A child of `all`, `any` or `not`: a leaf is evaluated in place, so a
    /// flat list of leaves costs no recursive call per leaf.
    #[inline(always)]
    fn eval_child<R: RequestHead + ?Sized>(&self, req: &R) -> bool {
        match self {
            Cond::Leaf(leaf) => leaf.eval(req),
            nested => nested.eval_nested(req),
        }
    }

    #[inline(never)]
    fn eval_nested<R: RequestHead + ?Sized>(&self, req: &R) -> bool {
        self.eval(req)
    }

    /// Calls `f` with every regex leaf of the condition, in order.
    pub(crate) fn patterns<E>(
        &self,
        f: &mut impl FnMut(&Pattern) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Cond::All(cs) | Cond::Any(cs) => cs.iter().try_for_each(|c| c.patterns(f)),
            Cond::Not(c) => c.patterns(f),
            Cond::Leaf(Leaf {
                test:
                    ValueTest::Str(StrTest {
                        op: StrOp::Regex(p),
                        ..
                    }),
                ..
            }) => f(p),
            Cond::Leaf(_) => Ok(()),
        }
    }
}

/// A leaf: where to look and what to test.
#[derive(Debug)]
pub(crate) struct Leaf {
    pub(crate) source: Source,
    pub(crate) test: ValueTest,
}

impl Leaf {
    #[inline(always)]
    pub(crate) fn eval<R: RequestHead + ?Sized>(&self, req: &R) -> bool {
        match &self.test {
            ValueTest::Present(want) => self.source.has_any(req) == *want,
            // `equals` without case folding on a header or a cookie, the
            // commonest leaves: the bytes compared directly.
            ValueTest::Str(StrTest {
                op: StrOp::Equals(want),
                fold: false,
            }) => match &self.source {
                Source::Header(name) => header_equals(req.headers(), name, want),
                Source::Cookie(name) => name.any_equals(req.headers(), want),
                source => source.any(req, |v| v == &**want),
            },
            ValueTest::Str(t) => self.source.any(req, |v| t.matches(v)),
            ValueTest::Typed(t) => self.source.any(req, |v| t.matches(v)),
            ValueTest::Cidr(nets) => match self.source {
                Source::ClientIp => req.client_ip().is_some_and(|ip| nets.contains(ip)),
                _ => self.source.any(req, |v| {
                    net::parse_ip(v).is_some_and(|ip| nets.contains(ip))
                }),
            },
        }
    }
}

/// Whether a line of header `name` equals `want`: the first line by `get`
/// (no value iterator when the header is absent or its first line decides),
/// the others only when there is a first line and it differs.
#[inline(always)]
pub(crate) fn header_equals(headers: &HeaderMap, name: &HeaderName, want: &[u8]) -> bool {
    match headers.get(name) {
        None => false,
        Some(v) if v.as_bytes() == want => true,
        Some(_) => headers
            .get_all(name)
            .iter()
            .skip(1)
            .any(|v| v.as_bytes() == want),
    }
}

/// Where a leaf (or a sticky key) looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Header(HeaderName),
    Cookie(scan::CookieName),
    /// A cookie whose name compares without ASCII case.
    CookieAnyCase(Box<str>),
    Query(Box<str>),
    Path,
    Method,
    /// The host, port and one trailing dot removed; compared without case.
    Host,
    /// The [`ClientIp`](crate::ClientIp) extension, as text for string ops.
    ClientIp,
}

impl Source {
    /// Whether any occurrence (decoded, for query parameters) satisfies `f`.
    #[inline]
    pub(crate) fn any<R: RequestHead + ?Sized>(
        &self,
        req: &R,
        mut f: impl FnMut(&[u8]) -> bool,
    ) -> bool {
        match self {
            Source::Header(name) => req.headers().get_all(name).iter().any(|v| f(v.as_bytes())),
            Source::Cookie(name) => name.values(req.headers()).any(f),
            Source::CookieAnyCase(name) => scan::cookies_any_case(req.headers(), name).any(f),
            Source::Query(name) => scan::query_params(req.uri().query(), name)
                .any(|raw| scan::with_decoded(raw, true, &mut f)),
            Source::Path => f(req.uri().path().as_bytes()),
            Source::Method => f(req.method().as_str().as_bytes()),
            Source::Host => scan::host(req.uri(), req.headers()).is_some_and(f),
            Source::ClientIp => req.client_ip().is_some_and(|ip| net::with_text(ip, f)),
        }
    }

    /// Whether there is at least one occurrence.
    #[inline]
    pub(crate) fn has_any<R: RequestHead + ?Sized>(&self, req: &R) -> bool {
        self.any(req, |_| true)
    }

    /// Calls `f` with the first occurrence (decoded), if there is one.
    #[inline]
    pub(crate) fn first<R: RequestHead + ?Sized, T>(
        &self,
        req: &R,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Option<T> {
        match self {
            Source::Header(name) => req.headers().get(name).map(|v| f(v.as_bytes())),
            Source::Cookie(name) => name.values(req.headers()).next().map(f),
            Source::CookieAnyCase(name) => {
                scan::cookies_any_case(req.headers(), name).next().map(f)
            }
            Source::Query(name) => scan::query_params(req.uri().query(), name)
                .next()
                .map(|raw| scan::with_decoded(raw, true, f)),
            Source::Path => Some(f(req.uri().path().as_bytes())),
            Source::Method => Some(f(req.method().as_str().as_bytes())),
            Source::Host => scan::host(req.uri(), req.headers()).map(f),
            Source::ClientIp => req.client_ip().map(|ip| net::with_text(ip, f)),
        }
    }

    /// `f` of the only occurrence, or whether there are none or several:
    /// for a header or a cookie, from one scan.
    #[inline]
    pub(crate) fn only<R: RequestHead + ?Sized, T>(
        &self,
        req: &R,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Occurrences<T> {
        let first = match self {
            Source::Header(name) => {
                let mut lines = req.headers().get_all(name).iter();
                match (lines.next(), lines.next()) {
                    (None, _) => Occurrences::None,
                    (Some(v), None) => Occurrences::One(v.as_bytes()),
                    _ => Occurrences::Several,
                }
            }
            Source::Cookie(name) => {
                let mut values = name.values(req.headers());
                match (values.next(), values.next()) {
                    (None, _) => Occurrences::None,
                    (Some(v), None) => Occurrences::One(v),
                    _ => Occurrences::Several,
                }
            }
            _ => {
                return match self.count_to_two(req) {
                    0 => Occurrences::None,
                    1 => self
                        .first(req, f)
                        .map_or(Occurrences::None, Occurrences::One),
                    _ => Occurrences::Several,
                };
            }
        };
        match first {
            Occurrences::One(v) => Occurrences::One(f(v)),
            Occurrences::None => Occurrences::None,
            Occurrences::Several => Occurrences::Several,
        }
    }

    /// How many occurrences there are, counting no further than two.
    #[inline]
    pub(crate) fn count_to_two<R: RequestHead + ?Sized>(&self, req: &R) -> usize {
        let mut n = 0;
        self.any(req, |_| {
            n += 1;
            n == 2
        });
        n
    }
}

/// How often a field occurs in a request, with the only value's result.
pub(crate) enum Occurrences<T> {
    None,
    One(T),
    Several,
}

/// What a leaf tests.
#[derive(Debug)]
pub(crate) enum ValueTest {
    Present(bool),
    Str(StrTest),
    /// `as: number | semver | version`.
    Typed(TypedTest),
    Cidr(Networks),
}

/// A string operation, with ASCII case folding when `fold`.
#[derive(Debug)]
pub(crate) struct StrTest {
    pub(crate) op: StrOp,
    pub(crate) fold: bool,
}

#[derive(Debug)]
pub(crate) enum StrOp {
    Equals(Box<[u8]>),
    /// Few values: compared one by one.
    InList(Box<[Box<[u8]>]>),
    /// Many values: hashed at compile time.
    InSet(Box<ExactIndex<()>>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    Contains(Box<Finder<'static>>),
    /// A needle to find with ASCII case folding (stored lowercased).
    ContainsFolded(Box<[u8]>),
    Regex(Pattern),
    /// The prefix without its trailing `/`: the value equals it or
    /// continues with `/`.
    SegmentPrefix(Box<[u8]>),
}

/// A regex leaf: its anchored pattern (`^(?:...)$`, which literal runs
/// compile again into one multi-pattern search) and its engine.
///
/// The pattern was parsed when the rule set compiled, and the engine built
/// then for every leaf the rule-by-rule program evaluates. A regex rule of
/// a literal run decides through the run's regex (whose NFA was well
/// within one regex's size limit, or each pattern's NFAs were checked
/// alone), so its
/// own engine is built only if something evaluates the leaf alone
/// (`explain`): that keeps a large rule set's compile time and memory
/// down.
#[derive(Debug)]
pub(crate) struct Pattern {
    regex: OnceLock<Option<regex_automata::meta::Regex>>,
    pub(crate) anchored: Box<str>,
    fold: bool,
    /// The parsed, anchored pattern, while the rule set compiles: the one
    /// engine built then (the leaf's, or its literal run's) takes it rather
    /// than parsing the pattern again. Every pattern's engine is built by
    /// the end of the compile, so none is left.
    hir: Mutex<Option<Box<Hir>>>,
}

impl Clone for Pattern {
    fn clone(&self) -> Self {
        Pattern {
            regex: self.regex.clone(),
            anchored: self.anchored.clone(),
            fold: self.fold,
            hir: Mutex::new(None),
        }
    }
}

impl Pattern {
    /// A parsed pattern whose engine is not built yet.
    pub(crate) fn new(anchored: Box<str>, fold: bool, hir: Hir) -> Self {
        Pattern {
            regex: OnceLock::new(),
            anchored,
            fold,
            hir: Mutex::new(Some(Box::new(hir))),
        }
    }

    /// Takes the parsed, anchored pattern: each is built into one engine
    /// (the leaf's, or its literal run's). Later builds parse the text.
    pub(crate) fn take_hir(&self) -> Option<Box<Hir>> {
        self.hir.lock().ok()?.take()
    }

    /// Builds the engine now if it is not built.
    ///
    /// # Errors
    ///
    /// When the engine does not build: a pattern past the size limit.
    pub(crate) fn build(&self) -> Result<(), String> {
        match self.regex.get_or_init(|| self.engine()) {
            Some(_) => Ok(()),
            None => Err(format!("regex {:?} does not compile", self.anchored)),
        }
    }

    /// Whether the parsed pattern is still held.
    #[cfg(test)]
    pub(crate) fn holds_hir(&self) -> bool {
        self.hir.lock().is_ok_and(|h| h.is_some())
    }

    /// Whether the engine is built.
    #[cfg(test)]
    pub(crate) fn is_built(&self) -> bool {
        self.regex.get().is_some()
    }

    /// Whether the whole of `s` matches.
    #[inline]
    pub(crate) fn is_match(&self, s: &str) -> bool {
        self.regex
            .get_or_init(|| self.engine())
            .as_ref()
            .is_some_and(|r| r.is_match(s))
    }

    /// The regex crate's engine and limits, without the one-pass DFA: a
    /// leaf only asks whether the value matches, which the lazy DFA
    /// answers, and the one-pass DFA held two thirds of a compiled regex
    /// (19 KB of a typical path pattern's 29, against 9 without it).
    ///
    /// A pattern with a Unicode word boundary gets no DFAs: a lazy DFA
    /// quits at such a boundary next to a non-ASCII byte, and reports it in
    /// an error that allocates, on every such value; the PikeVM and the
    /// bounded backtracker answer without one.
    fn engine(&self) -> Option<regex_automata::meta::Regex> {
        use regex_automata::meta;
        use regex_automata::util::syntax;
        let hir = match self.take_hir() {
            Some(hir) => hir,
            None => Box::new(
                syntax::parse_with(
                    &self.anchored,
                    &syntax::Config::new().case_insensitive(self.fold),
                )
                .ok()?,
            ),
        };
        let dfas = !hir.properties().look_set().contains_word_unicode();
        meta::Builder::new()
            .configure(
                meta::Config::new()
                    .utf8_empty(true)
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                    .dfa_size_limit(Some(REGEX_SIZE_LIMIT))
                    .hybrid_cache_capacity(REGEX_SIZE_LIMIT)
                    .onepass(false)
                    .hybrid(dfas)
                    .dfa(dfas),
            )
            .build_from_hir(&hir)
            .ok()
    }
}

impl StrTest {
    #[inline]
    pub(crate) fn matches(&self, v: &[u8]) -> bool {
        let fold = self.fold;
        match &self.op {
            StrOp::Equals(s) => eq(v, s, fold),
            StrOp::InList(list) => list.iter().any(|s| eq(v, s, fold)),
            StrOp::InSet(set) => set.get(v).is_some(),
            StrOp::Prefix(p) => v.len() >= p.len() && eq(&v[..p.len()], p, fold),
            StrOp::Suffix(s) => v.len() >= s.len() && eq(&v[v.len() - s.len()..], s, fold),
            StrOp::Contains(finder) => finder.find(v).is_some(),
            StrOp::ContainsFolded(needle) => {
                needle.is_empty()
                    || v.windows(needle.len())
                        .any(|w| w.eq_ignore_ascii_case(needle))
            }
            StrOp::Regex(re) => std::str::from_utf8(v).is_ok_and(|s| re.is_match(s)),
            StrOp::SegmentPrefix(p) => {
                v.len() >= p.len()
                    && eq(&v[..p.len()], p, fold)
                    && (v.len() == p.len() || v[p.len()] == b'/')
            }
        }
    }
}
