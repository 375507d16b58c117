//! Kafka record headers as a tag carrier, for any Kafka client: no client
//! crate is a dependency (rdkafka needs librdkafka and a C build), only the
//! shape every client's headers have, a list of `(key, Option<bytes>)`.
//!
//! - Reading: [`RecordHeaders`] wraps a closure that lists the headers, so
//!   it fits rdkafka's `BorrowedHeaders`/`OwnedHeaders` (`Headers::iter`
//!   yields `Header { key: &str, value: Option<&[u8]> }`), rskafka's and
//!   kafka-protocol's maps, or anything else.
//! - Writing: [`KafkaHeaders`] is an owned list that takes the tag and is
//!   turned back into the client's type (rdkafka's `OwnedHeaders` cannot
//!   remove a header, so build a new one from the list).
//!
//! Kafka has no broker-side filter and no consumer liveness a client can
//! read without the admin API, so lanes are the client's: every group
//! (`<group>` for the base, `<group>_<variant>` for a lane, as MSE names
//! them) reads the whole topic, and [`Lane::route`](crate::Lane::route)
//! says, per record, to process, skip (commit without handling), or
//! reroute; feed it liveness from heartbeats you publish (a compacted
//! `_graymatch_lanes` topic, for example) through
//! [`Liveness`](crate::Liveness). Commit skipped records like handled ones.
//!
//! ```
//! use graymatch_messaging::kafka::{KafkaHeaders, RecordHeaders};
//!
//! // rdkafka's header shape, without rdkafka.
//! struct Header<'a> { key: &'a str, value: Option<&'a [u8]> }
//! let record: Vec<Header<'_>> = vec![
//!     Header { key: "trace", value: Some(b"1") },
//!     Header { key: "x-gray", value: Some(b"gray") },
//! ];
//!
//! let rules = graymatch::RuleSet::from_yaml(
//!     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}")?.compile()?;
//! let headers = RecordHeaders(|| record.iter().map(|h| (h.key, h.value)));
//! assert_eq!(rules.extract(&headers).map(|t| t.variant()), Some("gray"));
//!
//! // A producer: stamp the tag, then build the client's headers from the list.
//! let mut out = KafkaHeaders::from_iter(record.iter().map(|h| (h.key, h.value)));
//! graymatch::Tag::new("stable")?.inject(&mut out);
//! let pairs: Vec<(&str, Option<&[u8]>)> = out.iter().collect();
//! assert_eq!(pairs, [
//!     ("trace", Some(&b"1"[..])),
//!     ("x-gray", Some(&b"stable"[..])),
//!     ("baggage", Some(&b"gray=stable"[..])),
//! ]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::ControlFlow;

use graymatch::Tag;
use graymatch::carrier::{Extractor, Injector};

/// Record headers listed by a closure: `|| headers.iter().map(|h| (h.key,
/// h.value))`. A header with no value (`None`) is not a tag value.
#[derive(Clone, Copy, Debug)]
pub struct RecordHeaders<F>(pub F);

impl<'a, F, I> Extractor for RecordHeaders<F>
where
    F: Fn() -> I,
    I: Iterator<Item = (&'a str, Option<&'a [u8]>)>,
{
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        for (k, v) in (self.0)() {
            if let Some(v) = v
                && k.eq_ignore_ascii_case(key)
                && f(v).is_break()
            {
                return;
            }
        }
    }
}

/// Record headers as an owned list, in order, repeats allowed (as Kafka
/// allows them).
///
/// ```
/// use graymatch_messaging::kafka::KafkaHeaders;
/// let mut h = KafkaHeaders::new();
/// h.push("x-gray", Some(b"old".to_vec()));
/// graymatch::Tag::new("gray")?.inject(&mut h);
/// assert_eq!(h.iter().filter(|(k, _)| *k == "x-gray").count(), 1);
/// # Ok::<(), graymatch::InvalidTag>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaHeaders {
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl KafkaHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header.
    pub fn push(&mut self, key: impl Into<String>, value: Option<Vec<u8>>) {
        self.headers.push((key.into(), value));
    }

    /// The headers, in order, to build the client's type from.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// The headers, owned.
    pub fn into_vec(self) -> Vec<(String, Option<Vec<u8>>)> {
        self.headers
    }
}

impl<'a> FromIterator<(&'a str, Option<&'a [u8]>)> for KafkaHeaders {
    fn from_iter<T: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>>(iter: T) -> Self {
        KafkaHeaders {
            headers: iter
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.map(<[u8]>::to_vec)))
                .collect(),
        }
    }
}

