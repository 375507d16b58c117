//! Typed comparisons (`as: number | semver | version`): values parsed from
//! borrowed bytes and compared by value, with no allocation.
//!
//! Rule values are parsed once at compile time; a request's value is parsed
//! each time a typed leaf looks at it. A request value that does not parse
//! never matches.

use std::cmp::Ordering;

use crate::rules::ValueType;

/// A comparison a typed leaf makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// Equal to any of the values (`equals`, `in`).
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    /// The symbol `explain` prints.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
        }
    }

    #[inline]
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Gte => ord != Ordering::Less,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Lte => ord != Ordering::Greater,
        }
    }
}

/// A compiled typed test: the comparison and the rule's values, parsed.
#[derive(Debug)]
pub(crate) struct TypedTest {
    pub(crate) cmp: Cmp,
    pub(crate) values: TypedValues,
}

/// The rule's values, parsed as their type.
#[derive(Debug)]
pub(crate) enum TypedValues {
    Number(Box<[f64]>),
    Version {
        strict: bool,
        values: Box<[OwnedVersion]>,
    },
}

impl TypedTest {
    /// Parses the rule's values; `Err` names the first that does not parse.
    pub(crate) fn new(ty: ValueType, cmp: Cmp, values: &[String]) -> Result<Self, String> {
        let bad = |v: &str| format!("{v:?} is not a {}", describe(ty));
        let values = match ty {
            ValueType::Number => TypedValues::Number(
                values
                    .iter()
                    .map(|v| number(v.as_bytes()).ok_or_else(|| bad(v)))
                    .collect::<Result<_, _>>()?,
            ),
            ValueType::Semver | ValueType::Version => {
                let strict = ty == ValueType::Semver;
                TypedValues::Version {
                    strict,
                    values: values
                        .iter()
                        .map(|v| {
                            version(v.as_bytes(), strict)
                                .map(|p| p.to_owned())
                                .ok_or_else(|| bad(v))
                        })
                        .collect::<Result<_, _>>()?,
                }
            }
        };
        Ok(TypedTest { cmp, values })
    }

    /// Whether `v`, parsed as the type, compares as the test says with one
    /// of the values (all of them hold one value, but `in`).
    #[inline]
    pub(crate) fn matches(&self, v: &[u8]) -> bool {
        match &self.values {
            TypedValues::Number(rule) => number(v).is_some_and(|n| {
                rule.iter()
                    .any(|r| n.partial_cmp(r).is_some_and(|ord| self.cmp.holds(ord)))
            }),
            TypedValues::Version { strict, values } => version(v, *strict).is_some_and(|parsed| {
                values
                    .iter()
                    .any(|r| self.cmp.holds(parsed.cmp(&r.borrow())))
            }),
        }
    }

    /// The type's name.
    pub(crate) fn type_name(&self) -> &'static str {
        match &self.values {
            TypedValues::Number(_) => "number",
            TypedValues::Version { strict: true, .. } => "semver",
            TypedValues::Version { strict: false, .. } => "version",
        }
    }

    /// `v` as the type sees it (`5.10.0-rc.1`, `20`), or `None` when it does
    /// not parse. For `explain`.
    pub(crate) fn show(&self, v: &[u8]) -> Option<String> {
        match &self.values {
            TypedValues::Number(_) => number(v).map(|n| n.to_string()),
            TypedValues::Version { strict, .. } => version(v, *strict).map(|p| p.to_string()),
        }
    }

    /// The rule's values as the type sees them, for `explain`.
    pub(crate) fn show_values(&self) -> String {
        let list: Vec<String> = match &self.values {
            TypedValues::Number(ns) => ns.iter().map(f64::to_string).collect(),
            TypedValues::Version { values, .. } => {
                values.iter().map(|v| v.borrow().to_string()).collect()
            }
        };
        if list.len() == 1 {
            list.into_iter().next().unwrap_or_default()
        } else {
            format!("[{}]", list.join(", "))
        }
    }
}

fn describe(ty: ValueType) -> &'static str {
    match ty {
        ValueType::Number => "number (a decimal number as JSON writes it)",
        ValueType::Semver => "semver version (MAJOR.MINOR.PATCH, SemVer 2.0.0)",
        ValueType::Version => "version (1 to 4 dot-separated numbers, an optional v)",
    }
}

