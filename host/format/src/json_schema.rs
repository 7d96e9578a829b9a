//! Confluent JSON Schema into Arrow. With `validate`, each value is first
//! checked against its writer schema, as Confluent's deserializer does
//! with `json.fail.invalid.schema` (a value that fails is `invalid-value`
//! poison with the validator's message). The values' bytes are read by
//! `arrow-json` straight into the reader schema's columns by property name
//! (properties the reader does not have are skipped, ones the writer
//! lacks are null); a value that is not JSON or does not fit the columns
//! is poison.
//!
//! Arrow types: `integer` int64, `number` float64, `boolean`, `string`
//! utf8 (`format: date-time` a UTC microsecond timestamp, `format: date` a
//! date), `enum` utf8, `array` list, `object` with `properties` a struct,
//! `object` with only `additionalProperties` a map with utf8 keys (its
//! entries in the value's order). A property is nullable unless it is
//! `required` and its type excludes `null`. Local `$ref`s
//! (`#/definitions/..`, `#/$defs/..`) are followed.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, BinaryArray};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use schema_registry_converter::blocking::json::JsonDecoder;
use schema_registry_converter::blocking::json::JsonSchema;
use serde_json::Value as Json;

use crate::json_rows::{JsonRows, utf8_map};
use crate::registry::{Registry, RegistrySchema, WriterIds, registry_error_code, registry_message};
use crate::{Decoded, FormatError, Poison, PoisonKind, ValueDecoder, confluent_frame};

/// Nesting deeper than this is refused (recursive schemas).
const MAX_DEPTH: usize = 32;

/// Decodes Confluent JSON Schema values into the reader schema's columns.
#[derive(Debug)]
pub(crate) struct JsonSchemaDecoder {
    registry: Registry,
    reader: RegistrySchema,
    /// Fetches each writer schema with its references, and keeps its
    /// compiled validator.
    decoder: JsonDecoder,
    /// The writer schemas met so far, by id.
    schemas: HashMap<u32, Arc<JsonSchema>>,
    rows: JsonRows,
    writers: WriterIds,
    /// Whether each value is validated against its writer schema.
    validate: bool,
}

impl JsonSchemaDecoder {
    pub(crate) fn new(
        registry: Registry,
        reader: RegistrySchema,
        validate: bool,
    ) -> Result<Self, FormatError> {
        if reader.schema_type != "JSON" {
            return Err(FormatError::Schema(format!(
                "the reader schema (id {}) is {}, not JSON",
                reader.id, reader.schema_type
            )));
        }
        let root: Json = serde_json::from_str(&reader.schema).map_err(|e| {
            FormatError::Schema(format!("reader schema {} is not JSON: {e}", reader.id))
        })?;
        let fields = match json_type(&root, &root, 0)? {
            (DataType::Struct(fields), _) => fields,
            (other, _) => {
                return Err(FormatError::Schema(format!(
                    "reader schema {} describes {other}, not an object",
                    reader.id
                )));
            }
        };
        let writers = WriterIds::new("JSON", &registry, reader.id);
        Ok(JsonSchemaDecoder {
            decoder: JsonDecoder::new(registry.settings().clone()),
            registry,
            schemas: HashMap::new(),
            rows: JsonRows::new(Arc::new(Schema::new(fields))),
            writers,
            reader,
            validate,
        })
    }

    /// The writer schema `id`, fetched once.
    fn writer_schema(
        &mut self,
        id: u32,
    ) -> Result<Result<Arc<JsonSchema>, (PoisonKind, String)>, FormatError> {
        if let Some(schema) = self.schemas.get(&id) {
            return Ok(Ok(schema.clone()));
        }
        match self.decoder.get_schema(id) {
            Ok(schema) => {
                self.schemas.insert(id, schema.clone());
                Ok(Ok(schema))
            }
            Err(e) if e.retriable && registry_error_code(&e).is_none() => {
                Err(FormatError::Registry {
                    url: "(json schema decoder)".into(),
                    message: registry_message(&e),
                })
            }
            Err(e) => Ok(Err((
                PoisonKind::InvalidValue,
                format!("schema id {id}: {}", registry_message(&e)),
            ))),
        }
    }

