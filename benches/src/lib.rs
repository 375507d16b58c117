//! The contenders of graymatch's benchmarks, on one canonical request and one
//! decision: "header `x-gray` equals `true`, or cookie `gray` equals `true`,
//! else sticky 20 % by `x-user-id`".
//!
//! The canonical request has 12 headers (one of them a `Cookie` header with
//! 8 cookies) and 5 query parameters, and carries neither override, so every
//! contender takes the path where the user id is hashed (or, for the
//! hand-written middleware, drawn).
//!
//! Every contender returns `true` for "gray"; the unit tests check they
//! agree on the overrides and on the share of users.

#![allow(missing_docs)]

use std::collections::HashMap;

use graymatch::{Matcher, RuleSet};
use growthbook_rust::dto::GrowthBookFeature;
use growthbook_rust::growthbook::GrowthBook;
use growthbook_rust::model_public::{GrowthBookAttribute, GrowthBookAttributeValue};
use http::{HeaderMap, Request};
use unleash_yggdrasil::{ClientFeatures, Context, EngineState, UpdateMessage};

/// Polls a future that is ready at once (the no-op services of the layer
/// benches), without a runtime.
///
/// # Panics
///
/// When the future is not ready on the first poll.
pub fn poll_now<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the no-op service is always ready"),
    }
}

/// A no-op service answering every request at once.
pub type Noop = tower::util::ServiceFn<
    fn(Request<()>) -> std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>,
>;

/// The bare no-op service, and the same behind `GrayLayer` with the
/// canonical rules (both variants routed to a no-op).
pub fn bare_and_layered() -> (Noop, graymatch_tower::Gray<Noop>) {
    use tower::Layer;
    fn answer(
        _: Request<()>,
    ) -> std::future::Ready<Result<http::Response<()>, std::convert::Infallible>> {
        std::future::ready(Ok(http::Response::new(())))
    }
    let noop: Noop = tower::service_fn(answer as fn(_) -> _);
    let layered = graymatch_tower::GrayLayer::new(graymatch())
        .route("gray", noop)
        .layer(noop);
    (noop, layered)
}

/// The user of the canonical request.
pub const USER: &str = "user-42";

/// The canonical request: 12 headers, 8 cookies, 5 query parameters.
pub fn canonical() -> Request<()> {
    request(USER, &[])
}

/// The canonical request's one `Cookie` header: 8 cookies.
pub const COOKIES: &str =
    "session=9f8e7d6c5b4a; theme=dark; lang=en; cart=42; ab=b; tz=UTC; consent=yes; seen=1";

/// A canonical-shaped request for `user`, with extra headers.
pub fn request(user: &str, extra: &[(&str, &str)]) -> Request<()> {
    request_with(&[COOKIES], &[], Some(user), extra)
}

/// The fixtures of `decide` against its primitives (issue #15), each
/// deciding on the path where the user id is hashed: (row suffix, request).
///
/// - `""`: the canonical request;
/// - `"-cookie-last"`: 8 cookies in one `Cookie` header, `gray=false` last,
///   four others starting with `g` (one of them `grayscale`);
/// - `"-two-cookie-lines"`: the canonical 8 cookies over two `Cookie`
///   headers;
/// - `"-user-id-last"`: 12 other headers (the canonical 11 and a
///   `referer`), then `x-user-id` added last;
/// - `"-no-cookie"`: the canonical request without its `Cookie` header.
pub fn fixtures() -> Vec<(&'static str, Request<()>)> {
    vec![
        ("", canonical()),
        (
            "-cookie-last",
            request_with(
                &[
                    "session=9f8e7d6c5b4a; ga=GA1.2.1234567890.1700000000; gid=GA1.2.98765; \
                   geo=eu-west; theme=dark; grayscale=on; consent=yes; gray=false",
                ],
                &[],
                Some(USER),
                &[],
            ),
        ),
        (
            "-two-cookie-lines",
            request_with(
                &[
                    "session=9f8e7d6c5b4a; theme=dark; lang=en; cart=42",
                    "ab=b; tz=UTC; consent=yes; seen=1",
                ],
                &[],
                Some(USER),
                &[],
            ),
        ),
        (
            "-user-id-last",
            request_with(
                &[COOKIES],
                &[("referer", "https://shop.example.com/api/products?page=1")],
                None,
                &[("x-user-id", USER)],
            ),
        ),
        ("-no-cookie", request_with(&[], &[], Some(USER), &[])),
    ]
}

