//! Glue between the generated bindings and the plugin's [`Transform`] or
//! [`Aggregate`]. Used by `export_transform!` and `export_aggregate!`; not
//! part of the public API.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

use arrow_array::cast::AsArray;
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
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, TimeUnit};

use crate::bindings::sluice::plugin::types as wit;
pub use crate::output::Source as OutputSource;
pub use sluice_sdk_macros::__world_bindings as world_bindings;
pub use wit::{Batch as WitBatch, Config as WitConfig, PluginError as WitError};
pub use wit_bindgen;

use crate::aggregate::StateCodec;
use crate::{Aggregate, Config, Error, ErrorKind, Transform};

thread_local! {
    /// The plugin instance `init` built. A Wasm instance is single-threaded.
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    /// Whether the plugin `init` built declared the columns it reads, asked
    /// once there rather than on every batch.
    static READS_SOME: Cell<bool> = const { Cell::new(false) };
}

fn with_plugin<T: Transform, R>(
    f: impl FnOnce(&mut T) -> Result<R, WitError>,
) -> Result<R, WitError> {
    PLUGIN.with_borrow_mut(
        |plugin| match plugin.as_mut().and_then(|p| p.downcast_mut::<T>()) {
            Some(plugin) => f(plugin),
            None => Err(WitError::Fatal("process called before init".into())),
        },
    )
}

/// `init` export.
pub fn init<T: Transform>(config: WitConfig) -> Result<(), WitError> {
    let plugin = T::init(&Config::from(config)).map_err(to_wit_error)?;
    READS_SOME.set(plugin.reads().is_some());
    PLUGIN.with_borrow_mut(|slot| *slot = Some(Box::new(plugin)));
    Ok(())
}

/// What `process` answers, for the plugin's generated `output` record.
#[derive(Debug)]
pub struct ProcessOutput {
    /// The columns the plugin made.
    pub batch: WitBatch,
    /// The input rows the output's rows are.
    pub rows: Option<Vec<u32>>,
    /// Where each output column comes from.
    pub columns: Vec<OutputSource>,
    /// Rows for named outputs.
    pub routed: Vec<wit::Routed>,
}

/// `reads` export.
pub fn reads<T: Transform>() -> Option<Vec<String>> {
    with_plugin::<T, _>(|plugin| Ok(plugin.reads()))
        .ok()
        .flatten()
}

/// `process` export.
pub fn process<T: Transform>(input: WitBatch) -> Result<ProcessOutput, WitError> {
    let batch =
        from_wit(input).map_err(|e| WitError::Fatal(format!("host sent an invalid batch: {e}")))?;
    let output = with_plugin::<T, _>(|plugin| plugin.process(batch.clone()).map_err(to_wit_error))?;
    let laid = output.lay_out(&batch, READS_SOME.get());
    Ok(ProcessOutput {
        batch: to_wit(&laid.made).map_err(|e| WitError::Fatal(e.to_string()))?,
        rows: laid.rows,
        columns: laid.layout,
        routed: laid
            .routed
            .iter()
            .map(|(output, batch)| {
                Ok(wit::Routed {
                    output: output.clone(),
                    batch: to_wit(batch)
                        .map_err(|e| WitError::Fatal(format!("output `{output}`: {e}")))?,
                })
            })
            .collect::<Result<_, WitError>>()?,
    })
}

/// `snapshot` export.
pub fn snapshot<T: Transform>() -> Option<Vec<u8>> {
    with_plugin::<T, _>(|plugin| Ok(plugin.snapshot()))
        .ok()
        .flatten()
}

/// `restore` export.
pub fn restore<T: Transform>(state: Vec<u8>) -> Result<(), WitError> {
    with_plugin::<T, _>(|plugin| plugin.restore(&state).map_err(to_wit_error))
}

fn to_wit_error(error: Error) -> WitError {
    match error.kind() {
        ErrorKind::InvalidInput => WitError::InvalidInput(wit::InvalidInput {
            message: error.message().to_owned(),
            rows: error.rows().to_vec(),
        }),
        ErrorKind::Transient => WitError::Transient(error.message().to_owned()),
        ErrorKind::Fatal => WitError::Fatal(error.message().to_owned()),
    }
}

/// Build an Arrow batch from the host's batch, taking ownership of its
/// buffers without copying them.
pub fn from_wit(batch: WitBatch) -> Result<RecordBatch, ArrowError> {
    let mut slots: Vec<Option<wit::Array>> = batch.arrays.into_iter().map(Some).collect();
    let mut fields = Vec::with_capacity(batch.columns.len());
    let mut columns = Vec::with_capacity(batch.columns.len());
    for column in batch.columns {
        let array = take_array(&mut slots, column.array)?;
        fields.push(Field::new(
            column.name,
            array.data_type().clone(),
            column.nullable,
        ));
        columns.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows as usize));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
}

