//! Carriers: the gray tag on any key-value headers, not only HTTP's:
//! message headers (NATS, AMQP, Kafka), gRPC metadata, fields of a job's
//! payload.
//!
//! [`Tag::inject`] writes a tag onto an [`Injector`] and
//! [`Matcher::extract`] reads one from an [`Extractor`], by the same rules as
//! HTTP ([`Tag::write`], [`Matcher::decide`]):
//!
//! - the tag goes in the configured header (`x-gray: gray`, every earlier
//!   value replaced) and in the configured `baggage` member (`gray=gray`),
//!   merged into an existing `baggage`: other members kept in order, an old
//!   member with the same key replaced, within the W3C limits (8,192 bytes,
//!   180 members; a member that does not fit and every later one dropped);
//! - reading trusts a tag only when the rule set says so
//!   (`propagation.incoming: trust`), and only when it names a declared
//!   variant: the header first, then the baggage member (split on `,` across
//!   repeated values, whitespace and `;` properties ignored, value
//!   percent-decoded, members past the W3C limits not read);
//! - keys compare without ASCII case, as HTTP header names do (a producer in
//!   another language may write `X-Gray`); values are bytes, so a value that
//!   is not UTF-8 never names a variant, and a baggage member that is not
//!   UTF-8 is dropped when a tag is merged in.
//!
//! Implementations are given for [`http::HeaderMap`] (HTTP, and gRPC
//! metadata through `tonic::metadata::MetadataMap::as_ref`/`into_headers`),
//! and for lists and maps of string or byte pairs: `Vec<(K, V)>`,
//! `[(K, V)]` (read only), `HashMap<K, V>` and `BTreeMap<K, V>` with `K`
//! a `String` and `V` a `String` or `Vec<u8>`. Message clients have theirs in
//! `graymatch-messaging`.
//!
//! ```
//! # #[cfg(feature = "yaml")] {
//! use graymatch::{RuleSet, Tag};
//!
//! // A producer stamps the tag on a message's headers...
//! let mut headers: Vec<(String, String)> = vec![("baggage".into(), "tenant=acme".into())];
//! Tag::new("gray")?.inject(&mut headers);
//! assert_eq!(headers, [
//!     ("baggage".to_owned(), "tenant=acme,gray=gray".to_owned()),
//!     ("x-gray".to_owned(), "gray".to_owned()),
//! ]);
//!
//! // ...and a consumer that trusts tags reads it back.
//! let consumer = RuleSet::from_yaml(
//!     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}")?.compile()?;
//! assert_eq!(consumer.extract(&headers).map(|t| t.variant()), Some("gray"));
//!
//! // One that does not trust them (the default) never reads them.
//! let edge = RuleSet::from_yaml("{default: stable, variants: [stable, gray]}")?.compile()?;
//! assert_eq!(edge.extract(&headers), None);
//! assert_eq!(edge.decide_carrier(&headers).variant(), "stable");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::ops::ControlFlow;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::decision::{Decision, Reason};
use crate::matcher::Matcher;
use crate::scan;
use crate::tag::Tag;

/// The key of the W3C baggage header on every carrier.
pub const BAGGAGE: &str = "baggage";

/// Headers a tag can be read from.
///
/// Implement it for a client's header type: call `f` with each value stored
/// under `key` (keys compared without ASCII case), in order, until `f`
/// returns [`ControlFlow::Break`].
///
/// ```
/// use std::ops::ControlFlow;
/// use graymatch::carrier::Extractor;
///
/// /// A job's fields.
/// struct Job { fields: Vec<(String, String)> }
///
/// impl Extractor for Job {
///     fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
///         self.fields.as_slice().values(key, f)
///     }
/// }
///
/// let job = Job { fields: vec![("X-Gray".into(), "gray".into())] };
/// let mut seen = Vec::new();
/// job.values("x-gray", &mut |v| { seen.push(v.to_vec()); ControlFlow::Continue(()) });
/// assert_eq!(seen, [b"gray".to_vec()]);
/// ```
pub trait Extractor {
    /// Calls `f` with every value under `key`, in order, until it breaks.
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>);
}

