//! What both importers share: rule and variant names, condition builders,
//! ppm shares, and the YAML text with its comments.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use graymatch::{Condition, Op, Test};

use crate::{Import, Warning};

/// Where one rule of an imported rule set comes from, written as a comment
/// above it.
///
/// ```
/// let note = graymatch_import::RuleNote { comment: "Ingress web/shop rules[0].paths[0]".into() };
/// assert!(note.comment.starts_with("Ingress"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleNote {
    /// One line: the manifest place and what the rule reproduces.
    pub comment: String,
}

/// The longest rule or variant name graymatch accepts.
const MAX_NAME: usize = 64;

/// `name` as a valid graymatch name: other characters become `-`, and a
/// name longer than 64 keeps its start and gains a hash of the whole.
pub(crate) fn fit(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        return "unnamed".to_owned();
    }
    if clean.len() <= MAX_NAME {
        return clean;
    }
    let hash = fnv1a(name.as_bytes());
    format!("{}-{hash:08x}", &clean[..MAX_NAME - 9])
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Hands out unique rule names: a name used before gains `.2`, `.3`, ...
#[derive(Default)]
pub(crate) struct Names {
    used: HashSet<String>,
}

impl Names {
    pub(crate) fn unique(&mut self, name: &str) -> String {
        let base = fit(name);
        if self.used.insert(base.clone()) {
            return base;
        }
        for n in 2.. {
            let candidate = fit(&format!("{name}.{n}"));
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
        unreachable!("some suffix is free")
    }
}

/// How objects of one kind are named in rule names: `ingress.shop`, or
/// `ingress.web.shop` when two namespaces hold an object called `shop`.
pub(crate) struct ObjectNames {
    kind: &'static str,
    ambiguous: HashSet<String>,
}

impl ObjectNames {
    /// `objects` are `(namespace, name)` pairs of every object of the kind.
    pub(crate) fn new<'a>(
        kind: &'static str,
        objects: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut namespaces: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (ns, name) in objects {
            namespaces.entry(name).or_default().insert(ns);
        }
        ObjectNames {
            kind,
            ambiguous: namespaces
                .into_iter()
                .filter(|(_, ns)| ns.len() > 1)
                .map(|(name, _)| name.to_owned())
                .collect(),
        }
    }

    pub(crate) fn prefix(&self, namespace: &str, name: &str) -> String {
        if self.ambiguous.contains(name) {
            format!("{}.{namespace}.{name}", self.kind)
        } else {
            format!("{}.{name}", self.kind)
        }
    }
}

/// A backend as the source identifies it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BackendId {
    pub(crate) kind: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) port: String,
}

/// Variant names for backends: the backend's name, qualified only where two
/// different backends would share one (or a backend is named like a
/// reserved variant), with a warning.
pub(crate) fn variant_names(
    backends: &BTreeMap<BackendId, String>,
    reserved: &[&str],
    warnings: &mut Vec<Warning>,
) -> BTreeMap<BackendId, String> {
    let mut by_name: BTreeMap<&str, Vec<&BackendId>> = BTreeMap::new();
    for id in backends.keys() {
        by_name.entry(id.name.as_str()).or_default().push(id);
    }
    let mut out = BTreeMap::new();
    let mut taken: HashSet<String> = reserved.iter().map(|s| (*s).to_owned()).collect();
    for (name, ids) in &by_name {
        if ids.len() == 1 && !reserved.contains(name) {
            let v = fit(name);
            taken.insert(v.clone());
            out.insert(ids[0].clone(), v);
        }
    }
    for (name, ids) in by_name {
        if ids.len() == 1 && !reserved.contains(&name) {
            continue;
        }
        let distinct = |f: fn(&BackendId) -> &str| {
            ids.iter().map(|id| f(id)).collect::<BTreeSet<_>>().len() == ids.len()
        };
        let form: fn(&BackendId) -> String = if distinct(|id| id.namespace.as_str()) {
            |id| format!("{}.{}", id.namespace, id.name)
        } else if distinct(|id| id.port.as_str())
            && ids.iter().all(|id| id.namespace == ids[0].namespace)
        {
            |id| format!("{}.{}", id.name, id.port)
        } else if distinct(|id| id.kind.as_str()) {
            |id| {
                format!(
                    "{}.{}.{}",
                    id.kind.to_ascii_lowercase(),
                    id.namespace,
                    id.name
                )
            }
        } else {
            |id| {
                format!(
                    "{}.{}.{}.{}",
                    id.kind.to_ascii_lowercase(),
                    id.namespace,
                    id.name,
                    id.port
                )
            }
        };
        let mut chosen = Vec::new();
        for id in &ids {
            let mut v = fit(&form(id));
            let mut n = 2;
            while taken.contains(&v) {
                v = fit(&format!("{}.{n}", form(id)));
                n += 1;
            }
            taken.insert(v.clone());
            chosen.push(format!("{} ({})", v, describe_backend(id)));
            out.insert((*id).clone(), v);
        }
        let first = &backends[ids[0]];
        warnings.push(Warning {
            object: first.clone(),
            field: String::new(),
            message: if ids.len() == 1 {
                format!(
                    "backend `{name}` is named like the reserved variant `{name}`; its variant is {}",
                    chosen.join(", ")
                )
            } else {
                format!(
                    "{} different backends are named `{name}`; their variants are {}",
                    ids.len(),
                    chosen.join(", ")
                )
            },
        });
    }
    out
}

