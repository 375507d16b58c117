//! The compiled matcher agrees with a naive interpreter of the model over
//! generated rule sets and requests.

mod support;

use graymatch::{
    Algorithm, ClientIp, Condition, Field, Incoming, Missing, Op, Propagation, Rule, RuleSet,
    Sticky, Target, Test, ValueType,
};
use proptest::prelude::*;

const VALUES: &[&str] = &[
    "a",
    "b",
    "A",
    "ab",
    "a b",
    "",
    "ba",
    "%61",
    "x%zz",
    "5.10",
    "1.0.0-rc.1",
    "1e3",
    "10.1.2.3",
];
/// Request values for typed and network leaves: numbers, versions,
/// addresses, and values of no type.
const TYPED: &[&str] = &[
    "5",
    "5.2",
    "5.10",
    "5.2.0",
    "v5.2.0",
    "5.2.0.1",
    "1.0.0",
    "1.0.0-rc.1",
    "1.0.0-alpha.1",
    "1.0.0+b",
    "01.0.0",
    "1e3",
    "1000",
    "-0",
    "0",
    "20.0",
    "+21",
    "latest",
    "10.1.2.3",
    "2001:db8::1",
    "[2001:db8::1]",
    "::ffff:10.0.0.1",
    "192.0.2.7",
    "fe80::1%eth0",
];
const HOSTS: &[&str] = &[
    "Shop.Example.com:8443",
    "shop.example.com.",
    "[::1]:80",
    "a.b",
    "",
];
const HEADERS: &[&str] = &["x-a", "x-b"];
const COOKIES: &[&str] = &["c", "d", "C"];
const QUERIES: &[&str] = &["q", "r s"];
const VARIANTS: &[&str] = &["v1", "v2", "v3"];

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(VALUES).prop_map(str::to_owned)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => value().prop_map(Op::Equals),
        2 => prop::collection::vec(value(), 1..12).prop_map(Op::In),
        1 => value().prop_map(Op::Prefix),
        1 => value().prop_map(Op::Suffix),
        1 => value().prop_map(Op::Contains),
        1 => prop::sample::select(&["a.*", "[ab]+", ".*", "a b"][..]).prop_map(|r| Op::Regex(r.to_owned())),
        1 => any::<bool>().prop_map(Op::Present),
        1 => prop::sample::select(&["/", "/a", "/a/", "a", ""][..]).prop_map(|p| Op::SegmentPrefix(p.to_owned())),
    ]
}

fn test() -> impl Strategy<Value = Test> {
    let string = (op(), any::<bool>()).prop_map(|(op, fold)| Test {
        ignore_case: fold && !matches!(op, Op::Present(_)),
        op,
        value_type: None,
    });
    prop_oneof![4 => string, 1 => typed_test(), 1 => cidr_test()]
}

/// A typed comparison with rule values that parse as the type.
fn typed_test() -> impl Strategy<Value = Test> {
    let ty = prop::sample::select(&[ValueType::Number, ValueType::Semver, ValueType::Version][..]);
    (ty, 0..6usize, prop::collection::vec(0..5usize, 1..3)).prop_map(|(ty, op, picks)| {
        let pool: &[&str] = match ty {
            ValueType::Number => &["20", "1e3", "-0", "5.2", "1000"],
            ValueType::Semver => &["1.0.0", "1.0.0-rc.1", "5.2.0", "1.0.0-alpha.1", "5.10.0"],
            ValueType::Version => &["5", "5.2", "5.10", "v5.2.0", "1.0.0-rc.1"],
        };
        let v = |i: usize| pool[i % pool.len()].to_owned();
        let op = match op {
            0 => Op::Equals(v(picks[0])),
            1 => Op::In(picks.iter().map(|&i| v(i)).collect()),
            2 => Op::Gt(v(picks[0])),
            3 => Op::Gte(v(picks[0])),
            4 => Op::Lt(v(picks[0])),
            _ => Op::Lte(v(picks[0])),
        };
        Test {
            op,
            ignore_case: false,
            value_type: Some(ty),
        }
    })
}

fn cidr_test() -> impl Strategy<Value = Test> {
    const NETS: &[&str] = &[
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.7",
        "::ffff:10.0.0.0/104",
        "0.0.0.0/0",
    ];
    prop::collection::vec(prop::sample::select(NETS), 1..3)
        .prop_map(|list| Test::new(Op::Cidr(list.into_iter().map(str::to_owned).collect())))
}

fn leaf() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => (prop::sample::select(HEADERS), test()).prop_map(|(n, test)| Condition::Header(Field { name: n.to_owned(), test, name_ignore_case: false })),
        2 => (prop::sample::select(COOKIES), test(), any::<bool>()).prop_map(|(n, test, fold)| Condition::Cookie(Field { name: n.to_owned(), test, name_ignore_case: fold })),
        2 => (prop::sample::select(QUERIES), test()).prop_map(|(n, test)| Condition::Query(Field { name: n.to_owned(), test, name_ignore_case: false })),
        1 => test().prop_map(Condition::Path),
        1 => test().prop_map(Condition::Method),
        1 => test().prop_map(Condition::Host),
        1 => prop_oneof![cidr_test(), test()].prop_map(Condition::ClientIp),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Condition::All),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Condition::Any),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