/// Headers a tag can be written to. Writing reads the existing `baggage`
/// first, so an injector is also an [`Extractor`].
///
/// ```
/// use graymatch::carrier::Injector;
///
/// let mut fields: Vec<(String, String)> = vec![("X-GRAY".into(), "old".into())];
/// fields.replace("x-gray", "gray");
/// assert_eq!(fields, [("x-gray".to_owned(), "gray".to_owned())]);
/// ```
pub trait Injector: Extractor {
    /// Removes every value under `key` (in any ASCII case) and stores
    /// `value` under `key`.
    fn replace(&mut self, key: &str, value: &str);
}

impl<T: Extractor + ?Sized> Extractor for &T {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        (**self).values(key, f);
    }
}

impl<T: Extractor + ?Sized> Extractor for &mut T {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        (**self).values(key, f);
    }
}

impl<T: Injector + ?Sized> Injector for &mut T {
    fn replace(&mut self, key: &str, value: &str) {
        (**self).replace(key, value);
    }
}

impl Extractor for HeaderMap {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        // HeaderMap looks names up without case once they are lowercase.
        let Ok(name) = HeaderName::from_bytes(key.as_bytes()) else {
            return;
        };
        for v in self.get_all(name) {
            if f(v.as_bytes()).is_break() {
                return;
            }
        }
    }
}

/// A key that is not a valid header name, or a value that is not a valid
/// header value, is not written.
impl Injector for HeaderMap {
    fn replace(&mut self, key: &str, value: &str) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.insert(name, value);
        }
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Extractor for [(K, V)] {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        for (k, v) in self {
            if k.as_ref().eq_ignore_ascii_case(key) && f(v.as_ref()).is_break() {
                return;
            }
        }
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Extractor for Vec<(K, V)> {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        self.as_slice().values(key, f);
    }
}

/// The new pair goes where the first old one was, else at the end.
impl<K, V> Injector for Vec<(K, V)>
where
    K: AsRef<str> + for<'a> From<&'a str>,
    V: AsRef<[u8]> + for<'a> From<&'a str>,
{
    fn replace(&mut self, key: &str, value: &str) {
        let at = self
            .iter()
            .position(|(k, _)| k.as_ref().eq_ignore_ascii_case(key));
        self.retain(|(k, _)| !k.as_ref().eq_ignore_ascii_case(key));
        let pair = (K::from(key), V::from(value));
        match at {
            Some(i) => self.insert(i, pair),
            None => self.push(pair),
        }
    }
}

impl<K, V, S> Extractor for HashMap<K, V, S>
where
    K: AsRef<str> + Eq + Hash,
    V: AsRef<[u8]>,
    S: BuildHasher,
{
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        for (k, v) in self {
            if k.as_ref().eq_ignore_ascii_case(key) && f(v.as_ref()).is_break() {
                return;
            }
        }
    }
}

impl<K, V, S> Injector for HashMap<K, V, S>
where
    K: AsRef<str> + Eq + Hash + for<'a> From<&'a str>,
    V: AsRef<[u8]> + for<'a> From<&'a str>,
    S: BuildHasher,
{
    fn replace(&mut self, key: &str, value: &str) {
        self.retain(|k, _| !k.as_ref().eq_ignore_ascii_case(key));
        self.insert(K::from(key), V::from(value));
    }
}

impl<K, V> Extractor for BTreeMap<K, V>
where
    K: AsRef<str> + Ord,
    V: AsRef<[u8]>,
{
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        for (k, v) in self {
            if k.as_ref().eq_ignore_ascii_case(key) && f(v.as_ref()).is_break() {
                return;
            }
        }
    }
}

impl<K, V> Injector for BTreeMap<K, V>
where
    K: AsRef<str> + Ord + for<'a> From<&'a str>,
    V: AsRef<[u8]> + for<'a> From<&'a str>,
{
    fn replace(&mut self, key: &str, value: &str) {
        self.retain(|k, _| !k.as_ref().eq_ignore_ascii_case(key));
        self.insert(K::from(key), V::from(value));
    }
}

