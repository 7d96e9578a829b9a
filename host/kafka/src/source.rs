//! The Kafka source.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::Message;
use rdkafka::metadata::MetadataTopic;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_source::{Chunk, Position, Room, Source, SourceError};

use crate::KafkaError;
use crate::options::{SourceOptions, StartingOffsets, Subscription};
use crate::rows::{RowBuilder, kafka_schema, record_bytes};

/// How long a metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt to reach the brokers at start may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Retry backoff while the brokers cannot be reached at start.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a wait for the brokers looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How often librdkafka reports the ends of the partitions (its
/// statistics), unless the job sets `kafka.statistics.interval.ms`.
const STATISTICS_INTERVAL_MS: &str = "1000";

type Partition = (String, i32);

/// Keeps the end of each partition from librdkafka's statistics, which
/// the consumer's polls deliver: the high watermark, or with
/// `read_committed` the last stable offset.
struct PartitionEnds {
    ends: Arc<Mutex<BTreeMap<Partition, i64>>>,
    read_committed: bool,
}

impl ClientContext for PartitionEnds {
    fn stats(&self, statistics: Statistics) {
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, stats) in statistics.topics {
            for (partition, stats) in stats.partitions {
                let end = if self.read_committed {
                    stats.ls_offset
                } else {
                    stats.hi_offset
                };
                let key = (topic.clone(), partition);
                // Partitions not fetched from yet report a negative offset.
                if end >= 0 && ends.contains_key(&key) {
                    ends.insert(key, end);
                }
            }
        }
    }
}

impl ConsumerContext for PartitionEnds {}

/// Reads Kafka records into Spark's Kafka columns. Offsets are tracked
/// here, not committed to Kafka.
pub struct KafkaSource {
    consumer: BaseConsumer<PartitionEnds>,
    /// The end of every assigned partition, as the consumer last heard.
    ends: Arc<Mutex<BTreeMap<Partition, i64>>>,
    options: SourceOptions,
    /// The next offset to read of every assigned partition, after the
    /// rows handed out.
    positions: BTreeMap<Partition, i64>,
    /// The positions after the rows in `builder`, not yet handed out.
    buffered: BTreeMap<Partition, i64>,
    /// With available-now: the end of every partition when the job started.
    end_offsets: Option<BTreeMap<Partition, i64>>,
    builder: RowBuilder,
    last_refresh: Instant,
    data_loss_events: u64,
    /// Whether the consumer has been given the partitions.
    assigned: bool,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("subscription", &self.options.subscription)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// Connect (retrying with backoff while no broker answers), assign the
    /// partitions and resolve the starting offsets. With `available_now`,
    /// the source ends at the partitions' ends as of now.
    ///
    /// Partitions are assigned by hand, never through a group rebalance,
    /// so a killed process leaves no group membership behind. The group
    /// (`kafka.group.id`, else `default_group_id`) only holds the offsets
    /// a job commits in its Kafka transactions.
    ///
    /// Setting `stop` while no broker answers ends the wait with
    /// [`KafkaError::Stopped`].
    pub fn open(
        options: &BTreeMap<String, String>,
        available_now: bool,
        default_group_id: &str,
        stop: &AtomicBool,
    ) -> Result<Self, KafkaError> {
        let options = SourceOptions::parse(options)?;
        let mut config = ClientConfig::new();
        for (key, value) in &options.client {
            config.set(key, value);
        }
        if !options.client.contains_key("group.id") {
            config.set("group.id", default_group_id);
        }
        if !options.client.contains_key("queued.max.messages.kbytes") {
            config.set(
                "queued.max.messages.kbytes",
                (options.max_bytes_in_flight / 1024).max(1).to_string(),
            );
        }
        if !options.client.contains_key("statistics.interval.ms") {
            config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        }
        // librdkafka reads committed records only unless told otherwise.
        let read_committed = options
            .client
            .get("isolation.level")
            .is_none_or(|level| level == "read_committed");
        let ends = Arc::new(Mutex::new(BTreeMap::new()));
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            .set("enable.partition.eof", "false");
        let consumer = config
            .create_with_context(PartitionEnds {
                ends: Arc::clone(&ends),
                read_committed,
            })
            .map_err(KafkaError::client("creating the consumer"))?;
        let builder = RowBuilder::new();
        let mut source = KafkaSource {
            consumer,
            ends,
            options,
            positions: BTreeMap::new(),
            buffered: BTreeMap::new(),
            end_offsets: None,
            builder,
            last_refresh: Instant::now(),
            data_loss_events: 0,
            assigned: false,
        };
        source.wait_for_brokers(stop)?;
        let mut ends = BTreeMap::new();
        for partition in source.discover()? {
            let (low, high) = source.watermarks(&partition)?;
            let offset = source.starting_offset(&partition, low, high)?;
            let offset = source.check_available(&partition, offset, low, high)?;
            source.positions.insert(partition.clone(), offset);
            source.ends_mut().insert(partition.clone(), high);
            ends.insert(partition, high);
        }
        // Assigned at the first poll, after a checkpoint's offsets (if
        // any) have been applied: assigning twice in quick succession trips
        // an assertion in librdkafka.
        if available_now {
            source.end_offsets = Some(ends);
        }
        tracing::info!(partitions = source.positions.len(), "Kafka source assigned");
        Ok(source)
    }