fn sticky() -> impl Strategy<Value = Sticky> {
    (0..3usize, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(src, skip, unleash, salt)| {
            let mut s = Sticky {
                missing: if skip { Missing::Skip } else { Missing::Random },
                algorithm: if unleash {
                    Algorithm::Unleash
                } else {
                    Algorithm::Graymatch
                },
                salt: salt.then(|| "salt".to_owned()),
                ..Sticky::default()
            };
            match src {
                0 => s.header = Some("x-a".to_owned()),
                1 => s.cookie = Some("c".to_owned()),
                _ => s.query = Some("q".to_owned()),
            }
            s
        },
    )
}

fn rule() -> impl Strategy<Value = Rule> {
    let when = prop_oneof![
        1 => Just(None),
        3 => condition().prop_map(Some),
        // Exact leaves on one header, so that runs share an index.
        3 => (prop::collection::vec(value(), 1..4), any::<bool>()).prop_map(|(vs, fold)| {
            let mut f = Field::new("x-a", Op::In(vs));
            f.test.ignore_case = fold;
            Some(Condition::Header(f))
        }),
        // Typed exact leaves on the same header: they compare by value, so
        // they must never share the byte index (a bug found in review).
        2 => prop::collection::vec(prop::sample::select(&["5", "5.2", "5.10", "v5.2.0"][..]), 1..3)
            .prop_map(|vs| {
                let values = vs.into_iter().map(str::to_owned).collect();
                Some(Condition::Header(Field::new("x-a", Op::In(values)).value_type(ValueType::Version)))
            }),
    ];
    let percent = prop::sample::select(&[0.0f64, 100.0, 100.0, 37.0, 62.5][..]);
    (
        when,
        prop::sample::select(VARIANTS),
        percent,
        prop::option::weighted(0.7, sticky()),
        any::<bool>(),
    )
        .prop_map(|(when, to, percent, sticky, split)| {
            let percent = match &sticky {
                Some(s) if s.algorithm == Algorithm::Unleash => percent.floor(),
                _ => percent,
            };
            let mut rule = if split {
                let half = (percent / 2.0).floor();
                Rule::split("r", [Target::new(to, half), Target::new("v9", half)])
            } else {
                Rule::to("r", to).percent(percent)
            };
            rule.when = when;
            rule.sticky = sticky;
            rule
        })
}

/// Literals that overlap one another and the request values: a prefix that
/// is also a suffix, one inside another, case variants, the empty literal.
const LITERALS: &[&str] = &[
    "a", "ab", "ba", "b", "A", "aB", "", "a b", "/a", "/a/", "/", "%61", "x",
];

/// A string leaf for a run of mixed operations on one field.
fn mixed_test() -> impl Strategy<Value = Test> {
    let lit = || prop::sample::select(LITERALS).prop_map(str::to_owned);
    let op = prop_oneof![
        2 => lit().prop_map(Op::Prefix),
        2 => lit().prop_map(Op::Suffix),
        2 => lit().prop_map(Op::Contains),
        1 => lit().prop_map(Op::Equals),
        1 => prop::collection::vec(lit(), 1..4).prop_map(Op::In),
        1 => prop::sample::select(&["/", "/a", "/a/", "a", ""][..]).prop_map(|p| Op::SegmentPrefix(p.to_owned())),
        2 => prop::sample::select(&["a.*", "[ab]+", ".*", "a b", "/a.*", "B", "A[b ]", "%.*"][..]).prop_map(|r| Op::Regex(r.to_owned())),
    ];
    (op, prop::bool::weighted(0.3)).prop_map(|(op, fold)| Test {
        op,
        ignore_case: fold,
        value_type: None,
    })
}

/// A run of 8 to 20 rules whose conditions are string leaves of mixed
/// operations on one field (so they compile to one literal run), with the
/// targets, percents and stickiness of `rule()`; now and then a rule on
/// another field or with no condition breaks the run.
fn mixed_run() -> impl Strategy<Value = Vec<Rule>> {
    let field = 0..5usize;
    let rules = prop::collection::vec((mixed_test(), rule(), prop::bool::weighted(0.05)), 8..20);
    (field, rules).prop_map(|(field, rules)| {
        rules
            .into_iter()
            .map(|(test, mut rule, breaks)| {
                if !breaks {
                    rule.when = Some(match field {
                        0 => Condition::Header(Field {
                            name: "x-a".to_owned(),
                            test,
                            name_ignore_case: false,
                        }),
                        1 => Condition::Path(test),
                        2 => Condition::Host(test),
                        3 => Condition::Query(Field {
                            name: "q".to_owned(),
                            test,
                            name_ignore_case: false,
                        }),
                        _ => Condition::Cookie(Field {
                            name: "c".to_owned(),
                            test,
                            name_ignore_case: false,
                        }),
                    });
                }
                rule
            })
            .collect()
    })
}