/// The canonical request's shape: its 10 plain headers, then `cookies` (one
/// `Cookie` header each), then `more` headers, then `x-user-id: user` when
/// given, then `extra`.
pub fn request_with(
    cookies: &[&str],
    more: &[(&str, &str)],
    user: Option<&str>,
    extra: &[(&str, &str)],
) -> Request<()> {
    let mut b = Request::get("/api/cart?page=2&sort=price&lang=en&ref=home&utm_source=mail")
        .header("host", "shop.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        )
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header("accept-encoding", "gzip, deflate, br")
        .header("accept-language", "en-US,en;q=0.5")
        .header("connection", "keep-alive")
        .header("x-request-id", "4bf92f3577b34da6a3ce929d0e0e4736")
        .header("x-forwarded-for", "203.0.113.7")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("content-type", "application/json");
    for c in cookies {
        b = b.header("cookie", *c);
    }
    for (n, v) in more {
        b = b.header(*n, *v);
    }
    if let Some(user) = user {
        b = b.header("x-user-id", user);
    }
    for (n, v) in extra {
        b = b.header(*n, *v);
    }
    b.body(()).expect("valid request")
}

/// The canonical decision as a graymatch rule set.
pub const RULES: &str = r#"
default: stable
variants: [stable, gray]
rules:
  - name: override
    to: gray
    when:
      any:
        - header: { name: x-gray, equals: "true" }
        - cookie: { name: gray, equals: "true" }
  - name: canary-20
    to: gray
    percent: 20
    sticky: { header: x-user-id, missing: skip }
"#;

pub fn graymatch() -> Matcher {
    RuleSet::from_yaml(RULES)
        .expect("rules parse")
        .compile()
        .expect("rules compile")
}

#[inline]
pub fn graymatch_decide(m: &Matcher, req: &Request<()>) -> bool {
    m.decide(req).variant() == "gray"
}

/// The decision's primitive operations, each done the fastest way known,
/// by hand and independently of graymatch: header lookups by prebuilt
/// `HeaderName`, a SIMD substring search for `gray=` with a boundary check
/// (memchr's `memmem`, its searcher built once), and MurmurHash3 continued
/// from the salt's state hashed once. The floor for `decide`.
#[inline]
pub fn primitives(req: &Request<()>) -> bool {
    use std::sync::LazyLock;
    static X_GRAY: http::HeaderName = http::HeaderName::from_static("x-gray");
    static X_USER_ID: http::HeaderName = http::HeaderName::from_static("x-user-id");
    static GRAY_EQ: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"gray="));
    static SALT: LazyLock<PrefixMurmur> = LazyLock::new(|| PrefixMurmur::new(b"canary-20:"));
    let h = req.headers();
    if h.get(&X_GRAY).is_some_and(|v| v.as_bytes() == b"true") {
        return true;
    }
    for line in h.get_all(http::header::COOKIE) {
        let line = line.as_bytes();
        let mut from = 0;
        while let Some(i) = GRAY_EQ.find(&line[from..]) {
            let at = from + i;
            from = at + 1;
            // At the start of a pair: the line's start, or after `; `.
            if at == 0 || line[..at].trim_ascii_end().ends_with(b";") {
                let value = &line[at + 5..];
                let end = memchr::memchr(b';', value).unwrap_or(value.len());
                if value[..end].trim_ascii() == b"true" {
                    return true;
                }
            }
        }
    }
    match h.get(&X_USER_ID) {
        Some(id) => SALT.finish_with(id.as_bytes()) % 1_000_000 < 200_000,
        None => false,
    }
}

/// MurmurHash3 x86_32 (seed 0) of `prefix + key`, with the prefix's whole
/// blocks hashed once: the primitives' own, so they owe graymatch nothing.
/// The pending tail is a `u32` completed by shifts, not a byte buffer (the
/// buffer filled byte by byte cost 22 instructions more per decision).
#[derive(Clone, Copy)]
pub struct PrefixMurmur {
    h1: u32,
    /// The prefix's last `tail_len` bytes, little-endian.
    tail: u32,
    tail_len: usize,
    len: u32,
}

impl PrefixMurmur {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    fn k(k: u32) -> u32 {
        k.wrapping_mul(Self::C1)
            .rotate_left(15)
            .wrapping_mul(Self::C2)
    }