fn take_array(slots: &mut [Option<wit::Array>], index: u32) -> Result<ArrayRef, ArrowError> {
    let array = slots
        .get_mut(index as usize)
        .and_then(Option::take)
        .ok_or_else(|| ArrowError::InvalidArgumentError(format!("bad array reference {index}")))?;
    let len = array.len as usize;
    let nulls = array
        .validity
        .map(|bits| NullBuffer::new(bitmap(bits, len)));
    Ok(match array.data {
        wit::ArrayData::Boolean(bits) => Arc::new(BooleanArray::new(bitmap(bits, len), nulls)),
        wit::ArrayData::Int32(v) => Arc::new(Int32Array::try_new(v.into(), nulls)?),
        wit::ArrayData::Int64(v) => Arc::new(Int64Array::try_new(v.into(), nulls)?),
        wit::ArrayData::Uint32(v) => Arc::new(UInt32Array::try_new(v.into(), nulls)?),
        wit::ArrayData::Uint64(v) => Arc::new(UInt64Array::try_new(v.into(), nulls)?),
        wit::ArrayData::Float32(v) => Arc::new(Float32Array::try_new(v.into(), nulls)?),
        wit::ArrayData::Float64(v) => Arc::new(Float64Array::try_new(v.into(), nulls)?),
        wit::ArrayData::Utf8(var) => Arc::new(StringArray::try_new(
            OffsetBuffer::new(var.offsets.into()),
            Buffer::from_vec(var.bytes),
            nulls,
        )?),
        wit::ArrayData::Binary(var) => Arc::new(BinaryArray::try_new(
            OffsetBuffer::new(var.offsets.into()),
            Buffer::from_vec(var.bytes),
            nulls,
        )?),
        wit::ArrayData::Timestamp(ts) => {
            let values = ScalarBuffer::from(ts.values);
            let tz = ts.timezone;
            match ts.unit {
                wit::TimeUnit::Second => timestamp::<TimestampSecondType>(values, nulls, tz)?,
                wit::TimeUnit::Millisecond => {
                    timestamp::<TimestampMillisecondType>(values, nulls, tz)?
                }
                wit::TimeUnit::Microsecond => {
                    timestamp::<TimestampMicrosecondType>(values, nulls, tz)?
                }
                wit::TimeUnit::Nanosecond => {
                    timestamp::<TimestampNanosecondType>(values, nulls, tz)?
                }
            }
        }
        wit::ArrayData::List(list) => {
            let child = take_array(slots, list.child)?;
            let item = Arc::new(Field::new_list_field(
                child.data_type().clone(),
                list.child_nullable,
            ));
            Arc::new(ListArray::try_new(
                item,
                OffsetBuffer::new(list.offsets.into()),
                child,
                nulls,
            )?)
        }
        wit::ArrayData::Struct(members) => {
            let mut fields = Vec::with_capacity(members.len());
            let mut children = Vec::with_capacity(members.len());
            for member in members {
                let child = take_array(slots, member.child)?;
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
                Arc::new(StructArray::try_new(Fields::from(fields), children, nulls)?)
            }
        }
    })
}

fn timestamp<T: arrow_array::types::ArrowTimestampType>(
    values: ScalarBuffer<i64>,
    nulls: Option<NullBuffer>,
    timezone: Option<String>,
) -> Result<ArrayRef, ArrowError> {
    Ok(Arc::new(
        PrimitiveArray::<T>::try_new(values, nulls)?.with_timezone_opt(timezone),
    ))
}

fn bitmap(bytes: Vec<u8>, len: usize) -> BooleanBuffer {
    BooleanBuffer::new(Buffer::from_vec(bytes), 0, len)
}

/// Convert an Arrow batch into the form the host lifts.
pub fn to_wit(batch: &RecordBatch) -> Result<WitBatch, ArrowError> {
    let mut arrays = Vec::with_capacity(batch.num_columns());
    let schema = batch.schema_ref();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            Ok(wit::Column {
                name: field.name().clone(),
                nullable: field.is_nullable(),
                array: push_array(&mut arrays, column.as_ref())?,
            })
        })
        .collect::<Result<_, ArrowError>>()?;
    Ok(WitBatch {
        num_rows: batch.num_rows() as u32,
        columns,
        arrays,
    })
}