fn rule_set() -> impl Strategy<Value = RuleSet> {
    let rules = prop_oneof![
        2 => prop::collection::vec(rule(), 0..14),
        1 => (prop::collection::vec(rule(), 0..4), mixed_run(), prop::collection::vec(rule(), 0..4))
            .prop_map(|(mut before, run, after)| {
                before.extend(run);
                before.extend(after);
                before
            }),
    ];
    (rules, any::<bool>()).prop_map(|(rules, trust)| {
        let mut set = RuleSet::new("v0");
        set.propagation = Propagation {
            incoming: if trust {
                Incoming::Trust
            } else {
                Incoming::Ignore
            },
            ..Propagation::default()
        };
        set.rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.name = format!("r{i}");
                r
            })
            .collect();
        set
    })
}

fn request() -> impl Strategy<Value = http::Request<()>> {
    let header = (
        prop::sample::select(HEADERS),
        prop_oneof![
            8 => value(),
            8 => prop::sample::select(TYPED).prop_map(str::to_owned),
            // Sent as the bytes `a\xffb`: not UTF-8.
            1 => Just("<not utf-8>".to_owned()),
        ],
    );
    let host = (prop::sample::select(HOSTS), any::<bool>());
    let client = prop::option::of(prop::sample::select(TYPED));
    let cookie = prop::collection::vec(
        (prop::sample::select(COOKIES), value(), any::<bool>()),
        0..4,
    );
    let query = prop::collection::vec(
        (
            prop::sample::select(&["q", "r+s", "r%20s", "q%zz"][..]),
            prop::sample::select(&["a", "b", "a+b", "%41", "%zz", "A"][..]),
        ),
        0..4,
    );
    let tag = prop::sample::select(
        &[
            "",
            "x-gray:v1",
            "x-gray:nope",
            "baggage:gray=v2",
            "baggage:k=1, gray = v3;p",
        ][..],
    );
    (
        prop::collection::vec(header, 0..4),
        prop::collection::vec(cookie, 0..3),
        query,
        prop::sample::select(&["/", "/a", "/ab", "/a b", "/a/", "/a/b", "/A/b"][..]),
        prop::sample::select(&["GET", "POST"][..]),
        tag,
        (host, client),
    )
        .prop_map(
            |(headers, cookies, query, path, method, tag, ((host, absolute), client))| {
                let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let path = path.replace(' ', "%20");
                let mut uri = if q.is_empty() {
                    path
                } else {
                    format!("{path}?{}", q.join("&"))
                };
                if absolute && !host.is_empty() {
                    uri = format!("http://{host}{uri}");
                }
                let mut r = http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(())
                    .unwrap();
                for (n, v) in headers {
                    let v = if v == "<not utf-8>" {
                        http::HeaderValue::from_bytes(b"a\xffb").unwrap()
                    } else {
                        v.parse().unwrap()
                    };
                    r.headers_mut().append(n, v);
                }
                for line in cookies {
                    let text: Vec<String> = line
                        .iter()
                        .map(|(n, v, quoted)| {
                            if *quoted {
                                format!("{n}=\"{v}\"")
                            } else {
                                format!("{n}={v}")
                            }
                        })
                        .collect();
                    r.headers_mut()
                        .append("cookie", text.join("; ").parse().unwrap());
                }
                if let Some((n, v)) = tag.split_once(':') {
                    r.headers_mut().append(n, v.parse().unwrap());
                }
                if !absolute {
                    r.headers_mut().append("host", host.parse().unwrap());
                }
                if let Some(ip) = client.and_then(|c| c.parse().ok()) {
                    r.extensions_mut().insert(ClientIp(ip));
                }
                r
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn a_release_with_halted_variants_agrees_with_naive(
        set in rule_set(),
        reqs in prop::collection::vec(request(), 1..16),
        pick in 0usize..8,
    ) {
        // Halt one of the rule set's non-default variants (if it has one).
        let m = set.compile().expect("generated rule sets are valid");
        let candidates: Vec<&str> = m.variants().filter(|v| *v != m.default_variant()).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let halted = candidates[pick % candidates.len()];
        let release = graymatch::Release::new(set.clone(), None).expect("compiles");
        prop_assert_eq!(release.halt(halted, "proptest"), Ok(true));
        let shared = release.matcher();
        for req in &reqs {
            if let Some((variant, rule)) = support::naive::decide_halted(&set, req, &[halted.to_owned()]) {
                let d = shared.decide(req);
                prop_assert_eq!((d.variant(), d.rule()), (variant.as_str(), rule.as_deref()), "halted {}: {:?}", halted, req);
            }
        }
    }

    #[test]
    fn compiled_agrees_with_naive(set in rule_set(), reqs in prop::collection::vec(request(), 1..16)) {
        let m = set.compile().expect("generated rule sets are valid");
        for req in &reqs {
            if let Some((variant, rule)) = support::naive::decide(&set, req) {
                let d = m.decide(req);
                prop_assert_eq!((d.variant(), d.rule()), (variant.as_str(), rule.as_deref()), "{:?}", req);
            }
        }
    }
}
