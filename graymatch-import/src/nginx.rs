//! ingress-nginx: the controller's merge of canary Ingresses into the main
//! Ingress locations, and the Lua balancer's choice, replayed on the input.
//!
//! The steps follow `internal/ingress/controller/controller.go`
//! (`createUpstreams`, `createServers`, `getBackendServers`,
//! `mergeAlternativeBackends`), `location.go` (`updateServerLocations`),
//! the template's `buildLocation`/`buildServerName`, the annotation parser
//! (`annotations/canary`, `annotations/parser`) and `balancer.lua`
//! (`route_to_alternative_balancer`). Notable consequences, all reproduced:
//! - Ingresses are taken oldest first (`creationTimestamp`; a missing one is
//!   the oldest), ties by `namespace/name` in reverse order.
//! - The canary is attached to the main *upstream* (namespace, Service,
//!   port): every location served by that upstream gets it, on any host.
//! - Only the first canary attached to an upstream counts; a canary path
//!   that finds no main location makes the controller drop the canary's
//!   upstream, and then it counts nowhere.
//! - `ImplementationSpecific` is `Prefix`; a `Prefix` path `/p` becomes
//!   the locations `= /p` and `/p/` (element-wise); `/p/` stays `/p/`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use graymatch::{Condition, Field, Op, Rule, RuleSet};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use k8s_openapi::jiff::Timestamp;

use crate::emit::{self, BackendId, Names, ObjectNames, RuleNote};
use crate::input::{self, Doc};
use crate::pcre::{self, Pcre};
use crate::{Error, Options, Warning};

const DEF_UPSTREAM: &str = "upstream-default-backend";
const DEF_SERVER: &str = "_";

/// Every annotation ingress-nginx reads (without its prefix): the others
/// are typos or foreign, and the controller ignores them.
const KNOWN: &[&str] = &[
    "affinity",
    "affinity-canary-behavior",
    "affinity-mode",
    "allowlist-source-range",
    "app-root",
    "auth-always-set-cookie",
    "auth-cache-duration",
    "auth-cache-key",
    "auth-keepalive",
    "auth-keepalive-requests",
    "auth-keepalive-share-vars",
    "auth-keepalive-timeout",
    "auth-method",
    "auth-proxy-set-headers",
    "auth-realm",
    "auth-request-redirect",
    "auth-response-headers",
    "auth-secret",
    "auth-secret-type",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-snippet",
    "auth-tls-error-page",
    "auth-tls-match-cn",
    "auth-tls-pass-certificate-to-upstream",
    "auth-tls-secret",
    "auth-tls-verify-client",
    "auth-tls-verify-depth",
    "auth-type",
    "auth-url",
    "backend-protocol",
    "canary",
    "canary-by-cookie",
    "canary-by-header",
    "canary-by-header-pattern",
    "canary-by-header-value",
    "canary-weight",
    "canary-weight-total",
    "client-body-buffer-size",
    "configuration-snippet",
    "connection-proxy-header",
    "cors-allow-credentials",
    "cors-allow-headers",
    "cors-allow-methods",
    "cors-allow-origin",
    "cors-expose-headers",
    "cors-max-age",
    "custom-headers",
    "custom-http-errors",
    "default-backend",
    "denylist-source-range",
    "disable-proxy-intercept-errors",
    "enable-access-log",
    "enable-cors",
    "enable-global-auth",
    "enable-modsecurity",
    "enable-opentelemetry",
    "enable-owasp-core-rules",
    "enable-rewrite-log",
    "fastcgi-index",
    "fastcgi-params-configmap",
    "force-ssl-redirect",
    "from-to-www-redirect",
    "http2-push-preload",
    "limit-allowlist",
    "limit-burst-multiplier",
    "limit-connections",
    "limit-rate",
    "limit-rate-after",
    "limit-rpm",
    "limit-rps",
    "limit-whitelist",
    "load-balance",
    "mirror-host",
    "mirror-request-body",
    "mirror-target",
    "modsecurity-snippet",
    "modsecurity-transaction-id",
    "opentelemetry-operation-name",
    "opentelemetry-trust-incoming-span",
    "permanent-redirect",
    "permanent-redirect-code",
    "preserve-trailing-slash",
    "proxy-body-size",
    "proxy-buffer-size",
    "proxy-buffering",
    "proxy-buffers-number",
    "proxy-busy-buffers-size",
    "proxy-connect-timeout",
    "proxy-cookie-domain",
    "proxy-cookie-path",
    "proxy-http-version",
    "proxy-max-temp-file-size",
    "proxy-next-upstream",
    "proxy-next-upstream-timeout",
    "proxy-next-upstream-tries",
    "proxy-read-timeout",
    "proxy-redirect-from",
    "proxy-redirect-to",
    "proxy-request-buffering",
    "proxy-send-timeout",
    "proxy-ssl-ciphers",
    "proxy-ssl-name",
    "proxy-ssl-protocols",
    "proxy-ssl-secret",
    "proxy-ssl-server-name",
    "proxy-ssl-verify",
    "proxy-ssl-verify-depth",
    "relative-redirects",
    "rewrite-target",
    "satisfy",
    "server-alias",
    "server-snippet",
    "service-upstream",
    "session-cookie-change-on-failure",
    "session-cookie-conditional-samesite-none",
    "session-cookie-domain",
    "session-cookie-expires",
    "session-cookie-max-age",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-samesite",
    "session-cookie-secure",
    "ssl-ciphers",
    "ssl-passthrough",
    "ssl-prefer-server-ciphers",
    "ssl-redirect",
    "stream-snippet",
    "temporal-redirect",
    "temporal-redirect-code",
    "upstream-hash-by",
    "upstream-hash-by-subset",
    "upstream-hash-by-subset-size",
    "upstream-vhost",
    "use-port-in-redirects",
    "use-regex",
    "whitelist-source-range",
    "x-forwarded-prefix",
];

/// A backend Service of an Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Backend {
    id: BackendId,
}

impl Backend {
    fn of(ns: &str, b: &IngressBackend) -> Option<Self> {
        let svc = b.service.as_ref()?;
        let port = svc.port.as_ref().and_then(|p| match (p.number, &p.name) {
            (Some(n), _) if n > 0 => Some(n.to_string()),
            (_, Some(name)) if !name.is_empty() => Some(name.clone()),
            _ => None,
        });
        Some(Backend {
            id: BackendId {
                kind: "Service".to_owned(),
                namespace: ns.to_owned(),
                name: svc.name.clone(),
                port: port.unwrap_or_default(),
            },
        })
    }

    /// The controller's upstream name: `namespace-service-port`.
    fn upstream(&self) -> String {
        if self.id.port.is_empty() {
            format!("{}-INVALID", self.id.namespace)
        } else {
            format!("{}-{}-{}", self.id.namespace, self.id.name, self.id.port)
        }
    }
}

