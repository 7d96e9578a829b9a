//! The decode stage: the source's Kafka `value` column decoded into the
//! reader schema's columns, beside the Kafka columns the job keeps; records
//! that cannot be decoded handled by the job's `on_error` policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, ListBuilder, StringBuilder,
    StructBuilder, UInt32Array,
};
use arrow::compute::{cast, take, take_record_batch};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_config::{DeclaredColumn, DecodeConfig, DecodeFormat, OnError, SourceSpec};
use sluice_format::{
    DecodeSpec, FormatError, Poison, PoisonKind, SchemaVersion, ValueDecoder, ValueFormat,
    open_decoder,
};

use crate::PipelineError;

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
    dead_letter: String,
    job: String,
}

/// A decoded batch, and the dead-letter rows of its poison records.
#[derive(Debug)]
pub(crate) struct DecodedBatch {
    pub(crate) rows: RecordBatch,
    pub(crate) dead_letter: Option<RecordBatch>,
    pub(crate) poison: Vec<Poison>,
}

impl DecodeStage {
    /// Set up decoding for a job; registry formats fetch the reader schema.
    pub(crate) fn build(
        config: &DecodeConfig,
        source: &SourceSpec,
        source_schema: &Schema,
        job: &str,
    ) -> Result<Self, PipelineError> {
        let config_error = |field: &str, message: String| {
            PipelineError::Decode(FormatError::Config {
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
        };
        let decoder = open_decoder(&spec).map_err(PipelineError::Decode)?;
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
            dead_letter: config.dead_letter.clone(),
            job: job.to_owned(),
        })
    }

    /// The output that receives poison records, under `on_error = "dlq"`.
    pub(crate) fn dead_letter_output(&self) -> Option<&str> {
        (self.on_error == OnError::Dlq).then_some(self.dead_letter.as_str())
    }

    /// Whether a poison record stops the job (`on_error = "fail"`).
    pub(crate) fn fails_on_poison(&self) -> bool {
        self.on_error == OnError::Fail
    }

    /// Decode one batch of source rows. An unreachable registry is retried
    /// with backoff, then stops the job; poison records follow the policy.
    pub(crate) fn decode(&mut self, batch: &RecordBatch) -> Result<DecodedBatch, PipelineError> {
        let values = batch.column_by_name("value").expect("checked at build");
        let values =
            cast(values, &DataType::Binary).map_err(|e| PipelineError::Batch(e.to_string()))?;
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
                Err(error) => return Err(PipelineError::Decode(error)),
            }
        };
        if self.on_error == OnError::Fail
            && let Some(first) = decoded.poison.first()
        {
            return Err(PipelineError::Poison(describe(batch, first)));
        }
        let indices = UInt32Array::from(decoded.rows.clone());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for name in &self.keep {
            let column = batch.column_by_name(name).expect("checked at build");
            columns.push(
                take(column, &indices, None).map_err(|e| PipelineError::Batch(e.to_string()))?,
            );
        }
        columns.extend(decoded.batch.columns().iter().cloned());
        let rows = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| PipelineError::Batch(e.to_string()))?;
        let dead_letter = match self.on_error {
            OnError::Dlq if !decoded.poison.is_empty() => {
                Some(dead_letter_rows(batch, &decoded.poison, &self.job)?)
            }
            _ => None,
        };
        Ok(DecodedBatch {
            rows,
            dead_letter,
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

/// The dead-letter rows of `poison`: each record's original `key`, `value`
/// and `headers`, plus headers naming the error kind and message, the
/// source topic, partition and offset, and the job.
pub(crate) fn dead_letter_rows(
    batch: &RecordBatch,
    poison: &[Poison],
    job: &str,
) -> Result<RecordBatch, PipelineError> {
    let error = |e: arrow::error::ArrowError| PipelineError::Batch(e.to_string());
    let indices = UInt32Array::from(poison.iter().map(|p| p.row).collect::<Vec<_>>());
    let picked = take_record_batch(batch, &indices).map_err(error)?;
    let binary = |name: &str| -> Result<Option<ArrayRef>, PipelineError> {
        picked
            .column_by_name(name)
            .map(|c| cast(c, &DataType::Binary).map_err(error))
            .transpose()
    };
    let key = binary("key")?;
    let value = binary("value")?.expect("the decode stage checked `value`");
    let text = |name: &str| {
        picked.column_by_name(name).map(|c| {
            let formatter =
                arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                    .expect("Kafka columns display");
            (0..picked.num_rows())
                .map(|row| formatter.value(row).to_string())
                .collect::<Vec<_>>()
        })
    };
    let (topics, partitions, offsets) = (text("topic"), text("partition"), text("offset"));
    let header_fields = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ]);
    let mut headers =
        ListBuilder::new(StructBuilder::from_fields(header_fields.clone(), 0)).with_field(
            Arc::new(Field::new_list_field(DataType::Struct(header_fields), true)),
        );
    let original = picked
        .column_by_name("headers")
        .map(|c| c.as_list::<i32>().clone());
    for (i, poison) in poison.iter().enumerate() {
        let entries = headers.values();
        if let Some(original) = &original
            && original.is_valid(i)
        {
            let list = original.value(i);
            let list = list.as_struct();
            let keys = list.column(0).as_string::<i32>();
            let values = list.column(1).as_binary::<i32>();
            for h in 0..list.len() {
                push_header(
                    entries,
                    keys.value(h),
                    values.is_valid(h).then(|| values.value(h)),
                );
            }
        }
        let mut added: BTreeMap<&str, String> = BTreeMap::new();
        added.insert("__sluice.errors.kind", poison.kind.name().to_owned());
        added.insert("__sluice.errors.message", poison.message.clone());
        added.insert("__sluice.errors.job", job.to_owned());
        for (name, values) in [
            ("__sluice.errors.topic", &topics),
            ("__sluice.errors.partition", &partitions),
            ("__sluice.errors.offset", &offsets),
        ] {
            if let Some(values) = values {
                added.insert(name, values[i].clone());
            }
        }
        for (name, value) in &added {
            push_header(entries, name, Some(value.as_bytes()));
        }
        headers.append(true);
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    if let Some(key) = key {
        fields.push(Field::new("key", DataType::Binary, true));
        columns.push(key);
    }
    fields.push(Field::new("value", DataType::Binary, true));
    columns.push(value);
    let headers = headers.finish();
    fields.push(Field::new("headers", headers.data_type().clone(), true));
    columns.push(Arc::new(headers));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(error)
}

fn push_header(entries: &mut StructBuilder, key: &str, value: Option<&[u8]>) {
    entries
        .field_builder::<StringBuilder>(0)
        .expect("header key")
        .append_value(key);
    let values = entries
        .field_builder::<BinaryBuilder>(1)
        .expect("header value");
    match value {
        Some(value) => values.append_value(value),
        None => values.append_null(),
    }
    entries.append(true);
}

/// Counts of poison records by kind, for the run's statistics.
pub(crate) fn count_poison(counts: &mut BTreeMap<String, u64>, poison: &[Poison]) {
    for p in poison {
        *counts.entry(p.kind.name().to_owned()).or_default() += 1;
    }
}

/// A plugin's rejected rows as poison records of the source batch.
pub(crate) fn rejected_as_poison(rows: &[u32], message: &str) -> Vec<Poison> {
    rows.iter()
        .map(|&row| Poison {
            row,
            kind: PoisonKind::InvalidInput,
            message: message.to_owned(),
        })
        .collect()
}
