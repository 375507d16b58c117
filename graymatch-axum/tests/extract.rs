//! The extractors and the variant router, through axum.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use graymatch::RuleSet;
use graymatch_axum::{GrayDecision, VariantRouter};
use graymatch_tower::GrayLayer;
use http::{Request, StatusCode};
use tower::{Layer, ServiceExt};

async fn call<S>(app: S, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String)
where
    S: tower::Service<
            Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        >,
{
    let mut req = Request::get(uri);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn matcher() -> graymatch::Matcher {
    RuleSet::from_yaml("default: stable\nrules:\n  - { name: t, to: gray, when: { header: { name: x-t, present: true } } }\n")
        .unwrap()
        .compile()
        .unwrap()
}

async fn required(gray: GrayDecision) -> String {
    format!(
        "{}:{}:{}",
        gray.variant(),
        gray.rule().unwrap_or("-"),
        gray.tag().unwrap().variant()
    )
}

async fn optional(gray: Option<GrayDecision>) -> String {
    gray.map_or_else(|| "none".to_owned(), |g| g.variant().to_owned())
}

#[tokio::test]
async fn extractors_with_and_without_the_layer() {
    let routes = || {
        Router::new()
            .route("/req", get(required))
            .route("/opt", get(optional))
    };
    let with = GrayLayer::new(matcher()).layer(routes());
    let cases: &[(&str, &[(&str, &str)], StatusCode, &str)] = &[
        ("/req", &[("x-t", "1")], StatusCode::OK, "gray:t:gray"),
        ("/req", &[], StatusCode::OK, "stable:-:stable"),
        ("/opt", &[], StatusCode::OK, "stable"),
    ];
    for (uri, headers, status, body) in cases {
        assert_eq!(
            call(with.clone(), uri, headers).await,
            (*status, (*body).to_owned()),
            "{uri}"
        );
    }
    // Without the layer: the required extractor is a 500 naming it; the optional one is None.
    let (status, body) = call(routes(), "/req", &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.contains("VariantRouter") && body.contains("GrayLayer"),
        "{body}"
    );
    assert_eq!(
        call(routes(), "/opt", &[]).await,
        (StatusCode::OK, "none".to_owned())
    );
}

#[tokio::test]
async fn variant_router_with_fallback_to_default() {
    let router = |name: &'static str| {
        Router::new()
            .route(
                "/",
                get(move |g: GrayDecision| async move {
                    format!(
                        "{name} router, {}, fallback {}",
                        g.variant(),
                        g.is_fallback()
                    )
                }),
            )
            .fallback(move || async move { format!("{name} fallback") })
    };
    let m = RuleSet::from_yaml(
        "default: stable\nrules:\n  - { name: t, to: gray, when: { header: { name: x-t, present: true } } }\n  - { name: v3, to: v3, when: { header: { name: x-v3, present: true } } }\n",
    )
    .unwrap()
    .compile()
    .unwrap();
    let counters = graymatch_axum::graymatch_tower::Counters::new();
    let app = VariantRouter::new(m)
        .variant("gray", router("gray"))
        .with_counters(counters.clone())
        .default(router("stable"));
    let cases: &[(&str, &[(&str, &str)], &str)] = &[
        ("/", &[("x-t", "1")], "gray router, gray, fallback false"),
        ("/", &[], "stable router, stable, fallback false"),
        ("/", &[("x-v3", "1")], "stable router, v3, fallback true"),
        ("/nowhere", &[("x-t", "1")], "gray fallback"),
    ];
    for (uri, headers, body) in cases {
        assert_eq!(
            call(app.clone(), uri, headers).await,
            (StatusCode::OK, (*body).to_owned()),
            "{uri} {headers:?}"
        );
    }
    assert_eq!(counters.snapshot().fallback("v3"), 1);
}

/// `VariantRouter::tag_every_request`: handlers see the tag headers on
/// every request; without it, only where the request arrived with a tag.
#[tokio::test]
async fn variant_router_tags_every_request_when_asked() {
    let echo = || {
        Router::new().route(
            "/",
            get(|headers: http::HeaderMap| async move {
                let line = |n: &str| {
                    headers
                        .get(n)
                        .map_or("-".to_owned(), |v| v.to_str().unwrap().to_owned())
                };
                format!("{} {}", line("x-gray"), line("baggage"))
            }),
        )
    };
    let cases: &[(&str, bool, &[(&str, &str)], &str)] = &[
        ("off, no tag arrived", false, &[("x-t", "1")], "- -"),
        (
            "off, a client's tag",
            false,
            &[("x-gray", "gray")],
            "stable gray=stable",
        ),
        (
            "on, no tag arrived",
            true,
            &[("x-t", "1")],
            "gray gray=gray",
        ),
        ("on, stable", true, &[], "stable gray=stable"),
    ];
    for (name, every, headers, want) in cases {
        let app = VariantRouter::new(matcher())
            .variant("gray", echo())
            .tag_every_request(*every)
            .default(echo());
        assert_eq!(
            call(app, "/", headers).await,
            (StatusCode::OK, (*want).to_owned()),
            "{name}"
        );
    }
}
