//! Borrowed scanners for the parts of a request that rules look at: cookies,
//! query parameters, W3C baggage members, and percent-decoding.
//!
//! Each scanner walks the request's own bytes for the one name it is given and
//! yields borrowed slices; nothing is parsed into owned maps, and nothing
//! allocates, except [`with_decoded`] for an escaped value longer than 256
//! bytes. Malformed input (bad escapes, missing `=`, stray quotes, non-UTF-8)
//! is read leniently and never panics.
//!
//! ```
//! use graymatch::scan;
//! use http::HeaderMap;
//!
//! let mut headers = HeaderMap::new();
//! headers.append("cookie", "a=1; uid=\"u-7\"".parse().unwrap());
//! headers.append("cookie", "uid=u-8".parse().unwrap());
//! let uids: Vec<&[u8]> = scan::cookies(&headers, "uid").collect();
//! assert_eq!(uids, [&b"u-7"[..], b"u-8"]);
//!
//! let beta: Vec<&[u8]> = scan::query_params(Some("beta=1&team=blue+sky"), "team").collect();
//! assert_eq!(beta, [&b"blue+sky"[..]]);
//! scan::with_decoded(beta[0], true, |v| assert_eq!(v, b"blue sky"));
//! ```

use http::header::{self, GetAll, HeaderMap, HeaderValue};

/// The largest `baggage` the scanner reads, in bytes (the W3C limit).
pub const BAGGAGE_MAX_BYTES: usize = 8192;
/// The most `baggage` members the scanner reads (the W3C limit).
pub const BAGGAGE_MAX_MEMBERS: usize = 180;

/// The values of cookie `name` in every `Cookie` header, in order.
///
/// Pairs are split on `;`; names are compared exactly (case-sensitive) after
/// trimming spaces; values have surrounding spaces and one pair of
/// surrounding double quotes removed. A pair without `=` is skipped.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("cookie", "foo=barbaz; Foo=x;foo= bar ".parse().unwrap());
/// let v: Vec<&[u8]> = graymatch::scan::cookies(&headers, "foo").collect();
/// assert_eq!(v, [&b"barbaz"[..], b"bar"]);
/// ```
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> Cookies<'a> {
    Cookies {
        lines: headers.get_all(header::COOKIE).iter(),
        line: &[],
        pos: 0,
        name: name.as_bytes(),
        fold: false,
        finder: None,
    }
}

/// A cookie name with a substring searcher for it built once (at compile
/// time), so a scan jumps from one occurrence of the whole name to the next
/// instead of stopping at every byte that starts it.
#[derive(Clone, Debug)]
pub(crate) struct CookieName {
    name: Box<str>,
    finder: Box<memchr::memmem::Finder<'static>>,
}

impl CookieName {
    pub(crate) fn new(name: &str) -> Self {
        CookieName {
            name: name.into(),
            finder: Box::new(memchr::memmem::Finder::new(name.as_bytes()).into_owned()),
        }
    }

    /// The values of this cookie, as [`cookies`] finds them.
    #[inline]
    pub(crate) fn values<'a>(&'a self, headers: &'a HeaderMap) -> Cookies<'a> {
        Cookies {
            finder: Some(&self.finder),
            ..cookies(headers, &self.name)
        }
    }
}

impl CookieName {
    /// Whether a value of this cookie, as [`values`](Self::values) yields
    /// them, equals `want`: the same pairs and values, without the
    /// iterator's state between lines.
    #[inline(always)]
    pub(crate) fn any_equals(&self, headers: &HeaderMap, want: &[u8]) -> bool {
        let n = self.name.len();
        if n == 0 {
            return false;
        }
        for line in headers.get_all(header::COOKIE) {
            let line = line.as_bytes();
            let mut pos = 0;
            while let Some(offset) = self.finder.find(&line[pos..]) {
                let at = pos + offset;
                pos = at + 1;
                let Some(start) = pair_value(line, at, n) else {
                    continue;
                };
                let value = &line[start..];
                // A value starting with a byte that neither ends it nor is
                // removed by trimming or unquoting, and that `want` does
                // not start with, differs: skip it without finding its end
                // (a match of the name inside a value is not at a pair's
                // start, so the scan may go on from the value).
                if let Some(&b) = value.first()
                    && !matches!(b, b' ' | b'\t' | b'"' | b';')
                    && want.first() != Some(&b)
                {
                    pos = start;
                    continue;
                }
                let end = memchr::memchr(b';', value).unwrap_or(value.len());
                if unquote(trim(&value[..end])) == want {
                    return true;
                }
                pos = start + end;
            }
        }
        false
    }
}