fn push_array(arrays: &mut Vec<wit::Array>, array: &dyn Array) -> Result<u32, ArrowError> {
    let var = |offsets: &[i32], bytes: &[u8]| wit::VarData {
        offsets: offsets.to_vec(),
        bytes: bytes.to_vec(),
    };
    let data = match array.data_type() {
        DataType::Boolean => wit::ArrayData::Boolean(bitmap_vec(array.as_boolean().values())),
        DataType::Int32 => {
            wit::ArrayData::Int32(array.as_primitive::<Int32Type>().values().to_vec())
        }
        DataType::Int64 => {
            wit::ArrayData::Int64(array.as_primitive::<Int64Type>().values().to_vec())
        }
        DataType::UInt32 => {
            wit::ArrayData::Uint32(array.as_primitive::<UInt32Type>().values().to_vec())
        }
        DataType::UInt64 => {
            wit::ArrayData::Uint64(array.as_primitive::<UInt64Type>().values().to_vec())
        }
        DataType::Float32 => {
            wit::ArrayData::Float32(array.as_primitive::<Float32Type>().values().to_vec())
        }
        DataType::Float64 => {
            wit::ArrayData::Float64(array.as_primitive::<Float64Type>().values().to_vec())
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            wit::ArrayData::Utf8(var(a.value_offsets(), a.values()))
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            wit::ArrayData::Binary(var(a.value_offsets(), a.values()))
        }
        DataType::Timestamp(unit, timezone) => {
            let values = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .values()
                    .to_vec(),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .values()
                    .to_vec(),
                TimeUnit::Microsecond => array
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .to_vec(),
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .values()
                    .to_vec(),
            };
            let unit = match unit {
                TimeUnit::Second => wit::TimeUnit::Second,
                TimeUnit::Millisecond => wit::TimeUnit::Millisecond,
                TimeUnit::Microsecond => wit::TimeUnit::Microsecond,
                TimeUnit::Nanosecond => wit::TimeUnit::Nanosecond,
            };
            wit::ArrayData::Timestamp(wit::TimestampData {
                unit,
                timezone: timezone.as_deref().map(str::to_owned),
                values,
            })
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            let child = push_array(arrays, list.values().as_ref())?;
            wit::ArrayData::List(wit::ListData {
                offsets: list.value_offsets().to_vec(),
                child,
                child_nullable: item.is_nullable(),
            })
        }
        DataType::Struct(fields) => {
            let strukt = array.as_struct();
            let members = fields
                .iter()
                .zip(strukt.columns())
                .map(|(field, child)| {
                    Ok(wit::StructField {
                        name: field.name().clone(),
                        nullable: field.is_nullable(),
                        child: push_array(arrays, child.as_ref())?,
                    })
                })
                .collect::<Result<_, ArrowError>>()?;
            wit::ArrayData::Struct(members)
        }
        other => {
            return Err(ArrowError::NotYetImplemented(format!(
                "type {other} cannot cross sluice:plugin@0.2.0; cast it to a supported type"
            )));
        }
    };
    arrays.push(wit::Array {
        len: array.len() as u32,
        validity: array.nulls().map(|nulls| bitmap_vec(nulls.inner())),
        data,
    });
    Ok(arrays.len() as u32 - 1)
}

/// A bitmap's bits, re-aligned to start at bit 0.
fn bitmap_vec(bits: &BooleanBuffer) -> Vec<u8> {
    let aligned = bits.inner().bit_slice(bits.offset(), bits.len());
    aligned.as_slice()[..bits.len().div_ceil(8)].to_vec()
}

thread_local! {
    /// The aggregate `init` built, as the host sees it.
    static AGGREGATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_aggregate<A: Aggregate, R>(
    f: impl FnOnce(&StateCodec<A>) -> Result<R, WitError>,
) -> Result<R, WitError> {
    AGGREGATE.with_borrow(|slot| {
        match slot
            .as_ref()
            .and_then(|a| a.downcast_ref::<StateCodec<A>>())
        {
            Some(aggregate) => f(aggregate),
            None => Err(WitError::Fatal("aggregate called before init".into())),
        }
    })
}

/// Aggregate `init` export.
pub fn aggregate_init<A: Aggregate>(config: WitConfig) -> Result<(), WitError> {
    let aggregate = StateCodec::<A>::new(&Config::from(config)).map_err(to_wit_error)?;
    AGGREGATE.with_borrow_mut(|slot| *slot = Some(Box::new(aggregate)));
    Ok(())
}

/// Aggregate `update` export.
pub fn aggregate_update<A: Aggregate>(
    states: Vec<Vec<u8>>,
    input: WitBatch,
    groups: Vec<u32>,
) -> Result<Vec<Vec<u8>>, WitError> {
    let batch =
        from_wit(input).map_err(|e| WitError::Fatal(format!("host sent an invalid batch: {e}")))?;
    with_aggregate::<A, _>(|a| a.update(states, &batch, &groups).map_err(to_wit_error))
}

/// Aggregate `merge` export.
pub fn aggregate_merge<A: Aggregate>(
    left: Vec<Vec<u8>>,
    right: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, WitError> {
    with_aggregate::<A, _>(|a| a.merge(left, right).map_err(to_wit_error))
}

/// Aggregate `finish` export: the batch and the group of each row.
pub fn aggregate_finish<A: Aggregate>(
    states: Vec<Vec<u8>>,
) -> Result<(WitBatch, Vec<u32>), WitError> {
    let finished = with_aggregate::<A, _>(|a| a.finish(states).map_err(to_wit_error))?;
    let (batch, groups) = finished.into_parts();
    Ok((
        to_wit(&batch).map_err(|e| WitError::Fatal(e.to_string()))?,
        groups,
    ))
}
