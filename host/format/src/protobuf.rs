//! Confluent Protobuf into Arrow. `schema_registry_converter` resolves the
//! schema id, its references and the message indexes and decodes the
//! message; a record written with another version of the schema is decoded
//! again with the reader schema's descriptor, which is Protobuf's own
//! evolution (unknown fields skipped, missing fields at their defaults).
//!
//! Arrow types: scalars as their Arrow equivalents, enums as utf8 names,
//! messages as structs, repeated fields as lists, maps as maps with utf8
//! keys, `google.protobuf.Timestamp` as a UTC microsecond timestamp and the
//! wrapper types as nullable scalars. Proto3 scalars without `optional` are
//! never null (absent means the default); fields with presence are nullable.

use std::sync::Arc;

use arrow::array::BinaryArray;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use schema_registry_converter::blocking::proto_decoder::ProtoDecoder;
use serde_json::{Map, Value as Json};

use crate::json_rows::{JsonRows, screen, utf8_map};
use crate::registry::{Registry, RegistrySchema, WriterIds, registry_error_code, registry_message};
use crate::{Decoded, FormatError, PoisonKind, ValueDecoder, confluent_frame};

/// Nesting deeper than this is refused (recursive messages).
const MAX_DEPTH: usize = 32;

/// Decodes Confluent Protobuf values into the reader message's columns.
#[derive(Debug)]
pub(crate) struct ProtobufDecoder {
    registry: Registry,
    decoder: ProtoDecoder,
    reader_id: u32,
    reader: MessageDescriptor,
    rows: JsonRows,
    writers: WriterIds,
}

impl ProtobufDecoder {
    pub(crate) fn new(registry: Registry, reader: RegistrySchema) -> Result<Self, FormatError> {
        if reader.schema_type != "PROTOBUF" {
            return Err(FormatError::Schema(format!(
                "the reader schema (id {}) is {}, not PROTOBUF",
                reader.id, reader.schema_type
            )));
        }
        let decoder = ProtoDecoder::new(registry.settings().clone());
        // The reader schema compiled with its references: decode an empty
        // message (index [0]) written with it.
        let mut empty = vec![0];
        empty.extend(reader.id.to_be_bytes());
        empty.push(0);
        let compiled = decoder
            .decode_with_context(Some(&empty))
            .map_err(|e| {
                FormatError::Schema(format!(
                    "reader schema {}: {}",
                    reader.id,
                    registry_message(&e)
                ))
            })?
            .ok_or_else(|| FormatError::Schema("the reader schema decoded to nothing".into()))?;
        let reader_message = compiled.value.descriptor();
        let fields = message_fields(&reader_message, 0)?;
        let writers = WriterIds::new("PROTOBUF", &registry, reader.id);
        Ok(ProtobufDecoder {
            registry,
            decoder,
            reader_id: reader.id,
            reader: reader_message,
            rows: JsonRows::new(Arc::new(Schema::new(fields))),
            writers,
        })
    }

    /// One record as the reader message, or why it is poison.
    fn decode_one(
        &mut self,
        value: &[u8],
    ) -> Result<Result<DynamicMessage, (PoisonKind, String)>, FormatError> {
        let id = match confluent_frame(value) {
            Ok((id, _)) => id,
            Err(poison) => return Ok(Err((poison.kind, poison.message))),
        };
        if let Some(reason) = self.writers.check(&self.registry, id)? {
            return Ok(Err(reason));
        }
        let decoded = match self.decoder.decode_with_context(Some(value)) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => {
                return Ok(Err((PoisonKind::CorruptPayload, "no message".into())));
            }
            Err(e) if e.retriable && registry_error_code(&e).is_none() => {
                return Err(FormatError::Registry {
                    url: "(protobuf decoder)".into(),
                    message: registry_message(&e),
                });
            }
            Err(e) => {
                return Ok(Err((
                    PoisonKind::CorruptPayload,
                    format!("schema id {id}: {}", registry_message(&e)),
                )));
            }
        };
        if id == self.reader_id {
            return Ok(Ok(decoded.value));
        }
        if decoded.full_name != self.reader.full_name() {
            return Ok(Err((
                PoisonKind::IncompatibleSchema,
                format!(
                    "schema id {id}: message {} is not the reader's {}",
                    decoded.full_name,
                    self.reader.full_name()
                ),
            )));
        }
        Ok(
            DynamicMessage::decode(self.reader.clone(), decoded.data_bytes.as_slice())
                .map_err(|e| (PoisonKind::CorruptPayload, format!("schema id {id}: {e}"))),
        )
    }
}

impl ValueDecoder for ProtobufDecoder {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        let (good, poison) = screen(values, |value| {
            Ok(self.decode_one(value)?.and_then(|message| {
                message_json(&message).map_err(|reason| (PoisonKind::InvalidValue, reason))
            }))
        })?;
        self.rows.decoded(good, poison)
    }
}