/// The first value under `key`, copied out (a carrier lends values only for
/// the length of a callback).
fn first_value<C: Extractor + ?Sized, R>(
    carrier: &C,
    key: &str,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    let mut f = Some(f);
    let mut out = None;
    carrier.values(key, &mut |v| {
        if let Some(f) = f.take() {
            out = Some(f(v));
        }
        ControlFlow::Break(())
    });
    out
}

/// Calls `f` with the raw value of the first baggage member with this key
/// across every `baggage` value of `carrier`, read as
/// [`scan::baggage`] reads an HTTP header: members past the W3C limits are
/// not seen.
///
/// ```
/// let headers = vec![("baggage", "tenant=acme"), ("Baggage", " gray = canary%2D1;ttl=3")];
/// let got = graymatch::carrier::baggage(headers.as_slice(), "gray", |v| v.to_vec());
/// assert_eq!(got.as_deref(), Some(&b"canary%2D1"[..]));
/// ```
pub fn baggage<C: Extractor + ?Sized, R>(
    carrier: &C,
    key: &str,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    let mut reader = scan::BaggageReader::default();
    let mut f = Some(f);
    let mut out = None;
    carrier.values(
        BAGGAGE,
        &mut |line| match reader.line(line, key.as_bytes()) {
            scan::Baggage::Found(v) => {
                out = f.take().map(|f| f(v));
                ControlFlow::Break(())
            }
            scan::Baggage::Stop => ControlFlow::Break(()),
            scan::Baggage::More => ControlFlow::Continue(()),
        },
    );
    out
}

