//! Arrow rows into Kafka values in the Confluent wire format: Avro (through
//! `arrow-avro`), JSON Schema and Protobuf. The output schema is the
//! subject's, looked up in the registry; with `auto.register.schemas` (the
//! Confluent serializers' option, default false) the schema derived from
//! the rows is registered under the subject first (Avro, JSON Schema).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, DictionaryArray, Int32Array, StringArray,
};
use arrow::datatypes::{DataType, Int32Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow_avro::schema::{AvroSchema, FingerprintStrategy, SCHEMA_METADATA_KEY};
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroSoeFormat;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage};
use schema_registry_converter::blocking::proto_decoder::ProtoDecoder;
use schema_registry_converter::blocking::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use serde_json::Value as Json;

use crate::json_schema::omit_forbidden_nulls;
use crate::registry::{Registry, RegistrySchema, SchemaVersion, registry_message};
use crate::{FormatError, ValueFormat};

/// What an encoder needs.
#[derive(Debug, Clone)]
pub struct EncodeSpec {
    /// Avro, Protobuf or JSON Schema.
    pub format: ValueFormat,
    /// Registry client options (`url`, ...).
    pub registry: BTreeMap<String, String>,
    /// The output subject (e.g. `orders-value`).
    pub subject: String,
    /// Register the rows' schema under the subject when it is missing or
    /// different (`auto.register.schemas`).
    pub auto_register: bool,
    /// The name (`namespace.Name`) of a registered Avro record whose
    /// schema is derived from the rows alone; by default one derived from
    /// the subject (`orders-value` → `orders_value`).
    pub record_name: Option<String>,
    /// The schema the rows were decoded with, if they were: a registered
    /// Avro schema keeps its name, namespace, doc, and the fields the rows
    /// still have as they were (defaults, docs, enum symbols).
    pub template: Option<SchemaTemplate>,
}

/// A schema rows were decoded with, and the columns it decodes to.
#[derive(Debug, Clone)]
pub struct SchemaTemplate {
    /// The registry schema.
    pub schema: RegistrySchema,
    /// The Arrow columns its decoder produces.
    pub columns: SchemaRef,
}

impl SchemaTemplate {
    /// Whether the rows' column `name` is still as the schema decodes it
    /// (same type, and no nulls where the schema has none), so the
    /// schema's own description of it applies.
    fn describes(&self, rows: &Schema, name: &str) -> bool {
        let (Ok(row), Ok(decoded)) = (
            rows.field_with_name(name),
            self.columns.field_with_name(name),
        ) else {
            return false;
        };
        row.data_type().equals_datatype(decoded.data_type())
            && (decoded.is_nullable() || !row.is_nullable())
    }
}

/// Encodes rows into Kafka values.
pub trait ValueEncoder: Send + std::fmt::Debug {
    /// The fields the output schema names, in its order: the columns a
    /// batch must have.
    fn fields(&self) -> Vec<String>;

    /// One value per row of `batch`, whose columns are [`Self::fields`].
    fn encode(&mut self, batch: &RecordBatch) -> Result<BinaryArray, FormatError>;
}

