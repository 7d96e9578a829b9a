//! Protobuf wire bytes straight into Arrow columns, following the reader
//! message's descriptor: no `DynamicMessage`, no JSON in between.
//!
//! The columns are built once per decoder and reused batch after batch.
//! A record is read as Protobuf reads a message: the last value of a
//! singular field wins, a message field given twice is merged (read as if
//! its encodings were one), repeated scalars may be packed or not, a field
//! of a `oneof` clears the others, map entries with the same key keep the
//! last, and fields the reader does not know are skipped. A record that
//! cannot be read leaves the columns as they were before it.
//!
//! Map entries come out sorted by key text, so the same message always
//! gives the same row.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::builder::BooleanBufferBuilder;
use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, MapArray, PrimitiveArray, StringArray, StructArray,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, FieldRef, Fields, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampMicrosecondType, UInt32Type, UInt64Type,
};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::FormatError;

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// Groups the reader does not know, nested deeper than this, are refused
/// (Protobuf's own recursion limit).
const MAX_SKIP_DEPTH: usize = 100;

/// The range of a `google.protobuf.Timestamp`'s seconds: 0001-01-01 to
/// 9999-12-31, as the type's definition says.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// Why a record could not be read.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// The bytes are not a message of the reader's type.
    Corrupt(String),
    /// A value no column can hold (a Timestamp out of range).
    Invalid(String),
}

impl Unreadable {
    /// The same, with `field` named in front of the message.
    fn in_field(self, field: &str) -> Self {
        match self {
            Unreadable::Corrupt(m) => Unreadable::Corrupt(format!("field {field}: {m}")),
            Unreadable::Invalid(m) => Unreadable::Invalid(format!("field {field}: {m}")),
        }
    }
}

type Read<T> = Result<T, Unreadable>;

fn corrupt<T>(message: impl Into<String>) -> Read<T> {
    Err(Unreadable::Corrupt(message.into()))
}

/// One field's value as it was on the wire, positions into the record.
#[derive(Debug, Clone, Default)]
enum Raw {
    #[default]
    Absent,
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Bytes(Range<usize>),
    /// A message given more than once: its parts, read in order.
    Parts(Vec<Range<usize>>),
}

impl Raw {
    /// Merge another encoding of a message into this one.
    fn merge(&mut self, part: Range<usize>) {
        match self {
            Raw::Bytes(first) => *self = Raw::Parts(vec![first.clone(), part]),
            Raw::Parts(parts) => parts.push(part),
            _ => *self = Raw::Bytes(part),
        }
    }

    fn parts(&self) -> &[Range<usize>] {
        match self {
            Raw::Bytes(range) => std::slice::from_ref(range),
            Raw::Parts(parts) => parts,
            _ => &[],
        }
    }
}

/// A cursor over one record's bytes.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8], range: Range<usize>) -> Self {
        Wire {
            buf,
            pos: range.start,
            end: range.end,
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.end
    }

    fn varint(&mut self) -> Read<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf[..self.end].get(self.pos) else {
                return corrupt("truncated varint");
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return corrupt("varint overflows 64 bits");
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        corrupt("varint longer than 10 bytes")
    }

    fn take(&mut self, n: usize) -> Read<Range<usize>> {
        let start = self.pos;
        match start.checked_add(n).filter(|end| *end <= self.end) {
            Some(end) => {
                self.pos = end;
                Ok(start..end)
            }
            None => corrupt(format!(
                "{n} bytes announced, {} left",
                self.end.saturating_sub(start)
            )),
        }
    }

    fn fixed32(&mut self) -> Read<u32> {
        let range = self.take(4)?;
        Ok(u32::from_le_bytes(
            self.buf[range].try_into().expect("four bytes"),
        ))
    }

    fn fixed64(&mut self) -> Read<u64> {
        let range = self.take(8)?;
        Ok(u64::from_le_bytes(
            self.buf[range].try_into().expect("eight bytes"),
        ))
    }

    fn length_delimited(&mut self) -> Read<Range<usize>> {
        let len = self.varint()?;
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// A field's number and wire type.
    fn key(&mut self) -> Read<(u32, u8)> {
        let key = self.varint()?;
        let Ok(key) = u32::try_from(key) else {
            return corrupt(format!("invalid key {key}"));
        };
        let (number, wire) = (key >> 3, (key & 7) as u8);
        if wire > FIXED32 {
            return corrupt(format!("invalid wire type {wire}"));
        }
        if number == 0 {
            return corrupt("invalid field number 0");
        }
        Ok((number, wire))
    }

    /// The value of a field of wire type `wire` (after its key).
    fn value(&mut self, number: u32, wire: u8) -> Read<Raw> {
        Ok(match wire {
            VARINT => Raw::Varint(self.varint()?),
            FIXED64 => Raw::Fixed64(self.fixed64()?),
            LEN => Raw::Bytes(self.length_delimited()?),
            FIXED32 => Raw::Fixed32(self.fixed32()?),
            START_GROUP => Raw::Bytes(self.group(number, 0)?),
            _ => return corrupt(format!("unexpected end of group {number}")),
        })
    }

    /// The contents of group `number` (after its start key), up to its end
    /// key, which is consumed.
    fn group(&mut self, number: u32, depth: usize) -> Read<Range<usize>> {
        if depth > MAX_SKIP_DEPTH {
            return corrupt("groups nest too deep");
        }
        let start = self.pos;
        loop {
            if self.done() {
                return corrupt(format!("group {number} has no end"));
            }
            let before = self.pos;
            let (inner, wire) = self.key()?;
            match wire {
                END_GROUP if inner == number => return Ok(start..before),
                END_GROUP => return corrupt(format!("group {number} ended by {inner}")),
                START_GROUP => {
                    self.group(inner, depth + 1)?;
                }
                _ => {
                    self.value(inner, wire)?;
                }
            }
        }
    }
}

