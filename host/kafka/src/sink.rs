//! The Kafka sink: an idempotent producer, or a share of the job's
//! transactional one ([`crate::Transactions`]). A batch is acknowledged in
//! the background while the next is read; a delivery failure fails a later
//! write, and `flush` (in a transaction, its commit) waits for every
//! acknowledgement.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use sluice_sink::{Sink, SinkError};

use crate::KafkaError;
use crate::options::client_settings;

/// How long a batch may take to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Collects delivery failures reported by librdkafka.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeliveryTracker {
    failures: Arc<Mutex<Vec<String>>>,
}

/// A producer and the failures of its deliveries: one per sink, or one
/// shared by every sink of a transactional job.
pub(crate) struct SharedProducer {
    pub(crate) client: BaseProducer<DeliveryTracker>,
    tracker: DeliveryTracker,
}

impl SharedProducer {
    /// Create a producer with these librdkafka settings.
    pub(crate) fn create(config: &ClientConfig) -> Result<Self, KafkaError> {
        let tracker = DeliveryTracker::default();
        let client = config
            .create_with_context(tracker.clone())
            .map_err(KafkaError::client("creating the producer"))?;
        Ok(SharedProducer { client, tracker })
    }

    /// The failures reported since the last call.
    pub(crate) fn take_failures(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .tracker
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(error.to_string());
        }
    }
}

/// Produces rows to Kafka. Columns: `value` (binary or utf8, required),
/// `key` (binary or utf8), `headers` (list of struct key/value),
/// `partition` (int32), `topic` (utf8; else the `topic` option). With
/// `valueFormat = "json"`, the value is instead the row's other columns as
/// a JSON object (Spark's `to_json(struct(*))`).
pub struct KafkaSink {
    producer: Arc<SharedProducer>,
    topic: Option<String>,
    value_as_json: bool,
    /// Whether it writes in the job's transaction, whose commit waits for
    /// every acknowledgement.
    transactional: bool,
    /// Prefixes of the topics rows may go to; `None`: any topic.
    allowed_topics: Option<Vec<String>>,
}