/// An encoder for `spec`, with its output schema resolved now.
pub fn open_encoder(
    spec: &EncodeSpec,
    rows: &Schema,
) -> Result<Box<dyn ValueEncoder>, FormatError> {
    let registry = Registry::connect(&spec.registry)?;
    let register = |schema_type: SchemaType, schema: String| {
        post_schema(
            registry.settings(),
            spec.subject.clone(),
            SuppliedSchema::new(None, schema_type, schema),
        )
        .map(|registered| registered.id)
        .map_err(|e| {
            FormatError::Schema(format!(
                "registering the output schema under `{}`: {}",
                spec.subject,
                registry_message(&e)
            ))
        })
    };
    let existing = || registry.subject_version(&spec.subject, SchemaVersion::Latest);
    Ok(match spec.format {
        ValueFormat::Avro => {
            let output = if spec.auto_register {
                let derived = AvroSchema::try_from(&plain(rows)).map_err(|e| {
                    FormatError::Schema(format!("no Avro schema for the rows: {e}"))
                })?;
                let schema = avro_output_schema(&derived.json_string, rows, spec)?;
                let id = register(SchemaType::Avro, schema.clone())?;
                RegistrySchema {
                    id,
                    schema_type: "AVRO".into(),
                    schema,
                }
            } else {
                existing()?
            };
            Box::new(AvroEncoder::new(output)?)
        }
        ValueFormat::JsonSchema => {
            let (id, schema) = if spec.auto_register {
                let schema = with_json_template(json_schema_of(rows)?, rows, spec);
                (register(SchemaType::Json, schema.to_string())?, schema)
            } else {
                let output = existing()?;
                let schema = serde_json::from_str(&output.schema).map_err(|e| {
                    FormatError::Schema(format!("output schema {} is not JSON: {e}", output.id))
                })?;
                (output.id, schema)
            };
            let properties = schema["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            Box::new(JsonSchemaEncoder {
                id,
                properties,
                schema,
            })
        }
        ValueFormat::Protobuf => {
            if spec.auto_register {
                return Err(FormatError::Config {
                    field: "encode.auto_register".into(),
                    message: "a Protobuf schema cannot be derived from rows; register it under the subject and set auto_register = false".into(),
                });
            }
            let output = existing()?;
            let decoder = ProtoDecoder::new(registry.settings().clone());
            Box::new(ProtobufEncoder::new(&decoder, output)?)
        }
        other => {
            return Err(FormatError::Config {
                field: "encode.format".into(),
                message: format!("{other:?} values are not encoded through the registry"),
            });
        }
    })
}

/// `schema` without metadata, so `arrow-avro` derives the Avro schema from
/// the fields rather than reusing a decoded one.
/// The Avro schema to register for `rows`, from `derived` (the rows'
/// schema as `arrow-avro` derives it): named after the decoded schema
/// (`spec.template`) with its fields wherever a row column still decodes
/// from them unchanged, else named `spec.record_name` or after the
/// subject.
fn avro_output_schema(
    derived: &str,
    rows: &Schema,
    spec: &EncodeSpec,
) -> Result<String, FormatError> {
    let bad = |e: String| FormatError::Schema(format!("the rows' Avro schema: {e}"));
    let mut schema: Json = serde_json::from_str(derived).map_err(|e| bad(e.to_string()))?;
    let template = spec.template.as_ref().and_then(|t| {
        let json: Json = serde_json::from_str(&t.schema.schema).ok()?;
        (t.schema.schema_type == "AVRO" && json["type"] == "record").then_some((json, t))
    });
    let Some((template, decoded)) = template else {
        let name = spec
            .record_name
            .clone()
            .unwrap_or_else(|| record_name_of(&spec.subject));
        let (namespace, name) = match name.rsplit_once('.') {
            Some((namespace, name)) => (Some(namespace.to_owned()), name.to_owned()),
            None => (None, name),
        };
        schema["name"] = Json::String(name);
        if let Some(namespace) = namespace {
            schema["namespace"] = Json::String(namespace);
        }
        return Ok(schema.to_string());
    };
    for key in ["name", "namespace", "doc", "aliases"] {
        match template.get(key) {
            Some(value) => schema[key] = value.clone(),
            None => {
                if let Json::Object(object) = &mut schema {
                    object.remove(key);
                }
            }
        }
    }
    let kept = |name: &str| -> Option<Json> {
        let field = template["fields"]
            .as_array()?
            .iter()
            .find(|f| f["name"] == name)?;
        decoded.describes(rows, name).then(|| field.clone())
    };
    let with_template_fields = {
        let mut schema = schema.clone();
        if let Some(fields) = schema["fields"].as_array_mut() {
            for field in fields {
                if let Some(name) = field["name"].as_str().map(str::to_owned)
                    && let Some(kept) = kept(&name)
                {
                    *field = kept;
                }
            }
        }
        schema.to_string()
    };
    // A kept field may name a type that only a dropped field defined.
    match apache_avro::Schema::parse_str(&with_template_fields) {
        Ok(_) => Ok(with_template_fields),
        Err(error) => {
            tracing::warn!(
                "the decoded schema's fields do not stand on their own ({error}); registering the fields derived from the rows"
            );
            Ok(schema.to_string())
        }
    }
}