fn zigzag32(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A column of Arrow primitives.
#[derive(Debug)]
struct Primitives<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
}

impl<T: ArrowPrimitiveType> Primitives<T> {
    fn new() -> Self {
        Primitives {
            values: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn push(&mut self, value: T::Native) {
        self.values.push(value);
        self.nulls.append_non_null();
    }

    fn push_null(&mut self) {
        self.values.push(T::Native::default());
        self.nulls.append_null();
    }

    fn truncate(&mut self, len: usize) {
        self.values.truncate(len);
        self.nulls.truncate(len);
    }

    fn finish(&mut self, data_type: &DataType) -> ArrayRef {
        let values = ScalarBuffer::from(std::mem::take(&mut self.values));
        Arc::new(
            PrimitiveArray::<T>::new(values, self.nulls.finish()).with_data_type(data_type.clone()),
        )
    }
}

/// A column of strings or bytes.
#[derive(Debug)]
struct Bytes {
    offsets: Vec<i32>,
    data: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl Bytes {
    fn new() -> Self {
        Bytes {
            offsets: vec![0],
            data: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn push(&mut self, value: &[u8]) -> Read<()> {
        self.data.extend_from_slice(value);
        let Ok(end) = i32::try_from(self.data.len()) else {
            self.data
                .truncate(*self.offsets.last().expect("offsets") as usize);
            return corrupt("the batch's strings pass 2 GiB");
        };
        self.offsets.push(end);
        self.nulls.append_non_null();
        Ok(())
    }

    fn push_null(&mut self) {
        self.offsets.push(*self.offsets.last().expect("offsets"));
        self.nulls.append_null();
    }

    fn truncate(&mut self, len: usize) {
        self.offsets.truncate(len + 1);
        self.data.truncate(self.offsets[len] as usize);
        self.nulls.truncate(len);
    }

    fn take_parts(&mut self) -> (OffsetBuffer<i32>, Buffer, Option<NullBuffer>) {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        (
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(std::mem::take(&mut self.data)),
            self.nulls.finish(),
        )
    }

    fn finish_utf8(&mut self) -> Result<ArrayRef, FormatError> {
        let (offsets, data, nulls) = self.take_parts();
        Ok(Arc::new(
            StringArray::try_new(offsets, data, nulls).map_err(schema_error)?,
        ))
    }

    fn finish_binary(&mut self) -> Result<ArrayRef, FormatError> {
        let (offsets, data, nulls) = self.take_parts();
        Ok(Arc::new(
            BinaryArray::try_new(offsets, data, nulls).map_err(schema_error)?,
        ))
    }
}

fn schema_error(e: arrow::error::ArrowError) -> FormatError {
    FormatError::Schema(e.to_string())
}

/// Enum value names by number (`prost-reflect`'s choice among aliases).
#[derive(Debug)]
struct EnumNames {
    dense: Vec<Option<Box<str>>>,
    sparse: HashMap<i32, Box<str>>,
    default: i32,
}

impl EnumNames {
    fn new(descriptor: &prost_reflect::EnumDescriptor) -> Self {
        let mut names = EnumNames {
            dense: Vec::new(),
            sparse: HashMap::new(),
            default: descriptor.default_value().number(),
        };
        for value in descriptor.values() {
            let number = value.number();
            let name: Box<str> = descriptor
                .get_value(number)
                .map_or_else(|| value.name().into(), |v| v.name().into());
            match usize::try_from(number) {
                Ok(i) if i < 1024 => {
                    if names.dense.len() <= i {
                        names.dense.resize(i + 1, None);
                    }
                    names.dense[i] = Some(name);
                }
                _ => {
                    names.sparse.insert(number, name);
                }
            }
        }
        names
    }

    fn push(&self, number: i32, column: &mut Bytes) -> Read<()> {
        let known = match usize::try_from(number) {
            Ok(i) => self.dense.get(i).and_then(Option::as_deref),
            Err(_) => None,
        }
        .or_else(|| self.sparse.get(&number).map(|n| &**n));
        match known {
            Some(name) => column.push(name.as_bytes()),
            None => column.push(number.to_string().as_bytes()),
        }
    }
}

/// The column of one Protobuf value kind, and how its wire values read.
#[derive(Debug)]
enum Values {
    Bool(BooleanBufferBuilder, NullBufferBuilder),
    /// `int32`, `sint32` (zigzag) and `sfixed32`.
    Int32(Primitives<Int32Type>, bool),
    /// `int64`, `sint64` (zigzag) and `sfixed64`.
    Int64(Primitives<Int64Type>, bool),
    UInt32(Primitives<UInt32Type>),
    UInt64(Primitives<UInt64Type>),
    Float32(Primitives<Float32Type>),
    Float64(Primitives<Float64Type>),
    String(Bytes),
    Binary(Bytes),
    Enum(Bytes, Box<EnumNames>),
    /// `google.protobuf.Timestamp` as UTC microseconds.
    Timestamp(Primitives<TimestampMicrosecondType>),
    /// A `google.protobuf.*Value` wrapper: the number of its `value` field,
    /// the wire type and the column of the wrapped kind.
    Wrapper(u32, u8, Box<Values>),
    Message(Box<Struct>),
}

impl Values {
    /// The column for values of `kind`, whose Arrow type is `data_type`.
    fn new(kind: &Kind, data_type: &DataType) -> Result<Self, FormatError> {
        Ok(match kind {
            Kind::Bool => Values::Bool(BooleanBufferBuilder::new(0), NullBufferBuilder::new(0)),
            Kind::Int32 | Kind::Sfixed32 => Values::Int32(Primitives::new(), false),
            Kind::Sint32 => Values::Int32(Primitives::new(), true),
            Kind::Int64 | Kind::Sfixed64 => Values::Int64(Primitives::new(), false),
            Kind::Sint64 => Values::Int64(Primitives::new(), true),
            Kind::Uint32 | Kind::Fixed32 => Values::UInt32(Primitives::new()),
            Kind::Uint64 | Kind::Fixed64 => Values::UInt64(Primitives::new()),
            Kind::Float => Values::Float32(Primitives::new()),
            Kind::Double => Values::Float64(Primitives::new()),
            Kind::String => Values::String(Bytes::new()),
            Kind::Bytes => Values::Binary(Bytes::new()),
            Kind::Enum(e) => Values::Enum(Bytes::new(), Box::new(EnumNames::new(e))),
            Kind::Message(_) if matches!(data_type, DataType::Timestamp(..)) => {
                Values::Timestamp(Primitives::new())
            }
            Kind::Message(message) => match data_type {
                DataType::Struct(fields) => {
                    Values::Message(Box::new(Struct::new(message, fields)?))
                }
                inner_type => {
                    let field = message.get_field_by_name("value").ok_or_else(|| {
                        FormatError::Schema(format!("{} has no `value`", message.full_name()))
                    })?;
                    let inner = field.kind();
                    Values::Wrapper(
                        field.number(),
                        wire_type_of(&inner),
                        Box::new(Values::new(&inner, inner_type)?),
                    )
                }
            },
        })
    }

    /// Whether values of this kind are messages, which merge when given
    /// more than once.
    fn merges(&self) -> bool {
        matches!(
            self,
            Values::Timestamp(_) | Values::Wrapper(..) | Values::Message(_)
        )
    }

    /// The wire value of a field that is not there (its kind's default).
    fn default_raw(&self) -> Raw {
        match self {
            Values::Enum(_, names) => Raw::Varint(names.default as i64 as u64),
            Values::Float32(_) => Raw::Fixed32(0),
            Values::Float64(_) => Raw::Fixed64(0),
            Values::String(_)
            | Values::Binary(_)
            | Values::Timestamp(_)
            | Values::Wrapper(..)
            | Values::Message(_) => Raw::Bytes(0..0),
            _ => Raw::Varint(0),
        }
    }

    /// Append one value read from `raw` (of the wire type this kind takes).
    fn push(&mut self, raw: &Raw, buf: &[u8]) -> Read<()> {
        let bytes = |raw: &Raw| match raw {
            Raw::Bytes(range) => &buf[range.clone()],
            _ => &[],
        };
        match (self, raw) {
            (Values::Bool(values, nulls), Raw::Varint(v)) => {
                values.append(*v != 0);
                nulls.append_non_null();
            }
            (Values::Int32(column, zigzag), Raw::Varint(v)) => {
                column.push(if *zigzag { zigzag32(*v) } else { *v as i32 });
            }
            (Values::Int32(column, _), Raw::Fixed32(v)) => column.push(*v as i32),
            (Values::Int64(column, zigzag), Raw::Varint(v)) => {
                column.push(if *zigzag { zigzag64(*v) } else { *v as i64 });
            }
            (Values::Int64(column, _), Raw::Fixed64(v)) => column.push(*v as i64),
            (Values::UInt32(column), Raw::Varint(v)) => column.push(*v as u32),
            (Values::UInt32(column), Raw::Fixed32(v)) => column.push(*v),
            (Values::UInt64(column), Raw::Varint(v) | Raw::Fixed64(v)) => column.push(*v),
            (Values::Float32(column), Raw::Fixed32(v)) => column.push(f32::from_bits(*v)),
            (Values::Float64(column), Raw::Fixed64(v)) => column.push(f64::from_bits(*v)),
            (Values::String(column), raw @ Raw::Bytes(_)) => {
                let text = bytes(raw);
                if let Err(e) = std::str::from_utf8(text) {
                    return corrupt(format!("a string that is not UTF-8: {e}"));
                }
                column.push(text)?;
            }
            (Values::Binary(column), raw @ Raw::Bytes(_)) => column.push(bytes(raw))?,
            (Values::Enum(column, names), Raw::Varint(v)) => names.push(*v as i32, column)?,
            (Values::Timestamp(column), raw) => column.push(timestamp(raw.parts(), buf)?),
            (Values::Wrapper(number, wire, inner), raw) => {
                let mut value = inner.default_raw();
                for part in raw.parts() {
                    let mut wire_reader = Wire::new(buf, part.clone());
                    while !wire_reader.done() {
                        let (n, w) = wire_reader.key()?;
                        let v = wire_reader.value(n, w)?;
                        if n == *number {
                            if w != *wire {
                                return corrupt(format!(
                                    "wire type {w} for `value`, expected {wire}"
                                ));
                            }
                            value = v;
                        }
                    }
                }
                inner.push(&value, buf)?;
            }
            (Values::Message(message), raw) => message.push(raw.parts(), buf)?,
            (_, raw) => return corrupt(format!("unexpected wire value {raw:?}")),
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            Values::Bool(values, nulls) => {
                values.append(false);
                nulls.append_null();
            }
            Values::Int32(c, _) => c.push_null(),
            Values::Int64(c, _) => c.push_null(),
            Values::Timestamp(c) => c.push_null(),
            Values::UInt32(c) => c.push_null(),
            Values::UInt64(c) => c.push_null(),
            Values::Float32(c) => c.push_null(),
            Values::Float64(c) => c.push_null(),
            Values::String(c) | Values::Binary(c) | Values::Enum(c, _) => c.push_null(),
            Values::Wrapper(_, _, inner) => inner.push_null(),
            Values::Message(message) => message.push_null(),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Values::Bool(values, nulls) => {
                values.truncate(len);
                nulls.truncate(len);
            }
            Values::Int32(c, _) => c.truncate(len),
            Values::Int64(c, _) => c.truncate(len),
            Values::Timestamp(c) => c.truncate(len),
            Values::UInt32(c) => c.truncate(len),
            Values::UInt64(c) => c.truncate(len),
            Values::Float32(c) => c.truncate(len),
            Values::Float64(c) => c.truncate(len),
            Values::String(c) | Values::Binary(c) | Values::Enum(c, _) => c.truncate(len),
            Values::Wrapper(_, _, inner) => inner.truncate(len),
            Values::Message(message) => message.truncate(len),
        }
    }

    fn finish(&mut self, data_type: &DataType) -> Result<ArrayRef, FormatError> {
        Ok(match self {
            Values::Bool(values, nulls) => {
                Arc::new(BooleanArray::new(values.finish(), nulls.finish()))
            }
            Values::Int32(c, _) => c.finish(data_type),
            Values::Int64(c, _) => c.finish(data_type),
            Values::Timestamp(c) => c.finish(data_type),
            Values::UInt32(c) => c.finish(data_type),
            Values::UInt64(c) => c.finish(data_type),
            Values::Float32(c) => c.finish(data_type),
            Values::Float64(c) => c.finish(data_type),
            Values::String(c) | Values::Enum(c, _) => c.finish_utf8()?,
            Values::Binary(c) => c.finish_binary()?,
            Values::Wrapper(_, _, inner) => inner.finish(data_type)?,
            Values::Message(message) => Arc::new(message.finish()?),
        })
    }
}

/// A Timestamp message's value in microseconds.
fn timestamp(parts: &[Range<usize>], buf: &[u8]) -> Read<i64> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    for part in parts {
        let mut wire = Wire::new(buf, part.clone());
        while !wire.done() {
            let (number, wire_type) = wire.key()?;
            let value = wire.value(number, wire_type)?;
            match (number, value) {
                (1, Raw::Varint(v)) => seconds = v as i64,
                (2, Raw::Varint(v)) => nanos = i64::from(v as i32),
                (1 | 2, _) => {
                    return corrupt(format!("Timestamp field {number}: wire type {wire_type}"));
                }
                _ => {}
            }
        }
    }
    if !TIMESTAMP_SECONDS.contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        return Err(Unreadable::Invalid(format!(
            "Timestamp {{seconds: {seconds}, nanos: {nanos}}} is outside 0001-01-01..9999-12-31 or its nanos outside 0..1e9"
        )));
    }
    Ok(seconds * 1_000_000 + nanos / 1_000)
}

/// The wire type values of `kind` take (unpacked).
fn wire_type_of(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => FIXED64,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => FIXED32,
        Kind::String | Kind::Bytes | Kind::Message(_) => LEN,
        _ => VARINT,
    }
}

/// How a field's values sit in its column.
#[derive(Debug)]
enum Shape {
    /// One value; null when absent if the field has presence, else its
    /// default.
    Single { presence: bool, default: Raw },
    /// A list: offsets and validity; `packable` if scalars may come packed.
    List {
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        packable: bool,
    },
    /// A map: offsets, validity, the keys' kind and their column, and the
    /// entries of the record being read.
    Map {
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        key_kind: Kind,
        value_wire: u8,
        keys: Bytes,
        entries: Vec<Range<usize>>,
    },
}

/// One field of a message and its column.
#[derive(Debug)]
struct Column {
    name: String,
    /// The wire type of one value (start-group for groups).
    wire: u8,
    /// Its `oneof`, an index into [`Struct::oneofs`].
    oneof: Option<usize>,
    shape: Shape,
    values: Values,
    /// Its Arrow type (of the list or map for those shapes).
    data_type: DataType,
}

impl Column {
    fn new(field: &FieldDescriptor, arrow: &FieldRef) -> Result<Self, FormatError> {
        let data_type = arrow.data_type().clone();
        let (shape, values) = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("map fields are messages")
            };
            let DataType::Map(entries, _) = &data_type else {
                return Err(FormatError::Schema(format!(
                    "map {} is {data_type}",
                    field.name()
                )));
            };
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(FormatError::Schema(format!("map {} entries", field.name())));
            };
            let value_field = entry.map_entry_value_field();
            (
                Shape::Map {
                    offsets: vec![0],
                    nulls: NullBufferBuilder::new(0),
                    key_kind: entry.map_entry_key_field().kind(),
                    value_wire: wire_type_of(&value_field.kind()),
                    keys: Bytes::new(),
                    entries: Vec::new(),
                },
                Values::new(&value_field.kind(), kv[1].data_type())?,
            )
        } else if field.is_list() {
            let DataType::List(item) = &data_type else {
                return Err(FormatError::Schema(format!(
                    "list {} is {data_type}",
                    field.name()
                )));
            };
            (
                Shape::List {
                    offsets: vec![0],
                    nulls: NullBufferBuilder::new(0),
                    packable: !matches!(
                        field.kind(),
                        Kind::String | Kind::Bytes | Kind::Message(_)
                    ),
                },
                Values::new(&field.kind(), item.data_type())?,
            )
        } else {
            let values = Values::new(&field.kind(), &data_type)?;
            (
                Shape::Single {
                    presence: field.supports_presence(),
                    default: values.default_raw(),
                },
                values,
            )
        };
        let wire = if field.is_group() {
            START_GROUP
        } else {
            wire_type_of(&field.kind())
        };
        Ok(Column {
            name: field.name().to_owned(),
            wire,
            oneof: None,
            shape,
            values,
            data_type,
        })
    }

    fn push_null(&mut self) {
        match &mut self.shape {
            Shape::Single { .. } => self.values.push_null(),
            Shape::List { offsets, nulls, .. } | Shape::Map { offsets, nulls, .. } => {
                offsets.push(*offsets.last().expect("offsets"));
                nulls.append_null();
            }
        }
    }

    fn truncate(&mut self, len: usize) {
        match &mut self.shape {
            Shape::Single { .. } => self.values.truncate(len),
            Shape::List { offsets, nulls, .. } => {
                offsets.truncate(len + 1);
                nulls.truncate(len);
                self.values.truncate(offsets[len] as usize);
            }
            Shape::Map {
                offsets,
                nulls,
                keys,
                entries,
                ..
            } => {
                offsets.truncate(len + 1);
                nulls.truncate(len);
                keys.truncate(offsets[len] as usize);
                self.values.truncate(offsets[len] as usize);
                entries.clear();
            }
        }
    }

    /// Close this record's list or map (a single value is appended by
    /// the message, from its slot).
    fn close(&mut self, buf: &[u8]) -> Read<()> {
        let end = |n: usize| {
            i32::try_from(n)
                .map_err(|_| Unreadable::Corrupt("the batch's lists pass 2^31 items".into()))
        };
        match &mut self.shape {
            Shape::Single { .. } => unreachable!("single values have no end"),
            Shape::List { offsets, nulls, .. } => {
                let last = *offsets.last().expect("offsets") as usize;
                let len = list_len(&self.values, last);
                offsets.push(end(last + len)?);
                nulls.append_non_null();
            }
            Shape::Map {
                offsets,
                nulls,
                key_kind,
                value_wire,
                keys,
                entries,
            } => {
                let mut read = Vec::with_capacity(entries.len());
                for entry in entries.drain(..) {
                    let (key, value) = map_entry(entry, buf, key_kind, *value_wire, &self.values)?;
                    read.push((key, value));
                }
                // As a JSON object holds them: by key, the last of equal keys.
                read.reverse();
                read.sort_by(|a, b| a.0.cmp(&b.0));
                read.dedup_by(|later, first| later.0 == first.0);
                for (key, value) in &read {
                    keys.push(key.as_bytes())?;
                    self.values.push(value, buf)?;
                }
                let last = *offsets.last().expect("offsets") as usize;
                offsets.push(end(last + read.len())?);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef, FormatError> {
        let data_type = self.data_type.clone();
        Ok(match (&mut self.shape, &data_type) {
            (Shape::Single { .. }, data_type) => self.values.finish(data_type)?,
            (Shape::List { offsets, nulls, .. }, DataType::List(item)) => {
                let offsets = std::mem::replace(offsets, vec![0]);
                let nulls = nulls.finish();
                let values = self.values.finish(item.data_type())?;
                Arc::new(
                    arrow::array::ListArray::try_new(
                        item.clone(),
                        OffsetBuffer::new(ScalarBuffer::from(offsets)),
                        values,
                        nulls,
                    )
                    .map_err(schema_error)?,
                )
            }
            (
                Shape::Map {
                    offsets,
                    nulls,
                    keys,
                    ..
                },
                DataType::Map(entries, ordered),
            ) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    unreachable!("checked when built")
                };
                let offsets = std::mem::replace(offsets, vec![0]);
                let nulls = nulls.finish();
                let keys = keys.finish_utf8()?;
                let values = self.values.finish(kv[1].data_type())?;
                let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)
                    .map_err(schema_error)?;
                Arc::new(
                    MapArray::try_new(
                        entries.clone(),
                        OffsetBuffer::new(ScalarBuffer::from(offsets)),
                        entries_array,
                        nulls,
                        *ordered,
                    )
                    .map_err(schema_error)?,
                )
            }
            (_, other) => {
                return Err(FormatError::Schema(format!(
                    "field {} has Arrow type {other}",
                    self.name
                )));
            }
        })
    }
}