/// Columns that describe the Kafka record rather than its JSON value.
const RECORD_COLUMNS: &[&str] = &["key", "headers", "partition", "topic"];

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Create the idempotent producer.
    pub fn open(options: &BTreeMap<String, String>) -> Result<Self, KafkaError> {
        let config = producer_config(options)?;
        let producer = Arc::new(SharedProducer::create(&config)?);
        Self::with_producer(options, producer, false)
    }

    /// A sink that writes through the job's transactional producer: what
    /// it writes becomes visible when the job's transaction commits.
    pub fn open_in(
        options: &BTreeMap<String, String>,
        transactions: &crate::Transactions,
    ) -> Result<Self, KafkaError> {
        transactions.check_same_cluster(options)?;
        Self::with_producer(options, transactions.producer(), true)
    }

    fn with_producer(
        options: &BTreeMap<String, String>,
        producer: Arc<SharedProducer>,
        transactional: bool,
    ) -> Result<Self, KafkaError> {
        let value_as_json = match options.get("valueFormat").map(String::as_str) {
            None | Some("column") => false,
            Some("json") => true,
            Some(other) => {
                return Err(KafkaError::Option {
                    option: "valueFormat".into(),
                    message: format!("{other:?} is not column or json"),
                });
            }
        };
        Ok(KafkaSink {
            producer,
            topic: options.get("topic").cloned(),
            value_as_json,
            transactional,
            allowed_topics: None,
        })
    }

    /// Refuse rows for topics that start with none of `prefixes` (a
    /// tenant's allow-list): writing them fails, naming the topic.
    pub fn allow_only_topics(&mut self, prefixes: Vec<String>) {
        self.allowed_topics = Some(prefixes);
    }

    fn produce(&mut self, batch: &RecordBatch) -> Result<(), KafkaError> {
        let with_json;
        let batch = if self.value_as_json {
            with_json = with_json_value(batch)?;
            &with_json
        } else {
            batch
        };
        let rows = RowsToProduce::new(batch, self.topic.as_deref())?;
        for row in 0..batch.num_rows() {
            let topic = rows.topic(row);
            if let Some(prefixes) = &self.allowed_topics
                && !prefixes
                    .iter()
                    .any(|prefix| topic.starts_with(prefix.as_str()))
            {
                return Err(KafkaError::Rows(format!(
                    "row {row} is for topic {topic:?}, which is not on the allow-list"
                )));
            }
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
            if let Some(value) = rows.value(row) {
                record = record.payload(value);
            }
            if let Some(key) = rows.key(row) {
                record = record.key(key);
            }
            if let Some(partition) = rows.partition(row) {
                record = record.partition(partition);
            }
            if let Some(headers) = rows.headers(row) {
                record = record.headers(headers);
            }
            loop {
                match self.producer.client.send(record) {
                    Ok(()) => break,
                    Err((
                        ClientError::MessageProduction(RDKafkaErrorCode::QueueFull),
                        returned,
                    )) => {
                        self.producer.client.poll(Duration::from_millis(1));
                        record = returned;
                    }
                    Err((error, _)) => {
                        return Err(KafkaError::client(format!("producing to {topic}"))(error));
                    }
                }
            }
        }
        // Serve delivery reports without waiting: this batch is acknowledged
        // in the background while the next one is read and processed.
        self.producer.client.poll(Duration::ZERO);
        self.check_deliveries()
    }

    /// Wait for every record sent so far to be acknowledged.
    fn flush_all(&mut self) -> Result<(), KafkaError> {
        self.producer
            .client
            .flush(FLUSH_TIMEOUT)
            .map_err(KafkaError::client("waiting for acknowledgements"))?;
        self.check_deliveries()
    }

    /// Fail if librdkafka reported any record as not delivered.
    fn check_deliveries(&self) -> Result<(), KafkaError> {
        let failures = self.producer.take_failures();
        match failures.first() {
            None => Ok(()),
            Some(first_error) => Err(KafkaError::Delivery {
                topic: self
                    .topic
                    .clone()
                    .unwrap_or_else(|| "(per-row topics)".into()),
                failed: failures.len(),
                first_error: first_error.clone(),
            }),
        }
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.produce(batch).map_err(|e| SinkError::Write {
            what: "Kafka".into(),
            message: e.to_string(),
        })
    }

    /// Wait for every acknowledgement; in a transaction, whose commit
    /// waits for them, only report the failures seen so far.
    fn flush(&mut self) -> Result<(), SinkError> {
        let flushed = if self.transactional {
            self.producer.client.poll(Duration::ZERO);
            self.check_deliveries()
        } else {
            self.flush_all()
        };
        flushed.map_err(|e| SinkError::Write {
            what: "Kafka".into(),
            message: e.to_string(),
        })
    }

    /// Only the transaction's writes wait: an idempotent producer's
    /// records are visible as soon as they are acknowledged.
    fn waits_for_commits(&self) -> bool {
        self.transactional
    }
}

/// The producer queue's bound, KiB, unless a job sets
/// `kafka.queue.buffering.max.kbytes`: librdkafka's own default is 1 GiB per
/// producer; a full queue makes the sink wait for deliveries instead.
const QUEUE_KBYTES: &str = "65536";

/// librdkafka settings of a producer for a sink's options: the `kafka.*`
/// options, idempotence, and a bounded queue.
pub(crate) fn producer_config(
    options: &BTreeMap<String, String>,
) -> Result<ClientConfig, KafkaError> {
    let client = client_settings(options, &["topic", "valueFormat"])?;
    let mut config = ClientConfig::new();
    config.set("queue.buffering.max.kbytes", QUEUE_KBYTES);
    for (key, value) in &client {
        config.set(key, value);
    }
    config.set("enable.idempotence", "true");
    Ok(config)
}