/// `derived` (the JSON Schema of `rows`) with what the decoded schema
/// (`spec.template`, a JSON Schema) says of the same columns: each
/// property a row column still decodes from unchanged is kept as it was
/// (`enum`, `format`, `title`, ...), and the root keeps its `title`,
/// `description`, `additionalProperties` and the definitions the kept
/// properties may refer to.
fn with_json_template(mut derived: Json, rows: &Schema, spec: &EncodeSpec) -> Json {
    let Some(decoded) = spec
        .template
        .as_ref()
        .filter(|t| t.schema.schema_type == "JSON")
    else {
        return derived;
    };
    let Ok(template) = serde_json::from_str::<Json>(&decoded.schema.schema) else {
        return derived;
    };
    let mut kept_names = Vec::new();
    if let (Some(properties), Some(kept)) = (
        derived["properties"].as_object_mut(),
        template["properties"].as_object(),
    ) {
        for (name, property) in properties.iter_mut() {
            if let Some(original) = kept.get(name)
                && decoded.describes(rows, name)
            {
                *property = original.clone();
                kept_names.push(name.clone());
            }
        }
    }
    // A kept property is required as the template had it.
    let required_before = |name: &str| {
        template["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n == name))
    };
    if let Some(required) = derived["required"].as_array_mut() {
        required.retain(|name| {
            let name = name.as_str().unwrap_or_default();
            !kept_names.iter().any(|k| k == name) || required_before(name)
        });
    }
    for key in [
        "$schema",
        "title",
        "description",
        "additionalProperties",
        "definitions",
        "$defs",
    ] {
        if let Some(value) = template.get(key) {
            derived[key] = value.clone();
        }
    }
    derived
}

/// An Avro record name from a subject: `orders-value` → `orders_value`.
fn record_name_of(subject: &str) -> String {
    let mut name: String = subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn plain(schema: &Schema) -> Schema {
    Schema::new(schema.fields().clone())
}

/// Confluent Avro, through `arrow-avro`'s single-object encoder with the
/// registry id as fingerprint.
#[derive(Debug)]
struct AvroEncoder {
    id: u32,
    schema: String,
}

impl AvroEncoder {
    fn new(output: RegistrySchema) -> Result<Self, FormatError> {
        if output.schema_type != "AVRO" {
            return Err(FormatError::Schema(format!(
                "the output subject's schema {} is {}, not AVRO",
                output.id, output.schema_type
            )));
        }
        Ok(AvroEncoder {
            id: output.id,
            schema: output.schema,
        })
    }
}

impl ValueEncoder for AvroEncoder {
    fn fields(&self) -> Vec<String> {
        serde_json::from_str::<Json>(&self.schema)
            .ok()
            .and_then(|schema| {
                schema["fields"].as_array().map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| f["name"].as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<BinaryArray, FormatError> {
        let error = |e: arrow_avro::errors::AvroError| FormatError::Encode(e.to_string());
        let mut metadata = std::collections::HashMap::new();
        metadata.insert(SCHEMA_METADATA_KEY.to_owned(), self.schema.clone());
        let schema = plain(&batch.schema()).with_metadata(metadata);
        let columns = enums_as_symbols(batch, &self.schema)?;
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), columns)
            .map_err(|e| FormatError::Encode(e.to_string()))?;
        let mut encoder = WriterBuilder::new(schema)
            .with_fingerprint_strategy(FingerprintStrategy::Id(self.id))
            .build_encoder::<AvroSoeFormat>()
            .map_err(error)?;
        encoder.encode(&batch).map_err(error)?;
        let rows = encoder.flush();
        let mut values = BinaryBuilder::with_capacity(rows.len(), rows.bytes().len());
        for row in rows.iter() {
            values.append_value(row);
        }
        Ok(values.finish())
    }
}

/// `batch`'s columns, with each top-level enum field's dictionary made the
/// enum's symbols in order, as `arrow-avro`'s writer requires (decoded
/// batches may carry several copies of the symbols after concatenation).
fn enums_as_symbols(batch: &RecordBatch, avro_schema: &str) -> Result<Vec<ArrayRef>, FormatError> {
    let schema: Json = serde_json::from_str(avro_schema)
        .map_err(|e| FormatError::Schema(format!("the output Avro schema: {e}")))?;
    let symbols_of = |field: &Json| -> Option<Vec<String>> {
        let types = match &field["type"] {
            Json::Array(types) => types.clone(),
            other => vec![other.clone()],
        };
        types.iter().find_map(|t| {
            (t["type"] == "enum").then(|| {
                t["symbols"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            })
        })
    };
    let fields = schema["fields"].as_array().cloned().unwrap_or_default();
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let symbols = fields
                .iter()
                .find(|f| f["name"] == field.name().as_str())
                .and_then(symbols_of);
            match (symbols, column.data_type()) {
                (Some(symbols), DataType::Dictionary(_, _)) => {
                    let names = arrow::compute::cast(column, &DataType::Utf8)
                        .map_err(|e| FormatError::Encode(e.to_string()))?;
                    let names = names.as_string::<i32>();
                    let keys = (0..names.len())
                        .map(|row| {
                            if names.is_null(row) {
                                return Ok(None);
                            }
                            let name = names.value(row);
                            symbols
                                .iter()
                                .position(|s| s == name)
                                .map(|k| Some(k as i32))
                                .ok_or_else(|| {
                                    FormatError::Encode(format!(
                                        "`{}` value {name:?} is not a symbol of the enum",
                                        field.name()
                                    ))
                                })
                        })
                        .collect::<Result<Int32Array, FormatError>>()?;
                    let values: ArrayRef = Arc::new(StringArray::from(symbols));
                    let dictionary = DictionaryArray::<Int32Type>::try_new(keys, values)
                        .map_err(|e| FormatError::Encode(e.to_string()))?;
                    Ok(Arc::new(dictionary) as ArrayRef)
                }
                _ => Ok(column.clone()),
            }
        })
        .collect()
}

/// Confluent JSON Schema: the row as a JSON object behind the schema id.
#[derive(Debug)]
struct JsonSchemaEncoder {
    id: u32,
    properties: Vec<String>,
    /// The output schema.
    schema: Json,
}

impl ValueEncoder for JsonSchemaEncoder {
    fn fields(&self) -> Vec<String> {
        self.properties.clone()
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<BinaryArray, FormatError> {
        let mut values = BinaryBuilder::new();
        for object in json_rows(batch)? {
            let mut object = Json::Object(object);
            omit_forbidden_nulls(&mut object, &self.schema, &self.schema);
            let mut value = framed(self.id);
            serde_json::to_writer(&mut value, &object)
                .map_err(|e| FormatError::Encode(e.to_string()))?;
            values.append_value(value);
        }
        Ok(values.finish())
    }
}

/// Confluent Protobuf: the row as the subject's first message, with the
/// message index `[0]`.
#[derive(Debug)]
struct ProtobufEncoder {
    id: u32,
    message: MessageDescriptor,
}

impl ProtobufEncoder {
    fn new(decoder: &ProtoDecoder, output: RegistrySchema) -> Result<Self, FormatError> {
        if output.schema_type != "PROTOBUF" {
            return Err(FormatError::Schema(format!(
                "the output subject's schema {} is {}, not PROTOBUF",
                output.id, output.schema_type
            )));
        }
        // The schema compiled with its references: an empty message of it.
        let mut empty = framed(output.id);
        empty.push(0);
        let compiled = decoder
            .decode_with_context(Some(&empty))
            .map_err(|e| FormatError::Schema(registry_message(&e)))?
            .ok_or_else(|| FormatError::Schema("the output schema compiled to nothing".into()))?;
        Ok(ProtobufEncoder {
            id: output.id,
            message: compiled.value.descriptor(),
        })
    }
}

impl ValueEncoder for ProtobufEncoder {
    fn fields(&self) -> Vec<String> {
        self.message.fields().map(|f| f.name().to_owned()).collect()
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<BinaryArray, FormatError> {
        let mut values = BinaryBuilder::new();
        for (row, object) in json_rows(batch)?.into_iter().enumerate() {
            let mut object =
                Json::Object(object.into_iter().filter(|(_, v)| !v.is_null()).collect());
            bytes_as_base64(&mut object, &self.message);
            let message =
                DynamicMessage::deserialize(self.message.clone(), object).map_err(|e| {
                    FormatError::Encode(format!(
                        "row {row} is not a {} message: {e}",
                        self.message.full_name()
                    ))
                })?;
            let mut value = framed(self.id);
            value.push(0);
            value.extend(prost_reflect::prost::Message::encode_to_vec(&message));
            values.append_value(value);
        }
        Ok(values.finish())
    }
}

/// Rewrites the `bytes` fields of a message's JSON from `arrow-json`'s hex
/// to the base64 of Protobuf's JSON mapping.
fn bytes_as_base64(json: &mut Json, message: &MessageDescriptor) {
    use base64::Engine as _;
    fn convert(value: &mut Json, kind: &Kind) {
        match (value, kind) {
            (Json::Array(items), _) => items.iter_mut().for_each(|item| convert(item, kind)),
            (Json::String(text), Kind::Bytes) => {
                let bytes: Option<Vec<u8>> = (0..text.len())
                    .step_by(2)
                    .map(|i| {
                        text.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect();
                if let Some(bytes) = bytes {
                    *text = base64::engine::general_purpose::STANDARD.encode(bytes);
                }
            }
            (value @ Json::Object(_), Kind::Message(message)) => bytes_as_base64(value, message),
            _ => {}
        }
    }
    let Json::Object(object) = json else {
        return;
    };
    for field in message.fields() {
        let Some(value) = object.get_mut(field.name()) else {
            continue;
        };
        match (field.is_map(), field.kind()) {
            (true, Kind::Message(entry)) => {
                let kind = entry.map_entry_value_field().kind();
                if let Json::Object(entries) = value {
                    entries.values_mut().for_each(|v| convert(v, &kind));
                }
            }
            (_, kind) => convert(value, &kind),
        }
    }
}

/// The Confluent prefix: magic byte and schema id.
fn framed(id: u32) -> Vec<u8> {
    let mut value = vec![0];
    value.extend(id.to_be_bytes());
    value
}

/// The rows as JSON objects (`arrow-json`'s writer, nulls kept).
fn json_rows(batch: &RecordBatch) -> Result<Vec<serde_json::Map<String, Json>>, FormatError> {
    let mut buffer = Vec::new();
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(&mut buffer);
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| FormatError::Encode(e.to_string()))?;
    drop(writer);
    if buffer.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buffer).map_err(|e| FormatError::Encode(e.to_string()))
}

/// A JSON Schema for rows of `schema` (all properties required, nullable
/// ones admit null).
fn json_schema_of(schema: &Schema) -> Result<Json, FormatError> {
    fn of(data_type: &DataType, nullable: bool) -> Result<Json, FormatError> {
        let mut node = match data_type {
            DataType::Boolean => serde_json::json!({"type": "boolean"}),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => {
                serde_json::json!({"type": "integer"})
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                serde_json::json!({"type": "number"})
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                serde_json::json!({"type": "string"})
            }
            DataType::Timestamp(
                TimeUnit::Millisecond
                | TimeUnit::Microsecond
                | TimeUnit::Nanosecond
                | TimeUnit::Second,
                _,
            ) => {
                serde_json::json!({"type": "string", "format": "date-time"})
            }
            DataType::Date32 => serde_json::json!({"type": "string", "format": "date"}),
            DataType::List(item) | DataType::LargeList(item) => {
                serde_json::json!({"type": "array", "items": of(item.data_type(), item.is_nullable())?})
            }
            DataType::Struct(fields) => object_of(fields.iter().map(|f| f.as_ref()))?,
            DataType::Map(entries, _) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    unreachable!("map entries are structs")
                };
                serde_json::json!({"type": "object", "additionalProperties": of(kv[1].data_type(), kv[1].is_nullable())?})
            }
            other => {
                return Err(FormatError::Schema(format!(
                    "no JSON Schema type for Arrow {other}"
                )));
            }
        };
        if nullable && let Some(t) = node.get("type").cloned() {
            node["type"] = serde_json::json!([t, "null"]);
        }
        Ok(node)
    }
    fn object_of<'a>(
        fields: impl Iterator<Item = &'a arrow::datatypes::Field>,
    ) -> Result<Json, FormatError> {
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for field in fields {
            properties.insert(
                field.name().clone(),
                of(field.data_type(), field.is_nullable())?,
            );
            required.push(Json::String(field.name().clone()));
        }
        Ok(serde_json::json!({"type": "object", "properties": properties, "required": required}))
    }
    let mut root = object_of(schema.fields().iter().map(|f| f.as_ref()))?;
    root["$schema"] = Json::String("http://json-schema.org/draft-07/schema#".into());
    Ok(root)
}