/// How many items a list's column holds past offset `last`.
fn list_len(values: &Values, last: usize) -> usize {
    values_len(values) - last
}

fn values_len(values: &Values) -> usize {
    match values {
        Values::Bool(v, _) => v.len(),
        Values::Int32(c, _) => c.values.len(),
        Values::Int64(c, _) => c.values.len(),
        Values::Timestamp(c) => c.values.len(),
        Values::UInt32(c) => c.values.len(),
        Values::UInt64(c) => c.values.len(),
        Values::Float32(c) => c.values.len(),
        Values::Float64(c) => c.values.len(),
        Values::String(c) | Values::Binary(c) | Values::Enum(c, _) => c.offsets.len() - 1,
        Values::Wrapper(_, _, inner) => values_len(inner),
        Values::Message(message) => message.len,
    }
}

/// One map entry's key as text and its value's wire value (the value's
/// default when the entry has none).
fn map_entry(
    entry: Range<usize>,
    buf: &[u8],
    key_kind: &Kind,
    value_wire: u8,
    values: &Values,
) -> Read<(String, Raw)> {
    let mut wire = Wire::new(buf, entry);
    let mut key = Raw::Absent;
    let mut value = Raw::Absent;
    while !wire.done() {
        let (number, wire_type) = wire.key()?;
        let expected = match number {
            1 => wire_type_of(key_kind),
            2 => value_wire,
            _ => {
                wire.value(number, wire_type)?;
                continue;
            }
        };
        if wire_type != expected {
            return corrupt(format!(
                "map entry field {number}: wire type {wire_type}, expected {expected}"
            ));
        }
        match (number, wire.value(number, wire_type)?) {
            (1, raw) => key = raw,
            (_, Raw::Bytes(range)) if values.merges() => value.merge(range),
            (_, raw) => value = raw,
        }
    }
    let key = match (key_kind, key) {
        (Kind::String, Raw::Bytes(range)) => match std::str::from_utf8(&buf[range]) {
            Ok(text) => text.to_owned(),
            Err(e) => return corrupt(format!("a map key that is not UTF-8: {e}")),
        },
        (Kind::String, _) => String::new(),
        (Kind::Bool, Raw::Varint(v)) => (v != 0).to_string(),
        (Kind::Bool, _) => "false".to_owned(),
        (Kind::Int32, Raw::Varint(v)) => (v as i32).to_string(),
        (Kind::Sint32, Raw::Varint(v)) => zigzag32(v).to_string(),
        (Kind::Sfixed32, Raw::Fixed32(v)) => (v as i32).to_string(),
        (Kind::Int64, Raw::Varint(v)) => (v as i64).to_string(),
        (Kind::Sint64, Raw::Varint(v)) => zigzag64(v).to_string(),
        (Kind::Sfixed64, Raw::Fixed64(v)) => (v as i64).to_string(),
        (Kind::Uint32, Raw::Varint(v)) => (v as u32).to_string(),
        (Kind::Fixed32, Raw::Fixed32(v)) => v.to_string(),
        (Kind::Uint64, Raw::Varint(v)) | (Kind::Fixed64, Raw::Fixed64(v)) => v.to_string(),
        _ => "0".to_owned(),
    };
    if matches!(value, Raw::Absent) {
        value = values.default_raw();
    }
    Ok((key, value))
}