    /// The JSON text of one record, validated against its writer schema
    /// if the decoder validates, or why the record is poison.
    fn check<'a>(
        &mut self,
        value: &'a [u8],
    ) -> Result<Result<&'a [u8], (PoisonKind, String)>, FormatError> {
        let (id, payload) = match confluent_frame(value) {
            Ok(frame) => frame,
            Err(poison) => return Ok(Err((poison.kind, poison.message))),
        };
        if let Some(reason) = self.writers.check(&self.registry, id)? {
            return Ok(Err(reason));
        }
        if let Err(e) = std::str::from_utf8(payload) {
            return Ok(Err((
                PoisonKind::InvalidUtf8,
                format!("schema id {id}: {e}"),
            )));
        }
        if !self.validate {
            return Ok(Ok(payload));
        }
        let schema = match self.writer_schema(id)? {
            Ok(schema) => schema,
            Err(reason) => return Ok(Err(reason)),
        };
        // The validator reads a `serde_json::Value`; the columns are read
        // from the bytes.
        let json: Json = match serde_json::from_slice(payload) {
            Ok(json) => json,
            Err(e) => {
                return Ok(Err((
                    PoisonKind::InvalidValue,
                    format!("schema id {id}: not JSON: {e}"),
                )));
            }
        };
        // The converter does not check the value; Confluent's
        // deserializer does, and so do we.
        Ok(match self.decoder.validate(&schema, &json) {
            Ok(()) => Ok(payload),
            Err(e) => Err((
                PoisonKind::InvalidValue,
                format!("schema id {id}: {}", registry_message(&e)),
            )),
        })
    }
}

impl ValueDecoder for JsonSchemaDecoder {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    fn reader_schema(&self) -> Option<&RegistrySchema> {
        Some(&self.reader)
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        let mut good = Vec::with_capacity(values.len());
        let mut poison = Vec::new();
        for row in 0..values.len() {
            match self.check(values.value(row))? {
                Ok(text) => good.push((row as u32, text)),
                Err((kind, message)) => poison.push(Poison {
                    row: row as u32,
                    kind,
                    message,
                }),
            }
        }
        self.rows.decoded_text(&good, poison)
    }
}

/// The Arrow type of a schema node, and whether it admits null.
fn json_type(node: &Json, root: &Json, depth: usize) -> Result<(DataType, bool), FormatError> {
    if depth > MAX_DEPTH {
        return Err(FormatError::Schema(format!(
            "the schema nests deeper than {MAX_DEPTH} levels (recursive?)"
        )));
    }
    let node = resolve(node, root)?;
    if node.get("enum").is_some() || node.get("const").is_some() {
        return Ok((DataType::Utf8, admits_null(node)));
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = node.get(combinator).and_then(Json::as_array) {
            let non_null: Vec<&Json> = options
                .iter()
                .filter(|o| {
                    resolve(o, root).ok().and_then(|o| o.get("type")) != Some(&Json::from("null"))
                })
                .collect();
            if let [only] = non_null.as_slice() {
                let (data_type, _) = json_type(only, root, depth + 1)?;
                return Ok((data_type, non_null.len() < options.len()));
            }
            return Err(FormatError::Schema(format!(
                "`{combinator}` with several non-null options has no single Arrow type"
            )));
        }
    }
    let types: Vec<&str> = match node.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ if node.get("properties").is_some() => vec!["object"],
        _ => {
            return Err(FormatError::Schema(format!(
                "a schema without a `type` has no Arrow type: {node}"
            )));
        }
    };
    let nullable = types.contains(&"null");
    let non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    let [kind] = non_null.as_slice() else {
        return Err(FormatError::Schema(format!(
            "a property of types {non_null:?} has no single Arrow type"
        )));
    };
    let data_type = match *kind {
        "integer" => DataType::Int64,
        "number" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "string" => match node.get("format").and_then(Json::as_str) {
            Some("date-time") => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            Some("date") => DataType::Date32,
            _ => DataType::Utf8,
        },
        "array" => {
            let items = node.get("items").ok_or_else(|| {
                FormatError::Schema("an array without `items` has no Arrow type".into())
            })?;
            let (item, _) = json_type(items, root, depth + 1)?;
            DataType::List(Arc::new(Field::new_list_field(item, true)))
        }
        "object" => object_type(node, root, depth)?,
        other => {
            return Err(FormatError::Schema(format!(
                "type {other:?} has no Arrow type"
            )));
        }
    };
    Ok((data_type, nullable))
}

