//! Which requests `GrayLayer` writes the tag onto: over a tag the request
//! arrived with, always; on the others only with `tag_every_request`. The
//! tag outbound calls carry is in the task's scope either way, and a
//! handler forwarding the request as it is through a propagating client
//! sends the edge's decision.

use std::convert::Infallible;

use graymatch::{Decision, RuleSet};
use graymatch_tower::{GrayLayer, PropagateGrayLayer, scope};
use http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, ServiceExt};

const EDGE: &str = "default: stable\nvariants: [stable, gray]\nrules:\n  - { name: t, to: gray, when: { header: { name: x-tester, present: true } } }\n";
const TRUSTING: &str =
    "default: stable\nvariants: [stable, gray]\npropagation: { incoming: trust }\n";

/// The `x-gray` lines and the `baggage` lines of `headers`.
fn carriers(headers: &http::HeaderMap) -> String {
    let lines = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("|")
    };
    format!(
        "x-gray=[{}] baggage=[{}]",
        lines("x-gray"),
        lines("baggage")
    )
}

/// What a handler saw: the decision, the scope's tag, the `x-gray` lines
/// and the `baggage` lines.
fn seen()
-> impl tower::Service<Request<()>, Response = Response<String>, Error = Infallible, Future: Send>
+ Clone {
    tower::service_fn(|req: Request<()>| async move {
        let d = req.extensions().get::<Decision>().unwrap().variant();
        let tag = scope::current().map_or("none", |t| t.variant());
        Ok(Response::new(format!(
            "{d} scope={tag} {}",
            carriers(req.headers())
        )))
    })
}

async fn call(rules: &str, every: bool, headers: &[(&str, &str)]) -> String {
    let m = RuleSet::from_yaml(rules).unwrap().compile().unwrap();
    let svc = GrayLayer::new(m).tag_every_request(every).layer(seen());
    let mut req = Request::new(());
    for (n, v) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    svc.oneshot(req).await.unwrap().into_body()
}

#[tokio::test]
async fn the_tag_is_written_over_incoming_tags_and_where_asked() {
    // (case, rules, tag_every_request, request headers, what the handler saw)
    let cases: &[(&str, &str, bool, &[(&str, &str)], &str)] = &[
        (
            "no tag arrived: the request is left as it is",
            EDGE,
            false,
            &[("x-tester", "1")],
            "gray scope=gray x-gray=[] baggage=[]",
        ),
        (
            "no tag arrived, tag_every_request: written",
            EDGE,
            true,
            &[("x-tester", "1")],
            "gray scope=gray x-gray=[gray] baggage=[gray=gray]",
        ),
        (
            "a client's x-gray at an ignoring edge: replaced",
            EDGE,
            false,
            &[("x-gray", "gray"), ("x-gray", "v9")],
            "stable scope=stable x-gray=[stable] baggage=[gray=stable]",
        ),
        (
            "a client's baggage member: replaced, others kept",
            EDGE,
            false,
            &[("baggage", "tenant=acme, gray = gray;p=1")],
            "stable scope=stable x-gray=[stable] baggage=[tenant=acme,gray=stable]",
        ),
        (
            "baggage without the tag's key: left as it is",
            EDGE,
            false,
            &[("baggage", "tenant=acme"), ("x-graying", "gray")],
            "stable scope=stable x-gray=[] baggage=[tenant=acme]",
        ),
        (
            "baggage without the key, tag_every_request: merged",
            EDGE,
            true,
            &[("baggage", "tenant=acme")],
            "stable scope=stable x-gray=[stable] baggage=[tenant=acme,gray=stable]",
        ),
        (
            "a trusted tag: the decision, and written as this service's",
            TRUSTING,
            false,
            &[("x-gray", "gray")],
            "gray scope=gray x-gray=[gray] baggage=[gray=gray]",
        ),
        (
            "an unknown trusted tag: this service decides and writes over it",
            TRUSTING,
            false,
            &[("x-gray", "v9")],
            "stable scope=stable x-gray=[stable] baggage=[gray=stable]",
        ),
    ];
    for (name, rules, every, headers, want) in cases {
        assert_eq!(call(rules, *every, headers).await, *want, "{name}");
    }
}

/// The gateway case: a handler that forwards the incoming request as it is
/// through a propagating client sends the edge's decision, whether or not
/// the request arrived with a tag.
#[tokio::test]
async fn a_handler_forwarding_the_request_sends_the_edges_decision() {
    // The upstream reports the tag lines it received.
    let upstream = tower::service_fn(|req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(carriers(req.headers())))
    });
    let client = PropagateGrayLayer::new().layer(upstream);
    let gateway = tower::service_fn(move |req: Request<()>| client.clone().oneshot(req));
    let m = RuleSet::from_yaml(EDGE).unwrap().compile().unwrap();
    let edge = GrayLayer::new(m).layer(gateway);
    let cases: &[(&str, &[(&str, &str)], &str)] = &[
        (
            "decided gray, no tag arrived",
            &[("x-tester", "1")],
            "x-gray=[gray] baggage=[gray=gray]",
        ),
        (
            "decided stable, no tag arrived",
            &[],
            "x-gray=[stable] baggage=[gray=stable]",
        ),
        (
            "decided stable over a client's tag",
            &[("x-gray", "gray"), ("baggage", "a=1,gray=gray")],
            "x-gray=[stable] baggage=[a=1,gray=stable]",
        ),
    ];
    for (name, headers, want) in cases {
        let mut req = Request::new(());
        for (n, v) in *headers {
            req.headers_mut().append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let res = edge.clone().oneshot(req).await.unwrap();
        assert_eq!(res.into_body(), *want, "{name}");
    }
}