/// A decimal number as JSON writes it, with a leading `+` allowed: `-0`,
/// `12`, `12.0`, `1e3`, `+2.5E-1`. Not `.5`, `5.`, `012`, `0x1`, `inf`.
pub(crate) fn number(v: &[u8]) -> Option<f64> {
    let mut i = 0;
    if matches!(v.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while v.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let int = digits(&mut i);
    if int == 0 || (int > 1 && v[int_start] == b'0') {
        return None;
    }
    if v.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if matches!(v.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(v.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != v.len() {
        return None;
    }
    // The grammar above is ASCII and a subset of what `f64::from_str` reads.
    // Values are compared as 64-bit floats: beyond 2^53, or past the float
    // range (`1e400`, which would be infinite), a number does not parse.
    let n: f64 = std::str::from_utf8(v).ok()?.parse().ok()?;
    n.is_finite().then_some(n)
}

/// A parsed version, borrowing its pre-release from the text. Build
/// metadata is checked and dropped: it does not take part in precedence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Version<'a> {
    /// Up to four numeric parts; missing parts are 0.
    parts: [u64; 4],
    /// How many parts the text gave (for display).
    given: u8,
    /// The dot-separated pre-release identifiers, empty when there are none.
    pre: &'a [u8],
}

/// A rule's version, owned.
#[derive(Debug)]
pub(crate) struct OwnedVersion {
    parts: [u64; 4],
    given: u8,
    pre: Box<[u8]>,
}

impl Version<'_> {
    fn to_owned(self) -> OwnedVersion {
        OwnedVersion {
            parts: self.parts,
            given: self.given,
            pre: self.pre.into(),
        }
    }
}

impl OwnedVersion {
    fn borrow(&self) -> Version<'_> {
        Version {
            parts: self.parts,
            given: self.given,
            pre: &self.pre,
        }
    }
}

impl std::fmt::Display for Version<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = usize::from(self.given.max(3));
        for (i, p) in self.parts[..shown].iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{p}")?;
        }
        if !self.pre.is_empty() {
            write!(f, "-{}", String::from_utf8_lossy(self.pre))?;
        }
        Ok(())
    }
}

impl Ord for Version<'_> {
    /// SemVer 2.0.0 precedence: numeric parts in order, then a version with
    /// a pre-release ranks below the same version without; pre-releases
    /// compare identifier by identifier (numeric ones as numbers and below
    /// alphanumeric ones, alphanumeric ones in ASCII order), and a shorter
    /// list that is a prefix of a longer one ranks below it.
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts).then_with(|| {
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(self.pre, other.pre),
            }
        })
    }
}