fn describe_backend(id: &BackendId) -> String {
    let port = if id.port.is_empty() {
        "no port"
    } else {
        id.port.as_str()
    };
    format!("{} {}/{} port {port}", id.kind, id.namespace, id.name)
}

/// Conditions that all hold: `None` for none, the one, or `all`.
pub(crate) fn all(mut conds: Vec<Condition>) -> Option<Condition> {
    match conds.len() {
        0 => None,
        1 => conds.pop(),
        _ => Some(Condition::All(conds)),
    }
}

pub(crate) fn test(op: Op) -> Test {
    Test::new(op)
}

/// Shares of `weights` in ppm, rounded by largest remainder so that they sum
/// to exactly 1,000,000 (when any weight is positive). Ties in the
/// remainder go to the earlier entry.
pub(crate) fn ppm_shares(weights: &[u64]) -> Vec<u32> {
    const PPM: u128 = 1_000_000;
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<u32> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let exact = u128::from(w) * PPM;
        shares.push(u32::try_from(exact / total).unwrap_or(u32::MAX));
        remainders.push((exact % total, i));
    }
    let given: u128 = shares.iter().map(|&s| u128::from(s)).sum();
    let mut left = PPM.saturating_sub(given);
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (rem, i) in remainders {
        if left == 0 {
            break;
        }
        if rem > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
}

/// A ppm amount as a percent with at most 4 decimals.
pub(crate) fn percent(ppm: u32) -> f64 {
    f64::from(ppm) / 10_000.0
}

/// The rule set as commented YAML.
pub(crate) fn render(import: &Import) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# graymatch import {}: generated from {}\n",
        import.source_kind,
        if import.sources.is_empty() {
            "no files".to_owned()
        } else {
            import.sources.join(", ")
        }
    ));
    out.push_str(
        "# Each rule names the manifest place it reproduces; `graymatch explain` shows which decided.\n",
    );
    if !import.warnings.is_empty() {
        out.push_str(&format!(
            "# {} warning(s) were printed with this file: the places where routing may differ.\n",
            import.warnings.len()
        ));
    }
    let rules = &import.rules;
    out.push_str(&format!("default: {}\n", yaml_scalar(&rules.default)));
    if let Some(variants) = &rules.variants {
        let list: Vec<String> = variants.iter().map(|v| yaml_scalar(v)).collect();
        out.push_str(&format!("variants: [{}]\n", list.join(", ")));
    }
    if rules.rules.is_empty() {
        out.push_str("rules: []\n");
        return out;
    }
    out.push_str("rules:\n");
    for (i, rule) in rules.rules.iter().enumerate() {
        if let Some(note) = import.notes.get(i) {
            for line in note.comment.lines() {
                out.push_str(&format!("  # {line}\n"));
            }
        }
        render_rule(rule, &mut out);
    }
    out
}

/// One rule, `name`, targets, then `when`: leaves as flow mappings.
fn render_rule(rule: &graymatch::Rule, out: &mut String) {
    out.push_str(&format!("  - name: {}\n", yaml_scalar(&rule.name)));
    if let Some(to) = &rule.to {
        out.push_str(&format!("    to: {}\n", yaml_scalar(to)));
    }
    if let Some(p) = rule.percent {
        out.push_str(&format!("    percent: {p}\n"));
    }
    if let Some(split) = &rule.split {
        out.push_str("    split:\n");
        for t in split {
            out.push_str(&format!(
                "      - {{ to: {}, percent: {} }}\n",
                flow_scalar(&t.to),
                t.percent
            ));
        }
    }
    if let Some(sticky) = &rule.sticky {
        let v = serde_json::to_value(sticky).unwrap_or_default();
        out.push_str(&format!("    sticky: {}\n", flow(&v)));
    }
    if let Some(when) = &rule.when {
        out.push_str("    when:\n");
        let v = serde_json::to_value(when).unwrap_or_default();
        block(&v, 6, out);
    }
}

