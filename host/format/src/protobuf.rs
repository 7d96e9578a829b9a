//! Confluent Protobuf into Arrow. `schema_registry_converter` compiles each
//! schema id's schema with its references once; the records themselves are
//! read from their wire bytes straight into the reader message's columns
//! ([`crate::protobuf_columns`]). A record written with another version of
//! the schema is read with the reader's descriptor, which is Protobuf's own
//! evolution (unknown fields skipped, missing fields at their defaults).
//!
//! Arrow types: scalars as their Arrow equivalents, enums as utf8 names,
//! messages as structs, repeated fields as lists, maps as maps with utf8
//! keys, `google.protobuf.Timestamp` as a UTC microsecond timestamp and the
//! wrapper types as nullable scalars. Proto3 scalars without `optional` are
//! never null (absent means the default); fields with presence are nullable.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, BinaryArray};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, ReflectMessage};
use schema_registry_converter::blocking::proto_decoder::ProtoDecoder;

use crate::json_rows::utf8_map;
use crate::protobuf_columns::{Struct, Unreadable};
use crate::registry::{Registry, RegistrySchema, WriterIds, registry_error_code, registry_message};
use crate::{Decoded, FormatError, Poison, PoisonKind, ValueDecoder, confluent_frame};

/// Nesting deeper than this is refused (recursive messages).
const MAX_DEPTH: usize = 32;

/// Whether a record's message indexes name the reader's message (else the
/// name they give).
type Verdict = Result<(), String>;

/// Why a record is poison.
type Reason = (PoisonKind, String);

/// Decodes Confluent Protobuf values into the reader message's columns.
#[derive(Debug)]
pub(crate) struct ProtobufDecoder {
    registry: Registry,
    /// Compiles writer schemas (with their references), once per id.
    decoder: ProtoDecoder,
    reader_name: String,
    schema: SchemaRef,
    columns: Struct,
    writers: WriterIds,
    /// Per writer id, the message indexes met so far and whether each
    /// names the reader's message (else the name it gives).
    messages: HashMap<u32, Vec<(Vec<i32>, Verdict)>>,
    /// The message indexes of the record being read.
    index: Vec<i32>,
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
        let columns = Struct::new(&reader_message, &fields)?;
        let writers = WriterIds::new("PROTOBUF", &registry, reader.id);
        Ok(ProtobufDecoder {
            registry,
            decoder,
            reader_name: reader_message.full_name().to_owned(),
            schema: Arc::new(Schema::new(fields)),
            columns,
            writers,
            // Index [0] of the reader schema is the reader message.
            messages: HashMap::from([(reader.id, vec![(vec![0], Ok(()))])]),
            index: Vec::new(),
        })
    }

    /// Where the reader message starts in `value`, or why the record is
    /// poison.
    fn locate(&mut self, value: &[u8]) -> Result<Result<usize, Reason>, FormatError> {
        let (id, payload) = match confluent_frame(value) {
            Ok(frame) => frame,
            Err(poison) => return Ok(Err((poison.kind, poison.message))),
        };
        if let Some(reason) = self.writers.check(&self.registry, id)? {
            return Ok(Err(reason));
        }
        let Some(index_len) = message_indexes(payload, &mut self.index) else {
            return Ok(Err((
                PoisonKind::CorruptPayload,
                format!("schema id {id}: the message indexes are cut short or corrupt"),
            )));
        };
        let start = value.len() - payload.len() + index_len;
        let known = self
            .messages
            .get(&id)
            .and_then(|known| known.iter().find(|(index, _)| *index == self.index));
        let verdict = match known {
            Some((_, verdict)) => verdict.clone(),
            None => match self.learn(id, value)? {
                Ok(verdict) => verdict,
                Err(poison) => return Ok(Err(poison)),
            },
        };
        Ok(match verdict {
            Ok(()) => Ok(start),
            Err(name) => Err((
                PoisonKind::IncompatibleSchema,
                format!(
                    "schema id {id}: message {name} is not the reader's {}",
                    self.reader_name
                ),
            )),
        })
    }

    /// Which message the indexes of `value` name in its writer schema,
    /// through the converter (which fetches and compiles the schema once);
    /// remembered once a record of them decodes.
    fn learn(&mut self, id: u32, value: &[u8]) -> Result<Result<Verdict, Reason>, FormatError> {
        let decoded = match self.decoder.decode_with_context(Some(value)) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => return Ok(Err((PoisonKind::CorruptPayload, "no message".into()))),
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
        let verdict = if decoded.full_name == self.reader_name {
            Ok(())
        } else {
            Err(decoded.full_name)
        };
        self.messages
            .entry(id)
            .or_default()
            .push((self.index.clone(), verdict.clone()));
        Ok(Ok(verdict))
    }

    fn decode_rows(
        &mut self,
        values: &BinaryArray,
        rows: &mut Vec<u32>,
        poison: &mut Vec<Poison>,
    ) -> Result<(), FormatError> {
        for row in 0..values.len() {
            let value = values.value(row);
            let (kind, message) = match self.locate(value)? {
                Ok(start) => match self.columns.append(value, start..value.len()) {
                    Ok(()) => {
                        rows.push(row as u32);
                        continue;
                    }
                    Err(Unreadable::Corrupt(m)) => (PoisonKind::CorruptPayload, m),
                    Err(Unreadable::Invalid(m)) => (PoisonKind::InvalidValue, m),
                },
                Err(reason) => reason,
            };
            poison.push(Poison {
                row: row as u32,
                kind,
                message,
            });
        }
        Ok(())
    }
}

impl ValueDecoder for ProtobufDecoder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        let mut rows = Vec::with_capacity(values.len());
        let mut poison = Vec::new();
        if let Err(error) = self.decode_rows(values, &mut rows, &mut poison) {
            // The batch will be retried whole.
            self.columns.clear();
            return Err(error);
        }
        let (columns, len) = self.columns.finish_columns()?;
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(len)),
        )
        .map_err(|e| FormatError::Schema(e.to_string()))?;
        Ok(Decoded {
            batch,
            rows,
            poison,
        })
    }
}

/// Read the Confluent message indexes at the start of `payload` into
/// `index`; how many bytes they take, or `None` if they are corrupt.
fn message_indexes(payload: &[u8], index: &mut Vec<i32>) -> Option<usize> {
    index.clear();
    if payload.first() == Some(&0) {
        index.push(0);
        return Some(1);
    }
    let mut pos = 0;
    let mut zigzag = || -> Option<i64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *payload.get(pos)?;
            pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    };
    let count = zigzag()?;
    if count <= 0 || count > payload.len() as i64 {
        return None;
    }
    for _ in 0..count {
        index.push(i32::try_from(zigzag()?).ok()?);
    }
    Some(pos)
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
