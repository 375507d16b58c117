//! The gray tag: a decided variant as it travels to the next service, in a
//! header (`x-gray: gray`) and a W3C `baggage` member (`gray=gray`).

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::InvalidTag;
use crate::intern::{intern, intern_header};
use crate::scan::{self, BAGGAGE_MAX_BYTES, BAGGAGE_MAX_MEMBERS};

/// The header that carries the tag unless a rule set says otherwise.
pub const DEFAULT_HEADER: &str = "x-gray";
/// The `baggage` member key that carries the tag unless a rule set says otherwise.
pub const DEFAULT_BAGGAGE_KEY: &str = "gray";

/// A variant and where to write it on an outbound request.
///
/// Get one from [`Matcher::tag`](crate::Matcher::tag) (which carries the rule
/// set's propagation settings) or [`Tag::new`] (the default `x-gray` header
/// and `gray` baggage key). It is `Copy` and `'static`, so it can sit in a
/// task-local or in request extensions.
///
/// ```
/// use http::HeaderMap;
///
/// let tag = graymatch::Tag::new("gray")?;
/// let mut headers = HeaderMap::new();
/// headers.insert("baggage", "tenant=acme, gray=old".parse().unwrap());
/// tag.write(&mut headers);
/// assert_eq!(headers["x-gray"], "gray");
/// assert_eq!(headers["baggage"], "tenant=acme,gray=gray");
/// # Ok::<(), graymatch::InvalidTag>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    variant: &'static str,
    header: Option<&'static HeaderName>,
    baggage: Option<&'static str>,
    /// `key=variant`, interned, when known: written without allocating.
    member: Option<&'static str>,
}

impl Tag {
    /// A tag for `variant` with the default header and baggage key.
    ///
    /// # Errors
    ///
    /// When `variant` is not 1 to 64 of `[A-Za-z0-9._-]`.
    ///
    /// The name is interned for the life of the process (as compiled
    /// variant names are): build tags from names you control, not from
    /// request data.
    ///
    /// ```
    /// assert!(graymatch::Tag::new("v2.1-beta_3").is_ok());
    /// assert!(graymatch::Tag::new("").is_err());
    /// assert!(graymatch::Tag::new("a,b").is_err());
    /// ```
    pub fn new(variant: &str) -> Result<Self, InvalidTag> {
        if !is_valid_name(variant) {
            return Err(InvalidTag::new());
        }
        Ok(Tag {
            variant: intern(variant),
            header: Some(intern_header(DEFAULT_HEADER)),
            baggage: Some(DEFAULT_BAGGAGE_KEY),
            member: Some(intern(&format!("{DEFAULT_BAGGAGE_KEY}={variant}"))),
        })
    }

    /// A tag from names a rule set has validated (header lowercased), with
    /// the interned `key=variant` member when the caller has it.
    pub(crate) fn from_parts(
        variant: &'static str,
        header: Option<&'static HeaderName>,
        baggage: Option<&'static str>,
        member: Option<&'static str>,
    ) -> Self {
        Tag {
            variant,
            header,
            baggage,
            member,
        }
    }

