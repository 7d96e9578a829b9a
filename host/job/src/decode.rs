//! The decode stage: the source's Kafka `value` column decoded into the
//! reader schema's columns, beside the Kafka columns the job keeps; records
//! that cannot be decoded handled by the job's `on_error` policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, AsArray, BinaryArray, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_config::{DeclaredColumn, DecodeConfig, DecodeFormat, OnError, SourceSpec};
use sluice_format::{
    DecodeSpec, FormatError, Poison, SchemaTemplate, SchemaVersion, ValueDecoder, ValueFormat,
    open_decoder,
};

use crate::JobError;

/// Attempts of a decode that keeps finding the registry unreachable.
const REGISTRY_ATTEMPTS: u32 = 5;

/// The Kafka columns a decoded row can keep.
const KAFKA_COLUMNS: &[&str] = &[
    "key",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "timestampType",
    "headers",
];

/// Decodes each batch's `value` column.
#[derive(Debug)]
pub(crate) struct DecodeStage {
    decoder: Box<dyn ValueDecoder>,
    keep: Vec<String>,
    schema: SchemaRef,
    on_error: OnError,
}

/// A decoded batch, and the source rows that could not be decoded.
#[derive(Debug)]
pub(crate) struct DecodedBatch {
    pub(crate) rows: RecordBatch,
    pub(crate) poison: Vec<Poison>,
}

impl DecodeStage {
    /// The registry schema the values are read into, and its columns:
    /// what an encoder keeps names and fields from.
    pub(crate) fn template(&self) -> Option<SchemaTemplate> {
        Some(SchemaTemplate {
            schema: self.decoder.reader_schema()?.clone(),
            columns: self.decoder.schema(),
        })
    }

    /// Set up decoding for a job; registry formats fetch the reader schema.
    pub(crate) fn build(
        config: &DecodeConfig,
        source: &SourceSpec,
        source_schema: &Schema,
    ) -> Result<Self, JobError> {
        let config_error = |field: &str, message: String| {
            JobError::Decode(FormatError::Config {
                field: format!("decode.{field}"),
                message,
            })
        };
        let format = match config.format {
            DecodeFormat::Avro => ValueFormat::Avro,
            DecodeFormat::Protobuf => ValueFormat::Protobuf,
            DecodeFormat::JsonSchema => ValueFormat::JsonSchema,
            DecodeFormat::Json => ValueFormat::Json,
            DecodeFormat::Csv => ValueFormat::Csv,
            DecodeFormat::String => ValueFormat::String,
            DecodeFormat::Bytes => ValueFormat::Bytes,
        };
        let version =
            SchemaVersion::parse(&config.version).map_err(|m| config_error("version", m))?;
        let subject = config.subject.clone().or_else(|| match source {
            SourceSpec::Kafka(kafka) => kafka
                .options
                .get("subscribe")
                .filter(|topics| !topics.contains(','))
                .map(|topic| format!("{}-value", topic.trim())),
            _ => None,
        });
        let spec = DecodeSpec {
            format,
            registry: config.registry.clone(),
            subject,
            version,
            schema: config.schema.as_deref().map(declared_schema),
            max_value_bytes: usize::try_from(config.max_value_bytes).unwrap_or(usize::MAX),
            validate: config.validate,
        };
        let decoder = open_decoder(&spec).map_err(JobError::Decode)?;
        if source_schema.column_with_name("value").is_none() {
            return Err(config_error(
                "format",
                "the source has no `value` column to decode".into(),
            ));
        }
        let decoded = decoder.schema();
        let taken = |name: &str| decoded.column_with_name(name).is_some();
        let keep = match &config.keep {
            Some(keep) => {
                for name in keep {
                    if source_schema.column_with_name(name).is_none() || name == "value" {
                        return Err(config_error(
                            "keep",
                            format!("`{name}` is not a source column besides `value`"),
                        ));
                    }
                    if taken(name) {
                        return Err(config_error(
                            "keep",
                            format!("`{name}` is also a decoded column; leave it out of keep"),
                        ));
                    }
                }
                keep.clone()
            }
            None => KAFKA_COLUMNS
                .iter()
                .filter(|name| source_schema.column_with_name(name).is_some() && !taken(name))
                .map(|name| (*name).to_owned())
                .collect(),
        };
        let mut fields: Vec<Field> = keep
            .iter()
            .map(|name| {
                let (_, field) = source_schema.column_with_name(name).expect("checked");
                field.clone()
            })
            .collect();
        fields.extend(decoded.fields().iter().map(|f| f.as_ref().clone()));
        Ok(DecodeStage {
            decoder,
            keep,
            schema: Arc::new(Schema::new(fields)),
            on_error: config.on_error,
        })
    }

