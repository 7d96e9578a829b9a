//! Arrow `RecordBatch` ↔ the columnar batch of `wit/plugin.wit`.
//!
//! Host → guest: [`BatchArg`] borrows Arrow's buffers, and lowering copies
//! each buffer once, straight into the guest's memory. Guest → host: lifting
//! copies each buffer once out of guest memory into a `Vec`, which becomes an
//! Arrow buffer without another copy. The guest's output is untrusted and
//! fully validated.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::make_array;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    ListArray, PrimitiveArray, RecordBatch, RecordBatchOptions, StringArray, StructArray,
    UInt32Array, UInt64Array,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_data::ArrayData;
use arrow_data::transform::MutableArrayData;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use wasmtime::component::{ComponentType, Lower};

use crate::bindings::sluice::plugin::types as wit;
use crate::error::RuntimeError;

/// A batch lent to a guest: every buffer borrowed from Arrow.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct BatchArg<'a> {
    #[component(name = "num-rows")]
    num_rows: u32,
    columns: Vec<ColumnArg<'a>>,
    arrays: Vec<ArrayArg<'a>>,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct ColumnArg<'a> {
    name: &'a str,
    nullable: bool,
    array: u32,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct ArrayArg<'a> {
    len: u32,
    validity: Option<&'a [u8]>,
    data: ArrayDataArg<'a>,
}