    fn mix(h1: u32, k: u32) -> u32 {
        (h1 ^ Self::k(k))
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64)
    }

    #[inline]
    fn le(bytes: &[u8]) -> u32 {
        bytes
            .iter()
            .enumerate()
            .fold(0, |t, (i, &b)| t | u32::from(b) << (8 * i))
    }

    /// The state after `prefix`.
    pub fn new(prefix: &[u8]) -> Self {
        let mut chunks = prefix.chunks_exact(4);
        let h1 = (&mut chunks).fold(0, |h, c| Self::mix(h, Self::le(c)));
        PrefixMurmur {
            h1,
            tail: Self::le(chunks.remainder()),
            tail_len: chunks.remainder().len(),
            len: prefix.len() as u32,
        }
    }

    /// The hash of the prefix followed by `key`.
    #[inline]
    pub fn finish_with(&self, key: &[u8]) -> u32 {
        let mut h1 = self.h1;
        let mut tail = self.tail;
        let mut rest = key;
        if self.tail_len != 0 {
            let take = (4 - self.tail_len).min(rest.len());
            tail |= Self::le(&rest[..take]) << (8 * self.tail_len);
            rest = &rest[take..];
            if self.tail_len + take == 4 {
                h1 = Self::mix(h1, tail);
                tail = 0;
            }
        }
        let mut chunks = rest.chunks_exact(4);
        for c in &mut chunks {
            h1 = Self::mix(h1, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        // The last partial block; with none, `tail` is 0 and so is its mix.
        tail |= Self::le(chunks.remainder());
        h1 ^= Self::k(tail);
        let mut h = h1 ^ self.len.wrapping_add(key.len() as u32);
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

const UNLEASH_FEATURES: &str = r#"{
  "version": 2,
  "features": [{
    "name": "canary",
    "enabled": true,
    "strategies": [
      { "name": "default", "parameters": {},
        "constraints": [{ "contextName": "x-gray", "operator": "IN", "values": ["true"] }] },
      { "name": "default", "parameters": {},
        "constraints": [{ "contextName": "gray", "operator": "IN", "values": ["true"] }] },
      { "name": "flexibleRollout", "constraints": [],
        "parameters": { "rollout": "20", "stickiness": "userId", "groupId": "canary" } }
    ]
  }]
}"#;

pub fn unleash() -> EngineState {
    let features: ClientFeatures =
        serde_json::from_str(UNLEASH_FEATURES).expect("unleash features");
    let engine = EngineState::default();
    let warnings = engine.take_state(UpdateMessage::FullResponse(features));
    assert!(warnings.is_none(), "{warnings:?}");
    engine
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn cookie_value<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The Unleash engine's full path: a context built from the request, then
/// `is_enabled`.
#[inline]
pub fn unleash_decide(engine: &EngineState, req: &Request<()>) -> bool {
    let h = req.headers();
    let mut props: HashMap<String, String> = HashMap::with_capacity(2);
    if let Some(v) = header_str(h, "x-gray") {
        props.insert("x-gray".to_owned(), v.to_owned());
    }
    if let Some(v) = cookie_value(h, "gray") {
        props.insert("gray".to_owned(), v.to_owned());
    }
    let ctx = Context {
        user_id: header_str(h, "x-user-id").map(str::to_owned),
        properties: Some(props),
        ..Context::default()
    };
    engine.is_enabled("canary", &ctx, &None)
}

const GROWTHBOOK_FEATURES: &str = r#"{
  "canary": {
    "defaultValue": false,
    "rules": [
      { "condition": { "x-gray": "true" }, "force": true },
      { "condition": { "gray": "true" }, "force": true },
      { "coverage": 0.2, "hashAttribute": "id", "force": true }
    ]
  }
}"#;

pub fn growthbook() -> GrowthBook {
    let features: HashMap<String, GrowthBookFeature> =
        serde_json::from_str(GROWTHBOOK_FEATURES).expect("growthbook features");
    GrowthBook {
        forced_variations: None,
        features,
        attributes: None,
        sticky_bucket_service: None,
        saved_groups: HashMap::new(),
    }
}

/// GrowthBook's evaluator: attributes built from the request, then `check`.
#[inline]
pub fn growthbook_decide(gb: &GrowthBook, req: &Request<()>) -> bool {
    let h = req.headers();
    let s = |v: &str| GrowthBookAttributeValue::String(v.to_owned());
    let mut attrs = Vec::with_capacity(3);
    if let Some(v) = header_str(h, "x-gray") {
        attrs.push(GrowthBookAttribute::new("x-gray".to_owned(), s(v)));
    }
    if let Some(v) = cookie_value(h, "gray") {
        attrs.push(GrowthBookAttribute::new("gray".to_owned(), s(v)));
    }
    if let Some(v) = header_str(h, "x-user-id") {
        attrs.push(GrowthBookAttribute::new("id".to_owned(), s(v)));
    }
    gb.check("canary", &Some(attrs)).on
}

/// What a hand-written middleware does: owned maps of the headers (names
/// lowercased), cookies and query, then a random draw.
#[inline]
pub fn handwritten(req: &Request<()>) -> (bool, bool) {
    let mut headers: HashMap<String, String> = HashMap::new();
    for (name, value) in req.headers() {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_lowercase(), v.to_owned());
        }
    }
    let mut cookies: HashMap<String, String> = HashMap::new();
    if let Some(c) = headers.get("cookie") {
        for pair in c.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let mut query: HashMap<String, String> = HashMap::new();
    for pair in req.uri().query().unwrap_or("").split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            query.insert(k.to_owned(), v.to_owned());
        }
    }
    let overridden = headers.get("x-gray").map(String::as_str) == Some("true")
        || cookies.get("gray").map(String::as_str) == Some("true");
    let gray = overridden || rand::random::<f64>() < 0.2;
    // `query.len()` keeps the parse from being optimised away.
    (gray, overridden || query.len() != 5)
}