    /// The offsets the consumer group has committed for the assigned
    /// partitions, with each commit's metadata; partitions without a
    /// committed offset are left out.
    pub fn committed(&self) -> Result<Vec<(Position, String)>, KafkaError> {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in self.positions.keys() {
            list.add_partition(topic, *partition);
        }
        let committed = self
            .consumer
            .committed_offsets(list, REQUEST_TIMEOUT)
            .map_err(KafkaError::client("reading the group's committed offsets"))?;
        let found = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((
                    Position {
                        topic: e.topic().to_owned(),
                        partition: e.partition(),
                        offset,
                    },
                    e.metadata().to_owned(),
                )),
                _ => None,
            })
            .collect();
        // Drop the list before the consumer can be dropped (TOOLCHAIN.md:
        // dropping a consumer while it lives hangs).
        drop(committed);
        Ok(found)
    }

    /// The consumer group's metadata, which a transaction's offset commit
    /// needs (`send_offsets_to_transaction`).
    pub fn group_metadata(&self) -> Result<ConsumerGroupMetadata, KafkaError> {
        self.consumer
            .group_metadata()
            .ok_or_else(|| KafkaError::Option {
                option: "kafka.group.id".into(),
                message: "the consumer has no group metadata".into(),
            })
    }

    /// Data-loss events seen and skipped (with `failOnDataLoss=false`).
    pub fn data_loss_events(&self) -> u64 {
        self.data_loss_events
    }

    /// Block until a broker answers a metadata request, retrying with
    /// exponential backoff and saying so in the log.
    fn wait_for_brokers(&self, stop: &AtomicBool) -> Result<(), KafkaError> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(KafkaError::Stopped);
            }
            match self.consumer.fetch_metadata(None, CONNECT_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(error) => {
                    tracing::error!(
                        brokers = self.options.client.get("bootstrap.servers").map(String::as_str).unwrap_or(""),
                        retry_in = ?backoff,
                        "cannot reach Kafka: {error}"
                    );
                    let retry_at = Instant::now() + backoff;
                    while Instant::now() < retry_at && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(STOP_POLL.min(retry_at - Instant::now()));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Every partition the subscription names, per current metadata. A
    /// list of topics asks for those topics only: a cluster's metadata for
    /// every topic can be large, and this runs on the job's thread.
    fn discover(&self) -> Result<Vec<Partition>, KafkaError> {
        let mut partitions = Vec::new();
        match &self.options.subscription {
            Subscription::Partitions(assigned) => {
                for (topic, ids) in assigned {
                    partitions.extend(ids.iter().map(|p| (topic.clone(), *p)));
                }
            }
            Subscription::Topics(topics) => {
                for name in topics {
                    let metadata = self
                        .consumer
                        .fetch_metadata(Some(name), REQUEST_TIMEOUT)
                        .map_err(KafkaError::client("fetching metadata"))?;
                    match metadata
                        .topics()
                        .iter()
                        .find(|t| t.name() == name && t.error().is_none())
                    {
                        Some(topic) => partitions.extend(partitions_of(topic)),
                        None => {
                            tracing::warn!(topic = %name, "subscribed topic does not exist (yet)");
                        }
                    }
                }
            }
            Subscription::Pattern(pattern) => {
                let metadata = self
                    .consumer
                    .fetch_metadata(None, REQUEST_TIMEOUT)
                    .map_err(KafkaError::client("fetching metadata"))?;
                let regex = regex::Regex::new(pattern).map_err(|e| KafkaError::Option {
                    option: "subscribePattern".into(),
                    message: e.to_string(),
                })?;
                for topic in metadata
                    .topics()
                    .iter()
                    .filter(|t| regex.is_match(t.name()))
                {
                    partitions.extend(partitions_of(topic));
                }
            }
        }
        Ok(partitions)
    }

    fn ends_mut(&self) -> std::sync::MutexGuard<'_, BTreeMap<Partition, i64>> {
        self.ends.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn watermarks(&self, (topic, partition): &Partition) -> Result<(i64, i64), KafkaError> {
        self.consumer
            .fetch_watermarks(topic, *partition, REQUEST_TIMEOUT)
            .map_err(KafkaError::client(format!(
                "reading the offsets of {topic}-{partition}"
            )))
    }

    /// The concrete offset `startingOffsets`/`startingTimestamp` gives, for
    /// a partition whose log spans `low..high`.
    fn starting_offset(
        &self,
        partition: &Partition,
        low: i64,
        high: i64,
    ) -> Result<i64, KafkaError> {
        Ok(match &self.options.starting_offsets {
            StartingOffsets::Earliest => low,
            StartingOffsets::Latest => high,
            StartingOffsets::Offsets(offsets) => {
                match offsets.get(&partition.0).and_then(|p| p.get(&partition.1)) {
                    Some(-2) => low,
                    Some(-1) | None => high,
                    Some(offset) => *offset,
                }
            }
            StartingOffsets::Timestamp(ms) => {
                let mut query = TopicPartitionList::new();
                query
                    .add_partition_offset(&partition.0, partition.1, Offset::Offset(*ms))
                    .map_err(KafkaError::client("preparing a timestamp lookup"))?;
                let found = self
                    .consumer
                    .offsets_for_times(query, REQUEST_TIMEOUT)
                    .map_err(KafkaError::client("looking up offsets by timestamp"))?;
                match found
                    .find_partition(&partition.0, partition.1)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(offset)) => offset,
                    _ => high,
                }
            }
        })
    }

    /// Point the consumer at the current positions. Rows buffered past
    /// them are dropped: they will be read again.
    fn assign(&mut self) -> Result<(), KafkaError> {
        self.discard_buffered();
        self.assigned = true;
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.positions {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(KafkaError::client("preparing the assignment"))?;
        }
        self.consumer
            .assign(&list)
            .map_err(KafkaError::client("assigning partitions"))
    }

    /// Pick up partitions (and, for a pattern, topics) created since the
    /// job started; they are read from their earliest offset.
    fn refresh_partitions(&mut self) -> Result<(), KafkaError> {
        self.last_refresh = Instant::now();
        let mut added = false;
        for partition in self.discover()? {
            if !self.positions.contains_key(&partition) {
                let (low, high) = self.watermarks(&partition)?;
                tracing::info!(topic = %partition.0, partition = partition.1, "new partition");
                self.ends_mut().insert(partition.clone(), high);
                self.positions.insert(partition, low);
                added = true;
            }
        }
        if added { self.assign() } else { Ok(()) }
    }

    /// `offset`, when the partition's log (`low..high`) still holds it;
    /// otherwise the offsets asked for are gone (retention, a recreated
    /// topic): fail, or go on from the earliest available offset, per
    /// `failOnDataLoss`.
    fn check_available(
        &mut self,
        (topic, partition): &Partition,
        offset: i64,
        low: i64,
        high: i64,
    ) -> Result<i64, KafkaError> {
        if (low..=high).contains(&offset) {
            return Ok(offset);
        }
        if self.options.fail_on_data_loss {
            return Err(KafkaError::DataLoss {
                topic: topic.clone(),
                partition: *partition,
                expected: offset,
                low,
                high,
            });
        }
        tracing::warn!(%topic, partition, expected = offset, low, high, "data loss: continuing from the earliest available offset");
        self.data_loss_events += 1;
        Ok(low)
    }

    /// A partition's offsets are gone: fail, or continue from the earliest
    /// available offset, per `failOnDataLoss`.
    fn handle_offset_out_of_range(&mut self) -> Result<(), KafkaError> {
        let positions: Vec<(Partition, i64)> = self
            .positions
            .iter()
            .map(|(p, o)| (p.clone(), *o))
            .collect();
        for (partition, position) in positions {
            let (low, high) = self.watermarks(&partition)?;
            let position = self.check_available(&partition, position, low, high)?;
            self.positions.insert(partition, position);
        }
        self.assign()
    }

    fn finished(&self) -> bool {
        self.builder.len() == 0
            && self.end_offsets.as_ref().is_some_and(|ends| {
                ends.iter()
                    .all(|(partition, end)| self.positions.get(partition).is_none_or(|p| p >= end))
            })
    }

    fn poll_chunk(&mut self, room: Room, max_wait: Duration) -> Result<Chunk, KafkaError> {
        if self.finished() {
            return Ok(Chunk::End);
        }
        if !self.assigned {
            self.assign()?;
        }
        if self.end_offsets.is_none()
            && !matches!(self.options.subscription, Subscription::Partitions(_))
            && self.last_refresh.elapsed() >= self.options.partition_refresh
        {
            self.refresh_partitions()?;
        }
        // A binary column holds at most i32::MAX bytes.
        let max_bytes = room.bytes.min(i32::MAX as u64);
        // A record held over from the last chunk is ready now.
        let mut wait = if self.builder.len() > 0 {
            Duration::ZERO
        } else {
            max_wait
        };
        while self.builder.len() < room.rows {
            let Some(result) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match result {
                Ok(message) => {
                    let key = (message.topic().to_owned(), message.partition());
                    let end = self
                        .end_offsets
                        .as_ref()
                        .and_then(|ends| ends.get(&key))
                        .copied();
                    if end.is_some_and(|end| message.offset() >= end) {
                        continue;
                    }
                    let bytes = record_bytes(&message);
                    if self.builder.len() > 0 && self.builder.bytes() + bytes > max_bytes {
                        // Full: hand out what is here; this record starts
                        // the next chunk.
                        self.positions.append(&mut self.buffered);
                        let chunk = self.builder.finish();
                        self.builder.push(&message, bytes);
                        self.buffered.insert(key, message.offset() + 1);
                        return Ok(Chunk::Rows(chunk));
                    }
                    self.builder.push(&message, bytes);
                    self.buffered.insert(key, message.offset() + 1);
                }
                Err(ClientError::MessageConsumption(
                    RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange,
                )) => {
                    self.handle_offset_out_of_range()?;
                }
                Err(ClientError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition,
                )) => {
                    // Maybe a partition is gone, maybe metadata is behind.
                    self.drop_vanished_partitions()?;
                    break;
                }
                Err(ClientError::MessageConsumption(code)) if is_permanent(code) => {
                    return Err(KafkaError::Consumer(code));
                }
                Err(error) => {
                    // librdkafka reconnects by itself; say what happened and go on.
                    tracing::warn!("Kafka consumer: {error}");
                    break;
                }
            }
        }
        if self.builder.len() > 0 {
            Ok(Chunk::Rows(self.finish_chunk()))
        } else if self.finished() {
            Ok(Chunk::End)
        } else {
            Ok(Chunk::Idle)
        }
    }

    /// Partitions read from that the cluster no longer has (their topic was
    /// deleted) fail the job, or with `failOnDataLoss=false` are dropped:
    /// a job never waits for them forever.
    fn drop_vanished_partitions(&mut self) -> Result<(), KafkaError> {
        let topics: std::collections::BTreeSet<String> = self
            .positions
            .keys()
            .map(|(topic, _)| topic.clone())
            .collect();
        let mut vanished = Vec::new();
        for topic in topics {
            let metadata = self
                .consumer
                .fetch_metadata(Some(&topic), REQUEST_TIMEOUT)
                .map_err(KafkaError::client("fetching metadata"))?;
            let present: Vec<Partition> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(partitions_of)
                .collect();
            vanished.extend(
                self.positions
                    .keys()
                    .filter(|p| p.0 == topic && !present.contains(p))
                    .cloned(),
            );
        }
        if vanished.is_empty() {
            return Ok(());
        }
        let names = vanished
            .iter()
            .map(|(topic, partition)| format!("{topic}-{partition}"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.options.fail_on_data_loss {
            return Err(KafkaError::Vanished(names));
        }
        tracing::warn!(partitions = %names, "data loss: partitions no longer exist; going on without them");
        for partition in &vanished {
            self.positions.remove(partition);
            if let Some(ends) = &mut self.end_offsets {
                ends.remove(partition);
            }
            self.data_loss_events += 1;
        }
        self.assign()
    }

    /// Forget the rows read but not handed out (the consumer is about to
    /// be moved back to the positions).
    fn discard_buffered(&mut self) {
        if self.builder.len() > 0 {
            self.builder.finish();
        }
        self.buffered.clear();
    }

    /// The buffered rows, handed out: the positions move past them.
    fn finish_chunk(&mut self) -> arrow::record_batch::RecordBatch {
        self.positions.append(&mut self.buffered);
        self.builder.finish()
    }
}

/// Consumer errors that no retry mends: the job's credentials or rights.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fatal
            | RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
    )
}

