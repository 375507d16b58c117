//! The client's address: the [`ClientIp`] a `client_ip` leaf reads, and
//! [`ClientIpSource`], which says where a server takes it from.
//!
//! # Trust model
//!
//! A `client_ip` rule is only as good as the address it reads, and most of
//! what a request carries is written by the client. The default source is
//! the connection's peer address, which a client cannot forge (beyond owning
//! the address). Behind proxies, the peer is the nearest proxy, and the
//! client's address is in a header that every proxy appends to: the client
//! can put anything at the *start* of `X-Forwarded-For` or `Forwarded`, but
//! not at the end, where each trusted proxy appends the address it saw. So
//! graymatch counts from the right: with `trusted_hops: n` (the number of
//! proxies you run in front of the service), the client is the `n`-th entry
//! from the right, the one your outermost proxy appended. A value further
//! left is never used. When the header has fewer entries than that, the
//! request did not come through your proxies as configured and has no
//! client address: value operations on `client_ip` do not match and
//! `present: false` holds. A single-value header (`X-Real-IP`,
//! `CF-Connecting-IP`) is trusted only when it occurs exactly once; only use
//! it when your proxy always overwrites it.
//!
//! This mirrors the tag's rule (`incoming: ignore` at the edge): what the
//! client sends decides nothing unless a hop you control vouches for it.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};

use crate::net::parse_ip;

/// The client's address as the server saw it, stored in a request's
/// extensions for `client_ip` leaves. `GrayLayer` (graymatch-tower) inserts
/// it from the connection or a [`ClientIpSource`]; a server that decides by
/// hand inserts it itself.
///
/// ```
/// use graymatch::{ClientIp, RuleSet};
///
/// let m = RuleSet::from_yaml(r#"
/// default: stable
/// rules:
///   - { name: office, to: gray, when: { client_ip: { cidr: [10.0.0.0/8] } } }
/// "#)?.compile()?;
/// let mut req = http::Request::new(());
/// assert_eq!(m.decide(&req).variant(), "stable");
/// req.extensions_mut().insert(ClientIp("10.1.2.3".parse()?));
/// assert_eq!(m.decide(&req).variant(), "gray");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// Where a server takes the client's address from. See the
/// [module docs](self) for the trust model.
///
/// ```
/// use graymatch::ClientIpSource;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2".parse()?);
/// let peer = Some("10.0.0.1".parse()?);
/// // Two proxies of ours: the client is the second entry from the right.
/// let from = ClientIpSource::XForwardedFor { trusted_hops: 2 };
/// assert_eq!(from.client_ip(&headers, peer), Some("203.0.113.7".parse()?));
/// assert_eq!(ClientIpSource::Peer.client_ip(&headers, peer), peer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientIpSource {
    /// The connection's peer address (the default).
    #[default]
    Peer,
    /// `X-Forwarded-For`, with this many proxies of yours in front: the
    /// `trusted_hops`-th address from the right (all lines read as one
    /// list). 0 is the peer address.
    XForwardedFor {
        /// How many proxies you run in front of this service.
        trusted_hops: usize,
    },
    /// RFC 7239 `Forwarded`: the `for=` of the `trusted_hops`-th element
    /// from the right; `unknown` and obfuscated identifiers are no address.
    /// 0 is the peer address.
    Forwarded {
        /// How many proxies you run in front of this service.
        trusted_hops: usize,
    },
    /// A header your proxy sets to the client's address (`x-real-ip`),
    /// trusted only when it occurs exactly once.
    Header(HeaderName),
}

impl ClientIpSource {
    /// The client's address for a request with these headers, arriving from
    /// `peer`; `None` when the source has none (see the trust model).
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        match self {
            ClientIpSource::Peer
            | ClientIpSource::XForwardedFor { trusted_hops: 0 }
            | ClientIpSource::Forwarded { trusted_hops: 0 } => peer,
            ClientIpSource::XForwardedFor { trusted_hops } => {
                nth_from_right(headers, "x-forwarded-for", *trusted_hops, |entry| {
                    address_with_port(trim(entry))
                })
            }
            ClientIpSource::Forwarded { trusted_hops } => {
                nth_from_right(headers, "forwarded", *trusted_hops, forwarded_for)
            }
            ClientIpSource::Header(name) => {
                let mut all = headers.get_all(name).iter();
                match (all.next(), all.next()) {
                    (Some(v), None) => address_with_port(trim(v.as_bytes())),
                    _ => None,
                }
            }
        }
    }
}

/// The `n`-th comma-separated entry from the right across every line of
/// `name` (1-based), read by `read`.
fn nth_from_right(
    headers: &HeaderMap,
    name: &str,
    n: usize,
    read: impl Fn(&[u8]) -> Option<IpAddr>,
) -> Option<IpAddr> {
    let mut seen = 0;
    for line in headers.get_all(name).iter().rev() {
        for entry in line.as_bytes().rsplit(|&b| b == b',') {
            seen += 1;
            if seen == n {
                return read(entry);
            }
        }
    }
    None
}