    /// Decode one batch of source rows. An unreachable registry is retried
    /// with backoff, then stops the job; poison records follow the policy.
    pub(crate) fn decode(&mut self, batch: &RecordBatch) -> Result<DecodedBatch, JobError> {
        let values = batch.column_by_name("value").expect("checked at build");
        let values = cast(values, &DataType::Binary).map_err(|e| JobError::Batch(e.to_string()))?;
        let values: &BinaryArray = values.as_binary();
        let mut attempt = 0;
        let decoded = loop {
            match self.decoder.decode(values) {
                Ok(decoded) => break decoded,
                Err(error) if error.is_transient() && attempt + 1 < REGISTRY_ATTEMPTS => {
                    attempt += 1;
                    let backoff = Duration::from_millis(200 << attempt);
                    tracing::warn!(attempt, ?backoff, "retrying the decode: {error}");
                    std::thread::sleep(backoff);
                }
                Err(error) => return Err(JobError::Decode(error)),
            }
        };
        if self.on_error == OnError::Fail
            && let Some(first) = decoded.poison.first()
        {
            return Err(JobError::Poison(describe(batch, first)));
        }
        let indices = UInt32Array::from(decoded.rows.clone());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for name in &self.keep {
            let column = batch.column_by_name(name).expect("checked at build");
            columns.push(take(column, &indices, None).map_err(|e| JobError::Batch(e.to_string()))?);
        }
        columns.extend(decoded.batch.columns().iter().cloned());
        let rows = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| JobError::Batch(e.to_string()))?;
        Ok(DecodedBatch {
            rows,
            poison: decoded.poison,
        })
    }
}

/// Columns of a declared schema as Arrow fields.
fn declared_schema(columns: &[DeclaredColumn]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| {
                Field::new(
                    &c.name,
                    sluice_source::arrow_type(c.column_type),
                    c.nullable,
                )
            })
            .collect::<Vec<_>>(),
    ))
}

/// A poison record, named by where it came from.
fn describe(batch: &RecordBatch, poison: &Poison) -> String {
    let origin = origin(batch, poison.row as usize);
    format!(
        "{origin}: {} ({}); set decode.on_error = \"dlq\" or \"skip-and-count\" to go on",
        poison.message,
        poison.kind.name()
    )
}

/// `topic/partition@offset` of a source row, when the source has them.
fn origin(batch: &RecordBatch, row: usize) -> String {
    let text = |name: &str| {
        batch.column_by_name(name).and_then(|c| {
            arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                .ok()
                .map(|f| f.value(row).to_string())
        })
    };
    match (text("topic"), text("partition"), text("offset")) {
        (Some(t), Some(p), Some(o)) => format!("record {t}/{p}@{o}"),
        _ => format!("row {row}"),
    }
}

/// Counts of poison records by kind, for the run's statistics.
pub(crate) fn count_poison(counts: &mut BTreeMap<String, u64>, poison: &[Poison]) {
    for p in poison {
        *counts.entry(p.kind.name().to_owned()).or_default() += 1;
    }
}