/// Field numbers to columns.
#[derive(Debug)]
enum FieldIndex {
    /// Indexed by number, for numbers up to a few thousand.
    Dense(Vec<u32>),
    Sparse(HashMap<u32, u32>),
}

impl FieldIndex {
    fn new(numbers: &[u32]) -> Self {
        let max = numbers.iter().copied().max().unwrap_or(0) as usize;
        if max <= 4096 {
            let mut dense = vec![u32::MAX; max + 1];
            for (i, n) in numbers.iter().enumerate() {
                dense[*n as usize] = i as u32;
            }
            FieldIndex::Dense(dense)
        } else {
            FieldIndex::Sparse(
                numbers
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (*n, i as u32))
                    .collect(),
            )
        }
    }

    #[inline]
    fn get(&self, number: u32) -> Option<usize> {
        match self {
            FieldIndex::Dense(dense) => dense
                .get(number as usize)
                .filter(|i| **i != u32::MAX)
                .map(|i| *i as usize),
            FieldIndex::Sparse(sparse) => sparse.get(&number).map(|i| *i as usize),
        }
    }
}

/// The columns of a message's fields (a struct column when nested, the
/// batch's columns at the top), and the slots its singular fields are read
/// into before a row is appended.
#[derive(Debug)]
pub(crate) struct Struct {
    fields: Fields,
    columns: Vec<Column>,
    index: FieldIndex,
    slots: Vec<Raw>,
    /// The columns of each `oneof`.
    oneofs: Vec<Vec<usize>>,
    nulls: NullBufferBuilder,
    len: usize,
}

