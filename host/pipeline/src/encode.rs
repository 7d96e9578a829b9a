//! The encode stage: rows bound for a Kafka sink become Confluent-encoded
//! values. The record columns (`key`, `headers`, `partition`, `topic`) stay
//! as they are; every other column is the value.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use sluice_config::EncodeConfig;
use sluice_format::{EncodeSpec, FormatError, ValueEncoder, ValueFormat, open_encoder};

use crate::PipelineError;

/// Columns that describe the Kafka record rather than its value.
const RECORD_COLUMNS: &[&str] = &["key", "headers", "partition", "topic"];

/// Encodes sink rows; the encoder is opened on the first batch, when the
/// rows' schema is known (and registered, with `auto.register.schemas`).
#[derive(Debug)]
pub(crate) struct EncodeStage {
    spec: EncodeSpec,
    encoder: Option<Box<dyn ValueEncoder>>,
}

impl EncodeStage {
    pub(crate) fn new(config: &EncodeConfig) -> Result<Self, PipelineError> {
        let format = ValueFormat::parse(&config.format)
            .ok()
            .filter(|f| f.uses_registry())
            .ok_or_else(|| {
                PipelineError::Encode(FormatError::Config {
                    field: "encode.format".into(),
                    message: format!(
                        "{:?} is not avro, protobuf or json-schema",
                        config.format
                    ),
                })
            })?;
        Ok(EncodeStage {
            spec: EncodeSpec {
                format,
                registry: config.registry.clone(),
                subject: config.subject.clone(),
                auto_register: config.auto_register_schemas,
            },
            encoder: None,
        })
    }

    /// `batch`'s record columns and the encoded `value`.
    pub(crate) fn encode(&mut self, batch: &RecordBatch) -> Result<RecordBatch, PipelineError> {
        let schema = batch.schema();
        let (record, value): (Vec<usize>, Vec<usize>) = (0..schema.fields().len())
            .partition(|&i| RECORD_COLUMNS.contains(&schema.field(i).name().as_str()));
        let value_rows = batch
            .project(&value)
            .map_err(|e| PipelineError::Batch(e.to_string()))?;
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None => self.encoder.insert(
                open_encoder(&self.spec, &value_rows.schema()).map_err(PipelineError::Encode)?,
            ),
        };
        let values = encoder.encode(&value_rows).map_err(PipelineError::Encode)?;
        let mut fields: Vec<Field> = record.iter().map(|&i| schema.field(i).clone()).collect();
        let mut columns: Vec<ArrayRef> = record.iter().map(|&i| batch.column(i).clone()).collect();
        fields.push(Field::new("value", DataType::Binary, false));
        columns.push(Arc::new(values));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| PipelineError::Batch(e.to_string()))
    }
}
