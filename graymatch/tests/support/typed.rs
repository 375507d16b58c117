//! An independent reading of RULES.md's typed values for the oracle:
//! numbers by a grammar regex and `f64`, semver with the `semver` crate,
//! lenient versions mapped onto `semver`'s pre-release ordering, networks
//! with plain bit masks.

use std::cmp::Ordering;
use std::net::IpAddr;

use graymatch::ValueType;

/// How `value` compares with `rule` as `ty`; `None` when either does not
/// parse.
pub fn compare(ty: ValueType, value: &str, rule: &str) -> Option<Ordering> {
    match ty {
        ValueType::Number => number(value)?.partial_cmp(&number(rule)?),
        ValueType::Semver => {
            let (a, b) = (
                semver::Version::parse(value).ok()?,
                semver::Version::parse(rule).ok()?,
            );
            Some(a.cmp_precedence(&b))
        }
        ValueType::Version => {
            let (a, b) = (version(value)?, version(rule)?);
            Some(a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
        }
    }
}

fn number(s: &str) -> Option<f64> {
    let re = regex::Regex::new(r"^[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$").unwrap();
    re.is_match(s).then(|| s.parse().ok()).flatten()
}

fn version(s: &str) -> Option<([u64; 4], semver::Prerelease)> {
    let re = regex::Regex::new(
        r"^[vV]?([0-9]+(?:\.[0-9]+){0,3})(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
    )
    .unwrap();
    let caps = re.captures(s)?;
    let mut parts = [0u64; 4];
    for (i, p) in caps[1].split('.').enumerate() {
        parts[i] = p.parse().ok()?;
    }
    let pre = match caps.get(2) {
        None => semver::Prerelease::EMPTY,
        Some(m) => {
            // Leading zeros of numeric identifiers are allowed here; semver
            // compares the numbers they write.
            let ids: Vec<String> = m
                .as_str()
                .split('.')
                .map(|id| {
                    if id.bytes().all(|b| b.is_ascii_digit()) {
                        let t = id.trim_start_matches('0');
                        if t.is_empty() {
                            "0".to_owned()
                        } else {
                            t.to_owned()
                        }
                    } else {
                        id.to_owned()
                    }
                })
                .collect();
            semver::Prerelease::new(&ids.join(".")).ok()?
        }
    };
    Some((parts, pre))
}

/// Whether `value` (an address, or a bracketed IPv6 literal) is in `net`.
pub fn in_network(value: &str, net: &str) -> bool {
    let value = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .filter(|v| v.contains(':'))
        .unwrap_or(value);
    let Ok(ip) = value.parse::<IpAddr>() else {
        return false;
    };
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (net, None),
    };
    let Ok(net_ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    // IPv4-mapped IPv6 counts as IPv4, on both sides.
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped(),
        IpAddr::V4(a) => Some(a),
    };
    let (ip_bits, ip_v4) = match v4(ip) {
        Some(a) => (u128::from(u32::from(a)), true),
        None => (
            u128::from(match ip {
                IpAddr::V6(a) => a,
                IpAddr::V4(_) => unreachable!(),
            }),
            false,
        ),
    };
    let (net_bits, net_v4, len) = match (net_ip, len) {
        (IpAddr::V4(a), l) => (u128::from(u32::from(a)), true, l.unwrap_or(32)),
        (IpAddr::V6(a), l) => match a.to_ipv4_mapped() {
            Some(m) if l.is_none_or(|l| l >= 96) => {
                (u128::from(u32::from(m)), true, l.map_or(32, |l| l - 96))
            }
            _ => (u128::from(a), false, l.unwrap_or(128)),
        },
    };
    if ip_v4 != net_v4 {
        return false;
    }
    let width = if ip_v4 { 32 } else { 128 };
    let mask = if len == 0 {
        0
    } else {
        (u128::MAX >> (128 - width)) & !((1u128 << (width - len)) - 1)
    };
    ip_bits & mask == net_bits & mask
}