/// The canary annotations as the controller reads them (`canary.Config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Policy {
    weight: i64,
    weight_total: i64,
    header: String,
    header_value: String,
    header_pattern: String,
    cookie: String,
}

#[derive(Debug)]
struct IngPath {
    path: String,
    exact: bool,
    backend: Option<Backend>,
}

#[derive(Debug)]
struct IngRule {
    host: String,
    http: Option<Vec<IngPath>>,
}

#[derive(Debug)]
struct Ing {
    object: String,
    namespace: String,
    name: String,
    created: Option<Timestamp>,
    canary: Option<Policy>,
    default_backend: Option<Backend>,
    rules: Vec<IngRule>,
    use_regex: bool,
    rewrite_target: String,
}

/// Where a location comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// `spec.rules[rule].http.paths[path]` of an Ingress.
    Path {
        ing: usize,
        rule: usize,
        path: usize,
    },
    /// The root location of a host's server, made for `spec.rules[rule]`.
    Root { ing: usize, rule: usize },
    /// The default server's root, given a catch-all Ingress's defaultBackend.
    CatchAll { ing: usize },
    /// The default server's root: the default backend (404).
    Default,
}

#[derive(Clone, Debug)]
struct Location {
    path: String,
    exact: bool,
    backend: String,
    is_def: bool,
    origin: Origin,
}

#[derive(Debug)]
struct Upstream {
    backend: Option<Backend>,
    no_server: bool,
    /// The canary policy, with the Ingress that set it.
    policy: Option<(usize, Policy)>,
    alternatives: Vec<String>,
    /// The Ingress that made it.
    creator: Option<usize>,
}

struct Model {
    ings: Vec<Ing>,
    upstreams: BTreeMap<String, Upstream>,
    /// Upstreams the merge deleted (a canary path without a main location).
    deleted: BTreeMap<String, usize>,
    servers: BTreeMap<String, Vec<Location>>,
}

pub(crate) fn import(
    docs: &[Doc],
    options: &Options,
    warnings: &mut Vec<Warning>,
) -> Result<(RuleSet, Vec<RuleNote>), Error> {
    let mut ings = Vec::new();
    for doc in docs {
        match (doc.kind(), doc.api_version()) {
            ("Ingress", "networking.k8s.io/v1") => {
                let ing: Ingress = doc.parse(options)?;
                ings.push(read_ingress(&ing, options, warnings));
            }
            ("Ingress", v) => warnings.push(Warning {
                object: doc.object(options),
                field: "apiVersion".to_owned(),
                message: format!(
                    "{v} Ingresses are not read (ingress-nginx serves networking.k8s.io/v1 only); skipped"
                ),
            }),
            _ => warnings.push(input::skipped(doc, options, "networking.k8s.io/v1 Ingresses")),
        }
    }
    if ings.is_empty() {
        warnings.push(Warning {
            object: "input".to_owned(),
            field: String::new(),
            message: "no Ingress found: every request gets the default backend (404)".to_owned(),
        });
    }
    // The store lists Ingresses oldest first; equal timestamps (a missing
    // one is the zero time) by `namespace/name`, last name first.
    ings.sort_by(|a, b| {
        a.created.cmp(&b.created).then_with(|| {
            let ka = format!("{}/{}", a.namespace, a.name);
            let kb = format!("{}/{}", b.namespace, b.name);
            kb.cmp(&ka)
        })
    });
    let mut model = Model {
        ings,
        upstreams: BTreeMap::new(),
        deleted: BTreeMap::new(),
        servers: BTreeMap::new(),
    };
    model.create_upstreams();
    model.create_servers();
    model.add_locations(warnings);
    if model.ings.iter().any(|i| i.canary.is_none()) {
        for c in 0..model.ings.len() {
            if model.ings[c].canary.is_some() {
                model.merge(c, warnings);
            }
        }
    } else if model.ings.iter().any(|i| i.canary.is_some()) {
        warnings.push(Warning {
            object: "input".to_owned(),
            field: String::new(),
            message: "only canary Ingresses: ingress-nginx merges none of them, every request gets the default backend (404)".to_owned(),
        });
    }
    Emitter::new(&model, options, warnings).run()
}

fn read_ingress(ing: &Ingress, options: &Options, warnings: &mut Vec<Warning>) -> Ing {
    let namespace = ing
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| options.namespace.clone());
    let name = ing.metadata.name.clone().unwrap_or_default();
    let object = format!("Ingress/{namespace}/{name}");
    let anns = ing.metadata.annotations.clone().unwrap_or_default();
    let mut ann = Annotations {
        anns: &anns,
        prefix: &options.annotation_prefix,
        object: &object,
        warnings,
    };
    ann.unknown();
    let canary = ann.canary();
    let use_regex = ann.boolean("use-regex").unwrap_or(false);
    let rewrite_target = ann.string("rewrite-target").unwrap_or_default();
    ann.unreproducible();
    let spec = ing.spec.clone().unwrap_or_default();
    let default_backend = spec.default_backend.as_ref().and_then(|b| {
        let backend = Backend::of(&namespace, b);
        if backend.is_none() {
            warnings.push(Warning {
                object: object.clone(),
                field: "spec.defaultBackend".to_owned(),
                message: "not a Service backend; ingress-nginx ignores it".to_owned(),
            });
        }
        backend
    });
    let mut rules = Vec::new();
    for (ri, rule) in spec.rules.unwrap_or_default().into_iter().enumerate() {
        let host = rule
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEF_SERVER.to_owned());
        let http = rule.http.map(|http| {
            http.paths
                .iter()
                .enumerate()
                .map(|(pi, p)| {
                    let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                    let exact = match p.path_type.as_str() {
                        "Exact" => true,
                        "Prefix" | "ImplementationSpecific" => false,
                        other => {
                            warnings.push(Warning {
                                object: object.clone(),
                                field: format!("{field}.pathType"),
                                message: format!(
                                    "unknown pathType {other:?}; read as Prefix, as ingress-nginx reads ImplementationSpecific"
                                ),
                            });
                            false
                        }
                    };
                    let backend = Backend::of(&namespace, &p.backend);
                    if backend.is_none() {
                        warnings.push(Warning {
                            object: object.clone(),
                            field: format!("{field}.backend"),
                            message: "not a Service backend; ingress-nginx skips this path".to_owned(),
                        });
                    } else if backend.as_ref().is_some_and(|b| b.id.port.is_empty()) {
                        warnings.push(Warning {
                            object: object.clone(),
                            field: format!("{field}.backend.service.port"),
                            message: "no port number or name; ingress-nginx names the upstream `NAMESPACE-INVALID`".to_owned(),
                        });
                    }
                    IngPath {
                        path: p.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".to_owned()),
                        exact,
                        backend,
                    }
                })
                .collect()
        });
        rules.push(IngRule { host, http });
    }
    Ing {
        object,
        namespace,
        name,
        created: ing.metadata.creation_timestamp.as_ref().map(|t| t.0),
        canary,
        default_backend,
        rules,
        use_regex,
        rewrite_target,
    }
}