impl Struct {
    /// The columns of `message`, whose Arrow fields are `fields`.
    pub(crate) fn new(message: &MessageDescriptor, fields: &Fields) -> Result<Self, FormatError> {
        let descriptors: Vec<FieldDescriptor> = message.fields().collect();
        if descriptors.len() != fields.len() {
            return Err(FormatError::Schema(format!(
                "message {} has {} fields, its Arrow type {}",
                message.full_name(),
                descriptors.len(),
                fields.len()
            )));
        }
        let mut columns = descriptors
            .iter()
            .zip(fields.iter())
            .map(|(field, arrow)| Column::new(field, arrow))
            .collect::<Result<Vec<_>, _>>()?;
        let mut oneofs = Vec::new();
        for oneof in message.oneofs() {
            let members: Vec<usize> = oneof
                .fields()
                .filter_map(|f| descriptors.iter().position(|d| d.number() == f.number()))
                .collect();
            for &member in &members {
                columns[member].oneof = Some(oneofs.len());
            }
            oneofs.push(members);
        }
        let numbers: Vec<u32> = descriptors.iter().map(FieldDescriptor::number).collect();
        Ok(Struct {
            fields: fields.clone(),
            slots: vec![Raw::Absent; columns.len()],
            columns,
            index: FieldIndex::new(&numbers),
            oneofs,
            nulls: NullBufferBuilder::new(0),
            len: 0,
        })
    }