    /// The interned `key=variant` baggage member of a tag.
    pub(crate) fn member_of(key: &str, variant: &str) -> &'static str {
        intern(&format!("{key}={variant}"))
    }

    /// The variant.
    ///
    /// ```
    /// assert_eq!(graymatch::Tag::new("gray").unwrap().variant(), "gray");
    /// ```
    #[inline]
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// The header this tag is written to, if any.
    ///
    /// ```
    /// assert_eq!(graymatch::Tag::new("gray").unwrap().header(), Some("x-gray"));
    /// ```
    #[inline]
    pub fn header(&self) -> Option<&'static str> {
        self.header.map(HeaderName::as_str)
    }

    /// The baggage member key this tag is written to, if any.
    ///
    /// ```
    /// assert_eq!(graymatch::Tag::new("gray").unwrap().baggage_key(), Some("gray"));
    /// ```
    #[inline]
    pub fn baggage_key(&self) -> Option<&'static str> {
        self.baggage
    }

    /// Writes the tag onto `headers`: the header is set (replacing every
    /// earlier line), and the baggage member is merged into `baggage` (other
    /// members kept in order, an earlier member with the same key replaced,
    /// all lines joined into one).
    ///
    /// Existing members are kept within the W3C limits (8,192 bytes, 180
    /// members) with room for the tag: the first member that does not fit
    /// and every member after it are dropped.
    ///
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// headers.append("baggage", "a=1".parse().unwrap());
    /// headers.append("baggage", "gray=stable;p=1, b=2".parse().unwrap());
    /// headers.insert("x-gray", "stable".parse().unwrap());
    /// graymatch::Tag::new("gray").unwrap().write(&mut headers);
    /// assert_eq!(headers.get_all("x-gray").iter().count(), 1);
    /// assert_eq!(headers["x-gray"], "gray");
    /// assert_eq!(headers["baggage"], "a=1,b=2,gray=gray");
    /// ```
    pub fn write(&self, headers: &mut HeaderMap) {
        if let Some(header) = self.header {
            headers.insert(header.clone(), HeaderValue::from_static(self.variant));
        }
        if let Some(key) = self.baggage {
            match self.member {
                Some(member) if !headers.contains_key(&BAGGAGE) => {
                    headers.insert(BAGGAGE, HeaderValue::from_static(member));
                }
                _ => write_baggage(headers, key, self.variant),
            }
        }
    }

    /// Whether `headers` already carry a tag where this one is written: a
    /// line of its header, or a `baggage` member with its key (read as a
    /// trusting service reads it, [`scan::baggage`]). `baggage` past the W3C
    /// limits counts as carrying one, since a member there is hidden from
    /// this reader but not necessarily from every other. Lines of other
    /// headers and other baggage members do not count.
    ///
    /// A service that decides for itself need only [`write`](Self::write)
    /// the tag over requests for which this is true: on the others there is
    /// no incoming tag to replace, and outbound clients write the tag from
    /// the task's scope.
    ///
    /// ```
    /// let tag = graymatch::Tag::new("stable").unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("baggage", "tenant=acme".parse().unwrap());
    /// assert!(!tag.found_in(&headers));
    /// headers.insert("baggage", "tenant=acme, gray = canary".parse().unwrap());
    /// assert!(tag.found_in(&headers));
    /// headers.clear();
    /// headers.insert("x-gray", "anything".parse().unwrap());
    /// assert!(tag.found_in(&headers));
    /// ```
    #[inline]
    pub fn found_in(&self, headers: &HeaderMap) -> bool {
        if headers.is_empty() {
            return false;
        }
        // Whether the header is there, and whether a `baggage` line may be.
        let (in_header, baggage) = if headers.keys_len() <= SCAN_NAMES {
            self.scan_names(headers)
        } else {
            let in_header = self.header.is_some_and(|h| headers.contains_key(h));
            (in_header, true)
        };
        if in_header {
            return true;
        }
        match self.baggage {
            Some(key) if baggage => {
                scan::baggage_carries(headers.get_all(&BAGGAGE), key.as_bytes())
            }
            _ => false,
        }
    }

    /// For [`Tag::found_in`] on a small map, in one pass over its names:
    /// whether the tag's header is one, and whether `baggage` is.
    fn scan_names(&self, headers: &HeaderMap) -> (bool, bool) {
        let mut baggage = false;
        for name in headers.keys() {
            if self.header.is_some_and(|header| name == header) {
                return (true, baggage);
            }
            baggage |= *name == BAGGAGE;
        }
        (false, baggage)
    }
}

/// Up to this many distinct names, [`Tag::found_in`] compares each name
/// instead of looking the two custom names up: by callgrind on a 12-name
/// request the two lookups (each hashes its name byte by byte) cost about
/// 260 instructions and the pass about 19 a name (a standard name compares
/// in one byte, a custom one by length and `memcmp`), so the pass is the
/// cheaper up to 13 names.
const SCAN_NAMES: usize = 13;

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tag")
            .field("variant", &self.variant)
            .field("header", &self.header)
            .field("baggage", &self.baggage)
            .finish()
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.variant)
    }
}

/// Whether `name` is a valid variant or rule name: 1 to 64 of `[A-Za-z0-9._-]`.
///
/// ```
/// assert!(graymatch::tag::is_valid_name("canary-20"));
/// assert!(!graymatch::tag::is_valid_name("canary 20"));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// A `baggage` value being built: the existing members with every `key`
/// member removed, within the W3C limits (the first member that does not
/// fit and every later one are dropped), then `key=variant`. Shared by the
/// HTTP tag and the message carriers.
pub(crate) struct BaggageMerge<'a> {
    key: &'a str,
    variant: &'a str,
    out: Vec<u8>,
    members: usize,
    full: bool,
    /// Drop members that are not UTF-8 (carriers whose values are text).
    utf8_only: bool,
}

impl<'a> BaggageMerge<'a> {
    pub(crate) fn new(key: &'a str, variant: &'a str, utf8_only: bool) -> Self {
        BaggageMerge {
            key,
            variant,
            out: Vec::new(),
            members: 0,
            full: false,
            utf8_only,
        }
    }

    /// Adds the members of one `baggage` line; `false` once no more fit.
    pub(crate) fn line(&mut self, line: &[u8]) -> bool {
        let member_len = self.key.len() + 1 + self.variant.len();
        for member in line.split(|&b| b == b',') {
            let member = scan::trim(member);
            if member.is_empty() {
                continue;
            }
            let kv = member.split(|&b| b == b';').next().unwrap_or(member);
            let k = scan::trim(kv.split(|&b| b == b'=').next().unwrap_or(kv));
            if k == self.key.as_bytes() || (self.utf8_only && std::str::from_utf8(member).is_err())
            {
                continue;
            }
            let sep = usize::from(!self.out.is_empty());
            self.full = self.full
                || self.members + 1 >= BAGGAGE_MAX_MEMBERS
                || self.out.len() + sep + member.len() + 1 + member_len > BAGGAGE_MAX_BYTES;
            if self.full {
                return false;
            }
            if sep == 1 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(member);
            self.members += 1;
        }
        true
    }

