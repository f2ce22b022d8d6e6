//! PATCH bodies: JSON merge patch (RFC 7386), a simple strategic merge
//! (lists of objects merged by their key, which covers what kubectl apply,
//! label, annotate and scale send) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Patch flavours by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    /// From a Content-Type header.
    pub(crate) fn from_content_type(ct: Option<&str>) -> Result<Self, ApiError> {
        let essence = ct
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/json-patch+json" => Ok(Self::Json),
            _ => Err(ApiError::UnsupportedMediaType(
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json".into(),
            )),
        }
    }
}

/// Applies `patch` to `target`.
pub(crate) fn apply(kind: PatchType, target: Value, patch: &Value) -> Result<Value, ApiError> {
    match kind {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            Ok(merge(target, patch, false))
        }
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            Ok(merge(target, patch, true))
        }
        PatchType::Json => json_patch(target, patch),
    }
}

/// The key a strategic merge uses to match list elements, judged from the
/// patch's own elements (containers/env/volumes by `name`, container ports
/// by `containerPort`, service ports by `port`).
fn merge_key(items: &[Value]) -> Option<&'static str> {
    let all_have =
        |k: &str| !items.is_empty() && items.iter().all(|i| i.get(k).is_some() || is_directive(i));
    ["containerPort", "name", "port", "type", "ip"]
        .into_iter()
        .find(|k| all_have(k))
}

fn is_directive(v: &Value) -> bool {
    v.get("$patch").is_some()
}

fn merge(target: Value, patch: &Value, strategic: bool) -> Value {
    let Some(patch_map) = patch.as_object() else {
        return patch.clone();
    };
    if strategic && patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        return Value::Object(replaced);
    }
    let mut out = match target {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (key, value) in patch_map {
        if strategic && key.starts_with('$') {
            // Ordering hints and retainKeys need schema knowledge; skip them.
            continue;
        }
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let merged = match (out.remove(key), value) {
            (Some(old @ Value::Object(_)), Value::Object(_)) => merge(old, value, strategic),
            (Some(Value::Array(old)), Value::Array(items)) if strategic => merge_list(old, items),
            (_, v) => strip_directives(v.clone()),
        };
        out.insert(key.clone(), merged);
    }
    Value::Object(out)
}

fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

fn merge_list(mut old: Vec<Value>, items: &[Value]) -> Value {
    let Some(key) = merge_key(items) else {
        return strip_directives(Value::Array(items.to_vec()));
    };
    for item in items {
        let id = item.get(key);
        let pos = old.iter().position(|o| o.get(key) == id);
        match (item.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), Some(i)) => {
                old.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                let current = std::mem::take(&mut old[i]);
                old[i] = merge(current, item, true);
            }
            (_, None) => old.push(strip_directives(item.clone())),
        }
    }
    Value::Array(old)
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// Splits a JSON pointer into unescaped tokens.
fn tokens(path: &str) -> Result<Vec<String>, ApiError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| bad(format!("invalid JSON pointer {path:?}")))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, ApiError> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| bad(format!("path component {t:?} not found")))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    let toks = tokens(path)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| bad("invalid array index"))?
            };
            if i > a.len() {
                return Err(bad("array index out of bounds"));
            }
            a.insert(i, value);
        }
        _ => return Err(bad(format!("cannot add at {path:?}"))),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let toks = tokens(path)?;
    let (last, parents) = toks
        .split_last()
        .ok_or_else(|| bad("cannot remove the whole document"))?;
    match parent_mut(doc, parents)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| bad(format!("path {path:?} not found"))),
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .map_err(|_| bad("invalid array index"))?;
            if i >= a.len() {
                return Err(bad("array index out of bounds"));
            }
            Ok(a.remove(i))
        }
        _ => Err(bad(format!("path {path:?} not found"))),
    }
}

fn json_patch(mut doc: Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| bad("a JSON patch must be an array of operations"))?;
    for op in ops {
        let field = |name: &str| {
            op.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("operation is missing {name:?}")))
        };
        let path = field("path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| bad("operation is missing \"value\""))
        };
        match field("op")? {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)?;
            }
            "move" => {
                let moved = remove(&mut doc, field("from")?)?;
                add(&mut doc, path, moved)?;
            }
            "copy" => {
                let from = field("from")?;
                let copied = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| bad(format!("path {from:?} not found")))?;
                add(&mut doc, path, copied)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(ApiError::Invalid {
                        kind: String::new(),
                        name: String::new(),
                        causes: vec![crate::error::Cause {
                            reason: "FieldValueInvalid",
                            message: format!("testing value at {path} failed"),
                            field: path.to_owned(),
                        }],
                    });
                }
            }
            other => return Err(bad(format!("unknown JSON patch operation {other:?}"))),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let out = apply(
            PatchType::Merge,
            json!({"a": 1, "b": {"c": 2}}),
            &json!({"a": null, "b": {"d": 3}}),
        )
        .unwrap();
        assert_eq!(out, json!({"b": {"c": 2, "d": 3}}));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let target = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"$setElementOrder/containers": [{"name": "a"}], "spec": {"containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}]}});
        let out = apply(PatchType::Strategic, target, &patch).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "a", "image": "z"}]}})
        );
    }

    #[test]
    fn json_patch_ops() {
        let out = apply(
            PatchType::Json,
            json!({"a": [1, 2], "b": 1}),
            &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "replace", "path": "/b", "value": 2}, {"op": "test", "path": "/b", "value": 2}]),
        )
        .unwrap();
        assert_eq!(out, json!({"a": [1, 2, 3], "b": 2}));
        assert!(apply(
            PatchType::Json,
            json!({}),
            &json!([{"op": "remove", "path": "/x"}])
        )
        .is_err());
    }
}
