//! Arrow types the contract has no variant for cross it as a type it has,
//! and come back as themselves.
//!
//! | Arrow type | crosses as |
//! |---|---|
//! | int8, int16 / uint8, uint16 | int32 / uint32 |
//! | float16 | float32 |
//! | date32, date64 | timestamp (ms, no time zone), midnight UTC |
//! | time32, time64 | int32, int64 (in the type's unit) |
//! | duration | int64 (in the type's unit) |
//! | decimal32/64/128/256 | utf8, the decimal's text (`"-12.30"`) |
//! | interval (year-month) | int32 (months) |
//! | interval (day-time) | struct of int32 `days`, `milliseconds` |
//! | interval (month-day-nano) | struct of int32 `months`, `days`, int64 `nanoseconds` |
//! | large utf8, utf8 view | utf8 |
//! | large binary, binary view, fixed-size binary | binary |
//! | dictionary | its values' type |
//! | large list, fixed-size list | list |
//! | map | list of its entries (struct of `key`, `value`) |
//!
//! Lists and structs carry their children the same way. Every conversion
//! keeps every value, so a column the plugin returns under the same name
//! and as the carrier type of the input column is turned back into the
//! input's type: a pass-through plugin hands back exactly what it got. A
//! value the plugin changed that the input type cannot hold (text that is
//! not a decimal of the column's precision) is the plugin's error.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{IntervalDayTimeType, IntervalMonthDayNanoType, IntervalYearMonthType};
use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, RecordBatchOptions};
use arrow_array::{
    Int32Array, Int64Array, IntervalDayTimeArray, IntervalMonthDayNanoArray,
    IntervalYearMonthArray, StructArray,
};
use arrow_buffer::{IntervalDayTime, IntervalMonthDayNano, ScalarBuffer};
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, IntervalUnit, Schema, TimeUnit};

use crate::RuntimeError;
use crate::columnar;

/// The type a column of `data_type` crosses the contract as: itself when
/// the contract has it.
pub(crate) fn carrier_type(data_type: &DataType) -> DataType {
    let field = |f: &FieldRef| {
        Arc::new(Field::new(
            f.name(),
            carrier_type(f.data_type()),
            f.is_nullable(),
        ))
    };
    match data_type {
        DataType::Int8 | DataType::Int16 => DataType::Int32,
        DataType::UInt8 | DataType::UInt16 => DataType::UInt32,
        DataType::Float16 => DataType::Float32,
        DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Time32(_) => DataType::Int32,
        DataType::Time64(_) | DataType::Duration(_) => DataType::Int64,
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::LargeUtf8
        | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            DataType::Binary
        }
        DataType::Interval(IntervalUnit::YearMonth) => DataType::Int32,
        DataType::Interval(IntervalUnit::DayTime) => DataType::Struct(interval_fields(&[
            ("days", DataType::Int32),
            ("milliseconds", DataType::Int32),
        ])),
        DataType::Interval(IntervalUnit::MonthDayNano) => DataType::Struct(interval_fields(&[
            ("months", DataType::Int32),
            ("days", DataType::Int32),
            ("nanoseconds", DataType::Int64),
        ])),
        DataType::Dictionary(_, values) => carrier_type(values),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::Map(item, _) => DataType::List(field(item)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        other => other.clone(),
    }
}

/// The fields of an interval's carrier struct.
fn interval_fields(fields: &[(&str, DataType)]) -> Fields {
    fields
        .iter()
        .map(|(name, data_type)| Field::new(*name, data_type.clone(), false))
        .collect()
}

/// `batch` ready to lend to a plugin: each column of a type the contract
/// lacks as its carrier, and every array starting at offset 0.
pub(crate) fn for_plugin(batch: &RecordBatch) -> Result<RecordBatch, RuntimeError> {
    let lowered = lower(batch).map_err(|(column, error)| RuntimeError::UnsupportedType {
        data_type: batch.schema().field_with_name(&column).map_or_else(
            |_| error.to_string(),
            |f| format!("{} ({error})", f.data_type()),
        ),
        column,
    })?;
    Ok(columnar::normalize(&lowered))
}

/// `batch` with every column whose type the contract lacks converted to
/// its carrier type; the batch itself when it has none.
fn lower(batch: &RecordBatch) -> Result<RecordBatch, (String, ArrowError)> {
    let schema = batch.schema();
    if schema
        .fields()
        .iter()
        .all(|f| &carrier_type(f.data_type()) == f.data_type())
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let lowered = lower_array(column).map_err(|e| (field.name().clone(), e))?;
        fields.push(Field::new(
            field.name(),
            lowered.data_type().clone(),
            field.is_nullable(),
        ));
        columns.push(lowered);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
        .map_err(|e| (String::new(), e))
}

