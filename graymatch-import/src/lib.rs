//! Import the canary configuration teams already have as graymatch rule
//! sets: ingress-nginx canary annotations ([`ingress_nginx`]) and Gateway API
//! HTTPRoutes ([`gateway_api`]).
//!
//! The output routes every request as the source system does (the variant
//! is the backend Service's name), or a [`Warning`] says precisely where it
//! cannot: session affinity, PCRE-only regexes, filters and the like. A
//! request the source answers with 404 gets the variant `unmatched` (or
//! [`Options::default_variant`]); a Gateway API rule that matches but has no
//! backend gets `no-backend`. Rule names point back at the manifest
//! (`ingress.shop-canary.header`, `httproute.shop.rules-2.matches-0`), so
//! `graymatch explain` tells which annotation or match decided.
//!
//! Input is YAML (several documents, `kind: List`) or JSON, as `kubectl get
//! -o yaml` prints it. Ingresses are parsed with k8s-openapi's types;
//! HTTPRoutes with this crate's own serde structs (see the `gateway` module
//! notes in `docs/import.md` for why).
//!
//! ```
//! use graymatch_import::{ingress_nginx, Options, Source};
//!
//! let manifests = r#"
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata: { name: shop, namespace: web }
//! spec:
//!   rules:
//!     - host: shop.example.com
//!       http:
//!         paths:
//!           - { path: /, pathType: Prefix, backend: { service: { name: shop, port: { number: 80 } } } }
//! ---
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata:
//!   name: shop-canary
//!   namespace: web
//!   annotations:
//!     nginx.ingress.kubernetes.io/canary: "true"
//!     nginx.ingress.kubernetes.io/canary-by-header: X-Canary
//! spec:
//!   rules:
//!     - host: shop.example.com
//!       http:
//!         paths:
//!           - { path: /, pathType: Prefix, backend: { service: { name: shop-v2, port: { number: 80 } } } }
//! "#;
//! let import = ingress_nginx(&[Source::new("shop.yaml", manifests)], &Options::default())?;
//! let matcher = import.rules.compile()?;
//! let req = http::Request::get("http://shop.example.com/cart").header("x-canary", "always").body(())?;
//! let decision = matcher.decide(&req);
//! assert_eq!(decision.variant(), "shop-v2");
//! assert_eq!(decision.rule(), Some("ingress.shop-canary.header"));
//! assert!(import.to_yaml().starts_with("# graymatch import ingress-nginx"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod emit;
mod gateway;
mod input;
mod nginx;
mod pcre;

use std::fmt;

use graymatch::RuleSet;

pub use emit::RuleNote;

/// The variant of requests the source answers with 404, unless
/// [`Options::default_variant`] renames it.
pub const UNMATCHED: &str = "unmatched";
/// The variant of requests that match a Gateway API rule without backends
/// (the gateway answers 500).
pub const NO_BACKEND: &str = "no-backend";
/// The annotation prefix ingress-nginx reads by default.
pub const NGINX_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";

/// One input file: the name to show in messages and its text.
///
/// ```
/// let s = graymatch_import::Source::new("-", "kind: List\nitems: []\n");
/// assert_eq!(s.name, "-");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The file name as the user gave it (`-` for standard input).
    pub name: String,
    /// The file's text: YAML (one or more documents) or JSON.
    pub text: String,
}

impl Source {
    /// A source named `name` with this text.
    ///
    /// ```
    /// let s = graymatch_import::Source::new("a.yaml", "{}");
    /// assert_eq!(s.text, "{}");
    /// ```
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// How to import.
///
/// ```
/// let o = graymatch_import::Options::default();
/// assert_eq!(o.default_variant, "unmatched");
/// assert_eq!(o.namespace, "default");
/// assert_eq!(o.annotation_prefix, "nginx.ingress.kubernetes.io");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The variant of requests the source answers with 404 (the rule set's
    /// `default`): `unmatched` unless renamed.
    pub default_variant: String,
    /// The namespace of objects whose manifest names none (as `kubectl
    /// apply` would put them in the context's namespace).
    pub namespace: String,
    /// The prefix of ingress-nginx annotations (the controller's
    /// `--annotations-prefix`).
    pub annotation_prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_variant: UNMATCHED.to_owned(),
            namespace: "default".to_owned(),
            annotation_prefix: NGINX_ANNOTATION_PREFIX.to_owned(),
        }
    }
}

/// Something the rule set cannot reproduce, or an input the source itself
/// ignores: one line naming the object (`kind/namespace/name`) and field.
///
/// ```
/// let w = graymatch_import::Warning {
///     object: "Ingress/shop/web".into(),
///     field: "metadata.annotations.nginx.ingress.kubernetes.io/affinity".into(),
///     message: "session affinity cannot be reproduced".into(),
/// };
/// assert_eq!(
///     w.to_string(),
///     "Ingress/shop/web: metadata.annotations.nginx.ingress.kubernetes.io/affinity: session affinity cannot be reproduced"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// `Kind/namespace/name`, or the document (`shop.yaml, document 2`) when
    /// it has no such identity.
    pub object: String,
    /// The field (`spec.rules[0].http.paths[1].pathType`), or empty.
    pub field: String,
    /// What is wrong and what the import does about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.object, self.message)
        } else {
            write!(f, "{}: {}: {}", self.object, self.field, self.message)
        }
    }
}