    /// Append the message in `buf[range]` as a row; a record that cannot
    /// be read appends nothing.
    pub(crate) fn append(&mut self, buf: &[u8], range: Range<usize>) -> Read<()> {
        let before = self.len;
        let outcome = self.push(std::slice::from_ref(&range), buf);
        if outcome.is_err() {
            self.truncate(before);
        }
        outcome
    }

    /// Forget the rows appended since the last finish.
    pub(crate) fn clear(&mut self) {
        self.truncate(0);
    }

    /// The columns of the rows appended so far, and their row count; the
    /// columns start again empty.
    pub(crate) fn finish_columns(&mut self) -> Result<(Vec<ArrayRef>, usize), FormatError> {
        let len = std::mem::take(&mut self.len);
        self.nulls.finish();
        let columns = self
            .columns
            .iter_mut()
            .map(Column::finish)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((columns, len))
    }

    fn finish(&mut self) -> Result<StructArray, FormatError> {
        let nulls = self.nulls.finish();
        let (columns, len) = self.finish_columns()?;
        StructArray::try_new_with_length(self.fields.clone(), columns, nulls, len)
            .map_err(schema_error)
    }

    /// Append one message given as `parts` (several when a message field
    /// came more than once: they merge).
    fn push(&mut self, parts: &[Range<usize>], buf: &[u8]) -> Read<()> {
        self.slots.fill(Raw::Absent);
        for part in parts {
            self.read(buf, part.clone())?;
        }
        for (i, column) in self.columns.iter_mut().enumerate() {
            let outcome = match &column.shape {
                Shape::Single { presence, default } => match &self.slots[i] {
                    Raw::Absent if *presence => {
                        column.values.push_null();
                        Ok(())
                    }
                    Raw::Absent => column.values.push(default, buf),
                    raw => column.values.push(raw, buf),
                },
                Shape::List { .. } | Shape::Map { .. } => column.close(buf),
            };
            outcome.map_err(|e| e.in_field(&column.name))?;
        }
        self.nulls.append_non_null();
        self.len += 1;
        Ok(())
    }