/// Where the value of the pair whose name was found at `line[at..at + n]`
/// begins, if the name is at a pair's start (the line's start, or after `;`
/// and blanks) and is followed by blanks and `=`: the one rule both cookie
/// scans keep.
#[inline(always)]
fn pair_value(line: &[u8], at: usize, n: usize) -> Option<usize> {
    let before = &line[..at];
    if before
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .is_some_and(|k| before[k] != b';')
    {
        return None;
    }
    let after = &line[at + n..];
    let spaces = after
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(after.len());
    (after.get(spaces) == Some(&b'=')).then_some(at + n + spaces + 1)
}

impl std::ops::Deref for CookieName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for CookieName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for CookieName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CookieName {}

/// As [`cookies`], with names compared without ASCII case (as nginx's
/// `$cookie_NAME` compares them).
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("cookie", "Canary=always; CANARY=never; canaryx=1".parse().unwrap());
/// let v: Vec<&[u8]> = graymatch::scan::cookies_any_case(&headers, "canary").collect();
/// assert_eq!(v, [&b"always"[..], b"never"]);
/// ```
pub fn cookies_any_case<'a>(headers: &'a HeaderMap, name: &'a str) -> Cookies<'a> {
    Cookies {
        fold: true,
        ..cookies(headers, name)
    }
}

/// Iterator over the values of one cookie; see [`cookies`].
#[derive(Debug)]
pub struct Cookies<'a> {
    lines: http::header::ValueIter<'a, HeaderValue>,
    line: &'a [u8],
    pos: usize,
    name: &'a [u8],
    fold: bool,
    finder: Option<&'a memchr::memmem::Finder<'static>>,
}

impl<'a> Iterator for Cookies<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // Finds the name's first byte with one vectorised search per line,
        // then checks the candidate stands at the start of a pair and is
        // followed by `=`: the same pairs as splitting on `;`, without
        // touching the cookies that are not wanted.
        let (&first, _) = self.name.split_first()?;
        loop {
            if self.pos >= self.line.len() {
                self.line = self.lines.next()?.as_bytes();
                self.pos = 0;
                continue;
            }
            let line = self.line;
            let found = if let Some(finder) = self.finder {
                finder.find(&line[self.pos..])
            } else if self.fold {
                memchr::memchr2(
                    first.to_ascii_lowercase(),
                    first.to_ascii_uppercase(),
                    &line[self.pos..],
                )
            } else {
                memchr::memchr(first, &line[self.pos..])
            };
            let Some(offset) = found else {
                self.pos = line.len();
                continue;
            };
            let at = self.pos + offset;
            self.pos = at + 1;
            let candidate = line.get(at..at + self.name.len());
            if !candidate.is_some_and(|c| {
                if self.fold {
                    c.eq_ignore_ascii_case(self.name)
                } else {
                    c == self.name
                }
            }) {
                continue;
            }
            let Some(start) = pair_value(line, at, self.name.len()) else {
                continue;
            };
            let value = &line[start..];
            let end = memchr::memchr(b';', value).unwrap_or(value.len());
            self.pos = start + end;
            return Some(unquote(trim(&value[..end])));
        }
    }
}

