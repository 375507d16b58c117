//! Reading rule sets from text: parse errors that name the rule (index and
//! name) and the path inside it, with the line and column, in every format.

use crate::error::CompileError;
use crate::rules::RuleSet;

/// The rules' names, read again leniently from text that failed to load
/// (only to name the rule in the error): fields other than `name` are
/// ignored, and text that does not even have this shape gives no names.
#[derive(serde::Deserialize)]
struct Names {
    #[serde(default)]
    rules: Vec<NameOnly>,
}

#[derive(serde::Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: Option<String>,
}

fn names(parsed: Option<Names>) -> Vec<Option<String>> {
    parsed.map_or_else(Vec::new, |n| n.rules.into_iter().map(|r| r.name).collect())
}

/// `rules[1].when.header` with the rule's name put in after `rules[1]`
/// (found in `names`, the rules' names in order, when the text has them).
fn place(path: &str, names: &[Option<String>]) -> String {
    let Some(rest) = path.strip_prefix("rules[") else {
        return path.to_owned();
    };
    let Some(close) = rest.find(']') else {
        return path.to_owned();
    };
    match rest[..close]
        .parse::<usize>()
        .ok()
        .and_then(|i| names.get(i))
        .and_then(Option::as_deref)
    {
        Some(name) => format!("rules[{}] ({name}){}", &rest[..close], &rest[close + 1..]),
        None => path.to_owned(),
    }
}

/// `line L column C` of a byte offset.
#[cfg(feature = "toml")]
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut start = offset.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `path: message`, or the message alone at the root.
fn join(path: &str, message: &str) -> String {
    if path.is_empty() || path == "." {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

#[cfg(feature = "json")]
pub(crate) fn json(text: &str) -> Result<RuleSet, CompileError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let result: Result<RuleSet, _> = serde_path_to_error::deserialize(&mut de);
    match result {
        Ok(set) => {
            de.end()
                .map_err(|e| CompileError::parse("JSON", e.to_string()))?;
            Ok(set)
        }
        Err(e) => {
            let path = place(
                &e.path().to_string(),
                &names(serde_json::from_str(text).ok()),
            );
            Err(CompileError::parse(
                "JSON",
                join(&path, &e.into_inner().to_string()),
            ))
        }
    }
}

#[cfg(feature = "yaml")]
pub(crate) fn yaml(text: &str) -> Result<RuleSet, CompileError> {
    // serde_yaml_ng's message starts with the path (`rules[1].when: ...`);
    // the rule's name goes in after its index.
    serde_yaml_ng::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = match message.split_once(": ") {
            Some((path, rest)) if path.starts_with("rules[") && !path.contains(' ') => join(
                &place(path, &names(serde_yaml_ng::from_str(text).ok())),
                rest,
            ),
            _ => message,
        };
        CompileError::parse("YAML", message)
    })
}

#[cfg(feature = "toml")]
pub(crate) fn toml(text: &str) -> Result<RuleSet, CompileError> {
    // The TOML error's own text is a multi-line snippet: one line instead,
    // with the path, the message and where.
    let one_line = |message: &str, span: Option<std::ops::Range<usize>>, path: &str| {
        let mut m = join(path, message.trim());
        if let Some(span) = span {
            let (line, column) = line_column(text, span.start);
            m.push_str(&format!(" at line {line} column {column}"));
        }
        CompileError::parse("TOML", m)
    };
    let de = toml::Deserializer::parse(text).map_err(|e| one_line(e.message(), e.span(), ""))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = place(&e.path().to_string(), &names(toml::from_str(text).ok()));
        let inner = e.into_inner();
        one_line(inner.message(), inner.span(), &path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places() {
        let names = [Some("ok".to_owned()), None, Some("bad".to_owned())];
        assert_eq!(place("rules[2].when", &names), "rules[2] (bad).when");
        assert_eq!(place("rules[2]", &names), "rules[2] (bad)");
        assert_eq!(place("rules[1].when", &names), "rules[1].when");
        assert_eq!(place("rules[9].when", &names), "rules[9].when");
        assert_eq!(place("propagation", &names), "propagation");
        assert_eq!(place("rules[x]", &names), "rules[x]");
    }
}
