//! Record formats: Kafka values decoded into Arrow columns, and Arrow rows
//! encoded into Kafka values.
//!
//! - Confluent wire format (magic byte 0, a 4-byte schema id, the payload)
//!   for Avro, Protobuf (with message indexes) and JSON Schema, with the
//!   schemas from a Schema Registry. Records written with any version of a
//!   subject decode into the one reader schema the job names.
//! - Plain JSON and CSV with a declared schema, and raw strings or bytes.
//!
//! A value that cannot be decoded is a [`Poison`] record: the decoder
//! reports it with its row and kind and goes on with the rest. An
//! unreachable registry is not poison: it is a [`FormatError`].

mod avro;
mod encode;
mod flat_json;
mod json_rows;
mod json_schema;
mod plain;
mod protobuf;
mod protobuf_columns;
mod reassembly;
mod registry;

use std::collections::BTreeMap;

use arrow::array::{Array, BinaryArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

pub use encode::{EncodeSpec, SchemaTemplate, ValueEncoder, open_encoder};
pub use flat_json::{FlatJson, is_blank};
pub use registry::{Registry, RegistrySchema, SchemaVersion};

/// Why a format could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The job's format settings cannot be used.
    #[error("`{field}`: {message}")]
    Config {
        /// The setting.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The registry could not be reached or gave an unusable answer. Not
    /// the record's fault: the job retries, then stops.
    #[error("schema registry {url}: {message}")]
    Registry {
        /// The registry.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A schema cannot be used.
    #[error("schema: {0}")]
    Schema(String),
    /// Rows could not be encoded.
    #[error("encoding: {0}")]
    Encode(String),
}

impl FormatError {
    /// Whether trying again later may succeed (the registry was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, FormatError::Registry { .. })
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PoisonKind {
    /// The record has no value (a tombstone) and the format needs one.
    NullValue,
    /// The value is over the job's size limit.
    TooLarge,
    /// The value does not start with the Confluent magic byte and a schema id.
    BadMagicByte,
    /// The registry has no schema with the record's id.
    UnknownSchemaId,
    /// The record's schema is of another type, or cannot be read as the
    /// job's reader schema.
    IncompatibleSchema,
    /// The payload is truncated or corrupt.
    CorruptPayload,
    /// The value is not valid UTF-8.
    InvalidUtf8,
    /// The value is not valid JSON or CSV, or does not fit its schema.
    InvalidValue,
    /// A plugin rejected the row as invalid input.
    InvalidInput,
}

impl PoisonKind {
    /// The kind as the dead-letter header names it.
    pub fn name(self) -> &'static str {
        match self {
            PoisonKind::NullValue => "null-value",
            PoisonKind::TooLarge => "too-large",
            PoisonKind::BadMagicByte => "bad-magic-byte",
            PoisonKind::UnknownSchemaId => "unknown-schema-id",
            PoisonKind::IncompatibleSchema => "incompatible-schema",
            PoisonKind::CorruptPayload => "corrupt-payload",
            PoisonKind::InvalidUtf8 => "invalid-utf8",
            PoisonKind::InvalidValue => "invalid-value",
            PoisonKind::InvalidInput => "invalid-input",
        }
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    /// Its row in the input.
    pub row: u32,
    /// Why.
    pub kind: PoisonKind,
    /// The details.
    pub message: String,
}

/// What decoding a column of values gave.
#[derive(Debug)]
pub struct Decoded {
    /// The decoded records, in input order.
    pub batch: RecordBatch,
    /// The input row of each decoded record.
    pub rows: Vec<u32>,
    /// The records that could not be decoded, in input order.
    pub poison: Vec<Poison>,
}

/// Decodes Kafka values into Arrow columns.
pub trait ValueDecoder: Send + std::fmt::Debug {
    /// The schema of the decoded columns (the reader schema's fields).
    fn schema(&self) -> SchemaRef;

    /// Decode `values`; poison records are reported, not fatal.
    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError>;

    /// The registry schema values are read into, for an encoder to keep
    /// its names, defaults and docs; `None` for a declared schema.
    fn reader_schema(&self) -> Option<&RegistrySchema> {
        None
    }
}

/// Value formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// Confluent wire format, Avro.
    Avro,
    /// Confluent wire format, Protobuf.
    Protobuf,
    /// Confluent wire format, JSON Schema.
    JsonSchema,
    /// A JSON object per value, with a declared schema.
    Json,
    /// A CSV line per value, with a declared schema.
    Csv,
    /// The value as a UTF-8 string column `value`.
    String,
    /// The value as a binary column `value`.
    Bytes,
}

/// What a decoder needs.
#[derive(Debug, Clone)]
pub struct DecodeSpec {
    /// The format.
    pub format: ValueFormat,
    /// Registry client options (`url`, ...), for the registry formats.
    pub registry: BTreeMap<String, String>,
    /// The subject of the reader schema (registry formats).
    pub subject: Option<String>,
    /// Its version.
    pub version: SchemaVersion,
    /// The declared schema (JSON, CSV).
    pub schema: Option<SchemaRef>,
    /// Values larger than this are poison.
    pub max_value_bytes: usize,
    /// JSON Schema: validate each value against its writer schema.
    pub validate: bool,
}

/// A decoder for `spec`; registry formats fetch the reader schema now, so
/// a wrong subject fails before the first record.
pub fn open_decoder(spec: &DecodeSpec) -> Result<Box<dyn ValueDecoder>, FormatError> {
    let declared = || {
        spec.schema.clone().ok_or_else(|| FormatError::Config {
            field: "decode.schema".into(),
            message: "json and csv values need a declared schema".into(),
        })
    };
    let inner: Box<dyn ValueDecoder> = match spec.format {
        ValueFormat::Avro | ValueFormat::Protobuf | ValueFormat::JsonSchema => {
            let registry = Registry::connect(&spec.registry)?;
            let subject = spec.subject.as_deref().ok_or_else(|| FormatError::Config {
                field: "decode.subject".into(),
                message: "registry formats need the reader schema's subject".into(),
            })?;
            let reader = registry.subject_version(subject, spec.version)?;
            match spec.format {
                ValueFormat::Avro => Box::new(avro::AvroDecoder::new(registry, reader)?),
                ValueFormat::Protobuf => {
                    Box::new(protobuf::ProtobufDecoder::new(registry, reader)?)
                }
                _ => Box::new(json_schema::JsonSchemaDecoder::new(
                    registry,
                    reader,
                    spec.validate,
                )?),
            }
        }
        ValueFormat::Json => Box::new(plain::JsonDecoder::new(declared()?)),
        ValueFormat::Csv => Box::new(plain::CsvDecoder::new(declared()?)),
        ValueFormat::String => Box::new(plain::RawDecoder::string()),
        ValueFormat::Bytes => Box::new(plain::RawDecoder::bytes()),
    };
    Ok(Box::new(SizeLimited {
        inner,
        max_value_bytes: spec.max_value_bytes,
    }))
}

/// Reports null and oversized values as poison before the format sees them.
#[derive(Debug)]
struct SizeLimited {
    inner: Box<dyn ValueDecoder>,
    max_value_bytes: usize,
}

impl ValueDecoder for SizeLimited {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn reader_schema(&self) -> Option<&RegistrySchema> {
        self.inner.reader_schema()
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        let mut screened = Vec::new();
        for row in 0..values.len() {
            if values.is_null(row) {
                screened.push(Poison {
                    row: row as u32,
                    kind: PoisonKind::NullValue,
                    message: "the record has no value".into(),
                });
            } else if values.value(row).len() > self.max_value_bytes {
                screened.push(Poison {
                    row: row as u32,
                    kind: PoisonKind::TooLarge,
                    message: format!(
                        "the value is {} bytes, over the limit of {}",
                        values.value(row).len(),
                        self.max_value_bytes
                    ),
                });
            }
        }
        if screened.is_empty() {
            return self.inner.decode(values);
        }
        let mut keep = vec![true; values.len()];
        for poison in &screened {
            keep[poison.row as usize] = false;
        }
        let kept_rows: Vec<u32> = (0..values.len() as u32)
            .filter(|&r| keep[r as usize])
            .collect();
        let kept = arrow::compute::filter(values, &keep.into())
            .map_err(|e| FormatError::Schema(e.to_string()))?;
        let kept = kept
            .as_any()
            .downcast_ref::<BinaryArray>()
            .expect("filter keeps the type")
            .clone();
        let mut decoded = self.inner.decode(&kept)?;
        for row in &mut decoded.rows {
            *row = kept_rows[*row as usize];
        }
        for poison in &mut decoded.poison {
            poison.row = kept_rows[poison.row as usize];
        }
        decoded.poison.extend(screened);
        decoded.poison.sort_by_key(|p| p.row);
        Ok(decoded)
    }
}

/// Splits a Confluent-framed value into its schema id and payload.
pub(crate) fn confluent_frame(value: &[u8]) -> Result<(u32, &[u8]), Poison> {
    match value {
        [0, a, b, c, d, payload @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), payload)),
        _ => Err(Poison {
            row: 0,
            kind: PoisonKind::BadMagicByte,
            message: match value.first() {
                Some(0) => format!(
                    "{} bytes are too short for the magic byte and a schema id",
                    value.len()
                ),
                Some(byte) => format!("magic byte {byte:#04x}, expected 0x00"),
                None => "the value is empty".into(),
            },
        }),
    }
}