/// The raw (still encoded) values of query parameter `name`, in order.
///
/// `query` is the URI's query without `?`. Parameters are split on `&`; names
/// are compared after percent-decoding (`+` is space). Decode a value with
/// [`with_decoded`]. A parameter without `=` has an empty value.
///
/// ```
/// let v: Vec<&[u8]> = graymatch::scan::query_params(Some("a=1&b%65ta=on&beta"), "beta").collect();
/// assert_eq!(v, [&b"on"[..], b""]);
/// ```
pub fn query_params<'a>(query: Option<&'a str>, name: &'a str) -> QueryParams<'a> {
    QueryParams {
        rest: query.unwrap_or("").as_bytes(),
        name: name.as_bytes(),
    }
}

/// Iterator over the raw values of one query parameter; see [`query_params`].
#[derive(Debug, Clone)]
pub struct QueryParams<'a> {
    rest: &'a [u8],
    name: &'a [u8],
}

impl<'a> Iterator for QueryParams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let (param, rest) = split_once(self.rest, b'&');
            self.rest = rest;
            if param.is_empty() {
                continue;
            }
            let (name, value) = match memchr::memchr(b'=', param) {
                Some(i) => (&param[..i], &param[i + 1..]),
                None => (param, &param[param.len()..]),
            };
            if decoded_eq(name, self.name) {
                return Some(value);
            }
        }
        None
    }
}

/// The request's host as the `host` leaf reads it: the URI's authority
/// when the URI has one (HTTP/2 `:authority`, absolute-form), else the first
/// `Host` header; userinfo and port removed (an IPv6 literal keeps its
/// brackets) and one trailing `.` removed. `None` when there is no host or
/// it is empty.
///
/// The bytes are as sent: the leaf compares them without case, so it does
/// not lowercase them (which would need a copy).
///
/// ```
/// let uri: http::Uri = "http://Shop.Example.com.:8080/cart".parse().unwrap();
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(graymatch::scan::host(&uri, &headers), Some(&b"Shop.Example.com"[..]));
///
/// let origin_form: http::Uri = "/cart".parse().unwrap();
/// headers.insert("host", "[2001:db8::1]:8443".parse().unwrap());
/// assert_eq!(graymatch::scan::host(&origin_form, &headers), Some(&b"[2001:db8::1]"[..]));
/// ```
pub fn host<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> Option<&'a [u8]> {
    let raw: &[u8] = match uri.authority() {
        Some(a) => a.host().as_bytes(),
        None => {
            let v = headers.get(header::HOST)?.as_bytes();
            // Userinfo is not allowed in Host, but drop it as the URI would.
            let v = match v.iter().rposition(|&b| b == b'@') {
                Some(at) => &v[at + 1..],
                None => v,
            };
            if v.first() == Some(&b'[') {
                match v.iter().position(|&b| b == b']') {
                    Some(end) => &v[..=end],
                    None => v,
                }
            } else {
                match v.iter().rposition(|&b| b == b':') {
                    Some(colon) => &v[..colon],
                    None => v,
                }
            }
        }
    };
    let host = raw.strip_suffix(b".").unwrap_or(raw);
    (!host.is_empty()).then_some(host)
}

/// The raw value of the first `baggage` member with this key, across every
/// `baggage` header line.
///
/// Members are split on `,`, whitespace around them is ignored, properties
/// after `;` are ignored, and the key must equal `key`. Decode the value with
/// [`with_decoded`] (`plus_is_space = false`). Reading stops after
/// [`BAGGAGE_MAX_BYTES`] bytes or [`BAGGAGE_MAX_MEMBERS`] members, the W3C
/// limits: a member past them is not seen.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.append("baggage", "tenant=acme, gray = canary%2D1;ttl=3".parse().unwrap());
/// assert_eq!(graymatch::scan::baggage(&headers, "gray"), Some(&b"canary%2D1"[..]));
/// assert_eq!(graymatch::scan::baggage(&headers, "none"), None);
/// ```
pub fn baggage<'a>(headers: &'a HeaderMap, key: &str) -> Option<&'a [u8]> {
    baggage_in(headers.get_all("baggage"), key.as_bytes())
}

