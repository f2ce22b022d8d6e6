//! Label selectors (`a=b,c!=d,e in (x,y),!f`) and field selectors
//! (`metadata.name=x`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::resource::Resource;

/// Longest selector accepted, in bytes.
const MAX_SELECTOR_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

fn bad(selector: &str, why: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "unable to parse requirement: {why} in selector {selector:?}"
    ))
}

fn check_key(selector: &str, key: &str) -> Result<String, ApiError> {
    let key = key.trim();
    if key.is_empty() || crate::meta::check_label(key, "").is_some() {
        return Err(bad(selector, &format!("invalid label key {key:?}")));
    }
    Ok(key.to_owned())
}

fn check_value(selector: &str, key: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if crate::meta::check_label(key, value).is_some() {
        return Err(bad(selector, &format!("invalid label value {value:?}")));
    }
    Ok(value.to_owned())
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, ()> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(());
        }
    }
    if depth != 0 {
        return Err(());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

impl LabelSelector {
    /// Parses the `labelSelector` query syntax.
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        if s.len() > MAX_SELECTOR_LEN {
            return Err(bad(s, "selector too long"));
        }
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { requirements });
        }
        let parts = split_top(s).map_err(|()| bad(s, "unbalanced parentheses"))?;
        for part in parts {
            let part = part.trim();
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(check_key(s, key)?)
            } else if let Some((key, value)) = part.split_once("!=") {
                let key = check_key(s, key)?;
                Requirement::NotEquals(key.clone(), check_value(s, &key, value)?)
            } else if let Some((key, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                let key = check_key(s, key)?;
                Requirement::Equals(key.clone(), check_value(s, &key, value)?)
            } else if let Some((key, set)) = set_op(part, " notin ") {
                let key = check_key(s, key)?;
                Requirement::NotIn(key.clone(), parse_set(s, &key, set)?)
            } else if let Some((key, set)) = set_op(part, " in ") {
                let key = check_key(s, key)?;
                Requirement::In(key.clone(), parse_set(s, &key, set)?)
            } else {
                Requirement::Exists(check_key(s, part)?)
            };
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    /// Builds a selector from a `matchLabels`/`matchExpressions` object.
    pub(crate) fn from_label_selector(value: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = value.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v.as_str().ok_or("matchLabels values must be strings")?;
                requirements.push(Requirement::Equals(k.clone(), v.to_owned()));
            }
        }
        for expr in value
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = expr
                .get("key")
                .and_then(Value::as_str)
                .ok_or("matchExpressions key missing")?
                .to_owned();
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            requirements.push(match expr.get("operator").and_then(Value::as_str) {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                Some("DoesNotExist") => Requirement::NotExists(key),
                other => return Err(format!("unsupported matchExpressions operator {other:?}")),
            });
        }
        Ok(Self { requirements })
    }

    /// Whether it selects nothing in particular (matches everything).
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// The `a=b,c=d` string form (for Scale.status.selector).
    pub(crate) fn to_query(&self) -> String {
        self.requirements
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn set_op<'a>(part: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let (key, rest) = part.split_once(op)?;
    Some((key, rest))
}

fn parse_set(selector: &str, key: &str, set: &str) -> Result<Vec<String>, ApiError> {
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(selector, "expected a parenthesized set of values"))?;
    inner
        .split(',')
        .map(|v| check_value(selector, key, v))
        .collect()
}

/// A parsed field selector: `metadata.name`, `metadata.namespace` and, for
/// pods, `spec.nodeName` and `status.phase`, with `=`, `==` or `!=`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query syntax for `resource`.
    pub(crate) fn parse(s: &str, resource: Resource) -> Result<Self, ApiError> {
        if s.len() > MAX_SELECTOR_LEN {
            return Err(ApiError::BadRequest("field selector too long".into()));
        }
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let supported = matches!(field, "metadata.name" | "metadata.namespace")
                || (resource == Resource::Pods
                    && matches!(field, "spec.nodeName" | "status.phase"));
            if !supported {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self { terms })
    }

    /// Whether it has terms that need the parsed object (not just name/namespace).
    pub(crate) fn needs_body(&self) -> bool {
        self.terms
            .iter()
            .any(|(f, _, _)| !f.starts_with("metadata."))
    }

    /// Whether the object (name, namespace and, when needed, its value) matches.
    pub(crate) fn matches(&self, namespace: &str, name: &str, value: Option<&Value>) -> bool {
        self.terms.iter().all(|(field, equal, want)| {
            let actual = match field.as_str() {
                "metadata.name" => name,
                "metadata.namespace" => namespace,
                "spec.nodeName" => value
                    .and_then(|v| v.pointer("/spec/nodeName"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                _ => value
                    .and_then(|v| v.pointer("/status/phase"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            };
            (actual == want) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors_parse_and_match() {
        let s = LabelSelector::parse("app=web,tier!=db,env in (a, b),!legacy,owner").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "a"), ("owner", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "c"), ("owner", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "a"),
            ("owner", "x"),
            ("legacy", "")
        ])));
        assert!(LabelSelector::parse("app in (a").is_err());
        assert!(LabelSelector::parse("=x").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
    }

    #[test]
    fn field_selectors_reject_unknown_fields() {
        let f = FieldSelector::parse("metadata.name=demo", Resource::Pods).unwrap();
        assert!(f.matches("default", "demo", None));
        assert!(!f.matches("default", "other", None));
        assert!(FieldSelector::parse("spec.foo=1", Resource::Pods).is_err());
    }
}