/// `output` (a plugin's) with every column that has the name of an `input`
/// column that crossed as a carrier, and is of that carrier type, turned
/// back into the input column's type.
pub(crate) fn raise(output: RecordBatch, input: &Schema) -> Result<RecordBatch, String> {
    let schema = output.schema();
    let originals: Vec<Option<&FieldRef>> = schema
        .fields()
        .iter()
        .map(|field| {
            let (_, original) = input.fields().find(field.name())?;
            let carrier = carrier_type(original.data_type());
            (&carrier != original.data_type() && carrier.equals_datatype(field.data_type()))
                .then_some(original)
        })
        .collect();
    if originals.iter().all(Option::is_none) {
        return Ok(output);
    }
    let mut fields = Vec::with_capacity(output.num_columns());
    let mut columns = Vec::with_capacity(output.num_columns());
    for ((field, column), original) in schema.fields().iter().zip(output.columns()).zip(originals) {
        match original {
            Some(original) => {
                let raised = raise_array(column, original.data_type()).map_err(|e| {
                    format!(
                        "column `{}` cannot be turned back into {}: {e}",
                        field.name(),
                        original.data_type()
                    )
                })?;
                fields.push(Field::new(
                    field.name(),
                    original.data_type().clone(),
                    field.is_nullable(),
                ));
                columns.push(raised);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(output.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
        .map_err(|e| e.to_string())
}

/// Casts that fail on a value the target cannot hold, rather than making
/// it null.
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow_cast::display::FormatOptions::new(),
};

fn lower_array(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let target = carrier_type(array.data_type());
    if &target == array.data_type() {
        return Ok(Arc::clone(array));
    }
    match array.data_type() {
        DataType::Struct(_) => {
            let strukt = array.as_struct();
            let children = strukt
                .columns()
                .iter()
                .map(lower_array)
                .collect::<Result<Vec<_>, _>>()?;
            let DataType::Struct(fields) = target else {
                unreachable!("a struct's carrier is a struct")
            };
            Ok(Arc::new(arrow_array::StructArray::try_new(
                fields,
                children,
                strukt.nulls().cloned(),
            )?))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let DataType::List(item) = target else {
                unreachable!("a list's carrier is a list")
            };
            Ok(Arc::new(ListArray::try_new(
                item,
                list.offsets().clone(),
                lower_array(list.values())?,
                list.nulls().cloned(),
            )?))
        }
        DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            let as_list = cast_with_options(array, &DataType::List(Arc::clone(item)), &STRICT)?;
            lower_array(&as_list)
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let DataType::List(item) = target else {
                unreachable!("a map's carrier is a list")
            };
            let entries: ArrayRef = Arc::new(map.entries().clone());
            Ok(Arc::new(ListArray::try_new(
                item,
                map.offsets().clone(),
                lower_array(&entries)?,
                map.nulls().cloned(),
            )?))
        }
        DataType::Dictionary(_, values) => {
            let plain = cast_with_options(array, values, &STRICT)?;
            lower_array(&plain)
        }
        DataType::Interval(unit) => Ok(lower_interval(array, *unit, target)),
        _ => cast_with_options(array, &target, &STRICT),
    }
}

/// An interval column as its carrier (`target`): its months, or its
/// parts as a struct.
fn lower_interval(array: &ArrayRef, unit: IntervalUnit, target: DataType) -> ArrayRef {
    let nulls = array.nulls().cloned();
    let DataType::Struct(fields) = target else {
        let months = array
            .as_primitive::<IntervalYearMonthType>()
            .values()
            .clone();
        return Arc::new(Int32Array::new(months, nulls));
    };
    let parts: Vec<ArrayRef> = match unit {
        IntervalUnit::DayTime => {
            let values = array.as_primitive::<IntervalDayTimeType>().values();
            vec![
                Arc::new(Int32Array::from_iter_values(values.iter().map(|v| v.days))),
                Arc::new(Int32Array::from_iter_values(
                    values.iter().map(|v| v.milliseconds),
                )),
            ]
        }
        _ => {
            let values = array.as_primitive::<IntervalMonthDayNanoType>().values();
            vec![
                Arc::new(Int32Array::from_iter_values(
                    values.iter().map(|v| v.months),
                )),
                Arc::new(Int32Array::from_iter_values(values.iter().map(|v| v.days))),
                Arc::new(Int64Array::from_iter_values(
                    values.iter().map(|v| v.nanoseconds),
                )),
            ]
        }
    };
    Arc::new(StructArray::new(fields, parts, nulls))
}

/// An interval column back from its carrier.
fn raise_interval(array: &ArrayRef, unit: IntervalUnit) -> ArrayRef {
    let nulls = array.nulls().cloned();
    if unit == IntervalUnit::YearMonth {
        let months = array.as_primitive::<arrow_array::types::Int32Type>();
        return Arc::new(IntervalYearMonthArray::new(months.values().clone(), nulls));
    }
    let parts = array.as_struct();
    let int32 = |i: usize| {
        parts
            .column(i)
            .as_primitive::<arrow_array::types::Int32Type>()
    };
    if unit == IntervalUnit::DayTime {
        let values: ScalarBuffer<IntervalDayTime> = int32(0)
            .values()
            .iter()
            .zip(int32(1).values())
            .map(|(&days, &milliseconds)| IntervalDayTime { days, milliseconds })
            .collect();
        return Arc::new(IntervalDayTimeArray::new(values, nulls));
    }
    let nanoseconds = parts
        .column(2)
        .as_primitive::<arrow_array::types::Int64Type>();
    let values: ScalarBuffer<IntervalMonthDayNano> = int32(0)
        .values()
        .iter()
        .zip(int32(1).values())
        .zip(nanoseconds.values())
        .map(|((&months, &days), &nanoseconds)| IntervalMonthDayNano {
            months,
            days,
            nanoseconds,
        })
        .collect();
    Arc::new(IntervalMonthDayNanoArray::new(values, nulls))
}

fn raise_array(array: &ArrayRef, original: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == original {
        return Ok(Arc::clone(array));
    }
    match original {
        DataType::Struct(fields) => {
            let strukt = array.as_struct();
            let children = strukt
                .columns()
                .iter()
                .zip(fields.iter())
                .map(|(child, field)| raise_array(child, field.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(arrow_array::StructArray::try_new(
                fields.clone(),
                children,
                strukt.nulls().cloned(),
            )?))
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            Ok(Arc::new(ListArray::try_new(
                Arc::clone(item),
                list.offsets().clone(),
                raise_array(list.values(), item.data_type())?,
                list.nulls().cloned(),
            )?))
        }
        DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            let list = raise_array(array, &DataType::List(Arc::clone(item)))?;
            cast_with_options(&list, original, &STRICT)
        }
        DataType::Map(entries, sorted) => {
            let list = array.as_list::<i32>();
            let raised = raise_array(list.values(), entries.data_type())?;
            Ok(Arc::new(MapArray::try_new(
                Arc::clone(entries),
                list.offsets().clone(),
                raised.as_struct().clone(),
                list.nulls().cloned(),
                *sorted,
            )?))
        }
        DataType::Dictionary(_, values) => {
            let plain = raise_array(array, values)?;
            cast_with_options(&plain, original, &STRICT)
        }
        DataType::Interval(unit) => Ok(raise_interval(array, *unit)),
        _ => cast_with_options(array, original, &STRICT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Decimal128Array, Int32Array, Int64Array, StringArray};

    /// An input schema with a decimal and an int8 column.
    fn input() -> Schema {
        Schema::new(vec![
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new("i8", DataType::Int8, true),
        ])
    }

    #[test]
    fn a_decimal_crosses_as_its_text_and_comes_back() {
        let price = Decimal128Array::from(vec![Some(12_345), None, Some(-5)])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let batch =
            RecordBatch::try_from_iter(vec![("price", Arc::new(price) as ArrayRef)]).unwrap();
        let lowered = lower(&batch).unwrap();
        let text = lowered.column(0).as_string::<i32>();
        assert_eq!(
            (text.value(0), text.is_null(1), text.value(2)),
            ("123.45", true, "-0.05")
        );
        assert_eq!(raise(lowered, &batch.schema()).unwrap(), batch);
    }

    #[test]
    fn a_column_the_plugin_retyped_or_renamed_stays_as_it_returned_it() {
        let input = input();
        let output = RecordBatch::try_from_iter(vec![
            ("i8", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "renamed",
                Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef,
            ),
        ])
        .unwrap();
        assert_eq!(raise(output.clone(), &input).unwrap(), output);
    }

    #[test]
    fn text_that_is_no_decimal_of_the_column_is_an_error_naming_it() {
        let input = input();
        let output = RecordBatch::try_from_iter(vec![(
            "price",
            Arc::new(StringArray::from(vec!["1.00", "cheap", "2"])) as ArrayRef,
        )])
        .unwrap();
        let error = raise(output, &input).unwrap_err();
        assert!(
            error.contains("`price`") && error.contains("cheap"),
            "{error}"
        );
    }
}
