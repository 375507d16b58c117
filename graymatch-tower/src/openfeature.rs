//! An OpenFeature provider (feature `openfeature`): teams on the Rust
//! OpenFeature SDK evaluate graymatch rule sets through its client.
//!
//! Each flag key names a rule set (a [`Matcher`], or a [`SharedMatcher`]
//! for hot reload). A string flag resolves to the decided variant; a
//! boolean flag is on when the request is not on the rule set's default
//! variant. The evaluation context becomes the request the rules see:
//!
//! | context | request |
//! |---|---|
//! | targeting key | a header, `x-user-id` unless [`targeting_key_header`](GraymatchProvider::targeting_key_header) says otherwise (sticky rules hash it) |
//! | `method`, `uri` (or `path`) | the method and URI |
//! | `client_ip` | a [`ClientIp`] for `client_ip` rules |
//! | any other string, number or boolean field | a header of that name (`cookie` is the `Cookie` header) |
//!
//! A field whose name or value cannot be a header is left out. The reason is
//! `TARGETING_MATCH` when a rule decided and `DEFAULT` otherwise; the flag
//! metadata has `rule` (the deciding rule) when there is one.
//!
//! ```
//! use graymatch_tower::openfeature::GraymatchProvider;
//! use open_feature::{EvaluationContext, OpenFeature};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let checkout = graymatch::RuleSet::from_yaml(r#"
//! default: stable
//! rules:
//!   - { name: eu-beta, to: gray, when: { header: { name: region, in: [eu-west, eu-central] } } }
//! "#).unwrap().compile().unwrap();
//!
//! let mut api = OpenFeature::singleton_mut().await;
//! api.set_provider(GraymatchProvider::new().flag("checkout", checkout)).await;
//! let client = api.create_client();
//! drop(api);
//!
//! let cx = EvaluationContext::default()
//!     .with_targeting_key("user-42")
//!     .with_custom_field("region", "eu-west");
//! let details = client.get_string_details("checkout", Some(&cx), None).await.unwrap();
//! assert_eq!(details.value, "gray");
//! assert_eq!(details.variant.as_deref(), Some("gray"));
//! assert!(client.get_bool_value("checkout", Some(&cx), None).await.unwrap());
//! # }
//! ```

use std::collections::HashMap;

use graymatch::{ClientIp, Decision, Matcher, Reason, SharedMatcher};
use http::{HeaderName, HeaderValue, Method, Request};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue,
};

/// Resolves OpenFeature flags with graymatch rule sets; see the
/// [module docs](self).
#[derive(Debug)]
pub struct GraymatchProvider {
    flags: HashMap<String, Source>,
    targeting: HeaderName,
    metadata: ProviderMetadata,
}

#[derive(Debug)]
enum Source {
    Fixed(Box<Matcher>),
    Shared(SharedMatcher),
}

impl Default for GraymatchProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl GraymatchProvider {
    /// A provider with no flags yet; the targeting key goes in `x-user-id`.
    pub fn new() -> Self {
        GraymatchProvider {
            flags: HashMap::new(),
            targeting: HeaderName::from_static("x-user-id"),
            metadata: ProviderMetadata::new("graymatch"),
        }
    }

    /// Resolves flag `key` with `matcher`.
    #[must_use]
    pub fn flag(mut self, key: impl Into<String>, matcher: Matcher) -> Self {
        self.flags
            .insert(key.into(), Source::Fixed(Box::new(matcher)));
        self
    }

    /// Resolves flag `key` with a hot-reloadable matcher.
    #[must_use]
    pub fn shared_flag(mut self, key: impl Into<String>, matcher: SharedMatcher) -> Self {
        self.flags.insert(key.into(), Source::Shared(matcher));
        self
    }

    /// The header the targeting key is put in (what sticky rules hash).
    #[must_use]
    pub fn targeting_key_header(mut self, name: HeaderName) -> Self {
        self.targeting = name;
        self
    }

    fn decide(
        &self,
        key: &str,
        cx: &EvaluationContext,
    ) -> EvaluationResult<(Decision, &'static str)> {
        let source = self.flags.get(key).ok_or_else(|| {
            EvaluationError::builder()
                .code(EvaluationErrorCode::FlagNotFound)
                .message(format!("no rule set for flag {key:?}"))
                .build()
        })?;
        let req = self.request(cx);
        let decide = |m: &Matcher| (m.decide(&req), m.default_variant());
        Ok(match source {
            Source::Fixed(m) => decide(m),
            Source::Shared(s) => decide(&s.load()),
        })
    }

    /// The request the rules see for an evaluation context.
    fn request(&self, cx: &EvaluationContext) -> Request<()> {
        let mut req = Request::new(());
        if let Some(key) = &cx.targeting_key
            && let Ok(v) = HeaderValue::from_str(key)
        {
            req.headers_mut().insert(self.targeting.clone(), v);
        }
        for (name, value) in &cx.custom_fields {
            let text = match value {
                EvaluationContextFieldValue::String(s) => s.clone(),
                EvaluationContextFieldValue::Int(i) => i.to_string(),
                EvaluationContextFieldValue::Float(f) => f.to_string(),
                EvaluationContextFieldValue::Bool(b) => b.to_string(),
                EvaluationContextFieldValue::DateTime(_)
                | EvaluationContextFieldValue::Struct(_) => {
                    continue;
                }
            };
            match name.as_str() {
                "method" => {
                    if let Ok(m) = Method::from_bytes(text.as_bytes()) {
                        *req.method_mut() = m;
                    }
                }
                "uri" | "path" => {
                    if let Ok(u) = text.parse() {
                        *req.uri_mut() = u;
                    }
                }
                "client_ip" => {
                    if let Ok(ip) = text.parse() {
                        req.extensions_mut().insert(ClientIp(ip));
                    }
                }
                _ => {
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(&text),
                    ) {
                        req.headers_mut().append(n, v);
                    }
                }
            }
        }
        req
    }

    fn details<T>(value: T, d: Decision) -> ResolutionDetails<T> {
        let mut metadata = FlagMetadata::default();
        if let Some(rule) = d.rule() {
            metadata.add_value("rule", rule);
        }
        ResolutionDetails {
            value,
            variant: Some(d.variant().to_owned()),
            reason: Some(match d.reason() {
                Reason::Rule => EvaluationReason::TargetingMatch,
                Reason::Default | Reason::Propagated => EvaluationReason::Default,
            }),
            flag_metadata: Some(metadata),
        }
    }

    fn mismatch<T>(kind: &str) -> EvaluationResult<T> {
        Err(EvaluationError::builder()
            .code(EvaluationErrorCode::TypeMismatch)
            .message(format!(
                "graymatch flags resolve to a variant name (string) or on/off (bool), not {kind}"
            ))
            .build())
    }
}

#[open_feature::async_trait]
impl FeatureProvider for GraymatchProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus::Ready
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        cx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let (d, default) = self.decide(flag_key, cx)?;
        Ok(Self::details(d.variant() != default, d))
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        cx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        let (d, _) = self.decide(flag_key, cx)?;
        Ok(Self::details(d.variant().to_owned(), d))
    }

    async fn resolve_int_value(
        &self,
        _: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        Self::mismatch("an integer")
    }

    async fn resolve_float_value(
        &self,
        _: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        Self::mismatch("a float")
    }

    async fn resolve_struct_value(
        &self,
        _: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        Self::mismatch("a structure")
    }
}
