//! A deliberately simple interpreter of the rule-set model, written straight
//! from RULES.md with owned maps and strings: the oracle for the compiled
//! matcher. It returns `None` where the outcome is a random draw.

use graymatch::{Algorithm, Condition, Incoming, Missing, Op, RuleSet, Test};
use http::Request;

/// `(variant, rule)`, or `None` when a random draw decides.
pub type Outcome = Option<(String, Option<String>)>;

pub fn decide(set: &RuleSet, req: &Request<()>) -> Outcome {
    decide_halted(set, req, &[])
}

/// [`decide`] with `halted` variants: a draw landing on one goes on to the
/// next rule, and a trusted tag naming one is not followed.
pub fn decide_halted(set: &RuleSet, req: &Request<()>, halted: &[String]) -> Outcome {
    let variants: Vec<String> = match &set.variants {
        Some(v) => v.clone(),
        None => {
            let mut v = vec![set.default.clone()];
            for r in &set.rules {
                for t in targets(r) {
                    if !v.contains(&t.0) {
                        v.push(t.0);
                    }
                }
            }
            v
        }
    };
    if set.propagation.incoming == Incoming::Trust {
        if let Some(h) = &set.propagation.header
            && let Some(v) = req.headers().get(h.as_str())
            && let Some(found) = variants.iter().find(|x| x.as_bytes() == v.as_bytes())
        {
            // The header names a variant: it alone counts (a halted one
            // is not followed, and the baggage is not read).
            if !halted.contains(found) {
                return Some((found.clone(), None));
            }
        } else if let Some(key) = &set.propagation.baggage {
            let mut members = Vec::new();
            for line in req.headers().get_all("baggage") {
                for m in String::from_utf8_lossy(line.as_bytes()).split(',') {
                    members.push(m.trim().to_owned());
                }
            }
            let found = members.iter().filter(|m| !m.is_empty()).find_map(|m| {
                let kv = m.split(';').next().unwrap();
                let (k, v) = kv.split_once('=')?;
                (k.trim() == key).then(|| decode(v.trim().as_bytes(), false))
            });
            if let Some(v) = found
                && let Some(found) = variants.iter().find(|x| x.as_bytes() == v.as_slice())
                && !halted.contains(found)
            {
                return Some((found.clone(), None));
            }
        }
    }
    'rules: for rule in &set.rules {
        if rule.when.as_ref().is_some_and(|c| !holds(c, req)) {
            continue;
        }
        let ts = targets(rule);
        let total: f64 = ts.iter().map(|t| t.1).sum();
        let draw: f64 = match &rule.sticky {
            None if ts.len() == 1 && total >= 100.0 => 0.0,
            None if total == 0.0 => continue,
            None => return None,
            Some(s) => {
                let key = if let Some(h) = &s.header {
                    req.headers().get(h.as_str()).map(|v| v.as_bytes().to_vec())
                } else if let Some(c) = &s.cookie {
                    values(
                        &Condition::Cookie(graymatch::Field::new(c.clone(), Op::Present(true))),
                        req,
                    )
                    .into_iter()
                    .next()
                } else {
                    let q = s.query.clone().unwrap();
                    values(
                        &Condition::Query(graymatch::Field::new(q, Op::Present(true))),
                        req,
                    )
                    .into_iter()
                    .next()
                };
                match key {
                    Some(k) => {
                        let salt = s.salt.clone().unwrap_or_else(|| rule.name.clone());
                        let mut bytes = format!("{salt}:").into_bytes();
                        bytes.extend_from_slice(&k);
                        let h = murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0).unwrap();
                        match s.algorithm {
                            Algorithm::Graymatch => f64::from(h % 1_000_000) / 10_000.0,
                            // n in 1..=100 lands in a target when n <= cumulative.
                            Algorithm::Unleash => f64::from(h % 100 + 1) - 0.5,
                        }
                    }
                    None if s.missing == Missing::Skip => continue,
                    None if total == 0.0 => continue,
                    None if total >= 100.0 && ts.len() == 1 => 0.0,
                    None => return None,
                }
            }
        };
        let mut cum = 0.0;
        for (to, p) in &ts {
            cum += p;
            if *p > 0.0 && draw < cum {
                if halted.contains(to) {
                    continue 'rules;
                }
                return Some((to.clone(), Some(rule.name.clone())));
            }
        }
    }
    Some((set.default.clone(), None))
}

