//! Arbitrary rule sets and requests: the compiled matcher agrees with the
//! naive interpreter of the test suite (where no random draw decides).
#![no_main]

use arbitrary::Arbitrary;
use graymatch::{Algorithm, ClientIp, Condition, Field, Incoming, Missing, Op, Propagation, Rule, RuleSet, Sticky, Target, Test, ValueType};
use libfuzzer_sys::fuzz_target;

#[path = "../../graymatch/tests/support/naive.rs"]
mod naive;
#[path = "../../graymatch/tests/support/typed.rs"]
mod typed;

const VALUES: &[&str] = &[
    "a", "b", "A", "ab", "a b", "", "ba", "%61", "x%zz", "gray", "v1", "5.10", "v5.2.0.1", "1.0.0-rc.1",
    "1.0.0+b", "01.0.0", "1e3", "-0", "20.0", "10.1.2.3", "2001:db8::1", "[2001:db8::1]", "::ffff:10.0.0.1",
    "fe80::1%eth0", "Shop.Example.com.",
];
/// Rule values per type: each parses as its type.
const NUMBERS: &[&str] = &["20", "1e3", "-0", "5.2", "1000"];
const SEMVERS: &[&str] = &["1.0.0", "1.0.0-rc.1", "5.2.0", "1.0.0-alpha.1", "5.10.0"];
const VERSIONS: &[&str] = &["5", "5.2", "5.10", "v5.2.0", "1.0.0-rc.1"];
const NETS: &[&str] = &["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::ffff:10.0.0.0/104", "0.0.0.0/0"];
const NAMES: &[&str] = &["x-a", "x-b", "c", "q", "r s", "gray"];

#[derive(Arbitrary, Debug)]
enum ArbOp { Equals(u8), In(Vec<u8>), Prefix(u8), Suffix(u8), Contains(u8), Regex(u8), Present(bool), Typed(u8, u8, Vec<u8>), Cidr(Vec<u8>) }

#[derive(Arbitrary, Debug)]
enum ArbCond { All(Vec<ArbCond>), Any(Vec<ArbCond>), Not(Box<ArbCond>), Header(u8, ArbOp, bool), Cookie(u8, ArbOp, bool), Query(u8, ArbOp, bool), Path(ArbOp, bool), Method(ArbOp, bool), Host(ArbOp, bool), ClientIp(ArbOp, bool) }

#[derive(Arbitrary, Debug)]
struct ArbRule { when: Option<ArbCond>, to: u8, percent: u8, split: bool, sticky: Option<(u8, bool, bool, bool)> }

#[derive(Arbitrary, Debug)]
struct ArbReq { headers: Vec<(u8, u8)>, cookies: Vec<(u8, u8, bool)>, query: Vec<(u8, u8)>, path: u8, post: bool, tag: u8, host: Option<(u8, bool)>, client: Option<u8> }

#[derive(Arbitrary, Debug)]
struct Input { rules: Vec<ArbRule>, trust: bool, requests: Vec<ArbReq> }

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str { list[usize::from(i) % list.len()] }

fn op(o: &ArbOp) -> Op {
    match o {
        ArbOp::Equals(v) => Op::Equals(pick(VALUES, *v).into()),
        ArbOp::In(vs) if vs.is_empty() => Op::In(vec!["a".into()]),
        ArbOp::In(vs) => Op::In(vs.iter().take(12).map(|v| pick(VALUES, *v).into()).collect()),
        ArbOp::Prefix(v) => Op::Prefix(pick(VALUES, *v).into()),
        ArbOp::Suffix(v) => Op::Suffix(pick(VALUES, *v).into()),
        ArbOp::Contains(v) => Op::Contains(pick(VALUES, *v).into()),
        ArbOp::Regex(v) => Op::Regex(pick(&["a.*", "[ab]+", ".*", "a b", "(?:x|gray)"], *v).into()),
        ArbOp::Present(p) => Op::Present(*p),
        ArbOp::Typed(ty, o, vs) => {
            let pool = match ty % 3 { 0 => NUMBERS, 1 => SEMVERS, _ => VERSIONS };
            let v = |i: Option<&u8>| pick(pool, i.copied().unwrap_or(0)).to_owned();
            match o % 6 {
                0 => Op::Equals(v(vs.first())),
                1 => Op::In(if vs.is_empty() { vec![v(None)] } else { vs.iter().take(4).map(|i| v(Some(i))).collect() }),
                2 => Op::Gt(v(vs.first())),
                3 => Op::Gte(v(vs.first())),
                4 => Op::Lt(v(vs.first())),
                _ => Op::Lte(v(vs.first())),
            }
        }
        ArbOp::Cidr(ns) if ns.is_empty() => Op::Cidr(vec![NETS[0].into()]),
        ArbOp::Cidr(ns) => Op::Cidr(ns.iter().take(4).map(|n| pick(NETS, *n).into()).collect()),
    }
}

fn test(o: &ArbOp, fold: bool) -> Test {
    let value_type = match o {
        ArbOp::Typed(ty, ..) => Some([ValueType::Number, ValueType::Semver, ValueType::Version][usize::from(*ty % 3)]),
        _ => None,
    };
    let string = !matches!(o, ArbOp::Present(_) | ArbOp::Typed(..) | ArbOp::Cidr(_));
    Test { ignore_case: fold && string, op: op(o), value_type }
}