/// Input that cannot be imported: text that does not parse, or an object of
/// a known kind whose fields have the wrong shape. It names the file, the
/// document (counted from 1) and the field.
///
/// ```
/// let err = graymatch_import::gateway_api(
///     &[graymatch_import::Source::new("r.yaml", "a: [1\n")],
///     &Default::default(),
/// )
/// .unwrap_err();
/// assert!(err.to_string().starts_with("r.yaml, document 1: "), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Where: `shop.yaml, document 2` (and `items[3]` for a list), and the
    /// object when it is known.
    pub place: String,
    /// The field, or empty.
    pub field: String,
    /// The problem.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.place, self.message)
        } else {
            write!(f, "{}: {}: {}", self.place, self.field, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// An imported rule set, its warnings, and the notes that explain each rule.
#[derive(Clone, Debug)]
pub struct Import {
    /// The rule set; it compiles.
    pub rules: RuleSet,
    /// What cannot be reproduced, one line each.
    pub warnings: Vec<Warning>,
    /// Per rule (same order as `rules.rules`): where it comes from.
    pub notes: Vec<RuleNote>,
    /// `ingress-nginx` or `gateway-api`.
    pub source_kind: &'static str,
    /// The input names, for the header comment.
    pub sources: Vec<String>,
}

impl Import {
    /// The rule set as YAML, with a header comment naming the source files
    /// and one comment per rule naming the manifest place it comes from.
    ///
    /// ```
    /// let import = graymatch_import::gateway_api(&[], &Default::default())?;
    /// let yaml = import.to_yaml();
    /// assert!(yaml.contains("default: unmatched"));
    /// let again = graymatch::RuleSet::from_yaml(&yaml)?;
    /// assert_eq!(again, import.rules);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_yaml(&self) -> String {
        emit::render(self)
    }
}

/// Imports ingress-nginx Ingresses: canary annotations merged into the main
/// Ingress locations exactly as the controller and its Lua balancer do.
///
/// # Errors
///
/// When a document does not parse or an Ingress has fields of the wrong
/// shape; the error names the file, document and field.
///
/// ```
/// use graymatch_import::{ingress_nginx, Options, Source};
/// let import = ingress_nginx(&[Source::new("none.yaml", "")], &Options::default())?;
/// assert!(import.rules.rules.is_empty());
/// assert_eq!(import.rules.default, "unmatched");
/// # Ok::<(), graymatch_import::Error>(())
/// ```
pub fn ingress_nginx(sources: &[Source], options: &Options) -> Result<Import, Error> {
    let docs = input::documents(sources)?;
    let mut warnings = Vec::new();
    let (rules, notes) = nginx::import(&docs, options, &mut warnings)?;
    finish(rules, notes, warnings, "ingress-nginx", sources)
}

/// Imports Gateway API HTTPRoutes: every rule of every route in the input,
/// ordered by the spec's precedence.
///
/// # Errors
///
/// When a document does not parse or an HTTPRoute has fields of the wrong
/// shape; the error names the file, document and field.
///
/// ```
/// use graymatch_import::{gateway_api, Options, Source};
/// let route = r#"
/// apiVersion: gateway.networking.k8s.io/v1
/// kind: HTTPRoute
/// metadata: { name: shop, namespace: web }
/// spec:
///   rules:
///     - matches: [ { path: { type: PathPrefix, value: /v2 } } ]
///       backendRefs: [ { name: shop-v2, port: 80 } ]
///     - backendRefs: [ { name: shop, port: 80, weight: 9 }, { name: shop-v2, port: 80, weight: 1 } ]
/// "#;
/// let import = gateway_api(&[Source::new("route.yaml", route)], &Options::default())?;
/// let names: Vec<&str> = import.rules.rules.iter().map(|r| r.name.as_str()).collect();
/// assert_eq!(names, ["httproute.shop.rules-0.matches-0", "httproute.shop.rules-1.matches-0"]);
/// let split = import.rules.rules[1].split.as_ref().unwrap();
/// assert_eq!((split[0].percent, split[1].percent), (90.0, 10.0));
/// # Ok::<(), graymatch_import::Error>(())
/// ```
pub fn gateway_api(sources: &[Source], options: &Options) -> Result<Import, Error> {
    let docs = input::documents(sources)?;
    let mut warnings = Vec::new();
    let (rules, notes) = gateway::import(&docs, options, &mut warnings)?;
    finish(rules, notes, warnings, "gateway-api", sources)
}

fn finish(
    rules: RuleSet,
    notes: Vec<RuleNote>,
    warnings: Vec<Warning>,
    source_kind: &'static str,
    sources: &[Source],
) -> Result<Import, Error> {
    let import = Import {
        rules,
        warnings,
        notes,
        source_kind,
        sources: sources.iter().map(|s| s.name.clone()).collect(),
    };
    // The output must be a rule set `graymatch check` accepts, and its text
    // must read back as the same rule set: anything else is a bug here.
    let internal = |message: String| Error {
        place: "graymatch import".to_owned(),
        field: String::new(),
        message: format!("internal error, please report it: {message}"),
    };
    import
        .rules
        .compile()
        .map_err(|e| internal(e.to_string()))?;
    let again = RuleSet::from_yaml(&import.to_yaml()).map_err(|e| internal(e.to_string()))?;
    if again != import.rules {
        return Err(internal(
            "the YAML does not read back as the rule set".to_owned(),
        ));
    }
    Ok(import)
}