/// The librdkafka names of a producer's linger, as sink options.
const LINGER_OPTIONS: [&str; 2] = ["kafka.linger.ms", "kafka.queue.buffering.max.ms"];

/// A sink's options for a real-time job: each record is sent as soon as
/// it is written (`linger.ms` 0, where librdkafka waits 5 ms to fill a
/// request), unless the job sets a linger of its own.
pub fn sending_at_once(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut options = options.clone();
    if !LINGER_OPTIONS.iter().any(|key| options.contains_key(*key)) {
        options.insert(LINGER_OPTIONS[0].to_owned(), "0".to_owned());
    }
    options
}

/// `batch` with a `value` column holding each row's other columns as JSON.
fn with_json_value(batch: &RecordBatch) -> Result<RecordBatch, KafkaError> {
    let schema = batch.schema();
    let data: Vec<usize> = (0..batch.num_columns())
        .filter(|&i| {
            !RECORD_COLUMNS.contains(&schema.field(i).name().as_str())
                && schema.field(i).name() != "value"
        })
        .collect();
    let projected = batch
        .project(&data)
        .map_err(|e| KafkaError::Rows(e.to_string()))?;
    let mut lines = Vec::new();
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut lines);
    writer
        .write(&projected)
        .and_then(|()| writer.finish())
        .map_err(|e| KafkaError::Rows(e.to_string()))?;
    drop(writer);
    let values: arrow::array::StringArray = std::str::from_utf8(&lines)
        .map_err(|e| KafkaError::Rows(e.to_string()))?
        .lines()
        .map(Some)
        .collect();
    if values.len() != batch.num_rows() {
        return Err(KafkaError::Rows(format!(
            "JSON encoding gave {} lines for {} rows",
            values.len(),
            batch.num_rows()
        )));
    }
    let mut fields: Vec<arrow::datatypes::FieldRef> = Vec::new();
    let mut columns: Vec<arrow::array::ArrayRef> = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if RECORD_COLUMNS.contains(&field.name().as_str()) {
            fields.push(field.clone());
            columns.push(batch.column(i).clone());
        }
    }
    fields.push(Arc::new(arrow::datatypes::Field::new(
        "value",
        DataType::Utf8,
        false,
    )));
    columns.push(Arc::new(values));
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(|e| KafkaError::Rows(e.to_string()))
}

/// Typed access to the columns a Kafka record is made of.
struct RowsToProduce<'a> {
    value: &'a dyn Array,
    key: Option<&'a dyn Array>,
    partition: Option<&'a arrow::array::Int32Array>,
    topic_column: Option<&'a arrow::array::StringArray>,
    headers: Option<&'a arrow::array::ListArray>,
    default_topic: Option<&'a str>,
}

fn bytes_at(array: &dyn Array, row: usize) -> Option<&[u8]> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Binary => Some(array.as_binary::<i32>().value(row)),
        DataType::Utf8 => Some(array.as_string::<i32>().value(row).as_bytes()),
        _ => None,
    }
}

