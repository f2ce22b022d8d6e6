//! JSON values as YAML, in the shape kubectl's `-o yaml` prints them (keys
//! sorted, sequences flush with their key, ambiguous strings double-quoted).

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    out.extend(std::iter::repeat_n(' ', level));
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (key, value) in map {
        indent(out, level);
        out.push_str(&string_text(key));
        out.push(':');
        write_nested(out, value, level, level + 2);
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            // A map's first key goes on the dash's line.
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                let mut nested = String::new();
                write_map(&mut nested, map, level + 2);
                out.push_str(&nested[level + 2..]);
            }
            other => write_nested(out, other, level, level + 2),
        }
    }
}

/// The rest of a `key:` or `-` line: a scalar inline, or a block below.
fn write_nested(out: &mut String, value: &Value, seq_level: usize, map_level: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, map_level);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, seq_level);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A string plain when YAML reads it back as the same string, else quoted.
fn string_text(s: &str) -> String {
    if is_plain(s) {
        s.to_owned()
    } else {
        // JSON string escapes are valid YAML double-quoted escapes.
        Value::String(s.to_owned()).to_string()
    }
}

fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let lower = s.to_ascii_lowercase();
    let reserved = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    let numeric = s.parse::<f64>().is_ok() || s.starts_with("0x") || s.starts_with("0o");
    // YAML 1.1 reads `2026-01-01…` as a timestamp.
    let bytes = s.as_bytes();
    let date = bytes.len() >= 8 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-';
    // `-`, `?` and `:` start a plain scalar only when a non-space follows.
    let indicator = match first {
        '-' | '?' | ':' => s.chars().nth(1).is_none_or(char::is_whitespace),
        other => ",[]{}#&*!|>'\"%@`".contains(other),
    };
    !(reserved
        || numeric
        || date
        || indicator
        || first.is_whitespace()
        || s.ends_with(char::is_whitespace)
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_maps_and_sequences() {
        let value = serde_json::json!({
            "kind": "Pod",
            "metadata": {"name": "demo", "resourceVersion": "12", "labels": {}},
            "spec": {"containers": [{"name": "main", "args": ["sleep", "1"]}]},
            "status": {"phase": "Running", "ready": true}
        });
        assert_eq!(
            to_yaml(&value),
            "kind: Pod\nmetadata:\n  labels: {}\n  name: demo\n  resourceVersion: \"12\"\nspec:\n  containers:\n  - args:\n    - sleep\n    - \"1\"\n    name: main\nstatus:\n  phase: Running\n  ready: true\n"
        );
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "",
            "true",
            "No",
            "1.5",
            "a: b",
            "- x",
            "-",
            "-1",
            " lead",
            "line\nbreak",
        ] {
            assert!(string_text(s).starts_with('"'), "{s:?}");
        }
        assert_eq!(
            string_text("2026-01-01T00:00:00Z"),
            "\"2026-01-01T00:00:00Z\""
        );
        for s in ["demo", "app=web", "10.0.0.1:80", "/bin/sh", "-c"] {
            assert_eq!(string_text(s), s);
        }
    }
}
