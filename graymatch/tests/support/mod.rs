//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod naive;
pub mod typed;

use http::{HeaderName, HeaderValue, Request};

/// A request from a method, a URI and header lines (values as bytes, so
/// tests can send non-UTF-8).
pub fn req(method: &str, uri: &str, headers: &[(&str, &[u8])]) -> Request<()> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .expect("valid request");
    for (n, v) in headers {
        r.headers_mut().append(
            HeaderName::from_bytes(n.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(v).expect("header value"),
        );
    }
    r
}

pub fn yaml(text: &str) -> graymatch::Matcher {
    graymatch::RuleSet::from_yaml(text)
        .expect("rule set parses")
        .compile()
        .expect("rule set compiles")
}