/// The Arrow fields of a message.
fn message_fields(message: &MessageDescriptor, depth: usize) -> Result<Fields, FormatError> {
    if depth > MAX_DEPTH {
        return Err(FormatError::Schema(format!(
            "message {} nests deeper than {MAX_DEPTH} levels (recursive?)",
            message.full_name()
        )));
    }
    message
        .fields()
        .map(|field| {
            let data_type = field_type(&field, depth)?;
            let nullable = field.supports_presence() || wrapper_type(&field.kind()).is_some();
            Ok(Field::new(
                field.name(),
                data_type,
                nullable && !field.is_list() && !field.is_map(),
            ))
        })
        .collect()
}

fn field_type(field: &FieldDescriptor, depth: usize) -> Result<DataType, FormatError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("map fields are messages")
        };
        let value = entry.map_entry_value_field();
        return Ok(utf8_map(kind_type(&value.kind(), depth + 1)?));
    }
    let element = kind_type(&field.kind(), depth + 1)?;
    Ok(if field.is_list() {
        DataType::List(Arc::new(Field::new_list_field(element, true)))
    } else {
        element
    })
}

fn kind_type(kind: &Kind, depth: usize) -> Result<DataType, FormatError> {
    Ok(match kind {
        Kind::Double => DataType::Float64,
        Kind::Float => DataType::Float32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => DataType::Int64,
        Kind::Uint32 | Kind::Fixed32 => DataType::UInt32,
        Kind::Uint64 | Kind::Fixed64 => DataType::UInt64,
        Kind::Bool => DataType::Boolean,
        Kind::String | Kind::Enum(_) => DataType::Utf8,
        Kind::Bytes => DataType::Binary,
        Kind::Message(message) if message.full_name() == "google.protobuf.Timestamp" => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        }
        Kind::Message(message) => match wrapper_type(kind) {
            Some(inner) => kind_type(&inner, depth)?,
            None => DataType::Struct(message_fields(message, depth)?),
        },
    })
}

/// The wrapped kind of a `google.protobuf.*Value` wrapper message.
fn wrapper_type(kind: &Kind) -> Option<Kind> {
    let Kind::Message(message) = kind else {
        return None;
    };
    let name = message.full_name().strip_prefix("google.protobuf.")?;
    name.ends_with("Value")
        .then(|| message.get_field_by_name("value").map(|f| f.kind()))
        .flatten()
}

/// A message as the JSON `arrow-json` reads into [`message_fields`]' types;
/// why not, for a value no column can hold (a Timestamp out of range).
fn message_json(message: &DynamicMessage) -> Result<Json, String> {
    let mut object = Map::new();
    for field in message.descriptor().fields() {
        let value = if field.supports_presence() && !message.has_field(&field) {
            Json::Null
        } else {
            value_json(&message.get_field(&field), &field.kind())
                .map_err(|e| format!("field {}: {e}", field.name()))?
        };
        object.insert(field.name().to_owned(), value);
    }
    Ok(Json::Object(object))
}

fn value_json(value: &Value, kind: &Kind) -> Result<Json, String> {
    Ok(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => {
            serde_json::Number::from_f64(f64::from(*n)).map_or(Json::Null, Json::Number)
        }
        Value::F64(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(hex(b)),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => e.get_value(*n).map_or_else(
                || Json::String(n.to_string()),
                |v| Json::String(v.name().to_owned()),
            ),
            _ => Json::from(*n),
        },
        Value::Message(m) => message_value_json(m)?,
        Value::List(items) => Json::Array(
            items
                .iter()
                .map(|v| value_json(v, kind))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| Ok((map_key(k), value_json(v, &value_kind)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
    })
}

/// The range of a `google.protobuf.Timestamp`'s seconds: 0001-01-01 to
/// 9999-12-31, as the type's definition says.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

fn message_value_json(message: &DynamicMessage) -> Result<Json, String> {
    let descriptor = message.descriptor();
    if descriptor.full_name() == "google.protobuf.Timestamp" {
        let field = |name: &str| match message.get_field_by_name(name).as_deref() {
            Some(Value::I64(n)) => *n,
            Some(Value::I32(n)) => i64::from(*n),
            _ => 0,
        };
        let (seconds, nanos) = (field("seconds"), field("nanos"));
        if !TIMESTAMP_SECONDS.contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
            return Err(format!(
                "Timestamp {{seconds: {seconds}, nanos: {nanos}}} is outside 0001-01-01..9999-12-31 or its nanos outside 0..1e9"
            ));
        }
        return Ok(Json::from(seconds * 1_000_000 + nanos / 1_000));
    }
    if let Some(inner) = wrapper_type(&Kind::Message(descriptor.clone())) {
        return message
            .get_field_by_name("value")
            .map_or(Ok(Json::Null), |v| value_json(&v, &inner));
    }
    message_json(message)
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// Bytes as the hex `arrow-json` reads into a binary column.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
