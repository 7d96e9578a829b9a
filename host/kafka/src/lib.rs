//! Kafka in and out, with the options PySpark users know.
//!
//! The source reads with librdkafka (auto-commit off: Sluice tracks the
//! offsets itself), assigns partitions from `subscribe`, `subscribePattern`
//! or `assign`, and yields Spark's Kafka columns: `key`, `value`, `topic`,
//! `partition`, `offset`, `timestamp`, `timestampType`, `headers`. The sink
//! is an idempotent producer, or part of the job's Kafka transaction for
//! exactly-once; a delivery error fails the write, nothing is dropped
//! silently.

mod options;
mod rows;
mod sink;
mod source;
mod transaction;

pub use options::{SourceOptions, StartingOffsets, Subscription};
pub use rows::kafka_schema;
pub use sink::{KafkaSink, sending_at_once};
pub use source::KafkaSource;
pub use transaction::{Transactions, epoch_of_metadata};

/// Why a Kafka source or sink failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// An option is missing or has a value that cannot be used.
    #[error("Kafka option `{option}`: {message}")]
    Option {
        /// The option's name.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// The broker or librdkafka reported an error.
    #[error("Kafka {operation}: {source}")]
    Client {
        /// What was being done.
        operation: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// Offsets to be read are gone (retention, or a recreated topic) and
    /// `failOnDataLoss` is true.
    #[error(
        "data loss on {topic}-{partition}: offset {expected} is not in the log, which now spans {low}..{high}; \
         set failOnDataLoss=false to continue from the earliest available offset"
    )]
    DataLoss {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The next offset Sluice meant to read.
        expected: i64,
        /// The partition's low watermark.
        low: i64,
        /// The partition's high watermark.
        high: i64,
    },
    /// Partitions read from no longer exist and `failOnDataLoss` is true.
    #[error(
        "data loss: {0} no longer exists (was the topic deleted?); set failOnDataLoss=false to go on without it"
    )]
    Vanished(String),
    /// The consumer hit an error no retry mends.
    #[error("Kafka consumer: {}; fix the job's credentials or ACLs", rdkafka::error::KafkaError::MessageConsumption(*.0))]
    Consumer(rdkafka::types::RDKafkaErrorCode),
    /// The job was asked to stop while it waited for the brokers.
    #[error("stopped while waiting for the Kafka brokers")]
    Stopped,
    /// A batch does not have the columns the sink needs.
    #[error("Kafka sink: {0}")]
    Rows(String),
    /// Records were not delivered.
    #[error("Kafka sink: {failed} records were not delivered to {topic}: {first_error}")]
    Delivery {
        /// The default topic.
        topic: String,
        /// Records that failed.
        failed: usize,
        /// The first failure.
        first_error: String,
    },
}

impl KafkaError {
    pub(crate) fn client(
        operation: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaError {
        let operation = operation.into();
        move |source| KafkaError::Client { operation, source }
    }
}
