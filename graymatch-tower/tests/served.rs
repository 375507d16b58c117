//! What a handler and a client see of the served variant: the `Fallback`
//! marker and the opt-in response header, case by case.

use std::convert::Infallible;

use graymatch::RuleSet;
use graymatch_tower::{Fallback, GrayLayer};
use http::{HeaderName, Request, Response};
use tower::{Layer, ServiceExt, service_fn};

const RULES: &str = r#"
default: stable
variants: [stable, gray, v3]
propagation: { incoming: trust }
rules:
  - { name: testers, to: gray, when: { header: { name: x-tester, present: true } } }
  - { name: v3-users, to: v3, when: { header: { name: x-v3, present: true } } }
"#;

type Svc = tower::util::BoxCloneSyncService<Request<()>, Response<String>, Infallible>;

fn handler(name: &'static str) -> Svc {
    Svc::new(service_fn(move |req: Request<()>| async move {
        let fallback = req.extensions().get::<Fallback>().copied();
        Ok::<_, Infallible>(Response::new(format!("{name} {fallback:?}")))
    }))
}

#[tokio::test]
async fn fallback_marker_and_served_header() {
    let m = std::sync::Arc::new(RuleSet::from_yaml(RULES).unwrap().compile().unwrap());
    let layered = |header: bool| {
        let mut layer = GrayLayer::new(m.clone()).route("gray", handler("gray"));
        if header {
            layer = layer.served_header(HeaderName::from_static("x-gray-served"));
        }
        layer.layer(handler("stable"))
    };
    // (case, request header, body, served header)
    let cases: &[(&str, Option<(&str, &str)>, &str, &str)] = &[
        (
            "rule with a route",
            Some(("x-tester", "1")),
            "gray None",
            "gray; rule=testers",
        ),
        ("default", None, "stable None", "stable; reason=default"),
        (
            "v3 has no route: the default serves as a fallback",
            Some(("x-v3", "1")),
            r#"stable Some(Fallback { decided: "v3", served: "stable" })"#,
            "stable; decided=v3; rule=v3-users",
        ),
        (
            "trusted tag",
            Some(("x-gray", "gray")),
            "gray None",
            "gray; reason=propagated",
        ),
    ];
    for (name, header, body, served) in cases {
        let mut req = Request::new(());
        if let Some((n, v)) = header {
            req.headers_mut().insert(*n, v.parse().unwrap());
        }
        let res = layered(true).oneshot(req).await.unwrap();
        assert_eq!(res.headers()["x-gray-served"], *served, "case {name}");
        assert_eq!(res.body(), body, "case {name}");
    }
    // Off by default.
    let res = layered(false).oneshot(Request::new(())).await.unwrap();
    assert!(res.headers().get("x-gray-served").is_none());
}