fn baggage_in<'a>(lines: GetAll<'a, HeaderValue>, key: &[u8]) -> Option<&'a [u8]> {
    match baggage_read(lines, key) {
        Baggage::Found(v) => Some(v),
        Baggage::Stop | Baggage::More => None,
    }
}

/// Whether `lines` hold a member with this key, or pass the W3C limits
/// before one is found (where a reader with other limits might see one).
pub(crate) fn baggage_carries(lines: GetAll<'_, HeaderValue>, key: &[u8]) -> bool {
    !matches!(baggage_read(lines, key), Baggage::More)
}

/// Reads `lines` in order until the member is found or the limits are
/// passed; `More` when neither happened.
fn baggage_read<'a>(lines: GetAll<'a, HeaderValue>, key: &[u8]) -> Baggage<'a> {
    let mut reader = BaggageReader::default();
    for line in lines {
        match reader.line(line.as_bytes(), key) {
            Baggage::More => {}
            done => return done,
        }
    }
    Baggage::More
}

/// Reads `baggage` lines in order for one member, counting toward the W3C
/// limits across lines: the HTTP scanner and the message carriers' share it.
#[derive(Default)]
pub(crate) struct BaggageReader {
    bytes: usize,
    members: usize,
}

/// What one `baggage` line gave.
pub(crate) enum Baggage<'a> {
    /// The member's raw value.
    Found(&'a [u8]),
    /// The limits were passed: no later member is seen.
    Stop,
    /// Not in this line.
    More,
}

impl BaggageReader {
    pub(crate) fn line<'a>(&mut self, line: &'a [u8], key: &[u8]) -> Baggage<'a> {
        let mut rest = line;
        while !rest.is_empty() {
            let (member, tail) = split_once(rest, b',');
            rest = tail;
            self.bytes += member.len() + 1;
            if self.bytes > BAGGAGE_MAX_BYTES + 1 {
                return Baggage::Stop;
            }
            let member = trim(member);
            if member.is_empty() {
                continue;
            }
            self.members += 1;
            if self.members > BAGGAGE_MAX_MEMBERS {
                return Baggage::Stop;
            }
            let (kv, _properties) = split_once(member, b';');
            if let Some((k, v)) = split_pair(kv)
                && trim(k) == key
            {
                return Baggage::Found(trim(v));
            }
        }
        Baggage::More
    }
}

/// Calls `f` with `raw` percent-decoded (and `+` as space when
/// `plus_is_space`), borrowing `raw` itself when it has nothing to decode.
///
/// A `%` not followed by two hex digits is kept as it is (as browsers and
/// the WHATWG URL standard do). The result may not be UTF-8. Decoding uses a
/// 256-byte stack buffer; only a longer escaped value allocates.
///
/// ```
/// graymatch::scan::with_decoded(b"a%20b+c%zz", true, |v| assert_eq!(v, b"a b c%zz"));
/// graymatch::scan::with_decoded(b"a+b", false, |v| assert_eq!(v, b"a+b"));
/// ```
pub fn with_decoded<R>(raw: &[u8], plus_is_space: bool, f: impl FnOnce(&[u8]) -> R) -> R {
    let escaped = if plus_is_space {
        memchr::memchr2(b'%', b'+', raw).is_some()
    } else {
        memchr::memchr(b'%', raw).is_some()
    };
    if !escaped {
        return f(raw);
    }
    let mut buf = [0u8; 256];
    if raw.len() <= buf.len() {
        let mut n = 0;
        for b in decode(raw, plus_is_space) {
            buf[n] = b;
            n += 1;
        }
        f(&buf[..n])
    } else {
        spill(raw, plus_is_space, f)
    }
}

#[cold]
#[inline(never)]
fn spill<R>(raw: &[u8], plus_is_space: bool, f: impl FnOnce(&[u8]) -> R) -> R {
    let owned: Vec<u8> = decode(raw, plus_is_space).collect();
    f(&owned)
}