/// Equal by precedence: `5.2` equals `5.2.0`, build metadata aside.
impl PartialEq for Version<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version<'_> {}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn compare_pre(a: &[u8], b: &[u8]) -> Ordering {
    let mut xs = a.split(|&c| c == b'.');
    let mut ys = b.split(|&c| c == b'.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = compare_identifier(x, y);
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn compare_identifier(x: &[u8], y: &[u8]) -> Ordering {
    let numeric = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match (numeric(x), numeric(y)) {
        // By value, without overflow: leading zeros off (the lenient form
        // allows them), then the longer number is larger.
        (true, true) => {
            fn strip(s: &[u8]) -> &[u8] {
                let zeros = s.iter().take_while(|&&c| c == b'0').count();
                &s[zeros.min(s.len().saturating_sub(1))..]
            }
            let (x, y) = (strip(x), strip(y));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.cmp(y),
    }
}

/// Parses a version: strict SemVer 2.0.0 when `strict`, else the lenient
/// dotted form (`v` prefix, 1 to 4 parts, leading zeros allowed).
pub(crate) fn version(v: &[u8], strict: bool) -> Option<Version<'_>> {
    let mut rest = v;
    if !strict && matches!(rest.first(), Some(b'v' | b'V')) {
        rest = &rest[1..];
    }
    // The core ends at the first `-` or `+`; build metadata at the first `+`.
    let (main, build) = match rest.iter().position(|&c| c == b'+') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (core, pre) = match main.iter().position(|&c| c == b'-') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    let mut parts = [0u64; 4];
    let mut given = 0u8;
    for part in core.split(|&c| c == b'.') {
        if usize::from(given) == parts.len() {
            return None;
        }
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if strict && part.len() > 1 && part[0] == b'0' {
            return None;
        }
        // Digits checked above; overflow does not parse.
        parts[usize::from(given)] = part.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        given += 1;
    }
    if strict && given != 3 {
        return None;
    }
    if let Some(pre) = pre
        && !identifiers(pre, strict)
    {
        return None;
    }
    if let Some(build) = build
        && !identifiers(build, false)
    {
        return None;
    }
    Some(Version {
        parts,
        given,
        pre: pre.unwrap_or(b""),
    })
}

/// Dot-separated, non-empty identifiers of `[0-9A-Za-z-]`; when `no_zeros`,
/// numeric identifiers have no leading zeros.
fn identifiers(s: &[u8], no_zeros: bool) -> bool {
    s.split(|&c| c == b'.').all(|id| {
        !id.is_empty()
            && id.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && !(no_zeros && id.len() > 1 && id[0] == b'0' && id.iter().all(u8::is_ascii_digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let cases: &[(&str, &str, Option<f64>)] = &[
            ("integer", "12", Some(12.0)),
            ("decimal", "12.0", Some(12.0)),
            ("exponent", "1e3", Some(1000.0)),
            ("upper exponent with sign", "2.5E-1", Some(0.25)),
            ("leading plus", "+7", Some(7.0)),
            ("negative zero", "-0", Some(0.0)),
            ("zero point", "0.5", Some(0.5)),
            ("leading zero", "012", None),
            ("bare dot", ".5", None),
            ("trailing dot", "5.", None),
            ("hex", "0x10", None),
            ("inf", "inf", None),
            ("nan", "NaN", None),
            ("empty", "", None),
            ("sign only", "-", None),
            ("two signs", "+-1", None),
            ("space", " 1", None),
            ("exponent without digits", "1e", None),
            ("underscore", "1_000", None),
            ("past the float range", "1e400", None),
        ];
        for (name, text, want) in cases {
            assert_eq!(number(text.as_bytes()), *want, "case {name}");
        }
    }

    #[test]
    fn versions_parse() {
        // (case, text, strict, parses)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("semver", "1.2.3", true, true),
            ("semver pre and build", "1.2.3-rc.1+build.5", true, true),
            ("semver needs three parts", "1.2", true, false),
            ("semver no v", "v1.2.3", true, false),
            ("semver leading zero", "01.2.3", true, false),
            ("semver pre leading zero", "1.2.3-01", true, false),
            ("semver alnum with zero is fine", "1.2.3-0a", true, true),
            ("semver build leading zero is fine", "1.2.3+001", true, true),
            ("semver empty pre identifier", "1.2.3-rc..1", true, false),
            ("semver bad char", "1.2.3-rc_1", true, false),
            ("semver four parts", "1.2.3.4", true, false),
            ("version one part", "5", false, true),
            ("version four parts", "5.2.0.1", false, true),
            ("version five parts", "5.2.0.1.3", false, false),
            ("version v", "v5.2", false, true),
            ("version leading zero", "5.02", false, true),
            ("version pre", "5.2-beta.1", false, true),
            ("version empty", "", false, false),
            ("version word", "latest", false, false),
            ("version trailing dot", "5.", false, false),
            ("version overflow", "99999999999999999999", false, false),
            ("version space", "5.2 ", false, false),
        ];
        for (name, text, strict, ok) in cases {
            assert_eq!(
                version(text.as_bytes(), *strict).is_some(),
                *ok,
                "case {name}"
            );
        }
    }

    #[test]
    fn version_order() {
        // Each list is ascending; equal neighbours are marked by `=`.
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.9.0",
            "1.10.0",
            "2.0.0",
        ];
        for w in ordered.windows(2) {
            let a = version(w[0].as_bytes(), true).unwrap();
            let b = version(w[1].as_bytes(), true).unwrap();
            assert_eq!(a.cmp(&b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        fn v(s: &str) -> Version<'_> {
            version(s.as_bytes(), false).unwrap()
        }
        assert_eq!(v("5.2").cmp(&v("5.2.0")), Ordering::Equal);
        assert_eq!(v("v5.2.0.0").cmp(&v("5.2")), Ordering::Equal);
        assert_eq!(v("5.10").cmp(&v("5.9")), Ordering::Greater);
        assert_eq!(v("1.0.0+a").cmp(&v("1.0.0+b")), Ordering::Equal);
        assert_eq!(v("1-02").cmp(&v("1-2")), Ordering::Equal);
        assert_eq!(v("5.2.0.1").cmp(&v("5.2")), Ordering::Greater);
    }
}