/// The existing `baggage` of `carrier` with every `key` member removed and
/// `key=variant` appended, within the W3C limits: the first member that
/// does not fit and every later one are dropped, and so is a member that is
/// not UTF-8.
fn merged_baggage<C: Extractor + ?Sized>(carrier: &C, key: &str, variant: &str) -> String {
    let mut merge = crate::tag::BaggageMerge::new(key, variant, true);
    carrier.values(BAGGAGE, &mut |line| {
        if merge.line(line) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    // Every kept member is UTF-8, and so are the key and the variant.
    String::from_utf8(merge.finish()).unwrap_or_default()
}

impl Tag {
    /// Writes the tag onto any carrier, as [`Tag::write`] writes it onto an
    /// HTTP request: the header replaced (every earlier value, in any case),
    /// the baggage member merged into the existing `baggage` (all its values
    /// joined into one), either skipped when turned off.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    ///
    /// let mut headers: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    /// headers.insert("X-Gray".into(), b"stable".to_vec());
    /// headers.insert("baggage".into(), b"gray=stable;p=1, b=2".to_vec());
    /// graymatch::Tag::new("gray")?.inject(&mut headers);
    /// assert_eq!(headers["x-gray"], b"gray");
    /// assert_eq!(headers["baggage"], b"b=2,gray=gray");
    /// assert!(!headers.contains_key("X-Gray"));
    /// # Ok::<(), graymatch::InvalidTag>(())
    /// ```
    pub fn inject<C: Injector + ?Sized>(&self, carrier: &mut C) {
        if let Some(header) = self.header() {
            carrier.replace(header, self.variant());
        }
        if let Some(key) = self.baggage_key() {
            let merged = merged_baggage(carrier, key, self.variant());
            carrier.replace(BAGGAGE, &merged);
        }
    }
}

impl Matcher {
    /// The tag `carrier` carries, when this rule set trusts incoming tags
    /// (`propagation.incoming: trust`) and the tag names a declared variant:
    /// the configured header first, then the baggage member. `None`
    /// otherwise (no tag, an unknown name, or `incoming: ignore`).
    ///
    /// The returned tag has this rule set's propagation settings, ready to
    /// be put in scope or written on.
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_json(r#"{"default": "stable",
    ///     "variants": ["stable", "gray"], "propagation": {"incoming": "trust"}}"#)?.compile()?;
    /// let cases: &[(&str, &[(&str, &[u8])], Option<&str>)] = &[
    ///     ("header", &[("x-gray", b"gray")], Some("gray")),
    ///     ("baggage", &[("baggage", b"a=1,gray=gray")], Some("gray")),
    ///     ("header before baggage", &[("baggage", b"gray=stable"), ("x-gray", b"gray")], Some("gray")),
    ///     ("unknown header, baggage read", &[("x-gray", b"v9"), ("baggage", b"gray=gray")], Some("gray")),
    ///     ("unknown name", &[("x-gray", b"v9")], None),
    ///     ("not UTF-8", &[("x-gray", b"gr\xffay")], None),
    /// ];
    /// for (name, headers, want) in cases {
    ///     assert_eq!(m.extract(*headers).map(|t| t.variant()), *want, "{name}");
    /// }
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn extract<C: Extractor + ?Sized>(&self, carrier: &C) -> Option<Tag> {
        if !self.trusts_incoming() {
            return None;
        }
        // A halted variant's tag is not trusted: the message goes to the
        // default, as a request would.
        self.read_tag(carrier)
            .filter(|t| !self.halted().any(|h| h == t.variant()))
    }

    /// The declared variant `carrier`'s tag names, whether or not this rule
    /// set trusts incoming tags: for a consumer that decides trust itself
    /// (per producer), and for logs. Header first, then baggage; unknown
    /// names are ignored.
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_json(r#"{"default": "stable", "variants": ["stable", "gray"]}"#)?.compile()?;
    /// let headers = [("x-gray", "gray")];
    /// assert_eq!(m.extract(&headers[..]), None);
    /// assert_eq!(m.read_tag(&headers[..]).map(|t| t.variant()), Some("gray"));
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn read_tag<C: Extractor + ?Sized>(&self, carrier: &C) -> Option<Tag> {
        let index = |name: &[u8]| self.variants.iter().position(|v| v.as_bytes() == name);
        let found = self
            .tagging
            .header
            .and_then(|h| first_value(carrier, h.as_str(), index).flatten())
            .or_else(|| {
                let key = self.tagging.baggage?;
                baggage(carrier, key, |raw| scan::with_decoded(raw, false, index)).flatten()
            })?;
        let variant = self.variants[found];
        Some(self.tag(&Decision::new(
            variant,
            None,
            Reason::Propagated,
            self.version_id,
        )))
    }

    /// Decides a message or job by its carrier: a trusted tag naming a
    /// declared variant decides it ([`Reason::Propagated`]); else the
    /// default variant ([`Reason::Default`]). Rules are not evaluated: they
    /// read HTTP requests, and a message has none (decide at the producer,
    /// whose request it is, and carry the tag).
    ///
    /// ```
    /// use graymatch::Reason;
    /// let m = graymatch::RuleSet::from_json(r#"{"default": "stable",
    ///     "variants": ["stable", "gray"], "propagation": {"incoming": "trust"}}"#)?.compile()?;
    /// let d = m.decide_carrier(&vec![("x-gray".to_owned(), "gray".to_owned())]);
    /// assert_eq!((d.variant(), d.reason()), ("gray", Reason::Propagated));
    /// let d = m.decide_carrier(&Vec::<(String, String)>::new());
    /// assert_eq!((d.variant(), d.reason()), ("stable", Reason::Default));
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn decide_carrier<C: Extractor + ?Sized>(&self, carrier: &C) -> Decision {
        match self.extract(carrier) {
            Some(tag) => Decision::new(tag.variant(), None, Reason::Propagated, self.version_id),
            None => Decision::new(
                self.default_variant(),
                None,
                Reason::Default,
                self.version_id,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleSet;

    fn trusting() -> Matcher {
        let mut rules = RuleSet::new("stable");
        rules.variants = Some(vec!["stable".into(), "gray".into(), "v.2".into()]);
        rules.propagation.incoming = crate::Incoming::Trust;
        rules.compile().unwrap()
    }

    fn pairs(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect()
    }

    #[test]
    fn inject_matches_http_write() {
        // Every baggage case of Tag::write, through the carrier path on a
        // HeaderMap and on a list of pairs.
        let cases: &[(&str, &[&str])] = &[
            ("no baggage", &[]),
            ("other member kept", &["a=1"]),
            ("old member replaced", &["gray=v1,a=1"]),
            ("properties kept", &["a=1;p=2"]),
            ("spaces trimmed", &["  a=1 ,  b=2  "]),
            ("repeated lines joined", &["a=1", "gray=x", "b=2"]),
            ("empty members dropped", &[",,a=1,,"]),
            ("key with spaces", &[" gray = x ;q"]),
            ("prefix key is another key", &["grayish=1"]),
        ];
        let tag = Tag::new("v2").unwrap();
        for (name, lines) in cases {
            let mut http = HeaderMap::new();
            let mut list: Vec<(String, String)> = Vec::new();
            for l in *lines {
                http.append("baggage", l.parse().unwrap());
                list.push(("baggage".into(), (*l).into()));
            }
            let mut via_carrier = http.clone();
            tag.write(&mut http);
            tag.inject(&mut via_carrier);
            tag.inject(&mut list);
            assert_eq!(http, via_carrier, "case {name}");
            let want = http["baggage"].to_str().unwrap();
            let got: Vec<&str> = list
                .iter()
                .filter(|(k, _)| k == "baggage")
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(got, [want], "case {name}");
            assert_eq!(
                list.iter().filter(|(k, _)| k == "x-gray").count(),
                1,
                "case {name}"
            );
        }
    }

    #[test]
    fn inject_cases() {
        let tag = Tag::new("gray").unwrap();
        let cases: &[(&str, &[(&str, &[u8])], &[(&str, &[u8])])] = &[
            (
                "empty",
                &[],
                &[("x-gray", b"gray"), ("baggage", b"gray=gray")],
            ),
            (
                "old header in another case replaced in place",
                &[("X-Gray", b"stable"), ("id", b"7")],
                &[("x-gray", b"gray"), ("id", b"7"), ("baggage", b"gray=gray")],
            ),
            (
                "baggage in two values and two cases joined",
                &[("baggage", b"a=1"), ("Baggage", b"b=2")],
                &[("baggage", b"a=1,b=2,gray=gray"), ("x-gray", b"gray")],
            ),
            (
                "non-UTF-8 member dropped",
                &[("baggage", b"a=\xff,b=2")],
                &[("baggage", b"b=2,gray=gray"), ("x-gray", b"gray")],
            ),
            (
                "non-UTF-8 header replaced",
                &[("x-gray", b"\xfe\xff")],
                &[("x-gray", b"gray"), ("baggage", b"gray=gray")],
            ),
        ];
        for (name, before, after) in cases {
            let mut c = pairs(before);
            tag.inject(&mut c);
            assert_eq!(c, pairs(after), "case {name}");
        }
    }

    #[test]
    fn inject_respects_turned_off_keys() {
        let m = RuleSet::from_json(
            r#"{"default": "stable", "propagation": {"header": "x-lane", "baggage": null}}"#,
        )
        .unwrap()
        .compile()
        .unwrap();
        let tag = m.tag(&m.decide(&http::Request::new(())));
        let mut c: Vec<(String, String)> = vec![("baggage".into(), "gray=gray".into())];
        tag.inject(&mut c);
        assert_eq!(
            c,
            [
                ("baggage".to_owned(), "gray=gray".to_owned()),
                ("x-lane".to_owned(), "stable".to_owned())
            ]
        );
    }

    #[test]
    fn oversized_baggage_cases() {
        let tag = Tag::new("gray").unwrap();
        // 400 members: the tag is kept, the total stays within 180.
        let many = (0..400)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let mut c: Vec<(String, String)> = vec![("baggage".into(), many.clone())];
        tag.inject(&mut c);
        let out = &c[0].1;
        assert_eq!(out.split(',').count(), scan::BAGGAGE_MAX_MEMBERS);
        assert!(out.ends_with(",gray=gray"));
        // One member bigger than the limit: only the tag is left.
        let mut c: Vec<(String, String)> =
            vec![("baggage".into(), format!("big={}", "x".repeat(9000)))];
        tag.inject(&mut c);
        assert_eq!(c[0].1, "gray=gray");
        // Reading: a member past the limits is not seen.
        let m = trusting();
        let late = vec![("baggage".to_owned(), format!("{many},gray=gray"))];
        assert_eq!(m.extract(&late), None);
        let late = vec![(
            "baggage".to_owned(),
            format!("pad={},gray=gray", "x".repeat(8200)),
        )];
        assert_eq!(m.extract(&late), None);
    }

    #[test]
    fn extract_cases() {
        let m = trusting();
        let cases: &[(&str, &[(&str, &[u8])], Option<&str>)] = &[
            ("none", &[], None),
            ("header", &[("x-gray", b"gray")], Some("gray")),
            ("header any case", &[("X-GRAY", b"gray")], Some("gray")),
            ("value case matters", &[("x-gray", b"Gray")], None),
            (
                "first header value only",
                &[("x-gray", b"v9"), ("x-gray", b"gray")],
                None,
            ),
            (
                "baggage",
                &[("baggage", b"a=1, gray = gray ;p")],
                Some("gray"),
            ),
            (
                "baggage decoded",
                &[("baggage", b"gray=v%2E2")],
                Some("v.2"),
            ),
            (
                "baggage across values",
                &[("baggage", b"a=1"), ("baggage", b"gray=gray")],
                Some("gray"),
            ),
            (
                "header wins",
                &[("baggage", b"gray=stable"), ("x-gray", b"gray")],
                Some("gray"),
            ),
            (
                "unknown header falls to baggage",
                &[("x-gray", b"nope"), ("baggage", b"gray=gray")],
                Some("gray"),
            ),
            ("non-UTF-8 header", &[("x-gray", b"\xff")], None),
            (
                "non-UTF-8 baggage member skipped",
                &[("baggage", b"a=\xff,gray=gray")],
                Some("gray"),
            ),
            ("member without value", &[("baggage", b"gray")], None),
            ("oversized header value", &[("x-gray", &[b'g'; 100])], None),
        ];
        for (name, headers, want) in cases {
            let c = pairs(headers);
            assert_eq!(m.extract(&c).map(|t| t.variant()), *want, "case {name}");
            let mut http = HeaderMap::new();
            for (k, v) in *headers {
                if let Ok(v) = HeaderValue::from_bytes(v) {
                    http.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v);
                }
            }
            // Same answer as the HTTP path wherever HTTP can hold the bytes.
            if headers
                .iter()
                .all(|(_, v)| HeaderValue::from_bytes(v).is_ok())
            {
                let req = {
                    let mut r = http::Request::new(());
                    *r.headers_mut() = http.clone();
                    r
                };
                let d = m.decide(&req);
                assert_eq!(
                    want.unwrap_or("stable"),
                    d.variant(),
                    "case {name}: HTTP disagrees"
                );
            }
        }
    }

    #[test]
    fn extracted_tag_carries_the_rule_sets_keys() {
        let m = RuleSet::from_json(
            r#"{"default": "stable", "variants": ["stable", "gray"],
                "propagation": {"header": "x-lane", "baggage": "lane", "incoming": "trust"}}"#,
        )
        .unwrap()
        .compile()
        .unwrap();
        let c = vec![("baggage", "lane=gray")];
        let tag = m.extract(c.as_slice()).unwrap();
        assert_eq!(
            (tag.variant(), tag.header(), tag.baggage_key()),
            ("gray", Some("x-lane"), Some("lane"))
        );
        // The default keys are not read by this rule set.
        assert_eq!(m.extract([("x-gray", "gray")].as_slice()), None);
    }

    #[test]
    fn maps_are_carriers() {
        let tag = Tag::new("gray").unwrap();
        let mut h: HashMap<String, String> = HashMap::new();
        h.insert("X-Gray".into(), "old".into());
        tag.inject(&mut h);
        assert_eq!(h.len(), 2);
        assert_eq!(h["x-gray"], "gray");
        assert_eq!(h["baggage"], "gray=gray");
        assert_eq!(trusting().extract(&h).map(|t| t.variant()), Some("gray"));
    }

    #[test]
    fn untrusting_matcher_reads_but_does_not_extract() {
        let m = RuleSet::new("stable").compile().unwrap();
        let c = [("x-gray", "stable")];
        assert_eq!(m.extract(c.as_slice()), None);
        assert_eq!(
            m.read_tag(c.as_slice()).map(|t| t.variant()),
            Some("stable")
        );
        assert_eq!(m.decide_carrier(c.as_slice()).reason(), Reason::Default);
    }
}
