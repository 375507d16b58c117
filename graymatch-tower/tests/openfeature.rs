//! The OpenFeature provider through the SDK's own client API. One test:
//! the SDK's API object is a process-wide singleton.
#![cfg(feature = "openfeature")]

use graymatch::{RuleSet, SharedMatcher};
use graymatch_tower::openfeature::GraymatchProvider;
use open_feature::{EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature};

const CHECKOUT: &str = r#"
default: stable
variants: [stable, gray]
rules:
  - { name: office, to: gray, when: { client_ip: { cidr: [10.0.0.0/8] } } }
  - { name: admins, to: gray, when: { all: [ { method: { equals: POST } }, { path: { prefix: /admin } } ] } }
  - { name: eu-beta, to: gray, when: { header: { name: region, in: [eu-west] } } }
  - { name: canary-30, to: gray, percent: 30, sticky: { header: x-user-id, missing: skip } }
"#;

#[tokio::test(flavor = "current_thread")]
async fn flags_resolve_through_the_sdk_client() {
    let checkout = RuleSet::from_yaml(CHECKOUT).unwrap().compile().unwrap();
    let search = SharedMatcher::new(RuleSet::new("old").compile().unwrap());
    let mut api = OpenFeature::singleton_mut().await;
    api.set_provider(
        GraymatchProvider::new()
            .flag("checkout", checkout)
            .shared_flag("search", search.clone()),
    )
    .await;
    let client = api.create_client();
    drop(api);

    let cx = EvaluationContext::default;
    // (case, context, variant, reason, rule)
    let cases: Vec<(
        &str,
        EvaluationContext,
        &str,
        EvaluationReason,
        Option<&str>,
    )> = vec![
        (
            "nothing: default",
            cx(),
            "stable",
            EvaluationReason::Default,
            None,
        ),
        (
            "custom field as header",
            cx().with_custom_field("region", "eu-west"),
            "gray",
            EvaluationReason::TargetingMatch,
            Some("eu-beta"),
        ),
        (
            "client address",
            cx().with_custom_field("client_ip", "10.1.2.3"),
            "gray",
            EvaluationReason::TargetingMatch,
            Some("office"),
        ),
        (
            "method and path",
            cx().with_custom_field("method", "POST")
                .with_custom_field("path", "/admin/users"),
            "gray",
            EvaluationReason::TargetingMatch,
            Some("admins"),
        ),
        (
            "path alone is not enough",
            cx().with_custom_field("path", "/admin/users"),
            "stable",
            EvaluationReason::Default,
            None,
        ),
    ];
    for (name, context, variant, reason, rule) in cases {
        let d = client
            .get_string_details("checkout", Some(&context), None)
            .await
            .unwrap_or_else(|e| panic!("case {name}: {e:?}"));
        assert_eq!(d.value, variant, "case {name}");
        assert_eq!(d.variant.as_deref(), Some(variant), "case {name}");
        assert_eq!(d.reason, Some(reason), "case {name}");
        let got_rule = d.flag_metadata.values.get("rule").map(|v| format!("{v:?}"));
        assert_eq!(
            got_rule.is_some(),
            rule.is_some(),
            "case {name}: {got_rule:?}"
        );
        if let (Some(got), Some(want)) = (got_rule, rule) {
            assert!(got.contains(want), "case {name}: {got}");
        }
        let on = client
            .get_bool_value("checkout", Some(&context), None)
            .await
            .unwrap();
        assert_eq!(on, variant == "gray", "case {name}");
    }

    // The targeting key is the sticky key: the same users, the same answers,
    // about 30 % of them gray.
    let mut gray = 0;
    for i in 0..1000 {
        let context = cx().with_targeting_key(format!("user-{i}"));
        let a = client
            .get_string_value("checkout", Some(&context), None)
            .await
            .unwrap();
        let b = client
            .get_string_value("checkout", Some(&context), None)
            .await
            .unwrap();
        assert_eq!(a, b);
        gray += usize::from(a == "gray");
    }
    assert!((250..350).contains(&gray), "{gray} of 1000");

    // A shared flag follows reloads.
    assert_eq!(
        client.get_string_value("search", None, None).await.unwrap(),
        "old"
    );
    search.reload(&RuleSet::new("new")).unwrap();
    assert_eq!(
        client.get_string_value("search", None, None).await.unwrap(),
        "new"
    );

    // Errors: an unknown flag, a type graymatch does not resolve.
    let e = client
        .get_string_value("nope", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    let e = client
        .get_int_value("checkout", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);
}
