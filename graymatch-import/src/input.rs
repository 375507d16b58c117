//! Reading manifests: YAML streams (`---` between documents), JSON (one or
//! more values), and `kind: List` (or `*List`) wrappers, each object with
//! the place it came from.

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Options, Source, Warning};

/// One Kubernetes object of the input.
#[derive(Debug)]
pub(crate) struct Doc {
    /// `shop.yaml, document 2` (and `, items[3]` inside a list).
    pub(crate) place: String,
    pub(crate) value: Value,
}

impl Doc {
    /// The object's `kind`, or empty.
    pub(crate) fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// The object's `apiVersion`, or empty.
    pub(crate) fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `Kind/namespace/name` for messages (the place when it has no name).
    pub(crate) fn object(&self, options: &Options) -> String {
        let meta = self.value.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
        let ns = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or(&options.namespace);
        match name {
            Some(name) => format!("{}/{ns}/{name}", self.kind()),
            None => format!("{} ({})", self.place, self.kind()),
        }
    }

    /// Deserializes the object as `T`; the error names the field.
    pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
        &self,
        options: &Options,
    ) -> Result<T, Error> {
        serde_path_to_error::deserialize(&self.value).map_err(|e| {
            let path = e.path().to_string();
            Error {
                place: format!("{} ({})", self.place, self.object(options)),
                field: if path == "." { String::new() } else { path },
                message: e.into_inner().to_string(),
            }
        })
    }
}

/// Every object in the sources, in order.
pub(crate) fn documents(sources: &[Source]) -> Result<Vec<Doc>, Error> {
    let mut docs = Vec::new();
    for source in sources {
        let trimmed = source.text.trim_start_matches('\u{feff}').trim_start();
        let values: Vec<(usize, Value)> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let mut out = Vec::new();
            let stream = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
            for (i, v) in stream.enumerate() {
                let v = v.map_err(|e| Error {
                    place: format!("{}, document {}", source.name, i + 1),
                    field: String::new(),
                    message: format!("not JSON: {e}"),
                })?;
                out.push((i + 1, v));
            }
            out
        } else {
            let mut out = Vec::new();
            for (i, de) in serde_yaml_ng::Deserializer::from_str(&source.text).enumerate() {
                let v = Value::deserialize(de).map_err(|e| Error {
                    place: format!("{}, document {}", source.name, i + 1),
                    field: String::new(),
                    message: format!("not YAML: {e}"),
                })?;
                out.push((i + 1, v));
            }
            out
        };
        for (index, value) in values {
            let place = format!("{}, document {index}", source.name);
            flatten(place, value, &mut docs, 0)?;
        }
    }
    Ok(docs)
}

/// Adds `value`, or the items of a list, to `docs`.
fn flatten(place: String, value: Value, docs: &mut Vec<Doc>, depth: usize) -> Result<(), Error> {
    match value {
        // An empty document (`---` at the end, comments only).
        Value::Null => Ok(()),
        // A JSON array of objects reads as a list.
        Value::Array(items) if depth == 0 => {
            for (i, item) in items.into_iter().enumerate() {
                flatten(format!("{place}, [{i}]"), item, docs, depth + 1)?;
            }
            Ok(())
        }
        Value::Object(mut map) => {
            let kind = map
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if kind.ends_with("List") && depth < 4 {
                return match map.remove("items") {
                    Some(Value::Array(items)) => {
                        for (i, item) in items.into_iter().enumerate() {
                            flatten(format!("{place}, items[{i}]"), item, docs, depth + 1)?;
                        }
                        Ok(())
                    }
                    Some(Value::Null) | None => Ok(()),
                    Some(_) => Err(Error {
                        place,
                        field: "items".to_owned(),
                        message: format!("a {kind} has a list of items"),
                    }),
                };
            }
            docs.push(Doc {
                place,
                value: Value::Object(map),
            });
            Ok(())
        }
        other => Err(Error {
            place,
            field: String::new(),
            message: format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                describe(&other)
            ),
        }),
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A warning for an object of a kind this importer does not read.
pub(crate) fn skipped(doc: &Doc, options: &Options, wanted: &str) -> Warning {
    let kind = doc.kind();
    Warning {
        object: doc.object(options),
        field: if kind.is_empty() {
            "kind".to_owned()
        } else {
            String::new()
        },
        message: if kind.is_empty() {
            format!("no kind; skipped (this import reads {wanted})")
        } else {
            format!(
                "{kind} ({}) is not imported; skipped (this import reads {wanted})",
                doc.api_version()
            )
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<(String, String)>, String> {
        documents(&[Source::new("f.yaml", text)])
            .map(|docs| {
                docs.iter()
                    .map(|d| (d.place.clone(), d.kind().to_owned()))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn document_cases() {
        let cases: &[(&str, &str, Result<Vec<(&str, &str)>, &str>)] = &[
            ("empty", "", Ok(vec![])),
            ("comments only", "# nothing\n", Ok(vec![])),
            (
                "two documents",
                "kind: A\n---\nkind: B\n",
                Ok(vec![
                    ("f.yaml, document 1", "A"),
                    ("f.yaml, document 2", "B"),
                ]),
            ),
            (
                "empty document between",
                "kind: A\n---\n---\nkind: B\n",
                Ok(vec![
                    ("f.yaml, document 1", "A"),
                    ("f.yaml, document 3", "B"),
                ]),
            ),
            (
                "list",
                "kind: List\nitems:\n  - kind: A\n  - kind: B\n",
                Ok(vec![
                    ("f.yaml, document 1, items[0]", "A"),
                    ("f.yaml, document 1, items[1]", "B"),
                ]),
            ),
            (
                "typed list",
                "kind: IngressList\nitems: [ { kind: Ingress } ]\n",
                Ok(vec![("f.yaml, document 1, items[0]", "Ingress")]),
            ),
            (
                "json stream",
                "{\"kind\": \"A\"}\n{\"kind\": \"B\"}",
                Ok(vec![
                    ("f.yaml, document 1", "A"),
                    ("f.yaml, document 2", "B"),
                ]),
            ),
            (
                "json array",
                "[{\"kind\": \"A\"}]",
                Ok(vec![("f.yaml, document 1, [0]", "A")]),
            ),
            (
                "scalar document",
                "kind: A\n---\n42\n",
                Err("f.yaml, document 2: expected a Kubernetes object"),
            ),
            (
                "bad yaml in second",
                "kind: A\n---\nkind: [B\n",
                Err("f.yaml, document 2: not YAML"),
            ),
            (
                "bad json",
                "{\"kind\": }",
                Err("f.yaml, document 1: not JSON"),
            ),
            (
                "items not a list",
                "kind: List\nitems: 3\n",
                Err("f.yaml, document 1: items: a List has a list of items"),
            ),
        ];
        for (name, text, want) in cases {
            let got = read(text);
            match (want, &got) {
                (Ok(want), Ok(got)) => {
                    let want: Vec<(String, String)> = want
                        .iter()
                        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                        .collect();
                    assert_eq!(got, &want, "case {name}");
                }
                (Err(want), Err(got)) => assert!(got.starts_with(want), "case {name}: {got}"),
                _ => panic!("case {name}: got {got:?}"),
            }
        }
    }
}
