//! Entry points for the cargo-fuzz targets (`fuzz/`, feature `fuzzing`):
//! what a guest could hand back, built from the fuzzer's bytes, through the
//! host's lifting, validation and carrier conversion.

use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use arrow_schema::{DataType, Field, IntervalUnit, Schema, TimeUnit};

use crate::bindings::sluice::plugin::types as wit;
use crate::{carrier, columnar};

/// Lifts a guest batch made from `data` and raises its columns to the
/// decoded types of an input batch; every answer is fine but a panic.
pub fn lift_guest_batch(data: &[u8]) {
    let mut bytes = Unstructured::new(data);
    let Ok(batch) = guest_batch(&mut bytes) else {
        return;
    };
    if let Ok(lifted) = columnar::lift_batch(batch) {
        let _ = carrier::raise(lifted, &input_schema());
    }
}

/// An input whose columns `c0`..`c7` crossed as carriers, so that output
/// columns of those names are raised back.
fn input_schema() -> Schema {
    let map_entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Int64, true),
            ]
            .into(),
        ),
        false,
    );
    Schema::new(vec![
        Field::new(
            "c0",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("c1", DataType::Decimal128(10, 2), true),
        Field::new("c2", DataType::Date32, true),
        Field::new("c3", DataType::Int8, true),
        Field::new("c4", DataType::Map(Arc::new(map_entries), false), true),
        Field::new("c5", DataType::FixedSizeBinary(4), true),
        Field::new("c6", DataType::Duration(TimeUnit::Nanosecond), true),
        Field::new("c7", DataType::Interval(IntervalUnit::MonthDayNano), true),
    ])
}

fn guest_batch(u: &mut Unstructured<'_>) -> Result<wit::Batch> {
    let num_rows = u.int_in_range(0..=64)?;
    let arrays = (0..u.int_in_range(0..=12)?)
        .map(|_| guest_array(u))
        .collect::<Result<Vec<_>>>()?;
    let columns = (0..u.int_in_range(0..=6)?)
        .map(|_| {
            Ok(wit::Column {
                name: format!("c{}", u.int_in_range(0..=9)?),
                nullable: u.arbitrary()?,
                array: u.int_in_range(0..=12)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(wit::Batch {
        num_rows,
        columns,
        arrays,
    })
}

fn guest_array(u: &mut Unstructured<'_>) -> Result<wit::Array> {
    let len = u.int_in_range(0..=64)?;
    let validity = if u.arbitrary()? {
        Some(u.arbitrary()?)
    } else {
        None
    };
    let var = |u: &mut Unstructured<'_>| -> Result<wit::VarData> {
        Ok(wit::VarData {
            offsets: u.arbitrary()?,
            bytes: u.arbitrary()?,
        })
    };
    let data = match u.int_in_range(0..=11)? {
        0 => wit::ArrayData::Boolean(u.arbitrary()?),
        1 => wit::ArrayData::Int32(u.arbitrary()?),
        2 => wit::ArrayData::Int64(u.arbitrary()?),
        3 => wit::ArrayData::Uint32(u.arbitrary()?),
        4 => wit::ArrayData::Uint64(u.arbitrary()?),
        5 => wit::ArrayData::Float32(u.arbitrary()?),
        6 => wit::ArrayData::Float64(u.arbitrary()?),
        7 => wit::ArrayData::Utf8(var(u)?),
        8 => wit::ArrayData::Binary(var(u)?),
        9 => wit::ArrayData::Timestamp(wit::TimestampData {
            unit: *u.choose(&[
                wit::TimeUnit::Second,
                wit::TimeUnit::Millisecond,
                wit::TimeUnit::Microsecond,
                wit::TimeUnit::Nanosecond,
            ])?,
            timezone: if u.arbitrary()? {
                Some(
                    u.choose(&["+00:00", "Europe/Zurich", "not a zone", ""])?
                        .to_string(),
                )
            } else {
                None
            },
            values: u.arbitrary()?,
        }),
        10 => wit::ArrayData::List(wit::ListData {
            offsets: u.arbitrary()?,
            child: u.int_in_range(0..=12)?,
            child_nullable: u.arbitrary()?,
        }),
        _ => wit::ArrayData::Struct(
            (0..u.int_in_range(0..=3)?)
                .map(|_| {
                    Ok(wit::StructField {
                        name: u
                            .choose(&["key", "value", "a", "months", "days", "nanoseconds"])?
                            .to_string(),
                        nullable: u.arbitrary()?,
                        child: u.int_in_range(0..=12)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(wit::Array {
        len,
        validity,
        data,
    })
}
