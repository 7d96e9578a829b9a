//! The encode stage: rows bound for a Kafka sink become Confluent-encoded
//! values, as Confluent's serializers make them. The record's `key` and
//! `headers` stay; the value is the output schema's fields. Kafka's own
//! columns (`topic`, `partition`, `offset`, `timestamp`, `timestampType`)
//! are not part of the value unless the output schema names them, and
//! the sink's options (and the key) pick the topic and partition.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use sluice_config::{EncodeConfig, EncodeFormat};
use sluice_format::{
    EncodeSpec, FormatError, SchemaTemplate, ValueEncoder, ValueFormat, open_encoder,
};

use crate::JobError;

/// Columns that the encoded record keeps beside its value.
const RECORD_COLUMNS: &[&str] = &["key", "headers"];

/// Columns a Kafka source adds, which are no part of a value unless the
/// output schema names them.
const KAFKA_COLUMNS: &[&str] = &[
    "key",
    "headers",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "timestampType",
];

/// Encodes sink rows; the encoder is opened on the first batch, when the
/// rows' schema is known (and registered, with `auto.register.schemas`).
#[derive(Debug)]
pub(crate) struct EncodeStage {
    spec: EncodeSpec,
    encoder: Option<Box<dyn ValueEncoder>>,
}

impl EncodeStage {
    /// The stage for `config`; `template` is the schema the rows were
    /// decoded with, if they were.
    pub(crate) fn new(
        config: &EncodeConfig,
        template: Option<SchemaTemplate>,
    ) -> Result<Self, JobError> {
        let format = match config.format {
            EncodeFormat::Avro => ValueFormat::Avro,
            EncodeFormat::Protobuf => ValueFormat::Protobuf,
            EncodeFormat::JsonSchema => ValueFormat::JsonSchema,
        };
        Ok(EncodeStage {
            spec: EncodeSpec {
                format,
                registry: config.registry.clone(),
                subject: config.subject.clone(),
                auto_register: config.auto_register_schemas,
                record_name: config.record_name.clone(),
                template,
            },
            encoder: None,
        })
    }

    /// `batch`'s record columns and the encoded `value`.
    pub(crate) fn encode(&mut self, batch: &RecordBatch) -> Result<RecordBatch, JobError> {
        let schema = batch.schema();
        let indices = |names: &mut dyn Iterator<Item = &str>| -> Result<Vec<usize>, JobError> {
            names
                .map(|name| {
                    schema.index_of(name).map_err(|_| {
                        JobError::Encode(FormatError::Encode(format!(
                            "the output schema's field `{name}` is not a column of the rows"
                        )))
                    })
                })
                .collect()
        };
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None => {
                let candidates: Vec<usize> = (0..schema.fields().len())
                    .filter(|&i| !KAFKA_COLUMNS.contains(&schema.field(i).name().as_str()))
                    .collect();
                let rows = schema
                    .project(&candidates)
                    .map_err(|e| JobError::Batch(e.to_string()))?;
                self.encoder
                    .insert(open_encoder(&self.spec, &rows).map_err(JobError::Encode)?)
            }
        };
        let fields = encoder.fields();
        let value = indices(&mut fields.iter().map(String::as_str))?;
        let record: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| RECORD_COLUMNS.contains(&schema.field(i).name().as_str()))
            .collect();
        let value_rows = batch
            .project(&value)
            .map_err(|e| JobError::Batch(e.to_string()))?;
        let values = encoder.encode(&value_rows).map_err(JobError::Encode)?;
        let mut fields: Vec<Field> = record.iter().map(|&i| schema.field(i).clone()).collect();
        let mut columns: Vec<ArrayRef> = record.iter().map(|&i| batch.column(i).clone()).collect();
        fields.push(Field::new("value", DataType::Binary, false));
        columns.push(Arc::new(values));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| JobError::Batch(e.to_string()))
    }
}