impl Extractor for KafkaHeaders {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        RecordHeaders(|| self.iter()).values(key, f);
    }
}

/// The new header goes where the first old one was, else at the end.
impl Injector for KafkaHeaders {
    fn replace(&mut self, key: &str, value: &str) {
        let at = self
            .headers
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(key));
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        let header = (key.to_owned(), Some(value.as_bytes().to_vec()));
        match at {
            Some(i) => self.headers.insert(i, header),
            None => self.headers.push(header),
        }
    }
}

/// `headers` with the current scope's tag (if any), and the tag.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use graymatch_messaging::kafka::{stamp, KafkaHeaders};
/// let tag = graymatch::Tag::new("gray").unwrap();
/// let (h, t) = graymatch_tower::scope::scope(tag, async { stamp(KafkaHeaders::new()) }).await;
/// assert_eq!((h.iter().count(), t), (2, Some(tag)));
/// assert_eq!(stamp(KafkaHeaders::new()).1, None);
/// # }
/// ```
pub fn stamp(mut headers: KafkaHeaders) -> (KafkaHeaders, Option<Tag>) {
    let tag = graymatch_tower::scope::current();
    if let Some(tag) = tag {
        tag.inject(&mut headers);
    }
    (headers, tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Lane};
    use std::sync::Arc;

    /// rdkafka's `Header` and `OwnedHeaders` shapes, without rdkafka.
    struct Header<'a, V> {
        key: &'a str,
        value: Option<V>,
    }
    struct OwnedHeaders(Vec<(String, Option<Vec<u8>>)>);
    impl OwnedHeaders {
        fn iter(&self) -> impl Iterator<Item = Header<'_, &[u8]>> {
            self.0.iter().map(|(k, v)| Header {
                key: k.as_str(),
                value: v.as_deref(),
            })
        }
    }

    fn rules() -> Arc<graymatch::Matcher> {
        Arc::new(
            graymatch::RuleSet::from_yaml(
                "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}",
            )
            .unwrap()
            .compile()
            .unwrap(),
        )
    }

    #[test]
    fn record_header_cases() {
        let m = rules();
        let cases: &[(&str, &[(&str, Option<&[u8]>)], Option<&str>)] = &[
            ("tag", &[("x-gray", Some(b"gray"))], Some("gray")),
            (
                "null value",
                &[("x-gray", None), ("baggage", Some(b"gray=gray"))],
                Some("gray"),
            ),
            (
                "repeated: first wins",
                &[("x-gray", Some(b"gray")), ("x-gray", Some(b"stable"))],
                Some("gray"),
            ),
            ("not UTF-8", &[("x-gray", Some(b"\xffgray"))], None),
            (
                "oversized baggage",
                &[("baggage", Some(&[b'x'; 9000][..]))],
                None,
            ),
            ("none", &[], None),
        ];
        for (name, headers, want) in cases {
            let owned = OwnedHeaders(
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.map(<[u8]>::to_vec)))
                    .collect(),
            );
            let carrier = RecordHeaders(|| owned.iter().map(|h| (h.key, h.value)));
            assert_eq!(
                m.extract(&carrier).map(|t| t.variant()),
                *want,
                "case {name}"
            );
        }
    }

    #[test]
    fn client_side_lanes_over_a_topic() {
        // Every group reads every record: each record is handled by exactly
        // one group, by lane and liveness.
        let m = rules();
        let base = Lane::new(m.clone(), "orders", "stable").unwrap();
        let gray = Lane::new(m, "orders", "gray").unwrap();
        for live in [true, false] {
            let mut handled = [0usize; 2];
            for i in 0..1000 {
                let mut h = KafkaHeaders::new();
                if i % 3 != 0 {
                    let v = if i % 3 == 1 { "gray" } else { "stable" };
                    Tag::new(v).unwrap().inject(&mut h);
                }
                let b = base.route(&h, true, |v| live && v == "gray");
                let g = gray.route(&h, true, |_| false);
                handled[0] += usize::from(b.action != Action::Skip);
                // A gray consumer that is down handles nothing.
                handled[1] += usize::from(live && g.action != Action::Skip);
            }
            assert_eq!(handled[0] + handled[1], 1000, "live={live}");
            let want_gray = if live { 333 } else { 0 };
            assert_eq!(handled[1], want_gray, "live={live}");
        }
    }
}
