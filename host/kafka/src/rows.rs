//! Spark's Kafka columns, built from consumed records.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use rdkafka::Timestamp;
use rdkafka::bindings::{rd_kafka_header_get_all, rd_kafka_message_headers};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;

/// A record's headers as bytes. A producer may send any bytes as a header
/// key; rdkafka's `Headers` reads keys as UTF-8 and panics on anything else,
/// so they are read through librdkafka here, and a key that is not UTF-8
/// becomes text with U+FFFD in its place, as the Java client decodes it.
fn raw_headers<'m>(message: &'m BorrowedMessage<'_>) -> Vec<(&'m [u8], Option<&'m [u8]>)> {
    let mut headers = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is a live message while `message` is
    // borrowed; librdkafka hands back headers the message owns.
    let found = unsafe { rd_kafka_message_headers(message.ptr(), &mut headers) };
    if found != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    let mut all = Vec::new();
    for index in 0.. {
        let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0usize);
        // SAFETY: `headers` is the message's; on success, `name` is a
        // NUL-terminated string and `value` `size` bytes (or null), both
        // owned by the message, so they live as long as the borrow `'m`.
        let (key, value) = unsafe {
            let got = rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size);
            if got != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                break;
            }
            let key = std::ffi::CStr::from_ptr(name).to_bytes();
            let value =
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size));
            (key, value)
        };
        all.push((key, value));
    }
    all
}

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// The schema of rows from a Kafka source: Spark's Kafka columns, `value`
/// as binary (`valueFormat = "string"` is a decode of the job's).
/// `timestampType` is 0 for create time, 1 for log-append time, -1 when the
/// record has none.
pub fn kafka_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            true,
        ),
        Field::new("timestampType", DataType::Int32, false),
        Field::new(
            "headers",
            DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(header_fields()),
                true,
            ))),
            true,
        ),
    ]))
}

/// Accumulates consumed records into Spark's Kafka columns.
#[derive(Debug)]
pub(crate) struct RowBuilder {
    schema: SchemaRef,
    key: BinaryBuilder,
    value: BinaryBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMillisecondBuilder,
    timestamp_type: Int32Builder,
    headers: ListBuilder<StructBuilder>,
    rows: usize,
    /// Record data pushed since the last batch ([`record_bytes`]).
    bytes: u64,
}

/// The bytes of record data a message adds to a batch: its key, value,
/// topic and headers. Binary columns hold at most `i32::MAX` bytes, so a
/// batch must be cut before its records pass that.
pub(crate) fn record_bytes(message: &BorrowedMessage<'_>) -> u64 {
    let len = |bytes: Option<&[u8]>| bytes.map_or(0, <[u8]>::len) as u64;
    let headers: u64 = raw_headers(message)
        .into_iter()
        .map(|(key, value)| key.len() as u64 + len(value))
        .sum();
    len(message.key()) + len(message.payload()) + message.topic().len() as u64 + headers
}

impl RowBuilder {
    pub(crate) fn new() -> Self {
        RowBuilder {
            schema: kafka_schema(),
            key: BinaryBuilder::new(),
            value: BinaryBuilder::new(),
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMillisecondBuilder::new().with_timezone("+00:00"),
            timestamp_type: Int32Builder::new(),
            headers: ListBuilder::new(StructBuilder::from_fields(header_fields(), 0)),
            rows: 0,
            bytes: 0,
        }
    }

    /// Rows pushed since the last batch.
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Record data pushed since the last batch.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Add a record, `bytes` its [`record_bytes`].
    pub(crate) fn push(&mut self, message: &BorrowedMessage<'_>, bytes: u64) {
        self.key.append_option(message.key());
        self.value.append_option(message.payload());
        self.topic.append_value(message.topic());
        self.partition.append_value(message.partition());
        self.offset.append_value(message.offset());
        let (timestamp, kind) = match message.timestamp() {
            Timestamp::NotAvailable => (None, -1),
            Timestamp::CreateTime(ms) => (Some(ms), 0),
            Timestamp::LogAppendTime(ms) => (Some(ms), 1),
        };
        self.timestamp.append_option(timestamp);
        self.timestamp_type.append_value(kind);
        let entries = self.headers.values();
        for (key, value) in raw_headers(message) {
            entries
                .field_builder::<StringBuilder>(0)
                .expect("header key builder")
                .append_value(String::from_utf8_lossy(key));
            entries
                .field_builder::<BinaryBuilder>(1)
                .expect("header value builder")
                .append_option(value);
            entries.append(true);
        }
        self.headers.append(true);
        self.rows += 1;
        self.bytes += bytes;
    }

    /// The rows pushed so far, as a batch; the builder starts over.
    pub(crate) fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.timestamp_type.finish()),
            Arc::new(self.headers.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), columns).expect("builders match the Kafka schema")
    }
}