/// `n` rules `r{i}` each sending `x-id: k{i}` to gray.
/// One rule whose condition is `cond` (a YAML leaf), for the cost of one
/// leaf on a canonical request: string equality against typed comparisons.
pub fn one_leaf(cond: &str) -> Matcher {
    RuleSet::from_yaml(&format!(
        "default: stable\nrules:\n  - {{ name: r, to: gray, when: {cond} }}\n"
    ))
    .expect("parse")
    .compile()
    .expect("compile")
}

/// The canonical request with an app version, a cart size and a real IP
/// header added last, for the typed-leaf rows.
pub fn typed_request() -> Request<()> {
    request(
        USER,
        &[
            ("x-app-version", "5.10.2-beta.11"),
            ("x-cart-items", "21.5"),
            ("x-real-ip", "10.20.30.40"),
        ],
    )
}

pub fn exact_rules(n: usize) -> Matcher {
    let mut text = String::from("default: stable\nrules:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - {{ name: r{i}, to: gray, when: {{ header: {{ name: x-id, equals: k{i} }} }} }}\n"
        ));
    }
    RuleSet::from_yaml(&text)
        .expect("parse")
        .compile()
        .expect("compile")
}

/// The four string operations of the mixed-rule rows, in the order they
/// cycle through the tenants.
pub const MIXED_OPS: [&str; 4] = ["prefix", "suffix", "contains", "regex"];

/// One per-tenant routing rule on the path: `op` (an index into
/// [`MIXED_OPS`]) for tenant `t`, as a YAML flow leaf.
pub fn mixed_leaf(op: usize, t: usize) -> String {
    match op % 4 {
        0 => format!("{{ path: {{ prefix: /t/tenant-{t}/ }} }}"),
        1 => format!("{{ path: {{ suffix: /tenant-{t}.json }} }}"),
        2 => format!("{{ path: {{ contains: /acme-{t}/ }} }}"),
        _ => format!("{{ path: {{ regex: '/api/v[0-9]+/tenant-{t}/.*' }} }}"),
    }
}

/// A path that only the rule of tenant `t` with `op` matches.
pub fn mixed_path(op: usize, t: usize) -> String {
    match op % 4 {
        0 => format!("/t/tenant-{t}/orders"),
        1 => format!("/export/tenant-{t}.json"),
        2 => format!("/shop/acme-{t}/cart"),
        _ => format!("/api/v2/tenant-{t}/orders"),
    }
}

/// `n` per-tenant rules of mixed operations on the path (prefix, suffix,
/// contains, regex in turn), for tenants `1000 - n` to 999; the last rule
/// uses `last_op` and is the only one the request of [`mixed_request`]
/// matches: the worst case for a rule-by-rule scan.
pub fn mixed_rules(n: usize, last_op: usize) -> Matcher {
    let mut text = String::from("default: stable\nrules:\n");
    let shift = (last_op + 4 - (n - 1) % 4) % 4;
    for k in 0..n {
        let t = k + 1000 - n;
        text.push_str(&format!(
            "  - {{ name: r{t}, to: gray, when: {} }}\n",
            mixed_leaf(k + shift, t)
        ));
    }
    RuleSet::from_yaml(&text)
        .expect("parse")
        .compile()
        .expect("compile")
}

