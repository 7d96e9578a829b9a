//! JSON schemas.
//!
//! Validation: the text must be JSON, and an object or a boolean (the two forms a JSON Schema
//! can take); keywords are not checked against the meta-schema.
//!
//! Compatibility, a subset of Confluent's: a reader schema can read data written with a writer
//! schema unless, at the root or in any property present in both (recursively through
//! `properties`):
//! - both give a `type` and the reader's does not cover the writer's (`number` covers
//!   `integer`; a list of types covers each type in it), or
//! - the reader lists in `required` a property that the writer does not require and that has
//!   no `default` in the reader.
//!
//! Not checked: `additionalProperties`, `items`, `enum`, combinators, `$ref`, numeric or
//! string bounds.

use serde_json::Value;

/// Parses a JSON schema.
pub(super) fn parse(text: &str) -> Result<(Value, Vec<u8>), String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if !(json.is_object() || json.is_boolean()) {
        return Err("a JSON schema must be an object or a boolean".to_owned());
    }
    let canonical = json.to_string().into_bytes();
    Ok((json, canonical))
}

/// Why `reader` cannot read everything written with `writer`.
pub(super) fn can_read(writer: &Value, reader: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check("#", writer, reader, &mut problems);
    problems
}

fn check(path: &str, writer: &Value, reader: &Value, problems: &mut Vec<String>) {
    if let (Some(w), Some(r)) = (types(writer), types(reader)) {
        let uncovered: Vec<&str> = w
            .iter()
            .copied()
            .filter(|t| !(r.contains(t) || (*t == "integer" && r.contains(&"number"))))
            .collect();
        if !uncovered.is_empty() {
            problems.push(format!(
                "type at '{path}' changed from {w:?} to {r:?}: {uncovered:?} no longer allowed"
            ));
        }
    }
    let writer_required = required(writer);
    for name in required(reader) {
        let has_default = property(reader, name).is_some_and(|p| p.get("default").is_some());
        if !writer_required.contains(&name) && !has_default {
            problems.push(format!(
                "property '{path}/{name}' is required by the reader but not by the writer, and has no default"
            ));
        }
    }
    if let Some(Value::Object(reader_properties)) = reader.get("properties") {
        for (name, r) in reader_properties {
            if let Some(w) = property(writer, name) {
                check(&format!("{path}/{name}"), w, r, problems);
            }
        }
    }
}

fn types(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn required(schema: &Value) -> Vec<&str> {
    match schema.get("required") {
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    schema.get("properties")?.get(name)
}