/// An address, optionally with a port (`1.2.3.4:80`, `[2001:db8::1]:443`),
/// as some proxies write them.
fn address_with_port(v: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = parse_ip(v) {
        return Some(ip);
    }
    if v.first() == Some(&b'[') {
        let end = v.iter().position(|&b| b == b']')?;
        let port = v.get(end + 1..)?.strip_prefix(b":")?;
        return (!port.is_empty() && port.iter().all(u8::is_ascii_digit))
            .then(|| parse_ip(&v[..=end]))
            .flatten();
    }
    let colon = v.iter().rposition(|&b| b == b':')?;
    let (host, port) = (&v[..colon], &v[colon + 1..]);
    if port.is_empty() || !port.iter().all(u8::is_ascii_digit) || host.contains(&b':') {
        return None;
    }
    match parse_ip(host)? {
        ip @ IpAddr::V4(_) => Some(ip),
        IpAddr::V6(_) => None,
    }
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    for pair in element.split(|&b| b == b';') {
        let pair = trim(pair);
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if !pair[..eq].eq_ignore_ascii_case(b"for") {
            continue;
        }
        let value = trim(&pair[eq + 1..]);
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        return address_with_port(value);
    }
    None
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn sources() {
        let peer: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let xff = |n| ClientIpSource::XForwardedFor { trusted_hops: n };
        let fwd = |n| ClientIpSource::Forwarded { trusted_hops: n };
        // (case, source, headers, expected)
        let cases: Vec<(&str, ClientIpSource, Vec<(&str, &str)>, Option<&str>)> = vec![
            (
                "peer",
                ClientIpSource::Peer,
                vec![("x-forwarded-for", "1.1.1.1")],
                Some("10.0.0.1"),
            ),
            (
                "xff one hop: rightmost",
                xff(1),
                vec![("x-forwarded-for", "6.6.6.6, 1.2.3.4")],
                Some("1.2.3.4"),
            ),
            (
                "xff two hops",
                xff(2),
                vec![("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.9")],
                Some("1.2.3.4"),
            ),
            (
                "xff zero hops is the peer",
                xff(0),
                vec![("x-forwarded-for", "1.2.3.4")],
                Some("10.0.0.1"),
            ),
            (
                "xff across lines",
                xff(2),
                vec![
                    ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
                    ("x-forwarded-for", "10.0.0.9"),
                ],
                Some("1.2.3.4"),
            ),
            (
                "xff too few entries",
                xff(3),
                vec![("x-forwarded-for", "1.2.3.4, 10.0.0.9")],
                None,
            ),
            ("xff missing", xff(1), vec![], None),
            (
                "xff garbage entry",
                xff(1),
                vec![("x-forwarded-for", "1.2.3.4, nonsense")],
                None,
            ),
            (
                "xff with port",
                xff(1),
                vec![("x-forwarded-for", "1.2.3.4:5678")],
                Some("1.2.3.4"),
            ),
            (
                "xff v6 with port",
                xff(1),
                vec![("x-forwarded-for", "[2001:db8::1]:443")],
                Some("2001:db8::1"),
            ),
            (
                "xff v6",
                xff(1),
                vec![("x-forwarded-for", "2001:db8::1")],
                Some("2001:db8::1"),
            ),
            (
                "forwarded one hop",
                fwd(1),
                vec![(
                    "forwarded",
                    "for=6.6.6.6, for=192.0.2.60;proto=http;by=203.0.113.43",
                )],
                Some("192.0.2.60"),
            ),
            (
                "forwarded quoted v6 with port",
                fwd(1),
                vec![("forwarded", r#"for="[2001:db8:cafe::17]:4711""#)],
                Some("2001:db8:cafe::17"),
            ),
            (
                "forwarded case of key",
                fwd(1),
                vec![("forwarded", "For=192.0.2.1")],
                Some("192.0.2.1"),
            ),
            (
                "forwarded unknown",
                fwd(1),
                vec![("forwarded", "for=unknown")],
                None,
            ),
            (
                "forwarded obfuscated",
                fwd(1),
                vec![("forwarded", "for=_hidden")],
                None,
            ),
            (
                "forwarded no for",
                fwd(1),
                vec![("forwarded", "proto=https")],
                None,
            ),
            (
                "single header",
                ClientIpSource::Header(HeaderName::from_static("x-real-ip")),
                vec![("x-real-ip", "203.0.113.7")],
                Some("203.0.113.7"),
            ),
            (
                "single header twice",
                ClientIpSource::Header(HeaderName::from_static("x-real-ip")),
                vec![("x-real-ip", "203.0.113.7"), ("x-real-ip", "1.1.1.1")],
                None,
            ),
        ];
        for (name, source, pairs, want) in cases {
            let got = source.client_ip(&headers(&pairs), peer);
            assert_eq!(got, want.map(|w| w.parse().unwrap()), "case {name}");
        }
    }

    #[test]
    fn non_utf8_is_no_address() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(&[0xff, b'1']).unwrap(),
        );
        let src = ClientIpSource::XForwardedFor { trusted_hops: 1 };
        assert_eq!(src.client_ip(&h, None), None);
    }
}
