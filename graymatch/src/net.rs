//! Networks for the `cidr` operation, and IP addresses read from request
//! bytes without allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// The networks of one `cidr` leaf, split by family. IPv4-mapped IPv6
/// networks and addresses are held and compared as IPv4.
#[derive(Debug)]
pub(crate) struct Networks {
    v4: Box<[Ipv4Net]>,
    v6: Box<[Ipv6Net]>,
}

impl Networks {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host).
    /// `Err` names the first entry that does not parse.
    pub(crate) fn new(list: &[String]) -> Result<Self, String> {
        if list.is_empty() {
            return Err("`cidr` needs at least one network".into());
        }
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for text in list {
            let bad = || {
                format!(
                    "{text:?} is not a network: write an address with a prefix length \
                     (10.0.0.0/8, 2001:db8::/32) or a bare address"
                )
            };
            let net: ipnet::IpNet = match text.parse() {
                Ok(net) => net,
                Err(_) => text.parse::<IpAddr>().map_err(|_| bad())?.into(),
            };
            match net {
                ipnet::IpNet::V4(n) => v4.push(n.trunc()),
                ipnet::IpNet::V6(n) => match n.network().to_ipv4_mapped() {
                    Some(a) if n.prefix_len() >= 96 => {
                        v4.push(
                            Ipv4Net::new(a, n.prefix_len() - 96)
                                .map_err(|_| bad())?
                                .trunc(),
                        );
                    }
                    _ => v6.push(n.trunc()),
                },
            }
        }
        Ok(Networks {
            v4: v4.into(),
            v6: v6.into(),
        })
    }

    /// Whether `ip` is inside one of the networks.
    #[inline]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => self.v4.iter().any(|n| n.contains(&a)),
            IpAddr::V6(a) => self.v6.iter().any(|n| n.contains(&a)),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as the IPv4 address it
/// carries; any other address as it is.
#[inline]
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// An address in a request's value: `1.2.3.4`, `2001:db8::1`, or a
/// bracketed IPv6 literal (`[2001:db8::1]`, as the host leaf gives it). A
/// zone index (`fe80::1%eth0`), a port or anything else does not parse.
#[inline]
pub(crate) fn parse_ip(v: &[u8]) -> Option<IpAddr> {
    let v = match v {
        [b'[', inner @ .., b']'] => {
            return std::str::from_utf8(inner)
                .ok()?
                .parse::<Ipv6Addr>()
                .ok()
                .map(IpAddr::V6);
        }
        v => v,
    };
    // The longest textual address is 45 bytes (IPv4-mapped IPv6).
    if v.len() > 45 {
        return None;
    }
    let text = std::str::from_utf8(v).ok()?;
    if text.contains(':') {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// Writes `ip` as text into a stack buffer and calls `f` with it, so string
/// operations on `client_ip` allocate nothing.
#[inline]
pub(crate) fn with_text<T>(ip: IpAddr, f: impl FnOnce(&[u8]) -> T) -> T {
    use std::io::Write as _;
    // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`: string
    // ops see `a.b.c.d`, as `cidr` does.
    let ip = canonical(ip);
    let mut buf = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // 48 bytes hold any address's text: the write cannot fail.
    let _ = write!(cursor, "{ip}");
    let len = cursor.position() as usize;
    f(&buf[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_cases() {
        // (case, networks, address, inside)
        let cases: &[(&str, &[&str], &str, bool)] = &[
            ("v4 inside", &["10.0.0.0/8"], "10.2.3.4", true),
            ("v4 outside", &["10.0.0.0/8"], "11.0.0.1", false),
            (
                "v4 host bits set in rule",
                &["10.1.2.3/8"],
                "10.9.9.9",
                true,
            ),
            ("bare v4 host", &["192.0.2.7"], "192.0.2.7", true),
            ("bare v4 host other", &["192.0.2.7"], "192.0.2.8", false),
            ("v6 inside", &["2001:db8::/32"], "2001:db8::42", true),
            ("v6 outside", &["2001:db8::/32"], "2001:db9::1", false),
            (
                "mapped request as v4",
                &["10.0.0.0/8"],
                "::ffff:10.1.1.1",
                true,
            ),
            (
                "mapped rule as v4",
                &["::ffff:10.0.0.0/104"],
                "10.1.1.1",
                true,
            ),
            ("v4 not in v6 net", &["::/0"], "10.1.1.1", false),
            ("all v4", &["0.0.0.0/0"], "203.0.113.9", true),
            ("bracketed v6", &["2001:db8::/32"], "[2001:db8::1]", true),
        ];
        for (name, nets, addr, want) in cases {
            let nets =
                Networks::new(&nets.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
            let ip = parse_ip(addr.as_bytes()).unwrap();
            assert_eq!(nets.contains(ip), *want, "case {name}");
        }
    }

    #[test]
    fn unparsable_values() {
        for v in [
            "fe80::1%eth0",
            "10.0.0.1:80",
            "010.0.0.1",
            "10.0.0",
            "",
            "[10.0.0.1]",
            "host",
        ] {
            assert_eq!(parse_ip(v.as_bytes()), None, "{v:?}");
        }
        assert_eq!(parse_ip(&[0xff, 0xfe]), None);
    }

    #[test]
    fn bad_networks() {
        for n in ["10.0.0.0/33", "10.0.0.0/", "abc", "2001:db8::/129", ""] {
            assert!(Networks::new(&[n.to_owned()]).is_err(), "{n:?}");
        }
        assert!(Networks::new(&[]).is_err());
    }

    #[test]
    fn text_of_addresses() {
        for a in [
            "10.0.0.1",
            "2001:db8::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            with_text(ip, |t| assert_eq!(t, ip.to_string().as_bytes()));
        }
        with_text("::ffff:1.2.3.4".parse().unwrap(), |t| {
            assert_eq!(t, b"1.2.3.4")
        });
    }
}