/// A condition in block style: `all`/`any` lists and `not` nest, leaves
/// are one line.
fn block(v: &serde_json::Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let Some(map) = v.as_object() else {
        out.push_str(&format!("{pad}{}\n", flow(v)));
        return;
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("all" | "any", serde_json::Value::Array(items)) if !items.is_empty() => {
                out.push_str(&format!("{pad}{key}:\n"));
                for item in items {
                    let mut inner = String::new();
                    block(item, indent + 4, &mut inner);
                    let inner = inner.trim_start().to_owned();
                    out.push_str(&format!("{pad}  - {inner}"));
                }
            }
            ("not", inner) => {
                out.push_str(&format!("{pad}not:\n"));
                block(inner, indent + 2, out);
            }
            (key, value) => out.push_str(&format!("{pad}{key}: {}\n", flow(value))),
        }
    }
}

/// A value in YAML flow style.
fn flow(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            // `name` first, as people write leaves.
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by_key(|(k, _)| k.as_str() != "name");
            let items: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", flow_scalar(k), flow(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        serde_json::Value::String(s) => flow_scalar(s),
        other => other.to_string(),
    }
}

/// A string safe inside a flow collection: plain when YAML reads it back
/// as the same string, else double-quoted.
fn flow_scalar(s: &str) -> String {
    let risky = s.is_empty()
        || s.starts_with([
            ' ', '-', '?', ':', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
        ])
        || s.ends_with([' ', ':'])
        || s.contains([',', '[', ']', '{', '}', '#', '\\', '\t', '\n'])
        || s.contains(": ");
    let plain = yaml_scalar(s);
    if risky || plain != s {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    } else {
        plain
    }
}

/// A string as one YAML scalar (quoted when plain text would read otherwise).
fn yaml_scalar(s: &str) -> String {
    serde_yaml_ng::to_string(s)
        .map(|t| t.trim_end().to_owned())
        .unwrap_or_else(|_| format!("{s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cases() {
        let long = "x".repeat(80);
        let cases: &[(&str, &str)] = &[
            ("ingress.shop.header", "ingress.shop.header"),
            ("a/b c", "a-b-c"),
            ("", "unnamed"),
        ];
        for (input, want) in cases {
            assert_eq!(fit(input), *want, "case {input}");
        }
        let fitted = fit(&long);
        assert_eq!(fitted.len(), 64);
        assert_ne!(fit(&long), fit(&format!("{long}y")));
    }

    #[test]
    fn ppm_share_cases() {
        let cases: &[(&str, &[u64], &[u32])] = &[
            ("one", &[1], &[1_000_000]),
            ("seventy thirty zero", &[70, 30, 0], &[700_000, 300_000, 0]),
            ("thirds", &[1, 1, 1], &[333_334, 333_333, 333_333]),
            (
                "sevenths",
                &[1, 1, 1, 1, 1, 1, 1],
                &[
                    142_858, 142_857, 142_857, 142_857, 142_857, 142_857, 142_857,
                ],
            ),
            ("tiny share", &[1, 999_999_999], &[0, 1_000_000]),
            ("all zero", &[0, 0], &[0, 0]),
            (
                "max weights",
                &[1_000_000, 1_000_000, 1],
                &[500_000, 500_000, 0],
            ),
        ];
        for (name, weights, want) in cases {
            let got = ppm_shares(weights);
            assert_eq!(got, *want, "case {name}");
            if weights.iter().any(|&w| w > 0) {
                assert_eq!(got.iter().sum::<u32>(), 1_000_000, "case {name}");
            }
        }
    }

    #[test]
    fn variant_name_cases() {
        let id = |ns: &str, name: &str, port: &str| BackendId {
            kind: "Service".into(),
            namespace: ns.into(),
            name: name.into(),
            port: port.into(),
        };
        let mut backends = BTreeMap::new();
        backends.insert(id("a", "web", "80"), "Ingress/a/x".to_owned());
        backends.insert(id("b", "web", "80"), "Ingress/b/x".to_owned());
        backends.insert(id("a", "api", "80"), "Ingress/a/y".to_owned());
        backends.insert(id("a", "api", "http"), "Ingress/a/y".to_owned());
        backends.insert(id("a", "solo", "80"), "Ingress/a/z".to_owned());
        backends.insert(id("a", "unmatched", "80"), "Ingress/a/z".to_owned());
        let mut warnings = Vec::new();
        let names = variant_names(&backends, &["unmatched", "no-backend"], &mut warnings);
        let got: Vec<(String, String)> = names
            .iter()
            .map(|(k, v)| (format!("{}/{}/{}", k.namespace, k.name, k.port), v.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a/api/80", "api.80"),
                ("a/api/http", "api.http"),
                ("a/solo/80", "solo"),
                ("a/unmatched/80", "a.unmatched"),
                ("a/web/80", "a.web"),
                ("b/web/80", "b.web"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }
}