fn targets(rule: &graymatch::Rule) -> Vec<(String, f64)> {
    match (&rule.to, &rule.split) {
        (Some(to), _) => vec![(to.clone(), rule.percent.unwrap_or(100.0))],
        (None, Some(split)) => split.iter().map(|t| (t.to.clone(), t.percent)).collect(),
        _ => vec![],
    }
}

fn holds(c: &Condition, req: &Request<()>) -> bool {
    match c {
        Condition::All(cs) => cs.iter().all(|c| holds(c, req)),
        Condition::Any(cs) => cs.iter().any(|c| holds(c, req)),
        Condition::Not(c) => !holds(c, req),
        Condition::Header(f) | Condition::Cookie(f) | Condition::Query(f) => {
            test(&f.test, &values(c, req))
        }
        Condition::Path(t) => test(t, &[req.uri().path().as_bytes().to_vec()]),
        Condition::Method(t) => test(t, &[req.method().as_str().as_bytes().to_vec()]),
        Condition::Host(t) => {
            let mut t = t.clone();
            t.ignore_case = !matches!(t.op, Op::Present(_) | Op::Cidr(_)) && t.value_type.is_none();
            // A rule's host names the host with or without one trailing dot.
            let undot = |v: &String| v.strip_suffix('.').unwrap_or(v).to_owned();
            if t.value_type.is_none() {
                match &mut t.op {
                    Op::Equals(v) => *v = undot(v),
                    Op::In(list) => list.iter_mut().for_each(|v| *v = undot(v)),
                    _ => {}
                }
            }
            test(&t, &host(req).into_iter().collect::<Vec<_>>())
        }
        Condition::ClientIp(t) => {
            let ip = req.extensions().get::<graymatch::ClientIp>();
            // An IPv4-mapped address reads as IPv4.
            let text = ip.map(|ip| match ip.0 {
                std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => v4.to_string(),
                    None => v6.to_string(),
                },
                v4 => v4.to_string(),
            });
            test(
                t,
                &text.map(String::into_bytes).into_iter().collect::<Vec<_>>(),
            )
        }
    }
}

/// The host as RULES.md says: URI authority, else the first Host header;
/// port removed (IPv6 keeps brackets), lowercased, one trailing dot removed.
fn host(req: &Request<()>) -> Option<Vec<u8>> {
    let raw = match req.uri().authority() {
        Some(a) => a.as_str().rsplit('@').next().unwrap().to_owned(),
        None => String::from_utf8_lossy(req.headers().get("host")?.as_bytes()).into_owned(),
    };
    let mut h = if raw.starts_with('[') {
        match raw.find(']') {
            Some(end) => raw[..=end].to_owned(),
            None => raw,
        }
    } else {
        match raw.rfind(':') {
            Some(c) => raw[..c].to_owned(),
            None => raw,
        }
    };
    if h.ends_with('.') {
        h.pop();
    }
    (!h.is_empty()).then(|| h.to_ascii_lowercase().into_bytes())
}

