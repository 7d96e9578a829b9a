//! Exactly-once into Kafka: one transactional producer per job, shared by
//! every Kafka sink of the job, whose transaction holds an epoch's output
//! (main sink, named outputs, dead letters and late rows) **and** the
//! source offsets the epoch ends at (`send_offsets_to_transaction`). Its
//! commit is the job's single commit point: on restart, the offsets the
//! group has committed name the checkpoint to restore.
//!
//! The `transactional.id` fences zombies: when a restarted job initialises
//! its transactions, the broker aborts whatever the previous incarnation
//! left open and refuses its further writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use sluice_source::Position;

use crate::KafkaError;
use crate::sink::{SharedProducer, producer_config};

/// How long transaction calls (init, commit, abort) may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The metadata of a transaction's offset commit that names its epoch.
const EPOCH_METADATA_PREFIX: &str = "sluice-epoch=";

/// A job's Kafka transactions.
pub struct Transactions {
    producer: Arc<SharedProducer>,
    bootstrap_servers: String,
    group: ConsumerGroupMetadata,
    open: bool,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Transactions {
    /// Create the transactional producer from a Kafka sink's options, with
    /// `transactional_id` (the sink's `kafka.transactional.id` wins), and
    /// fence any earlier producer with the same id.
    pub fn open(
        sink_options: &BTreeMap<String, String>,
        transactional_id: &str,
        group: ConsumerGroupMetadata,
    ) -> Result<Self, KafkaError> {
        let mut config = producer_config(sink_options)?;
        if config.get("transactional.id").is_none() {
            config.set("transactional.id", transactional_id);
        }
        let bootstrap_servers = config.get("bootstrap.servers").unwrap_or("").to_owned();
        let producer = SharedProducer::create(&config)?;
        producer
            .client
            .init_transactions(TRANSACTION_TIMEOUT)
            .map_err(KafkaError::client("initialising transactions"))?;
        Ok(Transactions {
            producer: Arc::new(producer),
            bootstrap_servers,
            group,
            open: false,
        })
    }

    /// The producer the job's Kafka sinks share.
    pub(crate) fn producer(&self) -> Arc<SharedProducer> {
        Arc::clone(&self.producer)
    }

    /// One transaction holds every output: they must be on one cluster.
    pub(crate) fn check_same_cluster(
        &self,
        options: &BTreeMap<String, String>,
    ) -> Result<(), KafkaError> {
        let servers = options
            .get("kafka.bootstrap.servers")
            .map_or("", String::as_str);
        if servers == self.bootstrap_servers {
            return Ok(());
        }
        Err(KafkaError::Option {
            option: "kafka.bootstrap.servers".into(),
            message: format!(
                "exactly-once writes every Kafka output in one transaction, so every output must be on the first sink's cluster ({}), not {servers}; or set checkpoint.delivery = \"at-least-once\"",
                self.bootstrap_servers
            ),
        })
    }

    /// Open the epoch's transaction, unless it is open already.
    pub fn begin(&mut self) -> Result<(), KafkaError> {
        if !self.open {
            self.producer
                .client
                .begin_transaction()
                .map_err(KafkaError::client("beginning a transaction"))?;
            self.open = true;
        }
        Ok(())
    }

    /// Commit the open transaction (opening one if none is), with the
    /// source positions the epoch ends at, as the group's offsets tagged
    /// with `epoch`.
    pub fn commit(&mut self, epoch: u64, positions: &[Position]) -> Result<(), KafkaError> {
        self.begin()?;
        let mut offsets = TopicPartitionList::new();
        for position in positions {
            let mut entry = offsets.add_partition(&position.topic, position.partition);
            entry
                .set_offset(Offset::Offset(position.offset))
                .map_err(KafkaError::client("preparing the offset commit"))?;
            entry.set_metadata(format!("{EPOCH_METADATA_PREFIX}{epoch}"));
        }
        let client = &self.producer.client;
        client
            .send_offsets_to_transaction(&offsets, &self.group, TRANSACTION_TIMEOUT)
            .map_err(KafkaError::client("adding the offsets to the transaction"))?;
        let committed = client.commit_transaction(TRANSACTION_TIMEOUT);
        // A failed commit leaves the transaction to abort.
        self.open = committed.is_err();
        committed.map_err(KafkaError::client("committing the transaction"))?;
        let failures = self.producer.take_failures();
        if let Some(first) = failures.first() {
            // librdkafka fails the commit when a record failed; this only
            // says which.
            tracing::warn!(failed = failures.len(), "deliveries failed: {first}");
        }
        Ok(())
    }

    /// Abort the open transaction: none of its records become visible to
    /// `read_committed` readers.
    pub fn abort(&mut self) -> Result<(), KafkaError> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        self.producer.take_failures();
        self.producer
            .client
            .abort_transaction(TRANSACTION_TIMEOUT)
            .map_err(KafkaError::client("aborting the transaction"))
    }
}

/// The epoch a committed offset's metadata names, if Sluice wrote it.
pub fn epoch_of_metadata(metadata: &str) -> Option<u64> {
    metadata.strip_prefix(EPOCH_METADATA_PREFIX)?.parse().ok()
}