    /// The value: the kept members, then `key=variant`.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if !self.out.is_empty() {
            self.out.push(b',');
        }
        self.out.extend_from_slice(self.key.as_bytes());
        self.out.push(b'=');
        self.out.extend_from_slice(self.variant.as_bytes());
        self.out
    }
}

fn write_baggage(headers: &mut HeaderMap, key: &str, variant: &str) {
    let mut merge = BaggageMerge::new(key, variant, false);
    for line in headers.get_all(&BAGGAGE) {
        if !merge.line(line.as_bytes()) {
            break;
        }
    }
    // Kept members came from valid header values and the tag is validated,
    // so this only fails on bytes a HeaderValue never holds.
    if let Ok(value) = HeaderValue::from_bytes(&merge.finish()) {
        headers.insert(BAGGAGE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baggage_merge_cases() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("no baggage", &[], "gray=v2"),
            ("other member kept", &["a=1"], "a=1,gray=v2"),
            ("old member replaced", &["gray=v1,a=1"], "a=1,gray=v2"),
            ("properties kept", &["a=1;p=2"], "a=1;p=2,gray=v2"),
            ("spaces trimmed", &["  a=1 ,  b=2  "], "a=1,b=2,gray=v2"),
            (
                "repeated lines joined",
                &["a=1", "gray=x", "b=2"],
                "a=1,b=2,gray=v2",
            ),
            ("empty members dropped", &[",,a=1,,"], "a=1,gray=v2"),
            ("key with spaces", &[" gray = x ;q"], "gray=v2"),
            (
                "prefix key is another key",
                &["grayish=1"],
                "grayish=1,gray=v2",
            ),
        ];
        for (name, lines, want) in cases {
            let mut h = HeaderMap::new();
            for l in *lines {
                h.append("baggage", l.parse().unwrap());
            }
            Tag::new("v2").unwrap().write(&mut h);
            assert_eq!(h.get_all("baggage").iter().count(), 1, "case {name}");
            assert_eq!(h["baggage"], *want, "case {name}");
        }
    }

    #[test]
    fn found_in_cases() {
        let past_limits = (0..200)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let cases: &[(&str, &[(&str, &str)], bool)] = &[
            ("nothing", &[], false),
            (
                "other headers",
                &[("x-grayish", "gray"), ("accept", "*/*")],
                false,
            ),
            ("the header", &[("x-gray", "anything")], true),
            (
                "baggage without the key",
                &[("baggage", "a=1,grayish=2")],
                false,
            ),
            ("the member", &[("baggage", "a=1, gray = v;p")], true),
            (
                "the member on a later line",
                &[("baggage", "a=1"), ("baggage", "gray=v")],
                true,
            ),
            // A reader with other limits might find a member past these.
            (
                "baggage past the W3C limits",
                &[("baggage", &past_limits)],
                true,
            ),
        ];
        let tag = Tag::new("v2").unwrap();
        let no_header = Tag {
            header: None,
            ..tag
        };
        let no_baggage = Tag {
            baggage: None,
            member: None,
            ..tag
        };
        // Each case on a small map (one pass over the names) and past
        // `SCAN_NAMES` distinct names (the lookups), the case's lines
        // between the fillers.
        for fillers in [0, SCAN_NAMES + 1] {
            for (name, lines, want) in cases {
                let mut h = HeaderMap::new();
                let filler = |h: &mut HeaderMap, i| {
                    let name = format!("x-filler-{i}").parse::<HeaderName>().unwrap();
                    h.insert(name, HeaderValue::from_static("1"));
                };
                (0..fillers / 2).for_each(|i| filler(&mut h, i));
                for (n, v) in *lines {
                    h.append(
                        HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        v.parse().unwrap(),
                    );
                }
                (fillers / 2..fillers).for_each(|i| filler(&mut h, i));
                assert_eq!(h.keys_len() > SCAN_NAMES, fillers > 0, "case {name}");
                let case = format!("case {name}, {fillers} fillers");
                assert_eq!(tag.found_in(&h), *want, "{case}");
                // A carrier the rule set turned off is not looked at.
                let in_header = lines.iter().any(|(n, _)| *n == "x-gray");
                assert_eq!(
                    no_header.found_in(&h),
                    *want && !in_header,
                    "{case}, no header"
                );
                assert_eq!(no_baggage.found_in(&h), in_header, "{case}, no baggage");
            }
        }
    }

    #[test]
    fn oversized_baggage_keeps_the_tag_within_limits() {
        let mut h = HeaderMap::new();
        let line = (0..400)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        h.insert("baggage", line.parse().unwrap());
        Tag::new("gray").unwrap().write(&mut h);
        let out = h["baggage"].to_str().unwrap();
        assert_eq!(out.split(',').count(), BAGGAGE_MAX_MEMBERS);
        assert!(out.ends_with(",gray=gray"));

        let mut h = HeaderMap::new();
        h.insert(
            "baggage",
            format!("big={}", "x".repeat(9000)).parse().unwrap(),
        );
        Tag::new("gray").unwrap().write(&mut h);
        assert_eq!(h["baggage"], "gray=gray");
    }
}