/// Every occurrence of the field, decoded.
fn values(c: &Condition, req: &Request<()>) -> Vec<Vec<u8>> {
    match c {
        Condition::Header(f) => req
            .headers()
            .iter()
            .filter(|(n, _)| n.as_str().eq_ignore_ascii_case(&f.name))
            .map(|(_, v)| v.as_bytes().to_vec())
            .collect(),
        Condition::Cookie(f) => {
            let mut out = Vec::new();
            for line in req.headers().get_all("cookie") {
                for pair in line.as_bytes().split(|b| *b == b';') {
                    let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                        continue;
                    };
                    let name = trim(&pair[..eq]);
                    let same = if f.name_ignore_case {
                        name.eq_ignore_ascii_case(f.name.as_bytes())
                    } else {
                        name == f.name.as_bytes()
                    };
                    if same {
                        let mut v = trim(&pair[eq + 1..]).to_vec();
                        if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
                            v = v[1..v.len() - 1].to_vec();
                        }
                        out.push(v);
                    }
                }
            }
            out
        }
        Condition::Query(f) => {
            let q = req.uri().query().unwrap_or("");
            q.split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(n.as_bytes(), true) == f.name.as_bytes())
                        .then(|| decode(v.as_bytes(), true))
                })
                .collect()
        }
        _ => unreachable!(),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(s, |i| i + 1);
    &b[s..e]
}

fn decode(raw: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'+' && plus {
            out.push(b' ');
        } else if c == b'%' && i + 2 < raw.len() {
            let h = std::str::from_utf8(&raw[i + 1..i + 3])
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok());
            match h {
                Some(b) if raw[i + 1].is_ascii_hexdigit() && raw[i + 2].is_ascii_hexdigit() => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

fn test(t: &Test, values: &[Vec<u8>]) -> bool {
    let low = |b: &[u8]| {
        if t.ignore_case {
            b.to_ascii_lowercase()
        } else {
            b.to_vec()
        }
    };
    let one = |v: &Vec<u8>| -> bool {
        let v = low(v);
        match &t.op {
            Op::Equals(s) => v == low(s.as_bytes()),
            Op::In(list) => list.iter().any(|s| v == low(s.as_bytes())),
            Op::Prefix(s) => v.starts_with(&low(s.as_bytes())),
            Op::Suffix(s) => v.ends_with(&low(s.as_bytes())),
            Op::Contains(s) => {
                let n = low(s.as_bytes());
                n.is_empty() || v.windows(n.len()).any(|w| w == n.as_slice())
            }
            Op::Regex(r) => {
                let re = regex::RegexBuilder::new(&format!("^(?:{r})$"))
                    .case_insensitive(t.ignore_case)
                    .build()
                    .unwrap();
                std::str::from_utf8(&v)
                    .map(|s| re.is_match(s))
                    .unwrap_or(false)
            }
            Op::SegmentPrefix(p) => {
                // Split both on `/`: the prefix's segments (one trailing `/`
                // dropped) are the value's first segments.
                let p = low(p.strip_suffix('/').unwrap_or(p).as_bytes());
                let ps: Vec<&[u8]> = p.split(|b| *b == b'/').collect();
                let vs: Vec<&[u8]> = v.split(|b| *b == b'/').collect();
                vs.len() >= ps.len() && vs[..ps.len()] == ps[..]
            }
            Op::Present(_) | Op::Cidr(_) | Op::Gt(_) | Op::Gte(_) | Op::Lt(_) | Op::Lte(_) => {
                unreachable!()
            }
        }
    };
    if let Some(ty) = t.value_type {
        let (rule, ord): (Vec<&String>, fn(std::cmp::Ordering) -> bool) = match &t.op {
            Op::Equals(s) => (vec![s], |o| o.is_eq()),
            Op::In(l) => (l.iter().collect(), |o| o.is_eq()),
            Op::Gt(s) => (vec![s], |o| o.is_gt()),
            Op::Gte(s) => (vec![s], |o| o.is_ge()),
            Op::Lt(s) => (vec![s], |o| o.is_lt()),
            Op::Lte(s) => (vec![s], |o| o.is_le()),
            _ => unreachable!(),
        };
        return values.iter().any(|v| {
            let v = String::from_utf8_lossy(v);
            rule.iter()
                .any(|r| super::typed::compare(ty, &v, r).is_some_and(ord))
        });
    }
    if let Op::Cidr(nets) = &t.op {
        return values.iter().any(|v| {
            nets.iter()
                .any(|n| super::typed::in_network(&String::from_utf8_lossy(v), n))
        });
    }
    match &t.op {
        Op::Present(p) => values.is_empty() != *p,
        _ => values.iter().any(one),
    }
}
