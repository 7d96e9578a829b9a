//! Add derived columns.
//!
//! Config (each optional, at least one required):
//! - `email_column`: adds `email_domain` (utf8, lower-cased domain).
//! - `timestamp_column`: adds `hour_of_day` (int32, UTC) and `is_weekend`
//!   (bool, UTC) from a timestamp column.

use std::sync::Arc;

use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use sluice_sdk::arrow_array::{Array, ArrayRef, BooleanArray, Int32Array, StringArray};
use sluice_sdk::arrow_schema::{DataType, Field, Schema, TimeUnit};
use sluice_sdk::{Config, Error, RecordBatch, Result, transform};

const SECONDS_PER_DAY: i64 = 86_400;

/// Append the configured derived columns.
#[transform]
pub fn enrich(batch: RecordBatch, config: &Config) -> Result<RecordBatch> {
    let email = config.get("email_column");
    let timestamp = config.get("timestamp_column");
    if email.is_none() && timestamp.is_none() {
        return Err(Error::fatal("set `email_column` and/or `timestamp_column`"));
    }
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = batch.columns().to_vec();
    if let Some(name) = email {
        let column = column(&batch, name)?;
        let strings = column
            .as_string_opt::<i32>()
            .ok_or_else(|| Error::fatal(format!("`{name}` is {}, not utf8", column.data_type())))?;
        let domains: StringArray = strings
            .iter()
            .map(|v| {
                v.and_then(|s| s.rsplit_once('@'))
                    .map(|(_, d)| d.to_ascii_lowercase())
            })
            .collect();
        fields.push(Field::new("email_domain", DataType::Utf8, true));
        columns.push(Arc::new(domains));
    }
    if let Some(name) = timestamp {
        let seconds = epoch_seconds(column(&batch, name)?)?;
        let hour: Int32Array = seconds
            .iter()
            .map(|s| s.map(|s| (s.rem_euclid(SECONDS_PER_DAY) / 3600) as i32))
            .collect();
        // 1970-01-01 was a Thursday: day 0 → weekday 3 (Monday = 0).
        let weekend: BooleanArray = seconds
            .iter()
            .map(|s| s.map(|s| (s.div_euclid(SECONDS_PER_DAY) + 3).rem_euclid(7) >= 5))
            .collect();
        fields.push(Field::new("hour_of_day", DataType::Int32, true));
        fields.push(Field::new("is_weekend", DataType::Boolean, true));
        columns.push(Arc::new(hour));
        columns.push(Arc::new(weekend));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::fatal(format!("no column `{name}` in the batch")))
}

/// Seconds since the epoch of every value of a timestamp column.
fn epoch_seconds(column: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let per_second = |values: Vec<Option<i64>>, divisor: i64| {
        values
            .into_iter()
            .map(|v| v.map(|v| v.div_euclid(divisor)))
            .collect()
    };
    Ok(match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => column
            .as_primitive::<TimestampSecondType>()
            .iter()
            .collect(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => per_second(
            column
                .as_primitive::<TimestampMillisecondType>()
                .iter()
                .collect(),
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => per_second(
            column
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect(),
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => per_second(
            column
                .as_primitive::<TimestampNanosecondType>()
                .iter()
                .collect(),
            1_000_000_000,
        ),
        other => {
            return Err(Error::fatal(format!(
                "timestamp column is {other}, not a timestamp"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::TimestampMillisecondArray;

    #[test]
    fn derives_domain_hour_and_weekend() {
        let schema = Schema::new(vec![
            Field::new("email", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]);
        // 2026-11-21 (Saturday) 13:05:00 UTC and 2026-11-23 (Monday) 00:30:00 UTC.
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("Ann@Example.COM"), None])),
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_795_266_300_000),
                    Some(1_795_393_800_000),
                ])),
            ],
        )
        .unwrap();
        let config = Config::new([("email_column", "email"), ("timestamp_column", "ts")]);
        let out = enrich(batch, &config).unwrap();
        let domain = out
            .column_by_name("email_domain")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(domain.value(0), "example.com");
        assert!(domain.is_null(1));
        let hour = out
            .column_by_name("hour_of_day")
            .unwrap()
            .as_primitive::<sluice_sdk::arrow_array::types::Int32Type>();
        assert_eq!(hour.values().to_vec(), vec![13, 0]);
        let weekend = out.column_by_name("is_weekend").unwrap().as_boolean();
        assert_eq!((weekend.value(0), weekend.value(1)), (true, false));
    }
}