fn cond(c: &ArbCond, depth: usize) -> Condition {
    let list = |cs: &Vec<ArbCond>| cs.iter().take(4).map(|c| cond(c, depth + 1)).collect();
    if depth > 6 { return Condition::All(vec![]); }
    match c {
        ArbCond::All(cs) => Condition::All(list(cs)),
        ArbCond::Any(cs) => Condition::Any(list(cs)),
        ArbCond::Not(c) => Condition::Not(Box::new(cond(c, depth + 1))),
        ArbCond::Header(n, o, f) => Condition::Header(Field { name: pick(&NAMES[..2], *n).into(), test: test(o, *f), name_ignore_case: false }),
        ArbCond::Cookie(n, o, f) => Condition::Cookie(Field { name: pick(&["c", "d", "gray", "C"], *n).into(), test: test(o, *f), name_ignore_case: *n % 2 == 1 }),
        ArbCond::Query(n, o, f) => Condition::Query(Field { name: pick(&["q", "r s"], *n).into(), test: test(o, *f), name_ignore_case: false }),
        ArbCond::Path(o, f) => Condition::Path(test(o, *f)),
        ArbCond::Method(o, f) => Condition::Method(test(o, *f)),
        ArbCond::Host(o, f) => Condition::Host(test(o, *f)),
        ArbCond::ClientIp(o, f) => Condition::ClientIp(test(o, *f)),
    }
}

fn rule_set(input: &Input) -> RuleSet {
    let mut set = RuleSet::new("v0");
    set.variants = Some(vec!["v0".into(), "v1".into(), "v2".into(), "v9".into(), "gray".into()]);
    set.propagation = Propagation { incoming: if input.trust { Incoming::Trust } else { Incoming::Ignore }, ..Propagation::default() };
    for (i, r) in input.rules.iter().take(24).enumerate() {
        let unleash = r.sticky.is_some_and(|s| s.2);
        let percent = match r.percent % 5 { 0 => 0.0, 1 | 2 => 100.0, 3 => 37.0, _ => if unleash { 62.0 } else { 62.5 } };
        let to = pick(&["v0", "v1", "v2", "gray"], r.to);
        let mut rule = if r.split {
            let half = (percent / 2.0f64).floor();
            Rule::split(format!("r{i}"), [Target::new(to, half), Target::new("v9", half)])
        } else {
            Rule::to(format!("r{i}"), to).percent(percent)
        };
        rule.when = r.when.as_ref().map(|c| cond(c, 0));
        rule.sticky = r.sticky.map(|(src, skip, unleash, salt)| {
            let mut s = Sticky {
                missing: if skip { Missing::Skip } else { Missing::Random },
                algorithm: if unleash { Algorithm::Unleash } else { Algorithm::Graymatch },
                salt: salt.then(|| "salt".into()),
                ..Sticky::default()
            };
            match src % 3 { 0 => s.header = Some("x-a".into()), 1 => s.cookie = Some("c".into()), _ => s.query = Some("q".into()) }
            s
        });
        set.rules.push(rule);
    }
    set
}

fn request(r: &ArbReq) -> http::Request<()> {
    let q: Vec<String> = r.query.iter().take(6).map(|(k, v)| format!("{}={}", pick(&["q", "r+s", "r%20s", "q%zz"], *k), pick(&["a", "b", "a+b", "%41", "%zz", "A", "%FF"], *v))).collect();
    let path = pick(&["/", "/a", "/ab", "/a%20b"], r.path);
    let mut uri = if q.is_empty() { path.to_owned() } else { format!("{path}?{}", q.join("&")) };
    let hosts = ["Shop.Example.com:8443", "shop.example.com.", "[::1]:80", "a.b", "10.1.2.3"];
    if let Some((h, true)) = r.host {
        uri = format!("http://{}{uri}", pick(&hosts, h));
    }
    let mut req = http::Request::builder().method(if r.post { "POST" } else { "GET" }).uri(uri).body(()).unwrap();
    for (n, v) in r.headers.iter().take(6) {
        req.headers_mut().append(pick(&NAMES[..2], *n), pick(VALUES, *v).parse().unwrap());
    }
    let cookie: Vec<String> = r.cookies.iter().take(6).map(|(n, v, q)| {
        let (n, v) = (pick(&["c", "d", "gray"], *n), pick(VALUES, *v));
        if *q { format!("{n}=\"{v}\"") } else { format!("{n}={v}") }
    }).collect();
    if !cookie.is_empty() {
        req.headers_mut().append("cookie", cookie.join("; ").parse().unwrap());
    }
    if let Some((h, false)) = r.host {
        req.headers_mut().append("host", pick(&hosts, h).parse().unwrap());
    }
    if let Some(ip) = r.client.and_then(|c| pick(VALUES, c).parse().ok()) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    match r.tag % 5 {
        1 => { req.headers_mut().append("x-gray", "v1".parse().unwrap()); }
        2 => { req.headers_mut().append("x-gray", "nope".parse().unwrap()); }
        3 => { req.headers_mut().append("baggage", "k=1, gray = v2;p".parse().unwrap()); }
        4 => { req.headers_mut().append("baggage", "gray=%67ray".parse().unwrap()); }
        _ => {}
    }
    req
}

fuzz_target!(|input: Input| {
    let set = rule_set(&input);
    let m = set.compile().expect("generated rule sets are valid");
    for r in input.requests.iter().take(8) {
        let req = request(r);
        if let Some((variant, rule)) = naive::decide(&set, &req) {
            let d = m.decide(&req);
            assert_eq!((d.variant(), d.rule()), (variant.as_str(), rule.as_deref()), "{set:?} {req:?}");
        }
    }
});