/// The canonical request on the path that tenant 999's rule with `op`
/// matches (the query kept).
pub fn mixed_request(op: usize) -> Request<()> {
    let mut r = request(USER, &[]);
    let uri = format!("{}?{}", mixed_path(op, 999), r.uri().query().unwrap_or(""));
    *r.uri_mut() = uri.parse().expect("uri");
    r
}

/// A rule set of `n` rules in a realistic mix, in blocks of 50 rules of one
/// kind (as generated per-tenant rules come): exact header values, path
/// prefixes, path regexes, a header value with a random 10 %, and a cookie
/// value with a sticky 20 % by user id.
pub fn realistic_rules(n: usize) -> RuleSet {
    let mut text = String::from("default: stable\nvariants: [stable, gray, canary]\nrules:\n");
    for i in 0..n {
        let rule = match (i / 50) % 5 {
            0 => format!(
                "{{ name: r{i}, to: gray, when: {{ header: {{ name: x-tenant, equals: tenant-{i} }} }} }}"
            ),
            1 => format!(
                "{{ name: r{i}, to: gray, when: {{ path: {{ prefix: /t/tenant-{i}/ }} }} }}"
            ),
            2 => format!(
                "{{ name: r{i}, to: canary, when: {{ path: {{ regex: '/api/v[0-9]+/tenant-{i}/(orders|cart)/.*' }} }} }}"
            ),
            3 => format!(
                "{{ name: r{i}, to: canary, percent: 10, when: {{ header: {{ name: x-region, equals: region-{i} }} }} }}"
            ),
            _ => format!(
                "{{ name: r{i}, to: gray, percent: 20, sticky: {{ header: x-user-id }}, when: {{ cookie: {{ name: plan, equals: plan-{i} }} }} }}"
            ),
        };
        text.push_str("  - ");
        text.push_str(&rule);
        text.push('\n');
    }
    RuleSet::from_yaml(&text).expect("parse")
}

/// One rule with an `in` set of `n` values `k0..k{n-1}`.
pub fn in_set(n: usize) -> Matcher {
    let values: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let text = format!(
        "{{\"default\": \"stable\", \"rules\": [{{\"name\": \"r\", \"to\": \"gray\", \"when\": {{\"header\": {{\"name\": \"x-id\", \"in\": {values:?}}}}}}}]}}"
    );
    RuleSet::from_json(&text)
        .expect("parse")
        .compile()
        .expect("compile")
}

/// One rule with a single leaf `cond` (YAML flow), for the per-op benches.
pub fn single(cond: &str) -> Matcher {
    RuleSet::from_yaml(&format!(
        "default: stable\nrules:\n  - {{ name: r, to: gray, when: {cond} }}\n"
    ))
    .expect("parse")
    .compile()
    .expect("compile")
}