fn object_type(node: &Json, root: &Json, depth: usize) -> Result<DataType, FormatError> {
    let required: Vec<&str> = node
        .get("required")
        .and_then(Json::as_array)
        .map(|r| r.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    match node.get("properties").and_then(Json::as_object) {
        Some(properties) => {
            let fields = properties
                .iter()
                .map(|(name, property)| {
                    let (data_type, admits_null) = json_type(property, root, depth + 1)?;
                    let nullable = admits_null || !required.contains(&name.as_str());
                    Ok(Field::new(name, data_type, nullable))
                })
                .collect::<Result<Vec<_>, FormatError>>()?;
            Ok(DataType::Struct(Fields::from(fields)))
        }
        None => {
            let values = match node.get("additionalProperties") {
                Some(schema @ Json::Object(_)) => json_type(schema, root, depth + 1)?.0,
                _ => DataType::Utf8,
            };
            Ok(utf8_map(values))
        }
    }
}

/// `node`, or what its local `$ref` points at.
fn resolve<'a>(node: &'a Json, root: &'a Json) -> Result<&'a Json, FormatError> {
    let Some(reference) = node.get("$ref").and_then(Json::as_str) else {
        return Ok(node);
    };
    let pointer = reference.strip_prefix('#').ok_or_else(|| {
        FormatError::Schema(format!(
            "`$ref` {reference:?} points outside the schema; only local references are read"
        ))
    })?;
    root.pointer(pointer)
        .ok_or_else(|| FormatError::Schema(format!("`$ref` {reference:?} points at nothing")))
}

fn admits_null(node: &Json) -> bool {
    match node.get("type") {
        Some(Json::Array(ts)) => ts.iter().any(|t| t == "null"),
        Some(t) => t == "null",
        None => false,
    }
}

/// Whether `node` (resolved against `root`) lets a value be null: by its
/// `type`, its `enum`, or one of its `anyOf`/`oneOf` branches. A schema
/// that says nothing of a type (`{}`) admits anything.
fn may_be_null(node: &Json, root: &Json) -> bool {
    let Ok(node) = resolve(node, root) else {
        return true;
    };
    let Some(object) = node.as_object() else {
        return node != &Json::Bool(false);
    };
    if admits_null(node) {
        return true;
    }
    if let Some(Json::Array(symbols)) = object.get("enum") {
        return symbols.iter().any(Json::is_null);
    }
    let branches = ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| object.get(*k).and_then(Json::as_array))
        .flatten()
        .collect::<Vec<_>>();
    if !branches.is_empty() {
        return branches.iter().any(|b| may_be_null(b, root));
    }
    !object.contains_key("type") && !object.contains_key("const")
}

/// Remove from `value` the null properties that `schema` (an object
/// schema, resolved against `root`) does not let be null: in Arrow a null
/// is also a property the row does not have, and a writer schema that
/// types `zip` as a string wants it absent rather than null, as
/// Confluent's validating deserializer checks. Nested objects and arrays
/// of objects are cleaned the same way.
pub(crate) fn omit_forbidden_nulls(value: &mut Json, schema: &Json, root: &Json) {
    let Ok(schema) = resolve(schema, root) else {
        return;
    };
    match value {
        Json::Object(object) => {
            let Some(properties) = schema.get("properties").and_then(Json::as_object) else {
                return;
            };
            object.retain(|key, v| {
                !v.is_null() || properties.get(key).is_none_or(|p| may_be_null(p, root))
            });
            for (key, v) in object.iter_mut() {
                if let Some(property) = properties.get(key) {
                    omit_forbidden_nulls(v, property, root);
                }
            }
        }
        Json::Array(items) => {
            if let Some(item) = schema.get("items") {
                for v in items {
                    omit_forbidden_nulls(v, item, root);
                }
            }
        }
        _ => {}
    }
}