    /// Read the fields in `buf[range]` into the slots (singular fields),
    /// the item columns (lists) and the pending entries (maps).
    fn read(&mut self, buf: &[u8], range: Range<usize>) -> Read<()> {
        let mut wire = Wire::new(buf, range);
        while !wire.done() {
            let (number, wire_type) = wire.key()?;
            let Some(i) = self.index.get(number) else {
                wire.value(number, wire_type)?;
                continue;
            };
            let column = &mut self.columns[i];
            let mismatch = |name: &str, expected: u8| {
                Unreadable::Corrupt(format!(
                    "field {name}: wire type {wire_type}, expected {expected}"
                ))
            };
            match &mut column.shape {
                Shape::Single { .. } => {
                    if wire_type != column.wire {
                        return Err(mismatch(&column.name, column.wire));
                    }
                    let raw = wire.value(number, wire_type)?;
                    if let Some(oneof) = column.oneof {
                        for &other in &self.oneofs[oneof] {
                            if other != i {
                                self.slots[other] = Raw::Absent;
                            }
                        }
                    }
                    match raw {
                        Raw::Bytes(part) if column.values.merges() => self.slots[i].merge(part),
                        raw => self.slots[i] = raw,
                    }
                }
                Shape::List { packable, .. } => {
                    if wire_type == LEN && *packable {
                        let packed = wire.length_delimited()?;
                        let mut items = Wire::new(buf, packed);
                        while !items.done() {
                            let raw = items.value(number, column.wire)?;
                            column
                                .values
                                .push(&raw, buf)
                                .map_err(|e| e.in_field(&column.name))?;
                        }
                    } else if wire_type == column.wire {
                        let raw = wire.value(number, wire_type)?;
                        column
                            .values
                            .push(&raw, buf)
                            .map_err(|e| e.in_field(&column.name))?;
                    } else {
                        return Err(mismatch(&column.name, column.wire));
                    }
                }
                Shape::Map { entries, .. } => {
                    if wire_type != LEN {
                        return Err(mismatch(&column.name, column.wire));
                    }
                    entries.push(wire.length_delimited()?);
                }
            }
        }
        Ok(())
    }

    fn push_null(&mut self) {
        for column in &mut self.columns {
            column.push_null();
        }
        self.nulls.append_null();
        self.len += 1;
    }

    /// Cut every column back to `len` rows (also the columns a row that
    /// failed half-way reached).
    fn truncate(&mut self, len: usize) {
        for column in &mut self.columns {
            column.truncate(len);
        }
        self.nulls.truncate(len);
        self.len = len;
    }
}
