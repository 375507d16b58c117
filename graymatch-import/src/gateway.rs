//! Gateway API HTTPRoutes: every match of every rule of every route, sorted
//! by the spec's precedence (`apis/v1/httproute_types.go`), one graymatch
//! rule each.
//!
//! The HTTPRoute types are this crate's own serde structs: the `gateway-api`
//! crate (0.22) pulls `kube` with its derive macros, `schemars` and a second
//! major version of `k8s-openapi`, and needs Rust 1.92, for the dozen
//! fields read here. `metadata` is k8s-openapi's `ObjectMeta`.

use std::collections::{BTreeMap, BTreeSet};

use graymatch::{Condition, Field, Op, Rule, RuleSet, Target};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::emit::{self, BackendId, Names, ObjectNames, RuleNote};
use crate::input::{self, Doc};
use crate::{Error, NO_BACKEND, Options, Warning};

/// Fields a struct does not know, kept to warn about them.
type Unknown = BTreeMap<String, Value>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpRoute {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    parent_refs: Option<Vec<Value>>,
    #[serde(default)]
    hostnames: Option<Vec<String>>,
    #[serde(default)]
    rules: Option<Vec<RouteRule>>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RouteRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    matches: Option<Vec<Match>>,
    #[serde(default)]
    filters: Option<Vec<Value>>,
    #[serde(default)]
    backend_refs: Option<Vec<BackendRef>>,
    #[serde(default)]
    timeouts: Option<Value>,
    #[serde(default)]
    retry: Option<Value>,
    #[serde(default)]
    session_persistence: Option<Value>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct Match {
    #[serde(default)]
    path: Option<PathMatch>,
    #[serde(default)]
    headers: Option<Vec<ValueMatch>>,
    #[serde(default)]
    query_params: Option<Vec<ValueMatch>>,
    #[serde(default)]
    method: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct PathMatch {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ValueMatch {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    name: String,
    value: String,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct BackendRef {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    weight: Option<i64>,
    #[serde(default)]
    filters: Option<Vec<Value>>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// A route as read, with what sorting needs.
struct Route {
    object: String,
    namespace: String,
    name: String,
    created: Option<Timestamp>,
    /// Hostname groups: (class: 0 exact, 1 wildcard, 2 none; length; hostnames).
    hosts: Vec<(u8, usize, Vec<String>)>,
    rules: Vec<ReadRule>,
}

struct ReadRule {
    matches: Vec<Option<ReadMatch>>,
    /// `None`: no backend (500): the rule decides `no-backend`.
    backends: Option<Vec<(BackendId, u64)>>,
}

#[derive(Clone)]
struct ReadMatch {
    /// 0 Exact, 1 RegularExpression, 2 PathPrefix.
    path_rank: u8,
    path_len: usize,
    conds: Vec<Condition>,
    has_method: bool,
    headers: usize,
    queries: usize,
    describe: String,
}

pub(crate) fn import(
    docs: &[Doc],
    options: &Options,
    warnings: &mut Vec<Warning>,
) -> Result<(RuleSet, Vec<RuleNote>), Error> {
    let mut routes = Vec::new();
    for doc in docs {
        match (doc.kind(), doc.api_version()) {
            ("HTTPRoute", "gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1") => {
                let route: HttpRoute = doc.parse(options)?;
                if let Some(r) = read_route(route, doc, options, warnings) {
                    routes.push(r);
                }
            }
            ("HTTPRoute", v) => warnings.push(Warning {
                object: doc.object(options),
                field: "apiVersion".to_owned(),
                message: format!("unknown HTTPRoute version {v:?}; skipped"),
            }),
            _ => warnings.push(input::skipped(
                doc,
                options,
                "gateway.networking.k8s.io HTTPRoutes",
            )),
        }
    }
    if routes.is_empty() {
        warnings.push(Warning {
            object: "input".to_owned(),
            field: String::new(),
            message: "no HTTPRoute found: every request gets 404".to_owned(),
        });
    }
    emit_rules(&routes, options, warnings)
}

fn warn(
    warnings: &mut Vec<Warning>,
    object: &str,
    field: impl Into<String>,
    message: impl Into<String>,
) {
    warnings.push(Warning {
        object: object.to_owned(),
        field: field.into(),
        message: message.into(),
    });
}

fn unknown_fields(warnings: &mut Vec<Warning>, object: &str, field: &str, unknown: &Unknown) {
    for key in unknown.keys() {
        warn(
            warnings,
            object,
            if field.is_empty() {
                key.clone()
            } else {
                format!("{field}.{key}")
            },
            "unknown field, ignored (the API server prunes it)",
        );
    }
}

fn read_route(
    route: HttpRoute,
    doc: &Doc,
    options: &Options,
    warnings: &mut Vec<Warning>,
) -> Option<Route> {
    let namespace = route
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| options.namespace.clone());
    let Some(name) = route.metadata.name.clone() else {
        warn(
            warnings,
            &doc.object(options),
            "metadata.name",
            "an HTTPRoute without a name; skipped",
        );
        return None;
    };
    let object = format!("HTTPRoute/{namespace}/{name}");
    let spec = route.spec;
    unknown_fields(warnings, &object, "spec", &spec.unknown);
    if spec.parent_refs.as_ref().is_some_and(|p| !p.is_empty()) {
        warn(
            warnings,
            &object,
            "spec.parentRefs",
            "ignored: the route is imported as attached to a listener that accepts all its hostnames",
        );
    }
    // Hostnames, grouped by precedence class and length.
    let mut groups: BTreeMap<(u8, std::cmp::Reverse<usize>), Vec<String>> = BTreeMap::new();
    for (i, h) in spec.hostnames.iter().flatten().enumerate() {
        let h = h.to_ascii_lowercase();
        let valid = {
            let bare = h.strip_prefix("*.").unwrap_or(&h);
            !bare.is_empty()
                && !bare.contains('*')
                && bare.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
                && bare.parse::<std::net::IpAddr>().is_err()
        };
        if !valid {
            warn(
                warnings,
                &object,
                format!("spec.hostnames[{i}]"),
                format!(
                    "{h:?} is not a hostname (RFC 1123, optionally `*.` first); the API server refuses it; skipped"
                ),
            );
            continue;
        }
        let class = u8::from(h.starts_with("*."));
        // Exact names never match the same host: one group. Wildcards by
        // length, the longer first.
        let len = if class == 0 { 0 } else { h.len() };
        let group = groups.entry((class, std::cmp::Reverse(len))).or_default();
        if !group.contains(&h) {
            group.push(h);
        }
    }
    let hosts: Vec<(u8, usize, Vec<String>)> = if spec.hostnames.as_ref().is_none_or(Vec::is_empty)
    {
        vec![(2, 0, Vec::new())]
    } else if groups.is_empty() {
        warn(
            warnings,
            &object,
            "spec.hostnames",
            "no valid hostname; the route is skipped",
        );
        return None;
    } else {
        groups
            .into_iter()
            .map(|((class, len), hosts)| (class, len.0, hosts))
            .collect()
    };
    let rules_in = match spec.rules {
        Some(rules) if !rules.is_empty() => rules,
        _ => {
            warn(
                warnings,
                &object,
                "spec.rules",
                "no rules: the API server's default is one rule matching every path with no backend (500)",
            );
            vec![RouteRule::default()]
        }
    };
    let mut rules = Vec::new();
    for (ri, rule) in rules_in.into_iter().enumerate() {
        let field = format!("spec.rules[{ri}]");
        unknown_fields(warnings, &object, &field, &rule.unknown);
        let _ = &rule.name;
        if rule.filters.as_ref().is_some_and(|f| !f.is_empty()) {
            warn(
                warnings,
                &object,
                format!("{field}.filters"),
                "filters are ignored: redirects, rewrites, header changes and mirrors are not reproduced; matching requests go to the rule's backends",
            );
        }
        for (key, v) in [
            ("timeouts", &rule.timeouts),
            ("retry", &rule.retry),
            ("sessionPersistence", &rule.session_persistence),
        ] {
            if v.is_some() {
                warn(
                    warnings,
                    &object,
                    format!("{field}.{key}"),
                    if key == "sessionPersistence" {
                        "ignored: session persistence cannot be reproduced; each request is split by weight"
                    } else {
                        "ignored: not part of routing"
                    },
                );
            }
        }
        let matches = match &rule.matches {
            Some(ms) if !ms.is_empty() => ms.clone(),
            _ => vec![Match::default()],
        };
        let read: Vec<Option<ReadMatch>> = matches
            .iter()
            .enumerate()
            .map(|(mi, m)| read_match(m, &object, &format!("{field}.matches[{mi}]"), warnings))
            .collect();
        let backends = read_backends(&rule, &namespace, &object, &field, warnings);
        rules.push(ReadRule {
            matches: read,
            backends,
        });
    }
    Some(Route {
        object,
        namespace,
        name,
        created: route.metadata.creation_timestamp.map(|t| t.0),
        hosts,
        rules,
    })
}

fn read_match(
    m: &Match,
    object: &str,
    field: &str,
    warnings: &mut Vec<Warning>,
) -> Option<ReadMatch> {
    unknown_fields(warnings, object, field, &m.unknown);
    let mut conds = Vec::new();
    let mut describe = Vec::new();
    let path = m.path.clone().unwrap_or_default();
    unknown_fields(warnings, object, &format!("{field}.path"), &path.unknown);
    let kind = path.kind.as_deref().unwrap_or("PathPrefix");
    let value = path.value.clone().unwrap_or_else(|| "/".to_owned());
    let (path_rank, path_len) = match kind {
        "Exact" | "PathPrefix" => {
            if !value.starts_with('/') || value.contains("//") {
                warn(
                    warnings,
                    object,
                    format!("{field}.path.value"),
                    format!(
                        "{value:?} must start with `/` and have no `//`; the API server refuses it; this match is skipped"
                    ),
                );
                return None;
            }
            if kind == "Exact" {
                conds.push(Condition::Path(emit::test(Op::Equals(value.clone()))));
                describe.push(format!("Exact {value}"));
                (0, value.len())
            } else {
                if value != "/" {
                    conds.push(Condition::Path(emit::test(Op::SegmentPrefix(
                        value.clone(),
                    ))));
                }
                describe.push(format!("PathPrefix {value}"));
                (2, value.len())
            }
        }
        "RegularExpression" => {
            if let Err(e) = regex::Regex::new(&value) {
                warn(
                    warnings,
                    object,
                    format!("{field}.path.value"),
                    format!(
                        "{value:?} is not a regex graymatch reads ({}); this match is skipped",
                        first_line(&e.to_string())
                    ),
                );
                return None;
            }
            warn(
                warnings,
                object,
                format!("{field}.path"),
                "RegularExpression is implementation-specific: imported as a Rust regex that must match the whole path (as Envoy's RE2), ranked after Exact and before PathPrefix",
            );
            conds.push(Condition::Path(emit::test(Op::Regex(value.clone()))));
            describe.push(format!("path regex {value}"));
            (1, value.len())
        }
        other => {
            warn(
                warnings,
                object,
                format!("{field}.path.type"),
                format!(
                    "unknown path match type {other:?}: the route is not accepted (UnsupportedValue); this match is skipped"
                ),
            );
            return None;
        }
    };
    let has_method = match &m.method {
        Some(method) => {
            const METHODS: &[&str] = &[
                "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
            ];
            if !METHODS.contains(&method.as_str()) {
                warn(
                    warnings,
                    object,
                    format!("{field}.method"),
                    format!(
                        "{method:?} is not an HTTP method the API accepts; this match is skipped"
                    ),
                );
                return None;
            }
            conds.push(Condition::Method(emit::test(Op::Equals(method.clone()))));
            describe.push(format!("method {method}"));
            true
        }
        None => false,
    };
    let mut headers = 0;
    let mut seen = BTreeSet::new();
    for (i, h) in m.headers.iter().flatten().enumerate() {
        let f = format!("{field}.headers[{i}]");
        unknown_fields(warnings, object, &f, &h.unknown);
        if !seen.insert(h.name.to_ascii_lowercase()) {
            warn(
                warnings,
                object,
                format!("{f}.name"),
                format!(
                    "header {:?} is matched earlier in this match; this entry is ignored, as the spec says",
                    h.name
                ),
            );
            continue;
        }
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            warn(
                warnings,
                object,
                format!("{f}.name"),
                format!("{:?} is not a header name; this match is skipped", h.name),
            );
            return None;
        }
        let op = value_op(h, object, &f, "header", warnings)?;
        conds.push(Condition::Header(Field::new(
            h.name.to_ascii_lowercase(),
            op,
        )));
        describe.push(format!("header {}", h.name));
        headers += 1;
    }
    let mut queries = 0;
    let mut seen = BTreeSet::new();
    for (i, q) in m.query_params.iter().flatten().enumerate() {
        let f = format!("{field}.queryParams[{i}]");
        unknown_fields(warnings, object, &f, &q.unknown);
        if !seen.insert(q.name.clone()) {
            warn(
                warnings,
                object,
                format!("{f}.name"),
                format!(
                    "query parameter {:?} is matched earlier in this match; this entry is ignored, as the spec says",
                    q.name
                ),
            );
            continue;
        }
        if q.name.is_empty() {
            warn(
                warnings,
                object,
                format!("{f}.name"),
                "an empty name; this match is skipped",
            );
            return None;
        }
        let op = value_op(q, object, &f, "query parameter", warnings)?;
        conds.push(Condition::Query(Field::new(q.name.clone(), op)));
        describe.push(format!("query {}", q.name));
        queries += 1;
    }
    Some(ReadMatch {
        path_rank,
        path_len,
        conds,
        has_method,
        headers,
        queries,
        describe: describe.join(", "),
    })
}

fn value_op(
    v: &ValueMatch,
    object: &str,
    field: &str,
    what: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Op> {
    match v.kind.as_deref().unwrap_or("Exact") {
        "Exact" => Some(Op::Equals(v.value.clone())),
        "RegularExpression" => {
            if let Err(e) = regex::Regex::new(&v.value) {
                warn(
                    warnings,
                    object,
                    format!("{field}.value"),
                    format!(
                        "{:?} is not a regex graymatch reads ({}); this match is skipped",
                        v.value,
                        first_line(&e.to_string())
                    ),
                );
                return None;
            }
            warn(
                warnings,
                object,
                format!("{field}.type"),
                format!(
                    "RegularExpression is implementation-specific: imported as a Rust regex that must match the whole {what} value (as Envoy's RE2)"
                ),
            );
            Some(Op::Regex(v.value.clone()))
        }
        other => {
            warn(
                warnings,
                object,
                format!("{field}.type"),
                format!(
                    "unknown match type {other:?}: the route is not accepted (UnsupportedValue); this match is skipped"
                ),
            );
            None
        }
    }
}

fn first_line(s: &str) -> String {
    let last = s.lines().last().unwrap_or("").trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

fn read_backends(
    rule: &RouteRule,
    namespace: &str,
    object: &str,
    field: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Vec<(BackendId, u64)>> {
    let refs = rule.backend_refs.as_ref().filter(|r| !r.is_empty())?;
    let mut out: Vec<(BackendId, u64)> = Vec::new();
    for (i, b) in refs.iter().enumerate() {
        let f = format!("{field}.backendRefs[{i}]");
        unknown_fields(warnings, object, &f, &b.unknown);
        let group = b.group.clone().unwrap_or_default();
        let kind = b.kind.clone().unwrap_or_else(|| "Service".to_owned());
        if !(group.is_empty() && kind == "Service") {
            warn(
                warnings,
                object,
                format!("{f}.kind"),
                format!(
                    "a {kind} backend{}: support is implementation-specific; imported by its name",
                    if group.is_empty() {
                        String::new()
                    } else {
                        format!(" of group {group}")
                    }
                ),
            );
        }
        let ns = b.namespace.clone().unwrap_or_else(|| namespace.to_owned());
        if ns != namespace {
            warn(
                warnings,
                object,
                format!("{f}.namespace"),
                format!(
                    "a backend in namespace {ns} needs a ReferenceGrant there; imported as if granted"
                ),
            );
        }
        if kind == "Service" && group.is_empty() && b.port.is_none() {
            warn(
                warnings,
                object,
                format!("{f}.port"),
                "a Service backend needs a port; gateways answer 500 for its share; imported by its name",
            );
        }
        if b.filters.as_ref().is_some_and(|f| !f.is_empty()) {
            warn(
                warnings,
                object,
                format!("{f}.filters"),
                "backend filters are ignored",
            );
        }
        let weight = b.weight.unwrap_or(1);
        if !(0..=1_000_000).contains(&weight) {
            warn(
                warnings,
                object,
                format!("{f}.weight"),
                format!(
                    "{weight} is outside 0..1000000; the API server refuses it; read as {}",
                    weight.clamp(0, 1_000_000)
                ),
            );
        }
        let weight = weight.clamp(0, 1_000_000).unsigned_abs();
        let id = BackendId {
            kind,
            namespace: ns,
            name: b.name.clone(),
            port: b.port.map(|p| p.to_string()).unwrap_or_default(),
        };
        match out.iter_mut().find(|(o, _)| *o == id) {
            Some((_, w)) => *w += weight,
            None => out.push((id, weight)),
        }
    }
    if out.iter().all(|(_, w)| *w == 0) {
        warn(
            warnings,
            object,
            format!("{field}.backendRefs"),
            "every weight is 0: no backend takes traffic (gateways answer 500); imported as no-backend",
        );
        return None;
    }
    Some(out)
}

/// One rule-to-be, with its precedence key.
struct Entry<'a> {
    route: &'a Route,
    group: usize,
    rule: usize,
    m: usize,
    read: &'a ReadMatch,
}

fn emit_rules(
    routes: &[Route],
    options: &Options,
    warnings: &mut Vec<Warning>,
) -> Result<(RuleSet, Vec<RuleNote>), Error> {
    let mut entries = Vec::new();
    for route in routes {
        for (group, _) in route.hosts.iter().enumerate() {
            for (ri, rule) in route.rules.iter().enumerate() {
                for (mi, m) in rule.matches.iter().enumerate() {
                    if let Some(read) = m {
                        entries.push(Entry {
                            route,
                            group,
                            rule: ri,
                            m: mi,
                            read,
                        });
                    }
                }
            }
        }
    }
    // The spec's precedence: hostname (exact, then longer wildcards, then
    // none), Exact path, longest prefix, method, most headers, most query
    // parameters, oldest route, `namespace/name`, rule order.
    entries.sort_by(|a, b| {
        let (ha, hb) = (&a.route.hosts[a.group], &b.route.hosts[b.group]);
        ha.0.cmp(&hb.0)
            .then(hb.1.cmp(&ha.1))
            .then(a.read.path_rank.cmp(&b.read.path_rank))
            .then(b.read.path_len.cmp(&a.read.path_len))
            .then(b.read.has_method.cmp(&a.read.has_method))
            .then(b.read.headers.cmp(&a.read.headers))
            .then(b.read.queries.cmp(&a.read.queries))
            .then(created_key(a.route).cmp(&created_key(b.route)))
            .then_with(|| {
                format!("{}/{}", a.route.namespace, a.route.name)
                    .cmp(&format!("{}/{}", b.route.namespace, b.route.name))
            })
            .then(a.rule.cmp(&b.rule))
            .then(a.m.cmp(&b.m))
            .then(a.group.cmp(&b.group))
    });
    let object_names = ObjectNames::new(
        "httproute",
        routes
            .iter()
            .map(|r| (r.namespace.as_str(), r.name.as_str())),
    );
    let default = options.default_variant.clone();
    let mut backends = BTreeMap::new();
    for route in routes {
        for rule in &route.rules {
            for (id, _) in rule.backends.iter().flatten() {
                backends
                    .entry(id.clone())
                    .or_insert_with(|| route.object.clone());
            }
        }
    }
    let variants = emit::variant_names(&backends, &[default.as_str(), NO_BACKEND], warnings);
    let mut names = Names::default();
    let mut set = RuleSet::new(default.clone());
    let mut declared = vec![default];
    let mut notes = Vec::new();
    let mut declare = |v: &str| {
        if !declared.iter().any(|d| d == v) {
            declared.push(v.to_owned());
        }
    };
    for e in &entries {
        let route = e.route;
        let (class, _, hosts) = &route.hosts[e.group];
        let mut name = format!(
            "{}.rules-{}.matches-{}",
            object_names.prefix(&route.namespace, &route.name),
            e.rule,
            e.m
        );
        if route.hosts.len() > 1 {
            name.push_str(&format!(".hostnames-{}", e.group));
        }
        let mut conds = Vec::new();
        match class {
            0 if hosts.len() == 1 => {
                conds.push(Condition::Host(emit::test(Op::Equals(hosts[0].clone()))))
            }
            0 => conds.push(Condition::Host(emit::test(Op::In(hosts.clone())))),
            1 => {
                let mut any: Vec<Condition> = hosts
                    .iter()
                    .map(|h| Condition::Host(emit::test(Op::Suffix(h[1..].to_owned()))))
                    .collect();
                conds.push(if any.len() == 1 {
                    any.pop().expect("one")
                } else {
                    Condition::Any(any)
                });
            }
            _ => {}
        }
        conds.extend(e.read.conds.iter().cloned());
        let rule_def = &route.rules[e.rule];
        let mut rule = match &rule_def.backends {
            None => {
                declare(NO_BACKEND);
                Rule::to(names.unique(&name), NO_BACKEND)
            }
            Some(list) => {
                let positive: Vec<&(BackendId, u64)> =
                    list.iter().filter(|(_, w)| *w > 0).collect();
                if positive.len() == 1 {
                    let v = &variants[&positive[0].0];
                    declare(v);
                    Rule::to(names.unique(&name), v.clone())
                } else {
                    let weights: Vec<u64> = positive.iter().map(|(_, w)| *w).collect();
                    let shares = emit::ppm_shares(&weights);
                    let targets: Vec<Target> = positive
                        .iter()
                        .zip(shares)
                        .filter(|(_, ppm)| *ppm > 0)
                        .map(|((id, _), ppm)| {
                            let v = &variants[id];
                            declare(v);
                            Target::new(v.clone(), emit::percent(ppm))
                        })
                        .collect();
                    Rule::split(names.unique(&name), targets)
                }
            }
        };
        rule.when = emit::all(conds);
        let hostnames = if hosts.is_empty() {
            "any host".to_owned()
        } else {
            hosts.join(", ")
        };
        let weights = match &rule_def.backends {
            None => "no backend (500)".to_owned(),
            Some(list) => list
                .iter()
                .map(|(id, w)| format!("{} weight {w}", id.name))
                .collect::<Vec<_>>()
                .join(", "),
        };
        notes.push(RuleNote {
            comment: format!(
                "{} spec.rules[{}].matches[{}]: {hostnames}; {}; -> {weights}",
                route.object,
                e.rule,
                e.m,
                if e.read.describe.is_empty() {
                    "PathPrefix /".to_owned()
                } else {
                    e.read.describe.clone()
                }
            ),
        });
        set.rules.push(rule);
    }
    set.variants = Some(declared);
    Ok((set, notes))
}

/// Oldest first; a route without a timestamp after those with one.
fn created_key(r: &Route) -> (bool, Option<Timestamp>) {
    (r.created.is_none(), r.created)
}
