//! The dead-letter record: one schema whatever the cause (a record that
//! cannot be decoded, rows a plugin rejects, rows without an event time).
//!
//! Kafka records (rows with a `value` column) keep their original `key`,
//! `value` and `headers`, plus `__sluice.errors.*` headers: `kind`,
//! `message`, `operator`, `job` and, where known, the source `topic`,
//! `partition` and `offset`. Other rows keep their columns and get the
//! same fields as columns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, ListBuilder, StringArray, StringBuilder,
    StructBuilder, UInt32Array,
};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::JobError;

/// Why one row is a dead letter.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    /// `invalid-input`, `missing-event-time`, `invalid-event-time`, or a
    /// decode poison kind.
    pub(crate) kind: String,
    /// What went wrong.
    pub(crate) message: String,
    /// The stage that set the row aside (`decode` or a plugin's name).
    pub(crate) operator: String,
}

/// The error fields, in the order they are added.
const ERROR_FIELDS: &[&str] = &["kind", "message", "operator", "job"];
/// The source fields, when the records have them.
const SOURCE_FIELDS: &[&str] = &["topic", "partition", "offset"];

fn batch_error(e: arrow::error::ArrowError) -> JobError {
    JobError::Batch(e.to_string())
}

/// The dead-letter rows of `records` (one cause per row).
pub(crate) fn dead_letters(
    records: &RecordBatch,
    causes: &[Cause],
    job: &str,
) -> Result<RecordBatch, JobError> {
    assert_eq!(records.num_rows(), causes.len(), "one cause per row");
    if records.column_by_name("value").is_some() {
        kafka_records(records, causes, job)
    } else {
        rows_with_error_columns(records, causes, job)
    }
}

/// Each cause's error fields, by name.
fn error_fields<'a>(cause: &'a Cause, job: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("kind", cause.kind.as_str()),
        ("message", cause.message.as_str()),
        ("operator", cause.operator.as_str()),
        ("job", job),
    ]
}

fn kafka_records(
    picked: &RecordBatch,
    causes: &[Cause],
    job: &str,
) -> Result<RecordBatch, JobError> {
    let binary = |name: &str| -> Result<Option<ArrayRef>, JobError> {
        picked
            .column_by_name(name)
            .map(|c| cast(c, &DataType::Binary).map_err(batch_error))
            .transpose()
    };
    let key = binary("key")?;
    let value = binary("value")?.expect("checked by the caller");
    let text = |name: &str| {
        picked.column_by_name(name).and_then(|c| {
            let formatter = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).ok()?;
            Some(
                (0..picked.num_rows())
                    .map(|row| formatter.value(row).to_string())
                    .collect::<Vec<_>>(),
            )
        })
    };
    let source: Vec<(&str, Option<Vec<String>>)> = SOURCE_FIELDS
        .iter()
        .map(|name| (*name, text(name)))
        .collect();
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
        .and_then(|c| c.as_list_opt::<i32>().cloned());
    for (row, cause) in causes.iter().enumerate() {
        let entries = headers.values();
        if let Some(original) = &original
            && original.is_valid(row)
        {
            let list = original.value(row);
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
        let mut added: BTreeMap<String, &str> = BTreeMap::new();
        for (name, value) in error_fields(cause, job) {
            added.insert(format!("__sluice.errors.{name}"), value);
        }
        for (name, values) in &source {
            if let Some(values) = values {
                added.insert(format!("__sluice.errors.{name}"), &values[row]);
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
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(batch_error)
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

fn rows_with_error_columns(
    rows: &RecordBatch,
    causes: &[Cause],
    job: &str,
) -> Result<RecordBatch, JobError> {
    let mut fields: Vec<Field> = rows
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = rows.columns().to_vec();
    for (i, name) in ERROR_FIELDS.iter().enumerate() {
        fields.push(Field::new(
            format!("__sluice.errors.{name}"),
            DataType::Utf8,
            false,
        ));
        let values: StringArray = causes
            .iter()
            .map(|cause| Some(error_fields(cause, job)[i].1))
            .collect();
        columns.push(Arc::new(values) as ArrayRef);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(batch_error)
}

/// The records rejected `rows` came from: the source rows with the same
/// Kafka `topic`, `partition` and `offset`, when both have those columns
/// (so a decoded or transformed row goes to the dead-letter output as
/// the record it was read as); otherwise the rows themselves.
pub(crate) fn original_records(source: &RecordBatch, rows: &RecordBatch) -> RecordBatch {
    type Location = (Option<String>, i32, i64);
    let locations = |batch: &RecordBatch| -> Option<Vec<Location>> {
        let topics = batch
            .column_by_name("topic")
            .and_then(|c| c.as_string_opt::<i32>().cloned());
        let partitions = batch
            .column_by_name("partition")?
            .as_primitive_opt::<Int32Type>()?
            .clone();
        let offsets = batch
            .column_by_name("offset")?
            .as_primitive_opt::<Int64Type>()?
            .clone();
        Some(
            (0..batch.num_rows())
                .map(|row| {
                    let topic = topics.as_ref().map(|t| t.value(row).to_owned());
                    (topic, partitions.value(row), offsets.value(row))
                })
                .collect(),
        )
    };
    let (Some(source_locations), Some(row_locations)) = (locations(source), locations(rows)) else {
        return rows.clone();
    };
    let index: HashMap<&Location, u32> = source_locations
        .iter()
        .enumerate()
        .map(|(row, location)| (location, row as u32))
        .collect();
    let found: Option<Vec<u32>> = row_locations
        .iter()
        .map(|location| index.get(location).copied())
        .collect();
    match found {
        Some(indices) => {
            take_record_batch(source, &UInt32Array::from(indices)).unwrap_or_else(|_| rows.clone())
        }
        None => rows.clone(),
    }
}
