//! Keep the rows where `column OP value` holds.
//!
//! Config: `column`, `op` (`eq`, `ne`, `lt`, `le`, `gt`, `ge`, `is_null`,
//! `is_not_null`) and `value` (parsed as the column's type). Rows where the
//! column is null never match a comparison. `on_mismatch` says what happens
//! to the other rows: `drop` (the default) leaves them out; `reject` hands
//! them back as invalid input, so the job dead-letters them.

use std::sync::Arc;

use arrow_ord::cmp;
use sluice_sdk::arrow_array::{
    Array, ArrayRef, BooleanArray, Datum, Float32Array, Float64Array, Int32Array, Int64Array,
    Scalar, StringArray, UInt32Array, UInt64Array,
};
use sluice_sdk::arrow_schema::DataType;
use sluice_sdk::{Config, Error, RecordBatch, Result, transform};

/// Keep the rows that match the configured predicate.
#[transform]
pub fn filter(batch: RecordBatch, config: &Config) -> Result<RecordBatch> {
    let name = config.require("column")?;
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::fatal(format!("no column `{name}` in the batch")))?;
    let op = config.require("op")?;
    let mask = match op {
        "is_null" => BooleanArray::from(
            (0..column.len())
                .map(|i| column.is_null(i))
                .collect::<Vec<_>>(),
        ),
        "is_not_null" => BooleanArray::from(
            (0..column.len())
                .map(|i| column.is_valid(i))
                .collect::<Vec<_>>(),
        ),
        _ => {
            let value = scalar(column.data_type(), config.require("value")?)?;
            let compare = match op {
                "eq" => cmp::eq,
                "ne" => cmp::neq,
                "lt" => cmp::lt,
                "le" => cmp::lt_eq,
                "gt" => cmp::gt,
                "ge" => cmp::gt_eq,
                other => return Err(Error::fatal(format!("unknown op `{other}`"))),
            };
            compare(column, &value as &dyn Datum)?
        }
    };
    match config.get("on_mismatch").unwrap_or("drop") {
        "drop" => Ok(arrow_select::filter::filter_record_batch(&batch, &mask)?),
        "reject" => {
            let rejected: Vec<u32> = (0..mask.len())
                .filter(|&row| !mask.is_valid(row) || !mask.value(row))
                .map(|row| row as u32)
                .collect();
            if rejected.is_empty() {
                return Ok(batch);
            }
            Err(Error::invalid_rows(
                format!(
                    "`{name}` {op} {} does not hold",
                    config.get("value").unwrap_or("")
                ),
                rejected,
            ))
        }
        other => Err(Error::fatal(format!(
            "on_mismatch {other:?} is not `drop` or `reject`"
        ))),
    }
}

/// The configured value as a one-element array of the column's type.
fn scalar(data_type: &DataType, value: &str) -> Result<Scalar<ArrayRef>> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::fatal(format!("value {value:?} is not a {data_type}: {e}"))
    };
    let array: ArrayRef = match data_type {
        DataType::Int32 => Arc::new(Int32Array::from(vec![
            value.parse::<i32>().map_err(|e| bad(&e))?,
        ])),
        DataType::Int64 => Arc::new(Int64Array::from(vec![
            value.parse::<i64>().map_err(|e| bad(&e))?,
        ])),
        DataType::UInt32 => Arc::new(UInt32Array::from(vec![
            value.parse::<u32>().map_err(|e| bad(&e))?,
        ])),
        DataType::UInt64 => Arc::new(UInt64Array::from(vec![
            value.parse::<u64>().map_err(|e| bad(&e))?,
        ])),
        DataType::Float32 => Arc::new(Float32Array::from(vec![
            value.parse::<f32>().map_err(|e| bad(&e))?,
        ])),
        DataType::Float64 => Arc::new(Float64Array::from(vec![
            value.parse::<f64>().map_err(|e| bad(&e))?,
        ])),
        DataType::Boolean => Arc::new(BooleanArray::from(vec![
            value.parse::<bool>().map_err(|e| bad(&e))?,
        ])),
        DataType::Utf8 => Arc::new(StringArray::from(vec![value])),
        other => return Err(Error::fatal(format!("cannot filter on a {other} column"))),
    };
    Ok(Scalar::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_schema::{Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("amount", DataType::Int64, true),
            Field::new("country", DataType::Utf8, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![Some(5), Some(50), None, Some(500)])),
                Arc::new(StringArray::from(vec!["DE", "FR", "DE", "US"])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn keeps_rows_above_threshold_and_drops_nulls() {
        let config = Config::new([("column", "amount"), ("op", "gt"), ("value", "10")]);
        let out = filter(batch(), &config).unwrap();
        let amounts = out.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(amounts.values().to_vec(), vec![50, 500]);
    }

    #[test]
    fn compares_strings() {
        let config = Config::new([("column", "country"), ("op", "eq"), ("value", "DE")]);
        assert_eq!(filter(batch(), &config).unwrap().num_rows(), 2);
    }

    #[test]
    fn selects_nulls() {
        let config = Config::new([("column", "amount"), ("op", "is_null")]);
        assert_eq!(filter(batch(), &config).unwrap().num_rows(), 1);
    }

    #[test]
    fn unparsable_value_is_a_clear_error() {
        let config = Config::new([("column", "amount"), ("op", "gt"), ("value", "ten")]);
        let error = filter(batch(), &config).unwrap_err();
        assert!(
            error.message().contains("\"ten\" is not a Int64"),
            "{error}"
        );
    }

    #[test]
    fn reject_hands_back_the_mismatching_rows_as_invalid_input() {
        let config = Config::new([
            ("column", "amount"),
            ("op", "gt"),
            ("value", "10"),
            ("on_mismatch", "reject"),
        ]);
        let error = filter(batch(), &config).unwrap_err();
        assert_eq!(error.kind(), sluice_sdk::ErrorKind::InvalidInput);
        assert_eq!(error.rows(), &[0, 2]);
    }
}