/// The per-op benches: (name, condition, holds on the canonical request).
pub const OPS: &[(&str, &str, bool)] = &[
    (
        "header-equals",
        "{ header: { name: x-user-id, equals: user-42 } }",
        true,
    ),
    (
        "header-in",
        "{ header: { name: accept-language, in: [fr, de, 'en-US,en;q=0.5'] } }",
        true,
    ),
    (
        "header-prefix",
        "{ header: { name: user-agent, prefix: Mozilla } }",
        true,
    ),
    (
        "header-suffix",
        "{ header: { name: user-agent, suffix: Firefox/128.0 } }",
        true,
    ),
    (
        "header-contains",
        "{ header: { name: user-agent, contains: Linux } }",
        true,
    ),
    (
        "header-regex",
        "{ header: { name: user-agent, regex: 'Mozilla/.*Firefox/1[0-9]+\\.0' } }",
        true,
    ),
    (
        "header-present",
        "{ header: { name: traceparent, present: true } }",
        true,
    ),
    (
        "header-ignore-case",
        "{ header: { name: connection, equals: KEEP-ALIVE, ignore_case: true } }",
        true,
    ),
    (
        "cookie-equals",
        "{ cookie: { name: consent, equals: 'yes' } }",
        true,
    ),
    (
        "cookie-absent",
        "{ cookie: { name: gray, equals: 'true' } }",
        false,
    ),
    (
        "query-equals",
        "{ query: { name: utm_source, equals: mail } }",
        true,
    ),
    (
        "query-absent",
        "{ query: { name: beta, present: true } }",
        false,
    ),
    ("path-prefix", "{ path: { prefix: /api/ } }", true),
    ("method-in", "{ method: { in: [GET, HEAD] } }", true),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contenders_agree_on_overrides() {
        let (m, u, g) = (graymatch(), unleash(), growthbook());
        for extra in [[("x-gray", "true")], [("cookie", "gray=true")]] {
            // A user the sticky rollout leaves out: only the override decides.
            let req = request("user-1", &extra);
            assert!(graymatch_decide(&m, &req), "{extra:?}");
            assert!(primitives(&req), "{extra:?}");
            assert!(unleash_decide(&u, &req), "{extra:?}");
            assert!(growthbook_decide(&g, &req), "{extra:?}");
            assert!(handwritten(&req).0, "{extra:?}");
        }
    }

    #[test]
    fn primitives_agree_on_every_fixture() {
        let m = graymatch();
        for (name, req) in fixtures() {
            assert_eq!(
                primitives(&req),
                graymatch_decide(&m, &req),
                "fixture {name:?}"
            );
            // The same shapes for many users, and with each override.
            for i in 0..2_000 {
                let user = format!("u-{i}");
                let mut r = req.clone();
                r.headers_mut()
                    .insert("x-user-id", user.parse().expect("header value"));
                assert_eq!(primitives(&r), graymatch_decide(&m, &r), "{name:?} {user}");
            }
            for (n, v) in [("x-gray", "true"), ("cookie", "gray=true")] {
                let mut r = req.clone();
                r.headers_mut()
                    .insert("x-user-id", "user-1".parse().expect("header value"));
                r.headers_mut().append(n, v.parse().expect("header value"));
                assert!(primitives(&r), "{name:?} {n}");
                assert!(graymatch_decide(&m, &r), "{name:?} {n}");
            }
        }
    }

    #[test]
    fn prefix_murmur_is_murmur3() {
        for prefix in ["", "a", "ab", "abc", "abcd", "canary-20:"] {
            let state = PrefixMurmur::new(prefix.as_bytes());
            for key in [
                "",
                "x",
                "xy",
                "xyz",
                "wxyz",
                "user-42",
                "a-much-longer-user-id-0001",
            ] {
                let whole = format!("{prefix}{key}");
                assert_eq!(
                    state.finish_with(key.as_bytes()),
                    graymatch::sticky::murmur3_x86_32(whole.as_bytes(), 0),
                    "{prefix:?} + {key:?}"
                );
            }
        }
    }

    #[test]
    fn contenders_agree_on_the_share_of_users() {
        let (m, u, g) = (graymatch(), unleash(), growthbook());
        let (mut gm, mut un, mut gb) = (0, 0, 0);
        for i in 0..10_000 {
            let req = request(&format!("u-{i}"), &[]);
            let d = graymatch_decide(&m, &req);
            assert_eq!(d, primitives(&req));
            gm += usize::from(d);
            un += usize::from(unleash_decide(&u, &req));
            gb += usize::from(growthbook_decide(&g, &req));
        }
        for (name, n) in [("graymatch", gm), ("unleash", un), ("growthbook", gb)] {
            assert!((1_800..2_200).contains(&n), "{name}: {n} of 10000");
        }
    }

    #[test]
    fn graymatch_unleash_algorithm_picks_unleash_users() {
        let m = RuleSet::from_yaml(
            "default: stable\nrules:\n  - { name: r, to: gray, percent: 20, sticky: { header: x-user-id, salt: canary, algorithm: unleash } }\n",
        )
        .unwrap()
        .compile()
        .unwrap();
        let u = unleash();
        for i in 0..2_000 {
            let req = request(&format!("u-{i}"), &[]);
            assert_eq!(
                m.decide(&req).variant() == "gray",
                unleash_decide(&u, &req),
                "u-{i}"
            );
        }
    }

    #[test]
    fn op_table_is_true_to_its_claims() {
        let req = canonical();
        for (name, cond, holds) in OPS {
            assert_eq!(
                single(cond).decide(&req).variant() == "gray",
                *holds,
                "{name}"
            );
        }
    }

    #[test]
    fn scaling_matchers_decide_right() {
        let req = request(USER, &[("x-id", "k7")]);
        assert_eq!(exact_rules(1000).decide(&req).rule(), Some("r7"));
        assert_eq!(in_set(10_000).decide(&req).variant(), "gray");
        let miss = request(USER, &[("x-id", "nope")]);
        assert_eq!(exact_rules(1000).decide(&miss).variant(), "stable");
    }
}