#[derive(ComponentType, Lower)]
#[component(variant)]
pub(crate) enum ArrayDataArg<'a> {
    #[component(name = "boolean")]
    Boolean(&'a [u8]),
    #[component(name = "int32")]
    Int32(&'a [i32]),
    #[component(name = "int64")]
    Int64(&'a [i64]),
    #[component(name = "uint32")]
    UInt32(&'a [u32]),
    #[component(name = "uint64")]
    UInt64(&'a [u64]),
    #[component(name = "float32")]
    Float32(&'a [f32]),
    #[component(name = "float64")]
    Float64(&'a [f64]),
    #[component(name = "utf8")]
    Utf8(VarDataArg<'a>),
    #[component(name = "binary")]
    Binary(VarDataArg<'a>),
    #[component(name = "timestamp")]
    Timestamp(TimestampArg<'a>),
    #[component(name = "list")]
    List(ListArg<'a>),
    #[component(name = "struct")]
    Struct(Vec<StructFieldArg<'a>>),
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct VarDataArg<'a> {
    offsets: &'a [i32],
    bytes: &'a [u8],
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct TimestampArg<'a> {
    unit: wit::TimeUnit,
    timezone: Option<&'a str>,
    values: &'a [i64],
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct ListArg<'a> {
    offsets: &'a [i32],
    child: u32,
    #[component(name = "child-nullable")]
    child_nullable: bool,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct StructFieldArg<'a> {
    name: &'a str,
    nullable: bool,
    child: u32,
}

/// Returns `batch` with every array starting at offset 0 (copying only the
/// arrays that do not), so bitmaps can be lent byte-aligned.
pub(crate) fn normalize(batch: &RecordBatch) -> RecordBatch {
    if !batch
        .columns()
        .iter()
        .any(|column| has_offset(&column.to_data()))
    {
        return batch.clone();
    }
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            let data = column.to_data();
            // Copy into fresh buffers that start at offset 0.
            let mut copy = MutableArrayData::new(vec![&data], false, data.len());
            copy.try_extend(0, 0, data.len())
                .expect("copying an array into one of its own size cannot overflow");
            make_array(copy.freeze())
        })
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(batch.schema(), columns, &options)
        .expect("copies have the same types and lengths as the originals")
}

fn has_offset(data: &ArrayData) -> bool {
    data.offset() != 0 || data.child_data().iter().any(has_offset)
}

/// Lend `batch` to a guest. Every array of `batch` must start at offset 0
/// (see [`normalize`]).
pub(crate) fn lower_batch(batch: &RecordBatch) -> Result<BatchArg<'_>, RuntimeError> {
    let mut arrays = Vec::with_capacity(batch.num_columns());
    let schema = batch.schema_ref();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            Ok(ColumnArg {
                name: field.name(),
                nullable: field.is_nullable(),
                array: lend_array(&mut arrays, field.name(), column.as_ref())?,
            })
        })
        .collect::<Result<_, RuntimeError>>()?;
    Ok(BatchArg {
        num_rows: to_u32(batch.num_rows()),
        columns,
        arrays,
    })
}

fn lend_array<'a>(
    arrays: &mut Vec<ArrayArg<'a>>,
    name: &str,
    array: &'a dyn Array,
) -> Result<u32, RuntimeError> {
    let data = match array.data_type() {
        DataType::Boolean => ArrayDataArg::Boolean(bitmap_bytes(array.as_boolean().values())),
        DataType::Int32 => ArrayDataArg::Int32(array.as_primitive::<Int32Type>().values()),
        DataType::Int64 => ArrayDataArg::Int64(array.as_primitive::<Int64Type>().values()),
        DataType::UInt32 => ArrayDataArg::UInt32(array.as_primitive::<UInt32Type>().values()),
        DataType::UInt64 => ArrayDataArg::UInt64(array.as_primitive::<UInt64Type>().values()),
        DataType::Float32 => ArrayDataArg::Float32(array.as_primitive::<Float32Type>().values()),
        DataType::Float64 => ArrayDataArg::Float64(array.as_primitive::<Float64Type>().values()),
        DataType::Utf8 => {
            let strings = array.as_string::<i32>();
            ArrayDataArg::Utf8(VarDataArg {
                offsets: strings.value_offsets(),
                bytes: strings.values(),
            })
        }
        DataType::Binary => {
            let binary = array.as_binary::<i32>();
            ArrayDataArg::Binary(VarDataArg {
                offsets: binary.value_offsets(),
                bytes: binary.values(),
            })
        }
        DataType::Timestamp(unit, timezone) => {
            let values: &[i64] = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().values(),
            };
            ArrayDataArg::Timestamp(TimestampArg {
                unit: time_unit_to_wit(*unit),
                timezone: timezone.as_deref(),
                values,
            })
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            let child = lend_array(arrays, name, list.values().as_ref())?;
            ArrayDataArg::List(ListArg {
                offsets: list.value_offsets(),
                child,
                child_nullable: item.is_nullable(),
            })
        }
        DataType::Struct(fields) => {
            let strukt = array.as_struct();
            let children = fields
                .iter()
                .zip(strukt.columns())
                .map(|(field, child)| {
                    Ok(StructFieldArg {
                        name: field.name(),
                        nullable: field.is_nullable(),
                        child: lend_array(arrays, field.name(), child.as_ref())?,
                    })
                })
                .collect::<Result<_, RuntimeError>>()?;
            ArrayDataArg::Struct(children)
        }
        other => {
            return Err(RuntimeError::UnsupportedType {
                column: name.to_owned(),
                data_type: other.to_string(),
            });
        }
    };
    arrays.push(ArrayArg {
        len: to_u32(array.len()),
        validity: array.nulls().map(|nulls| bitmap_bytes(nulls.inner())),
        data,
    });
    Ok(to_u32(arrays.len() - 1))
}

/// The bytes of a byte-aligned bitmap.
fn bitmap_bytes(bits: &BooleanBuffer) -> &[u8] {
    debug_assert_eq!(bits.offset() % 8, 0, "batch must be normalized first");
    let start = bits.offset() / 8;
    &bits.values()[start..start + bits.len().div_ceil(8)]
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a batch holds fewer than 2^32 values")
}

fn time_unit_to_wit(unit: TimeUnit) -> wit::TimeUnit {
    match unit {
        TimeUnit::Second => wit::TimeUnit::Second,
        TimeUnit::Millisecond => wit::TimeUnit::Millisecond,
        TimeUnit::Microsecond => wit::TimeUnit::Microsecond,
        TimeUnit::Nanosecond => wit::TimeUnit::Nanosecond,
    }
}

/// Build an Arrow batch from a guest's batch, validating everything: array
/// references, lengths, offsets, UTF-8, bitmaps.
pub(crate) fn lift_batch(batch: wit::Batch) -> Result<RecordBatch, String> {
    let mut slots: Vec<Option<wit::Array>> = batch.arrays.into_iter().map(Some).collect();
    let mut fields = Vec::with_capacity(batch.columns.len());
    let mut columns = Vec::with_capacity(batch.columns.len());
    for column in batch.columns {
        let array = build_array(&mut slots, column.array, 0)
            .map_err(|e| format!("column `{}`: {e}", column.name))?;
        fields.push(Field::new(
            column.name,
            array.data_type().clone(),
            column.nullable,
        ));
        columns.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows as usize));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
        .map_err(|e| e.to_string())
}

/// Deepest nesting accepted from a guest.
const MAX_DEPTH: usize = 64;

fn build_array(
    slots: &mut [Option<wit::Array>],
    index: u32,
    depth: usize,
) -> Result<ArrayRef, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let array = slots
        .get_mut(index as usize)
        .ok_or_else(|| format!("array index {index} is out of range"))?
        .take()
        .ok_or_else(|| format!("array {index} is referenced twice"))?;
    let len = array.len as usize;
    let nulls = array
        .validity
        .map(|bits| bitmap(bits, len).map(NullBuffer::new))
        .transpose()?;
    let checked_values = |n: usize| {
        if n == len {
            Ok(())
        } else {
            Err(format!("array declares {len} values but holds {n}"))
        }
    };
    macro_rules! primitive {
        ($array:ty, $values:expr) => {{
            checked_values($values.len())?;
            Arc::new(
                <$array>::try_new(ScalarBuffer::from($values), nulls).map_err(|e| e.to_string())?,
            )
        }};
    }
    let out: ArrayRef = match array.data {
        wit::ArrayData::Boolean(bits) => Arc::new(BooleanArray::new(bitmap(bits, len)?, nulls)),
        wit::ArrayData::Int32(values) => primitive!(Int32Array, values),
        wit::ArrayData::Int64(values) => primitive!(Int64Array, values),
        wit::ArrayData::Uint32(values) => primitive!(UInt32Array, values),
        wit::ArrayData::Uint64(values) => primitive!(UInt64Array, values),
        wit::ArrayData::Float32(values) => primitive!(Float32Array, values),
        wit::ArrayData::Float64(values) => primitive!(Float64Array, values),
        wit::ArrayData::Utf8(var) => Arc::new(
            StringArray::try_new(
                offsets(var.offsets, len)?,
                Buffer::from_vec(var.bytes),
                nulls,
            )
            .map_err(|e| e.to_string())?,
        ),
        wit::ArrayData::Binary(var) => Arc::new(
            BinaryArray::try_new(
                offsets(var.offsets, len)?,
                Buffer::from_vec(var.bytes),
                nulls,
            )
            .map_err(|e| e.to_string())?,
        ),
        wit::ArrayData::Timestamp(ts) => {
            checked_values(ts.values.len())?;
            let values = ScalarBuffer::from(ts.values);
            let timezone = ts.timezone;
            match ts.unit {
                wit::TimeUnit::Second => timestamp::<TimestampSecondType>(values, nulls, timezone)?,
                wit::TimeUnit::Millisecond => {
                    timestamp::<TimestampMillisecondType>(values, nulls, timezone)?
                }
                wit::TimeUnit::Microsecond => {
                    timestamp::<TimestampMicrosecondType>(values, nulls, timezone)?
                }
                wit::TimeUnit::Nanosecond => {
                    timestamp::<TimestampNanosecondType>(values, nulls, timezone)?
                }
            }
        }
        wit::ArrayData::List(list) => {
            let child = build_array(slots, list.child, depth + 1)?;
            let item = Arc::new(Field::new_list_field(
                child.data_type().clone(),
                list.child_nullable,
            ));
            Arc::new(
                ListArray::try_new(item, offsets(list.offsets, len)?, child, nulls)
                    .map_err(|e| e.to_string())?,
            )
        }
        wit::ArrayData::Struct(members) => {
            let mut fields = Vec::with_capacity(members.len());
            let mut children = Vec::with_capacity(members.len());
            for member in members {
                let child = build_array(slots, member.child, depth + 1)
                    .map_err(|e| format!("field `{}`: {e}", member.name))?;
                fields.push(Field::new(
                    member.name,
                    child.data_type().clone(),
                    member.nullable,
                ));
                children.push(child);
            }
            if children.is_empty() {
                Arc::new(StructArray::new_empty_fields(len, nulls))
            } else {
                Arc::new(
                    StructArray::try_new(Fields::from(fields), children, nulls)
                        .map_err(|e| e.to_string())?,
                )
            }
        }
    };
    if out.len() != len {
        return Err(format!(
            "array declares {len} values but holds {}",
            out.len()
        ));
    }
    Ok(out)
}

fn timestamp<T>(
    values: ScalarBuffer<i64>,
    nulls: Option<NullBuffer>,
    timezone: Option<String>,
) -> Result<ArrayRef, String>
where
    T: arrow_array::types::ArrowTimestampType,
{
    let array = PrimitiveArray::<T>::try_new(values, nulls).map_err(|e| e.to_string())?;
    Ok(Arc::new(array.with_timezone_opt(timezone)))
}

/// A bitmap of `len` bits, checked to be long enough.
fn bitmap(bytes: Vec<u8>, len: usize) -> Result<BooleanBuffer, String> {
    if bytes.len() < len.div_ceil(8) {
        return Err(format!(
            "bitmap of {} bytes cannot hold {len} bits",
            bytes.len()
        ));
    }
    Ok(BooleanBuffer::new(Buffer::from_vec(bytes), 0, len))
}

/// `len + 1` offsets, checked to be non-negative and non-decreasing.
fn offsets(offsets: Vec<i32>, len: usize) -> Result<OffsetBuffer<i32>, String> {
    if offsets.len() != len + 1 {
        return Err(format!("{} offsets given for {len} values", offsets.len()));
    }
    if offsets[0] < 0 || offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("offsets are negative or decreasing".into());
    }
    // SAFETY: just checked: non-empty, non-negative, monotonically increasing.
    Ok(unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)) })
}