/// Decodes `raw` lazily, byte by byte.
pub(crate) fn decode(raw: &[u8], plus_is_space: bool) -> Decode<'_> {
    Decode { raw, plus_is_space }
}

/// A lazy percent-decoder; never longer than its input.
#[derive(Clone, Debug)]
pub(crate) struct Decode<'a> {
    raw: &'a [u8],
    plus_is_space: bool,
}

impl Iterator for Decode<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.raw.split_first()?;
        self.raw = rest;
        match b {
            b'+' if self.plus_is_space => Some(b' '),
            b'%' => match rest {
                [h, l, tail @ ..] => match (hex(*h), hex(*l)) {
                    (Some(h), Some(l)) => {
                        self.raw = tail;
                        Some(h << 4 | l)
                    }
                    _ => Some(b'%'),
                },
                _ => Some(b'%'),
            },
            b => Some(b),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.raw.len().div_ceil(3), Some(self.raw.len()))
    }
}

#[inline]
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `raw`, decoded as a query component, equals `want`.
#[inline]
fn decoded_eq(raw: &[u8], want: &[u8]) -> bool {
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        raw == want
    } else {
        decode(raw, true).eq(want.iter().copied())
    }
}

#[inline]
fn split_once(bytes: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match memchr::memchr(sep, bytes) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

#[inline]
fn split_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b'=', pair)?;
    Some((&pair[..i], &pair[i + 1..]))
}