/// The partitions of a topic, as the metadata lists them.
fn partitions_of(topic: &MetadataTopic) -> impl Iterator<Item = Partition> + '_ {
    topic
        .partitions()
        .iter()
        .map(|p| (topic.name().to_owned(), p.id()))
}

impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        kafka_schema()
    }

    fn next_chunk(&mut self, room: Room, max_wait: Duration) -> Result<Chunk, SourceError> {
        self.poll_chunk(room, max_wait)
            .map_err(|e| SourceError::Read {
                what: "Kafka".into(),
                message: e.to_string(),
            })
    }

    fn max_rows_per_batch(&self) -> Option<usize> {
        self.options.max_offsets_per_trigger
    }

    fn partitions(&self) -> Vec<(String, i64)> {
        self.positions
            .keys()
            .map(|(topic, partition)| (topic.clone(), i64::from(*partition)))
            .collect()
    }

    fn positions(&self) -> Vec<Position> {
        self.positions
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }

    fn ends(&self) -> Vec<Position> {
        self.ends_mut()
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }

    /// Go to checkpointed offsets; an offset that is gone from the log is
    /// handled as `failOnDataLoss` says.
    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError> {
        let error = |e: KafkaError| SourceError::Read {
            what: "Kafka".into(),
            message: e.to_string(),
        };
        self.discard_buffered();
        for position in positions {
            let partition = (position.topic.clone(), position.partition);
            let (low, high) = self.watermarks(&partition).map_err(error)?;
            let offset = self
                .check_available(&partition, position.offset, low, high)
                .map_err(error)?;
            self.positions.insert(partition, offset);
        }
        if !self.assigned {
            return Ok(());
        }
        // Already consuming: move the fetchers (which also drops what they
        // fetched past the new positions).
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.positions {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| error(KafkaError::client("preparing a seek")(e)))?;
        }
        let sought = self
            .consumer
            .seek_partitions(list, REQUEST_TIMEOUT)
            .map_err(|e| error(KafkaError::client("seeking to the checkpoint")(e)))?;
        let failed = sought.elements().iter().find_map(|e| {
            e.error()
                .err()
                .map(|cause| format!("{}-{}: {cause}", e.topic(), e.partition()))
        });
        drop(sought);
        match failed {
            Some(message) => Err(SourceError::Read {
                what: "Kafka".into(),
                message: format!("seeking to the checkpoint: {message}"),
            }),
            None => Ok(()),
        }
    }
}