/// Reads annotations with the controller's validators; a value a validator
/// rejects counts as unset, with a warning.
struct Annotations<'a> {
    anns: &'a BTreeMap<String, String>,
    prefix: &'a str,
    object: &'a str,
    warnings: &'a mut Vec<Warning>,
}

impl Annotations<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    fn warn(&mut self, name: &str, message: String) {
        self.warnings.push(Warning {
            object: self.object.to_owned(),
            field: format!("metadata.annotations.{}", self.key(name)),
            message,
        });
    }

    /// The raw value: `None` when absent or empty (the parser's "missing").
    fn raw(&self, name: &str) -> Option<&str> {
        self.anns.get(&self.key(name)).map(String::as_str)
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        let v = self.raw(name)?;
        match parse_bool(v) {
            Some(b) => Some(b),
            None if v.is_empty() => None,
            None => {
                self.warn(
                    name,
                    format!("{v:?} is not a boolean (true, false, 1, 0, t, f, ...); ingress-nginx reads it as unset"),
                );
                None
            }
        }
    }

    fn int(&mut self, name: &str) -> Option<i64> {
        let v = self.raw(name)?;
        match parse_int(v) {
            Some(i) => Some(i),
            None if v.is_empty() => None,
            None => {
                self.warn(
                    name,
                    format!("{v:?} is not an integer; ingress-nginx reads it as unset"),
                );
                None
            }
        }
    }

    /// A string checked by `valid` (the controller's validator), then
    /// trimmed line by line; empty is unset.
    fn checked(&mut self, name: &str, valid: fn(&str) -> bool, what: &str) -> Option<String> {
        let v = self.raw(name)?.to_owned();
        if !v.is_empty() && (!valid(&v) || v.contains(['\r', '\n'])) {
            self.warn(
                name,
                format!("{v:?} has characters ingress-nginx refuses in {what}; it reads the annotation as unset"),
            );
            return None;
        }
        let s: Vec<&str> = v.split('\n').map(str::trim).collect();
        let s = s.join("\n");
        (!s.is_empty()).then_some(s)
    }

    fn string(&mut self, name: &str) -> Option<String> {
        let v = self.raw(name)?.trim().to_owned();
        (!v.is_empty()).then_some(v)
    }

    /// `canary.Config`, when `canary` is true.
    fn canary(&mut self) -> Option<Policy> {
        let enabled = self.boolean("canary").unwrap_or(false);
        let policy = Policy {
            weight: self.int("canary-weight").unwrap_or(0),
            weight_total: self.int("canary-weight-total").unwrap_or(100),
            header: self
                .checked("canary-by-header", basic_chars, "a header name")
                .unwrap_or_default(),
            header_value: self
                .checked("canary-by-header-value", basic_chars, "a header value")
                .unwrap_or_default(),
            header_pattern: self
                .checked("canary-by-header-pattern", regex_chars, "a pattern")
                .unwrap_or_default(),
            cookie: self
                .checked("canary-by-cookie", basic_chars, "a cookie name")
                .unwrap_or_default(),
        };
        if enabled {
            if !policy.header_value.is_empty() && policy.header.is_empty() {
                self.warn(
                    "canary-by-header-value",
                    "has no effect without canary-by-header".to_owned(),
                );
            }
            if !policy.header_pattern.is_empty() && policy.header.is_empty() {
                self.warn(
                    "canary-by-header-pattern",
                    "has no effect without canary-by-header".to_owned(),
                );
            }
            if !policy.header_pattern.is_empty() && !policy.header_value.is_empty() {
                self.warn(
                    "canary-by-header-pattern",
                    "ignored: canary-by-header-value is set and wins".to_owned(),
                );
            }
            return Some(policy);
        }
        let configured = policy.weight > 0
            || !policy.header.is_empty()
            || !policy.header_value.is_empty()
            || !policy.header_pattern.is_empty()
            || !policy.cookie.is_empty();
        if configured {
            self.warn(
                "canary",
                "canary annotations are set but canary is not \"true\": ingress-nginx ignores them and serves this Ingress as a main Ingress".to_owned(),
            );
        }
        None
    }

    /// Warns about annotations the controller does not know.
    fn unknown(&mut self) {
        let prefix = format!("{}/", self.prefix);
        let names: Vec<String> = self
            .anns
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|k| !KNOWN.contains(k))
            .map(str::to_owned)
            .collect();
        for name in names {
            let close = closest(&name);
            self.warn(
                &name,
                match close {
                    Some(known) => format!(
                        "unknown annotation, ingress-nginx ignores it; did you mean {prefix}{known}?"
                    ),
                    None => "unknown annotation, ingress-nginx ignores it".to_owned(),
                },
            );
        }
    }

    /// Warns about annotations whose effect a rule set cannot reproduce.
    fn unreproducible(&mut self) {
        let notes: &[(&str, &str)] = &[
            (
                "affinity",
                "session affinity cannot be reproduced: a request nginx has pinned to a backend (or to the canary) stays there, whatever the canary rules say",
            ),
            (
                "affinity-canary-behavior",
                "session affinity cannot be reproduced",
            ),
            (
                "server-alias",
                "alias hosts are not imported: requests for them get what other hosts' rules (or the default server) give",
            ),
            (
                "permanent-redirect",
                "nginx redirects these requests; the rule set routes them to the location's backend",
            ),
            (
                "temporal-redirect",
                "nginx redirects these requests; the rule set routes them to the location's backend",
            ),
            (
                "app-root",
                "nginx redirects `/` to the app root; the rule set routes `/` to the location's backend",
            ),
            (
                "from-to-www-redirect",
                "nginx redirects between www and non-www hosts; not reproduced",
            ),
        ];
        for (name, message) in notes {
            if self.raw(name).is_some_and(|v| !v.trim().is_empty()) {
                self.warn(name, (*message).to_owned());
            }
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.Atoi` (64-bit): an optional sign and decimal digits.
fn parse_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// The parser's `BasicCharsRegex`, spaces removed first.
fn basic_chars(v: &str) -> bool {
    v.chars()
        .filter(|&c| c != ' ')
        .all(|c| c.is_ascii_alphanumeric() || "/-._~:".contains(c))
}

/// The parser's `IsValidRegex` (spaces not removed).
fn regex_chars(v: &str) -> bool {
    v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~:^$[](){}*+?|&=\\".contains(c))
}

/// The known annotation nearest to `name`, when it is near.
fn closest(name: &str) -> Option<&'static str> {
    let (d, best) = KNOWN
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .min_by_key(|(d, _)| *d)?;
    (d <= 2.max(name.len() / 4)).then_some(best)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Model {
    /// `createUpstreams`: the first Ingress to name an upstream makes it; a
    /// canary's upstream serves no location and carries the policy.
    fn create_upstreams(&mut self) {
        self.upstreams.insert(
            DEF_UPSTREAM.to_owned(),
            Upstream {
                backend: None,
                no_server: false,
                policy: None,
                alternatives: Vec::new(),
                creator: None,
            },
        );
        for (i, ing) in self.ings.iter().enumerate() {
            let mut make = |b: &Backend, replace: bool| {
                let name = b.upstream();
                if !replace && self.upstreams.contains_key(&name) {
                    return;
                }
                self.upstreams.insert(
                    name,
                    Upstream {
                        backend: Some(b.clone()),
                        no_server: ing.canary.is_some(),
                        policy: ing.canary.clone().map(|p| (i, p)),
                        alternatives: Vec::new(),
                        creator: Some(i),
                    },
                );
            };
            // The defaultBackend's upstream is made anew by every Ingress
            // that names it.
            if let Some(b) = &ing.default_backend {
                make(b, true);
            }
            for rule in &ing.rules {
                for p in rule.http.iter().flatten() {
                    if let Some(b) = &p.backend {
                        make(b, false);
                    }
                }
            }
        }
    }

    /// `createServers`: the default server, and one server per host of a
    /// main Ingress, each with a root location.
    fn create_servers(&mut self) {
        self.servers.insert(
            DEF_SERVER.to_owned(),
            vec![Location {
                path: "/".to_owned(),
                exact: false,
                backend: DEF_UPSTREAM.to_owned(),
                is_def: true,
                origin: Origin::Default,
            }],
        );
        for (i, ing) in self.ings.iter().enumerate() {
            if ing.canary.is_some() {
                continue;
            }
            let mut un = DEF_UPSTREAM.to_owned();
            if let Some(b) = &ing.default_backend {
                let name = b.upstream();
                if self.upstreams.contains_key(&name) {
                    un = name.clone();
                    let root = &mut self.servers.get_mut(DEF_SERVER).expect("default server")[0];
                    if root.is_def && ing.rules.is_empty() {
                        root.is_def = false;
                        root.backend = name;
                        root.origin = Origin::CatchAll { ing: i };
                    }
                }
            }
            for (ri, rule) in ing.rules.iter().enumerate() {
                if self.servers.contains_key(&rule.host) {
                    continue;
                }
                self.servers.insert(
                    rule.host.clone(),
                    vec![Location {
                        path: "/".to_owned(),
                        exact: false,
                        backend: un.clone(),
                        is_def: true,
                        origin: Origin::Root { ing: i, rule: ri },
                    }],
                );
            }
        }
    }

    /// The location loop of `getBackendServers`.
    fn add_locations(&mut self, warnings: &mut Vec<Warning>) {
        for (i, ing) in self.ings.iter().enumerate() {
            for (ri, rule) in ing.rules.iter().enumerate() {
                let host = if self.servers.contains_key(&rule.host) {
                    rule.host.clone()
                } else {
                    DEF_SERVER.to_owned()
                };
                let Some(paths) = &rule.http else { continue };
                for (pi, p) in paths.iter().enumerate() {
                    let Some(b) = &p.backend else { continue };
                    let ups = b.upstream();
                    if self.upstreams.get(&ups).is_none_or(|u| u.no_server) {
                        continue;
                    }
                    if ing.canary.is_some() {
                        warnings.push(Warning {
                            object: ing.object.clone(),
                            field: format!("spec.rules[{ri}].http.paths[{pi}].backend"),
                            message: format!(
                                "this canary's Service is already a main backend (upstream {ups}); ingress-nginx serves this path as a main location, not as a canary"
                            ),
                        });
                    }
                    let server = self.servers.get_mut(&host).expect("server");
                    let mut add = true;
                    for loc in server.iter_mut() {
                        if loc.path != p.path {
                            continue;
                        }
                        if loc.exact != p.exact {
                            break;
                        }
                        add = false;
                        if loc.is_def {
                            loc.backend = ups.clone();
                            loc.is_def = false;
                            loc.origin = Origin::Path {
                                ing: i,
                                rule: ri,
                                path: pi,
                            };
                        } else {
                            warnings.push(Warning {
                                object: ing.object.clone(),
                                field: format!("spec.rules[{ri}].http.paths[{pi}]"),
                                message: format!(
                                    "host {} path {} ({}) is already served by an Ingress the controller reads first (older, or of equal age and later namespace/name); ingress-nginx ignores this path",
                                    show_host(&host),
                                    p.path,
                                    if p.exact { "Exact" } else { "Prefix" }
                                ),
                            });
                        }
                        break;
                    }
                    if add {
                        server.push(Location {
                            path: p.path.clone(),
                            exact: p.exact,
                            backend: ups,
                            is_def: false,
                            origin: Origin::Path {
                                ing: i,
                                rule: ri,
                                path: pi,
                            },
                        });
                    }
                }
            }
        }
    }

    fn can_merge(&self, primary: &str, alternative: &str) -> bool {
        primary != alternative
            && primary != DEF_UPSTREAM
            && self.upstreams.get(primary).is_some_and(|u| !u.no_server)
    }

    fn merge_into(&mut self, primary: &str, alternative: &str) -> bool {
        let Some(p) = self.upstreams.get_mut(primary) else {
            return false;
        };
        if p.no_server {
            return false;
        }
        if !p.alternatives.iter().any(|a| a == alternative) {
            p.alternatives.push(alternative.to_owned());
        }
        true
    }

    /// `mergeAlternativeBackends` for canary Ingress `c`.
    fn merge(&mut self, c: usize, warnings: &mut Vec<Warning>) {
        let object = self.ings[c].object.clone();
        if let Some(b) = self.ings[c].default_backend.clone() {
            let alt = b.upstream();
            if self.upstreams.contains_key(&alt) {
                let (merged, equals) = self.merge_server(DEF_SERVER, &alt, None);
                if !equals && !merged {
                    self.drop_upstream(
                        &alt,
                        c,
                        warnings,
                        "spec.defaultBackend",
                        "the default server has no main location to attach it to",
                    );
                }
            }
        }
        let rules: Vec<(
            usize,
            String,
            Option<Vec<(usize, String, bool, Option<Backend>)>>,
        )> = self.ings[c]
            .rules
            .iter()
            .enumerate()
            .map(|(ri, r)| {
                (
                    ri,
                    r.host.clone(),
                    r.http.as_ref().map(|ps| {
                        ps.iter()
                            .enumerate()
                            .map(|(pi, p)| (pi, p.path.clone(), p.exact, p.backend.clone()))
                            .collect()
                    }),
                )
            })
            .collect();
        for (ri, host, paths) in rules {
            let Some(paths) = paths else {
                warnings.push(Warning {
                    object: object.clone(),
                    field: format!("spec.rules[{ri}].http"),
                    message: "a canary rule without http: the ingress-nginx controller fails on it (nil http); skipped".to_owned(),
                });
                continue;
            };
            for (pi, path, exact, backend) in paths {
                let Some(b) = backend else { continue };
                let alt = b.upstream();
                if !self.upstreams.contains_key(&alt) {
                    continue;
                }
                let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                if !self.servers.contains_key(&host) {
                    warnings.push(Warning {
                        object: object.clone(),
                        field: format!("spec.rules[{ri}].host"),
                        message: format!(
                            "no main Ingress serves host {}: this canary rule is ignored and the host gets what the default server gives",
                            show_host(&host)
                        ),
                    });
                    continue;
                }
                let (merged, equals) = self.merge_server(&host, &alt, Some((&path, exact)));
                if !equals && !merged {
                    let why = format!(
                        "no main location for host {} path {path} ({})",
                        show_host(&host),
                        if exact { "Exact" } else { "Prefix" }
                    );
                    self.drop_upstream(&alt, c, warnings, &field, &why);
                }
            }
        }
    }

    /// The location loop of `mergeAlternativeBackends` over one server:
    /// `(merged, alternative equals a primary)`.
    fn merge_server(&mut self, host: &str, alt: &str, path: Option<(&str, bool)>) -> (bool, bool) {
        let locations = self.servers[host].clone();
        let mut merged = false;
        let mut equals = false;
        for loc in locations {
            if !self.upstreams.contains_key(&loc.backend) {
                continue;
            }
            equals = loc.backend == alt;
            if equals {
                break;
            }
            let same_path = path.is_none_or(|(p, exact)| loc.path == p && loc.exact == exact);
            if self.can_merge(&loc.backend, alt) && same_path {
                merged = self.merge_into(&loc.backend, alt);
            }
        }
        (merged, equals)
    }

    fn drop_upstream(
        &mut self,
        alt: &str,
        c: usize,
        warnings: &mut Vec<Warning>,
        field: &str,
        why: &str,
    ) {
        self.upstreams.remove(alt);
        self.deleted.insert(alt.to_owned(), c);
        warnings.push(Warning {
            object: self.ings[c].object.clone(),
            field: field.to_owned(),
            message: format!(
                "{why}: ingress-nginx drops this canary's upstream {alt}, so the canary takes no traffic anywhere"
            ),
        });
    }
}

fn show_host(host: &str) -> String {
    if host == DEF_SERVER {
        "(any host)".to_owned()
    } else {
        host.to_owned()
    }
}

/// How a location matches a path, once nginx has it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    /// `location = P`.
    Exact(String),
    /// `location P` (P ends in `/`, or is `/`).
    Prefix(String),
    /// `location = P` and `location P/` of one Prefix path: element-wise.
    Segments(String),
    /// `location ~* "^P"` (use-regex or rewrite-target on the server).
    Regex(String),
}

impl Matcher {
    fn describe(&self) -> String {
        match self {
            Matcher::Exact(p) => format!("Exact {p}"),
            Matcher::Prefix(p) if p == "/" => "every path".to_owned(),
            Matcher::Prefix(p) => format!("paths starting with {p}"),
            Matcher::Segments(p) => format!("Prefix {p} (element-wise)"),
            Matcher::Regex(p) => format!("regex ^{p} (case-insensitive)"),
        }
    }
}

/// A location as nginx matches it.
#[derive(Clone, Debug)]
struct Effective {
    matcher: Matcher,
    backend: String,
    origin: Origin,
}

/// `updateServerLocations` and the template, for one server: the
/// locations in the order graymatch must try them.
fn effective(model: &Model, host: &str, warnings: &mut Vec<Warning>) -> Vec<Effective> {
    let locs = &model.servers[host];
    let rewrite = |loc: &Location| -> (bool, bool) {
        let ing = match loc.origin {
            Origin::Path { ing, .. } | Origin::Root { ing, .. } | Origin::CatchAll { ing } => {
                Some(&model.ings[ing])
            }
            Origin::Default => None,
        };
        ing.map_or((false, false), |i| {
            (i.use_regex, !i.rewrite_target.is_empty())
        })
    };
    // After `getBackendServers`' sort: path descending, then longer first.
    let mut sorted: Vec<&Location> = locs.iter().collect();
    sorted.sort_by(|a, b| b.path.cmp(&a.path));
    sorted.sort_by_key(|l| std::cmp::Reverse(l.path.len()));
    let exact_paths: BTreeSet<&str> = locs
        .iter()
        .filter(|l| l.exact)
        .map(|l| l.path.as_str())
        .collect();
    // (path as nginx writes it, exact, location)
    let mut expanded: Vec<(String, bool, &Location)> = Vec::new();
    let mut regex_server = false;
    for loc in &sorted {
        let (use_regex, target) = rewrite(loc);
        let ing_target = match loc.origin {
            Origin::Path { ing, .. } | Origin::Root { ing, .. } | Origin::CatchAll { ing } => {
                model.ings[ing].rewrite_target.clone()
            }
            Origin::Default => String::new(),
        };
        if loc.path == "/" || loc.exact {
            if use_regex || (target && ing_target != loc.path) {
                regex_server = true;
            }
            expanded.push((loc.path.clone(), loc.exact, loc));
            continue;
        }
        if use_regex || (target && ing_target != loc.path) {
            regex_server = true;
            expanded.push((loc.path.clone(), false, loc));
            continue;
        }
        let norm = if loc.path.ends_with('/') {
            loc.path.clone()
        } else {
            format!("{}/", loc.path)
        };
        if target && ing_target != norm {
            regex_server = true;
        }
        expanded.push((norm, false, loc));
        if !exact_paths.contains(loc.path.as_str()) {
            expanded.push((loc.path.clone(), true, loc));
        }
    }
    if regex_server {
        warnings.push(Warning {
            object: format!("host {}", show_host(host)),
            field: String::new(),
            message: "use-regex or rewrite-target makes nginx match every location of this host as a case-insensitive PCRE `^path`, first match in nginx's order; imported as regexes in that order (PCRE read as Rust regex)".to_owned(),
        });
        return expanded
            .into_iter()
            .map(|(path, _, loc)| Effective {
                matcher: Matcher::Regex(path),
                backend: loc.backend.clone(),
                origin: loc.origin,
            })
            .collect();
    }
    // Exact locations first; then prefixes, longest first. A Prefix path's
    // `= /p` and `/p/` pair becomes one element-wise rule at the place of
    // `/p/`: no longer prefix can match `/p`.
    let mut exact = Vec::new();
    let mut prefix: Vec<Effective> = Vec::new();
    let mut seen_prefix = BTreeSet::new();
    for (path, is_exact, loc) in &expanded {
        if *is_exact {
            let paired = !loc.exact && path != "/";
            if !paired {
                exact.push(Effective {
                    matcher: Matcher::Exact(path.clone()),
                    backend: loc.backend.clone(),
                    origin: loc.origin,
                });
            }
            continue;
        }
        if !seen_prefix.insert(path.clone()) {
            warnings.push(Warning {
                object: format!("host {}", show_host(host)),
                field: String::new(),
                message: format!(
                    "two Prefix paths become the same nginx location {path}; nginx refuses such a configuration (duplicate location); only the first in nginx's order is imported"
                ),
            });
            continue;
        }
        let pairs =
            path != "/" && !exact_paths.contains(loc.path.as_str()) && !loc.path.ends_with('/');
        prefix.push(Effective {
            matcher: if pairs {
                Matcher::Segments(loc.path.clone())
            } else {
                Matcher::Prefix(path.clone())
            },
            backend: loc.backend.clone(),
            origin: loc.origin,
        });
    }
    let key = |e: &Effective| match &e.matcher {
        Matcher::Prefix(p) => p.len(),
        Matcher::Segments(p) => p.len() + 1,
        _ => 0,
    };
    prefix.sort_by_key(|e| std::cmp::Reverse(key(e)));
    exact.sort_by(|a, b| match (&a.matcher, &b.matcher) {
        (Matcher::Exact(x), Matcher::Exact(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    });
    exact.extend(prefix);
    exact
}

/// What a rule sends its traffic to, before variants are named.
#[derive(Clone, Debug)]
enum To {
    Default,
    Backend(BackendId),
}

struct Spec {
    name: String,
    when: Option<Condition>,
    to: To,
    percent: Option<f64>,
    comment: String,
}

struct Emitter<'a> {
    model: &'a Model,
    options: &'a Options,
    warnings: &'a mut Vec<Warning>,
    names: ObjectNames,
    specs: Vec<Spec>,
    /// Backends and the first object that routes to them.
    backends: BTreeMap<BackendId, String>,
    /// Canary rule names used so far, per base name.
    canary_uses: HashMap<String, usize>,
    warned: BTreeSet<(usize, &'static str)>,
}

impl<'a> Emitter<'a> {
    fn new(model: &'a Model, options: &'a Options, warnings: &'a mut Vec<Warning>) -> Self {
        let names = ObjectNames::new(
            "ingress",
            model
                .ings
                .iter()
                .map(|i| (i.namespace.as_str(), i.name.as_str())),
        );
        Emitter {
            model,
            options,
            warnings,
            names,
            specs: Vec::new(),
            backends: BTreeMap::new(),
            canary_uses: HashMap::new(),
            warned: BTreeSet::new(),
        }
    }

    fn ing_prefix(&self, i: usize) -> String {
        let ing = &self.model.ings[i];
        self.names.prefix(&ing.namespace, &ing.name)
    }

    fn run(mut self) -> Result<(RuleSet, Vec<RuleNote>), Error> {
        let model = self.model;
        // Server order: exact names, then wildcard (regex) names in the
        // configuration's order (sorted by name), then the default server.
        let mut exact_hosts = Vec::new();
        let mut wildcard_hosts = Vec::new();
        for host in model.servers.keys() {
            if host == DEF_SERVER {
                continue;
            }
            if host.starts_with('*') {
                wildcard_hosts.push(host.clone());
            } else {
                exact_hosts.push(host.clone());
            }
        }
        let default_locs = effective(model, DEF_SERVER, self.warnings);
        let default_serves = default_locs.iter().any(|e| e.backend != DEF_UPSTREAM);
        for host in exact_hosts.iter().chain(wildcard_hosts.iter()) {
            let locs = effective(model, host, self.warnings);
            if !default_serves && locs.iter().all(|e| e.backend == DEF_UPSTREAM) {
                continue;
            }
            let host_cond = host_condition(host);
            for e in &locs {
                let last = std::ptr::eq(e, locs.last().expect("a root location"));
                if e.backend == DEF_UPSTREAM && !default_serves && last {
                    continue;
                }
                self.location(host, Some(host_cond.clone()), e);
            }
        }
        for e in &default_locs {
            if e.backend == DEF_UPSTREAM {
                continue;
            }
            self.location(DEF_SERVER, None, e);
        }
        self.finish()
    }

    /// The rules of one location: the canary's steps, then the main backend.
    fn location(&mut self, host: &str, host_cond: Option<Condition>, e: &Effective) {
        let model = self.model;
        let place = format!("{} {}", show_host(host), e.matcher.describe());
        let mut base = Vec::new();
        base.extend(host_cond);
        if let Some(p) = path_condition(&e.matcher, self.warnings, &place) {
            base.push(p);
        }
        let (main_name, main_comment) = self.origin_name(e.origin, &place);
        let main_to = match model
            .upstreams
            .get(&e.backend)
            .and_then(|u| u.backend.clone())
        {
            Some(b) => To::Backend(b.id),
            None if e.backend == DEF_UPSTREAM => To::Default,
            None => {
                // The merge deleted an upstream a location still uses.
                let id = model
                    .ings
                    .iter()
                    .flat_map(|i| i.rules.iter())
                    .flat_map(|r| r.http.iter().flatten())
                    .filter_map(|p| p.backend.as_ref())
                    .chain(model.ings.iter().filter_map(|i| i.default_backend.as_ref()))
                    .find(|b| b.upstream() == e.backend)
                    .map(|b| b.id.clone());
                self.warnings.push(Warning {
                    object: format!("host {}", show_host(host)),
                    field: String::new(),
                    message: format!(
                        "location {} uses upstream {} which ingress-nginx dropped while merging a canary: nginx answers 503 there; imported as its Service",
                        e.matcher.describe(),
                        e.backend
                    ),
                });
                match id {
                    Some(id) => To::Backend(id),
                    None => To::Default,
                }
            }
        };
        if let To::Backend(id) = &main_to {
            self.backends
                .entry(id.clone())
                .or_insert_with(|| main_comment.clone());
        }
        // The canary: the first alternative of the location's upstream.
        if let Some(ups) = model.upstreams.get(&e.backend)
            && let Some(alt) = ups.alternatives.first()
        {
            match model.upstreams.get(alt) {
                Some(alt_ups) => {
                    if ups.alternatives.len() > 1 {
                        let others: Vec<String> = ups.alternatives[1..]
                            .iter()
                            .map(|a| self.upstream_owner(a))
                            .collect();
                        self.warnings.push(Warning {
                            object: self.upstream_owner(alt),
                            field: String::new(),
                            message: format!(
                                "several canaries share the main backend {}: ingress-nginx uses only this one (the oldest; equal ages by namespace/name, last first) and ignores {}",
                                e.backend,
                                others.join(", ")
                            ),
                        });
                    }
                    if let (Some((c, policy)), Some(b)) = (&alt_ups.policy, &alt_ups.backend) {
                        self.canary(*c, policy, &b.id, &base, &main_to, &place);
                    }
                }
                None => {
                    let c = model.deleted.get(alt).copied();
                    if let Some(c) = c {
                        self.warnings.push(Warning {
                            object: model.ings[c].object.clone(),
                            field: String::new(),
                            message: format!(
                                "attached to {place} but its upstream {alt} was dropped: requests there all go to the main backend"
                            ),
                        });
                    }
                }
            }
        }
        self.specs.push(Spec {
            name: main_name,
            when: emit::all(base),
            to: main_to,
            percent: None,
            comment: main_comment,
        });
    }

    fn upstream_owner(&self, ups: &str) -> String {
        self.model
            .upstreams
            .get(ups)
            .and_then(|u| u.creator)
            .map(|i| self.model.ings[i].object.clone())
            .unwrap_or_else(|| ups.to_owned())
    }

    fn origin_name(&self, origin: Origin, place: &str) -> (String, String) {
        let model = self.model;
        match origin {
            Origin::Path { ing, rule, path } => (
                format!("{}.rules-{rule}.paths-{path}", self.ing_prefix(ing)),
                format!(
                    "{} spec.rules[{rule}].http.paths[{path}]: {place}",
                    model.ings[ing].object
                ),
            ),
            Origin::Root { ing, rule } => {
                let backend = model
                    .servers
                    .values()
                    .flatten()
                    .find(|l| l.origin == origin);
                let to_default = backend.is_none_or(|l| l.backend == DEF_UPSTREAM);
                if to_default {
                    (
                        format!("{}.rules-{rule}.no-path", self.ing_prefix(ing)),
                        format!(
                            "{} spec.rules[{rule}]: no path matches on {place}: the default backend answers 404",
                            model.ings[ing].object
                        ),
                    )
                } else {
                    (
                        format!("{}.rules-{rule}.defaultBackend", self.ing_prefix(ing)),
                        format!(
                            "{} spec.defaultBackend: no path of spec.rules[{rule}] matches, {place}",
                            model.ings[ing].object
                        ),
                    )
                }
            }
            Origin::CatchAll { ing } => (
                format!("{}.defaultBackend", self.ing_prefix(ing)),
                format!(
                    "{} spec.defaultBackend: the catch-all for hosts and paths nothing else serves",
                    model.ings[ing].object
                ),
            ),
            Origin::Default => (
                "ingress-nginx.default-backend".to_owned(),
                "the controller's default backend (404)".to_owned(),
            ),
        }
    }

    /// A canary rule's name: `ingress.C.step`, numbered when the canary
    /// serves several locations.
    fn canary_name(&mut self, c: usize, step: &str) -> String {
        let base = format!("{}.{step}", self.ing_prefix(c));
        let n = self.canary_uses.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 { base } else { format!("{base}.{n}") }
    }

    /// `route_to_alternative_balancer`: header, then cookie, then weight.
    fn canary(
        &mut self,
        c: usize,
        p: &Policy,
        alt: &BackendId,
        base: &[Condition],
        main: &To,
        place: &str,
    ) {
        let object = self.model.ings[c].object.clone();
        let prefix = &self.options.annotation_prefix;
        let with = |extra: Condition| -> Option<Condition> {
            let mut v = base.to_vec();
            v.push(extra);
            emit::all(v)
        };
        let canary_to = To::Backend(alt.clone());
        self.backends
            .entry(alt.clone())
            .or_insert_with(|| object.clone());
        let push = |this: &mut Self,
                    step: &str,
                    when: Option<Condition>,
                    to: &To,
                    percent: Option<f64>,
                    comment: String| {
            let name = this.canary_name(c, step);
            this.specs.push(Spec {
                name,
                when,
                to: to.clone(),
                percent,
                comment: format!("{object}: {comment}, on {place}"),
            });
        };
        // Header.
        if !p.header.is_empty() {
            let name = p.header.replace('_', "-");
            let usable = name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-');
            if !usable {
                if self.warned.insert((c, "header-name")) {
                    self.warnings.push(Warning {
                        object: object.clone(),
                        field: format!("metadata.annotations.{prefix}/canary-by-header"),
                        message: format!(
                            "{:?} has characters nginx drops from request header names (it only keeps letters, digits and -); the header step never matches and is left out",
                            p.header
                        ),
                    });
                }
            } else {
                let header = |op: Op| Condition::Header(Field::new(name.clone(), op));
                if !p.header_value.is_empty() {
                    push(
                        self,
                        "header",
                        with(header(Op::Equals(p.header_value.clone()))),
                        &canary_to,
                        None,
                        format!(
                            "canary-by-header {} = {:?} (exact, case-sensitive)",
                            p.header, p.header_value
                        ),
                    );
                } else if !p.header_pattern.is_empty() {
                    match pcre::translate(&p.header_pattern) {
                        Pcre::Rust(re) => {
                            push(
                                self,
                                "header",
                                with(header(Op::Regex(format!("(?s:.*)(?:{re})(?s:.*)")))),
                                &canary_to,
                                None,
                                format!(
                                    "canary-by-header {} matches PCRE {:?} (a search)",
                                    p.header, p.header_pattern
                                ),
                            );
                        }
                        Pcre::Invalid(why) => {
                            if self.warned.insert((c, "pattern-invalid")) {
                                self.warnings.push(Warning {
                                    object: object.clone(),
                                    field: format!("metadata.annotations.{prefix}/canary-by-header-pattern"),
                                    message: format!(
                                        "{:?} does not compile ({why}): nginx sends every request that has the header to the main backend, skipping the cookie and weight steps",
                                        p.header_pattern
                                    ),
                                });
                            }
                            push(
                                self,
                                "header-pattern-error",
                                with(header(Op::Present(true))),
                                main,
                                None,
                                format!(
                                    "canary-by-header {} present, pattern {:?} does not compile: main backend",
                                    p.header, p.header_pattern
                                ),
                            );
                        }
                        Pcre::Unsupported(what) => {
                            if self.warned.insert((c, "pattern-unsupported")) {
                                self.warnings.push(Warning {
                                    object: object.clone(),
                                    field: format!("metadata.annotations.{prefix}/canary-by-header-pattern"),
                                    message: format!(
                                        "{:?} uses PCRE-only syntax ({what}) that graymatch's regex cannot express; the header step is left out, so requests it would send to the canary go on to the cookie and weight steps",
                                        p.header_pattern
                                    ),
                                });
                            }
                        }
                    }
                } else {
                    push(
                        self,
                        "header",
                        with(header(Op::Equals("always".to_owned()))),
                        &canary_to,
                        None,
                        format!("canary-by-header {} = always", p.header),
                    );
                    push(
                        self,
                        "header-never",
                        with(header(Op::Equals("never".to_owned()))),
                        main,
                        None,
                        format!(
                            "canary-by-header {} = never: main backend, no cookie or weight step",
                            p.header
                        ),
                    );
                }
            }
        }
        // Cookie.
        if !p.cookie.is_empty() {
            let token = p
                .cookie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if token {
                let cookie = |v: &str| {
                    Condition::Cookie(
                        Field::new(p.cookie.clone(), Op::Equals(v.to_owned())).name_ignore_case(),
                    )
                };
                push(
                    self,
                    "cookie",
                    with(cookie("always")),
                    &canary_to,
                    None,
                    format!("canary-by-cookie {} = always", p.cookie),
                );
                push(
                    self,
                    "cookie-never",
                    with(cookie("never")),
                    main,
                    None,
                    format!(
                        "canary-by-cookie {} = never: main backend, no weight step",
                        p.cookie
                    ),
                );
            } else if self.warned.insert((c, "cookie")) {
                self.warnings.push(Warning {
                    object: object.clone(),
                    field: format!("metadata.annotations.{prefix}/canary-by-cookie"),
                    message: format!(
                        "{:?} is not a cookie name graymatch can test (a token); the cookie step is left out",
                        p.cookie
                    ),
                });
            }
        }
        // Weight: `math.random(total) <= weight`.
        let total = if p.weight_total > 100 {
            p.weight_total
        } else {
            100
        };
        let weight = p.weight.clamp(0, total);
        if weight > 0 {
            let exact = u128::from(weight.unsigned_abs()) * 1_000_000;
            let total_u = u128::from(total.unsigned_abs());
            let ppm = u32::try_from((exact + total_u / 2) / total_u).unwrap_or(1_000_000);
            if exact % total_u != 0 && self.warned.insert((c, "weight")) {
                self.warnings.push(Warning {
                    object: object.clone(),
                    field: format!("metadata.annotations.{prefix}/canary-weight"),
                    message: format!(
                        "{weight}/{total} is rounded to {} %, the nearest millionth",
                        emit::percent(ppm)
                    ),
                });
            }
            if ppm > 0 {
                let percent = (ppm < 1_000_000).then(|| emit::percent(ppm));
                push(
                    self,
                    "weight",
                    emit::all(base.to_vec()),
                    &canary_to,
                    percent,
                    format!(
                        "canary-weight {weight} of {total}, random per request{}",
                        if p.weight_total != total && p.weight_total != 100 {
                            format!(
                                " (canary-weight-total {} counts only above 100)",
                                p.weight_total
                            )
                        } else {
                            String::new()
                        }
                    ),
                );
            }
        }
    }

    fn finish(self) -> Result<(RuleSet, Vec<RuleNote>), Error> {
        let default = self.options.default_variant.clone();
        let variants = emit::variant_names(&self.backends, &[default.as_str()], self.warnings);
        let mut names = Names::default();
        let mut set = RuleSet::new(default.clone());
        let mut declared = vec![default.clone()];
        let mut notes = Vec::new();
        for spec in self.specs {
            let to = match &spec.to {
                To::Default => default.clone(),
                To::Backend(id) => variants[id].clone(),
            };
            if !declared.contains(&to) {
                declared.push(to.clone());
            }
            let mut rule = Rule::to(names.unique(&spec.name), to);
            rule.when = spec.when;
            rule.percent = spec.percent;
            set.rules.push(rule);
            notes.push(RuleNote {
                comment: spec.comment,
            });
        }
        set.variants = Some(declared);
        Ok((set, notes))
    }
}

fn host_condition(host: &str) -> Condition {
    match host.strip_prefix("*.") {
        // `buildServerName`: `~^(?<subdomain>[\w-]+)\.rest$`, one label.
        Some(rest) => Condition::Host(emit::test(Op::Regex(format!(
            "[A-Za-z0-9_-]+\\.{}",
            regex::escape(rest)
        )))),
        None => Condition::Host(emit::test(Op::Equals(host.to_ascii_lowercase()))),
    }
}

fn path_condition(m: &Matcher, warnings: &mut Vec<Warning>, place: &str) -> Option<Condition> {
    let path = |op: Op| Some(Condition::Path(emit::test(op)));
    match m {
        Matcher::Exact(p) => path(Op::Equals(p.clone())),
        Matcher::Prefix(p) if p == "/" => None,
        Matcher::Prefix(p) => path(Op::Prefix(p.clone())),
        Matcher::Segments(p) => path(Op::SegmentPrefix(p.clone())),
        Matcher::Regex(p) => match pcre::translate(p) {
            Pcre::Rust(re) => {
                let mut t = emit::test(Op::Regex(format!("(?:{re})(?s:.*)")));
                t.ignore_case = true;
                Some(Condition::Path(t))
            }
            Pcre::Invalid(why) | Pcre::Unsupported(why) => {
                warnings.push(Warning {
                    object: place.to_owned(),
                    field: String::new(),
                    message: format!(
                        "the location regex {p:?} cannot be imported ({why}); this location is left out"
                    ),
                });
                path(Op::Present(false))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_parsers() {
        let bools: &[(&str, Option<bool>)] = &[
            ("true", Some(true)),
            ("True", Some(true)),
            ("TRUE", Some(true)),
            ("t", Some(true)),
            ("1", Some(true)),
            ("false", Some(false)),
            ("F", Some(false)),
            ("0", Some(false)),
            ("yes", None),
            ("tRue", None),
            (" true", None),
            ("", None),
        ];
        for (v, want) in bools {
            assert_eq!(parse_bool(v), *want, "bool {v:?}");
        }
        let ints: &[(&str, Option<i64>)] = &[
            ("10", Some(10)),
            ("+10", Some(10)),
            ("-3", Some(-3)),
            ("007", Some(7)),
            ("abc", None),
            ("1.5", None),
            ("", None),
            ("-", None),
            (" 1", None),
            ("1_000", None),
            ("99999999999999999999", None),
        ];
        for (v, want) in ints {
            assert_eq!(parse_int(v), *want, "int {v:?}");
        }
    }

    #[test]
    fn validators() {
        let cases: &[(&str, fn(&str) -> bool, &str, bool)] = &[
            ("header name", basic_chars, "X-Canary", true),
            ("header with underscore", basic_chars, "x_canary", true),
            ("header with space removed", basic_chars, "X Canary", true),
            ("header with comma", basic_chars, "a,b", false),
            ("value with equals", basic_chars, "a=b", false),
            ("pattern", regex_chars, "^Do[A-Z][a-z]+y$", true),
            (
                "e2e bad pattern passes the validator",
                regex_chars,
                "[][**da?$&*",
                true,
            ),
            ("pattern with space", regex_chars, "a b", false),
            ("pattern with comma", regex_chars, "a{1,2}", false),
            ("pattern with lookbehind", regex_chars, "(?<=a)", false),
        ];
        for (name, f, v, want) in cases {
            assert_eq!(f(v), *want, "case {name}");
        }
    }

    #[test]
    fn closest_annotation() {
        let cases: &[(&str, Option<&str>)] = &[
            ("canary-by-heder", Some("canary-by-header")),
            ("canary-wieght", Some("canary-weight")),
            ("canary-by-cookies", Some("canary-by-cookie")),
            ("completely-unrelated-thing", None),
        ];
        for (name, want) in cases {
            assert_eq!(closest(name), *want, "case {name}");
        }
    }
}