#[inline]
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[inline]
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookie_cases() {
        let cases: &[(&str, &[&[u8]], &str, &[&[u8]])] = &[
            ("simple", &[b"a=1; b=2"], "b", &[b"2"]),
            ("quoted", &[b"a=\"x y\""], "a", &[b"x y"]),
            ("one quote only", &[b"a=\"x"], "a", &[b"\"x"]),
            ("lone quote char", &[b"a=\""], "a", &[b"\""]),
            ("no equals skipped", &[b"a; a=2"], "a", &[b"2"]),
            ("empty pairs", &[b";;; ;a=1;;"], "a", &[b"1"]),
            ("name case-sensitive", &[b"A=1"], "a", &[]),
            ("value with equals", &[b"a=b=c"], "a", &[b"b=c"]),
            ("repeated headers", &[b"a=1", b"a=2"], "a", &[b"1", b"2"]),
            ("non-utf8", &[b"a=\xff\xfe"], "a", &[b"\xff\xfe"]),
            ("empty value", &[b"a="], "a", &[b""]),
        ];
        for (name, lines, want_name, want) in cases {
            let h = headers(&lines.iter().map(|l| ("cookie", *l)).collect::<Vec<_>>());
            let got: Vec<&[u8]> = cookies(&h, want_name).collect();
            assert_eq!(&got, want, "case {name}");
        }
    }

    #[test]
    fn any_equals_agrees_with_the_scanner() {
        let lines: &[&[u8]] = &[
            b"gray=true",
            b"gray=false",
            b"a=1; gray = true ",
            b"grayscale=on; gray=\"true\"",
            b"gray=xgray=true",
            b"gray=gray=true; b=2",
            b"x=a gray=true",
            b"gray= gray=true",
            b"gray=;gray=true",
            b"gray; gray=",
            b"gray=\ttrue\t;",
            b"gray=\"\"",
            b"ga=1; gid=2; gray=t; gray=trueish; gray=true",
            b"",
        ];
        let wants: &[&[u8]] = &[b"true", b"", b"t", b"\"true\"", b" true", b"gray=true"];
        let name = CookieName::new("gray");
        for a in lines {
            for b in [None, Some(&b"gray=true"[..]), Some(b"ab=b; gray=x")] {
                let mut pairs = vec![("cookie", *a)];
                if let Some(b) = b {
                    pairs.push(("cookie", b));
                }
                let h = headers(&pairs);
                for want in wants {
                    assert_eq!(
                        name.any_equals(&h, want),
                        name.values(&h).any(|v| v == *want),
                        "{:?} {b:?} {:?}",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(want)
                    );
                }
            }
        }
    }

    #[test]
    fn cookie_any_case_cases() {
        let cases: &[(&str, &[&[u8]], &str, &[&[u8]])] = &[
            ("same case", &[b"a=1; b=2"], "b", &[b"2"]),
            (
                "upper in request",
                &[b"Canary=always"],
                "canary",
                &[b"always"],
            ),
            ("upper in rule", &[b"canary=never"], "CANARY", &[b"never"]),
            (
                "mixed, in order",
                &[b"cAnArY=1; x=2; CANARY=3"],
                "Canary",
                &[b"1", b"3"],
            ),
            (
                "longer name skipped",
                &[b"canaryx=1; canary=2"],
                "canary",
                &[b"2"],
            ),
            ("pair start only", &[b"xcanary=1"], "canary", &[]),
            (
                "digits and dashes",
                &[b"Canary-By-Cookie=always"],
                "canary-by-cookie",
                &[b"always"],
            ),
            ("repeated headers", &[b"A=1", b"a=2"], "a", &[b"1", b"2"]),
            ("truncated line", &[b"Can"], "canary", &[]),
        ];
        for (name, lines, want_name, want) in cases {
            let h = headers(&lines.iter().map(|l| ("cookie", *l)).collect::<Vec<_>>());
            let got: Vec<&[u8]> = cookies_any_case(&h, want_name).collect();
            assert_eq!(&got, want, "case {name}");
        }
    }

    #[test]
    fn query_cases() {
        let cases: &[(&str, &str, &str, &[&[u8]])] = &[
            ("plain", "a=1&b=2", "b", &[b"2"]),
            ("encoded name", "b%65ta=1", "beta", &[b"1"]),
            ("plus in name", "a+b=1", "a b", &[b"1"]),
            ("no value", "a&a=", "a", &[b"", b""]),
            ("empty params", "&&a=1&", "a", &[b"1"]),
            ("bad escape in name", "a%zz=1", "a%zz", &[b"1"]),
            ("truncated escape", "a%2=1", "a%2", &[b"1"]),
        ];
        for (name, query, want_name, want) in cases {
            let got: Vec<&[u8]> = query_params(Some(query), want_name).collect();
            assert_eq!(&got, want, "case {name}");
        }
    }

    #[test]
    fn decode_cases() {
        let cases: &[(&str, &[u8], bool, &[u8])] = &[
            ("space", b"a%20b", true, b"a b"),
            ("plus", b"a+b", true, b"a b"),
            ("plus kept", b"a+b", false, b"a+b"),
            ("bad hex", b"%zz", true, b"%zz"),
            ("trailing percent", b"a%", true, b"a%"),
            ("one digit", b"a%4", true, b"a%4"),
            ("high byte", b"%FF", true, b"\xff"),
            ("lower hex", b"%2d", true, b"-"),
        ];
        for (name, raw, plus, want) in cases {
            with_decoded(raw, *plus, |v| assert_eq!(v, *want, "case {name}"));
        }
        let long = "%41".repeat(200);
        with_decoded(long.as_bytes(), true, |v| {
            assert_eq!(v, "A".repeat(200).as_bytes())
        });
    }

    #[test]
    fn baggage_limits() {
        // A member past 180 members is not read.
        let mut line = (0..180)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        line.push_str(",gray=late");
        let h = headers(&[("baggage", line.as_bytes())]);
        assert_eq!(baggage(&h, "gray"), None);
        assert_eq!(baggage(&h, "k179"), Some(&b"v"[..]));
        // A member past 8192 bytes is not read.
        let pad = "x".repeat(8200);
        let line = format!("pad={pad},gray=late");
        let h = headers(&[("baggage", line.as_bytes())]);
        assert_eq!(baggage(&h, "gray"), None);
        // Across repeated headers, properties ignored.
        let h = headers(&[("baggage", b"a=1"), ("baggage", b" gray=v2 ;p=1")]);
        assert_eq!(baggage(&h, "gray"), Some(&b"v2"[..]));
    }
}