impl<'a> RowsToProduce<'a> {
    fn new(batch: &'a RecordBatch, default_topic: Option<&'a str>) -> Result<Self, KafkaError> {
        let bytes_column = |name: &str| -> Result<Option<&'a dyn Array>, KafkaError> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(c) if matches!(c.data_type(), DataType::Binary | DataType::Utf8) => {
                    Ok(Some(c.as_ref()))
                }
                Some(c) => Err(KafkaError::Rows(format!(
                    "column `{name}` is {}, not binary or utf8",
                    c.data_type()
                ))),
            }
        };
        let value = bytes_column("value")?
            .ok_or_else(|| KafkaError::Rows("the batch has no `value` column".into()))?;
        let partition = match batch.column_by_name("partition") {
            None => None,
            Some(c) => Some(c.as_primitive_opt().ok_or_else(|| {
                KafkaError::Rows(format!(
                    "column `partition` is {}, not int32",
                    c.data_type()
                ))
            })?),
        };
        let topic_column = match batch.column_by_name("topic") {
            None => None,
            Some(c) => Some(c.as_string_opt().ok_or_else(|| {
                KafkaError::Rows(format!("column `topic` is {}, not utf8", c.data_type()))
            })?),
        };
        if topic_column.is_none() && default_topic.is_none() {
            return Err(KafkaError::Rows(
                "set the `topic` option or give the batch a `topic` column".into(),
            ));
        }
        let headers = match batch.column_by_name("headers") {
            None => None,
            Some(c) => {
                let list = c.as_list_opt::<i32>().filter(|l| {
                    matches!(l.values().data_type(), DataType::Struct(f) if f.len() == 2
                        && f[0].data_type() == &DataType::Utf8 && f[1].data_type() == &DataType::Binary)
                });
                Some(list.ok_or_else(|| {
                    KafkaError::Rows(format!(
                        "column `headers` is {}, not list<struct<key: utf8, value: binary>>",
                        c.data_type()
                    ))
                })?)
            }
        };
        Ok(RowsToProduce {
            value,
            key: bytes_column("key")?,
            partition,
            topic_column,
            headers,
            default_topic,
        })
    }

    fn topic(&self, row: usize) -> &'a str {
        match self.topic_column {
            // An explicit `topic` option wins over the column, as in Spark.
            Some(column) if self.default_topic.is_none() && column.is_valid(row) => {
                column.value(row)
            }
            _ => self.default_topic.unwrap_or_default(),
        }
    }

    fn value(&self, row: usize) -> Option<&'a [u8]> {
        bytes_at(self.value, row)
    }

    fn key(&self, row: usize) -> Option<&'a [u8]> {
        self.key.and_then(|k| bytes_at(k, row))
    }

    fn partition(&self, row: usize) -> Option<i32> {
        self.partition
            .filter(|p| p.is_valid(row))
            .map(|p| p.value(row))
    }

    fn headers(&self, row: usize) -> Option<OwnedHeaders> {
        let list = self.headers.filter(|h| h.is_valid(row))?;
        if list.value_length(row) == 0 {
            return None;
        }
        let entries = list.value(row);
        let entries = entries.as_struct();
        let (keys, values) = (
            entries.column(0).as_string::<i32>(),
            entries.column(1).as_binary::<i32>(),
        );
        let mut headers = OwnedHeaders::new_with_capacity(entries.len());
        for i in 0..entries.len() {
            let value = values.is_valid(i).then(|| values.value(i));
            headers = headers.insert(Header {
                key: keys.value(i),
                value,
            });
        }
        Some(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        [("kafka.bootstrap.servers", "b:9092"), ("topic", "t")]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_producer_queue_is_bounded_unless_the_job_sets_it() {
        let config = producer_config(&options(&[])).unwrap();
        assert_eq!(config.get("queue.buffering.max.kbytes"), Some("65536"));
        let config =
            producer_config(&options(&[("kafka.queue.buffering.max.kbytes", "1024")])).unwrap();
        assert_eq!(config.get("queue.buffering.max.kbytes"), Some("1024"));
    }

    #[test]
    fn a_real_time_producer_does_not_linger_unless_the_job_says_so() {
        let config = producer_config(&sending_at_once(&options(&[]))).unwrap();
        assert_eq!(config.get("linger.ms"), Some("0"));
        for key in LINGER_OPTIONS {
            let config = producer_config(&sending_at_once(&options(&[(key, "20")]))).unwrap();
            let set = key.strip_prefix("kafka.").unwrap();
            assert_eq!(config.get(set), Some("20"));
            assert_eq!(config.get("linger.ms").filter(|_| set != "linger.ms"), None);
        }
    }
}
