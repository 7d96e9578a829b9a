//! The job file's schema and its validation.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::ConfigError;
use crate::values::schema::{ByteSizeText, DurationText, Options, PluginConfig, Version};
use crate::values::{byte_size, duration, optional_duration, options, version};

/// A validated job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's name (defaults to the file's stem).
    pub name: String,
    /// Where rows come from.
    pub source: SourceSpec,
    /// When a micro-batch is cut.
    pub trigger: Trigger,
    /// Plugins, applied in order, once per batch.
    pub transforms: Vec<PluginSpec>,
    /// Where the rows that pass every transform go.
    pub sink: SinkSpec,
    /// Named outputs that plugins route rows to.
    pub outputs: BTreeMap<String, SinkSpec>,
    /// A windowed aggregation after the transforms, if any.
    pub aggregate: Option<AggregateSpec>,
    /// How the source's `value` column is decoded, if it is.
    pub decode: Option<DecodeConfig>,
    /// How the sink's rows are encoded into Kafka values, if they are.
    pub encode: Option<EncodeConfig>,
    /// Where and how often the job checkpoints; `None`: it keeps nothing,
    /// and a restart starts over from the source's starting offsets.
    pub checkpoint: Option<CheckpointConfig>,
    /// How many batches are decoded and transformed at once, each by a
    /// task with its own plugin instances (default: the machine's cores).
    pub parallelism: usize,
}

/// The `[checkpoint]` section (Spark's `checkpointLocation`): epochs of the
/// job's state and positions in object storage, and how output is
/// delivered.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// A directory (relative to the job file), `file:///path`,
    /// `s3://bucket/prefix` or `memory://` (tests).
    pub location: String,
    /// Object store options, e.g. `aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_allow_http`;
    /// unset ones come from the `AWS_*` environment.
    #[serde(default, deserialize_with = "options")]
    #[schemars(with = "Options")]
    pub options: BTreeMap<String, String>,
    /// An epoch ends at the first batch boundary after this long.
    #[serde(
        default = "CheckpointConfig::default_interval",
        deserialize_with = "duration"
    )]
    #[schemars(with = "DurationText")]
    pub interval: Duration,
    /// Committed epochs kept; older ones are deleted.
    #[serde(default = "CheckpointConfig::default_keep")]
    pub keep: usize,
    /// How output reaches Kafka sinks.
    #[serde(default)]
    pub delivery: Delivery,
    /// Attempts after a failure that going back to the last checkpoint may
    /// cure (a plugin trap, a sink or broker outage), in a row: a
    /// checkpoint committed after a restart starts the count again. When
    /// they run out, the job stops.
    #[serde(default = "CheckpointConfig::default_restart_attempts")]
    pub restart_attempts: u32,
    /// Wait before the first restart; it doubles with each attempt in a
    /// row, up to 5 minutes (or this, if longer).
    #[serde(
        default = "CheckpointConfig::default_restart_backoff",
        deserialize_with = "duration"
    )]
    #[schemars(with = "DurationText")]
    pub restart_backoff: Duration,
}

impl CheckpointConfig {
    fn default_interval() -> Duration {
        Duration::from_secs(10)
    }
    fn default_keep() -> usize {
        3
    }
    fn default_restart_attempts() -> u32 {
        3
    }
    fn default_restart_backoff() -> Duration {
        Duration::from_secs(1)
    }
}

/// How output reaches Kafka sinks when the job checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Each epoch's output and source offsets commit in one Kafka
    /// transaction after its checkpoint is durable; `read_committed`
    /// readers see every record once. Needs a Kafka source and a broker
    /// with transactions.
    #[default]
    ExactlyOnce,
    /// No transactions: after a crash, the output since the last
    /// checkpoint is written again.
    AtLeastOnce,
}

/// The `[decode]` section: the source's Kafka `value` decoded into columns.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecodeConfig {
    /// The values' format.
    pub format: DecodeFormat,
    /// Schema Registry client options (`url`, `basic.auth.user.info`, ...).
    #[serde(default, deserialize_with = "options")]
    #[schemars(with = "Options")]
    pub registry: BTreeMap<String, String>,
    /// The reader schema's subject; defaults to `TOPIC-value` when the
    /// source subscribes to one topic.
    pub subject: Option<String>,
    /// The reader schema's version: `latest` (when the job starts) or a number.
    #[serde(
        default = "DecodeConfig::default_version",
        deserialize_with = "version"
    )]
    #[schemars(with = "Version")]
    pub version: String,
    /// Declared columns (json, csv).
    pub schema: Option<Vec<DeclaredColumn>>,
    /// What happens to a record that cannot be decoded.
    #[serde(default)]
    pub on_error: OnError,
    /// The output that receives poison records under `on_error = "dlq"`.
    #[serde(default = "DecodeConfig::default_dead_letter")]
    pub dead_letter: String,
    /// Values larger than this are poison.
    #[serde(
        default = "DecodeConfig::default_max_value_bytes",
        deserialize_with = "byte_size"
    )]
    #[schemars(with = "ByteSizeText")]
    pub max_value_bytes: u64,
    /// The Kafka columns kept beside the decoded ones; by default every one
    /// but `value` whose name no decoded column takes.
    pub keep: Option<Vec<String>>,
    /// json-schema: check each value against its writer schema, as
    /// Confluent's deserializer does with `json.fail.invalid.schema =
    /// true`; a value that fails is `invalid-value` poison with the
    /// validator's message. Off by default, as there. Either way, a value
    /// that is not JSON or does not fit the reader schema's columns is
    /// poison.
    #[serde(default)]
    pub validate: bool,
}

impl DecodeConfig {
    fn default_version() -> String {
        "latest".into()
    }
    fn default_dead_letter() -> String {
        "dead-letter".into()
    }
    fn default_max_value_bytes() -> u64 {
        1 << 20
    }
}

/// The formats a `[decode]` section reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DecodeFormat {
    /// Confluent wire format, Avro (Schema Registry).
    Avro,
    /// Confluent wire format, Protobuf (Schema Registry).
    Protobuf,
    /// Confluent wire format, JSON Schema (Schema Registry).
    JsonSchema,
    /// A JSON object per value, with the declared `schema`.
    Json,
    /// A CSV line per value, with the declared `schema`.
    Csv,
    /// The value as a UTF-8 string column `value`.
    String,
    /// The value as a binary column `value`.
    Bytes,
}

/// The formats an `[encode]` section writes: Confluent's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EncodeFormat {
    /// Avro.
    Avro,
    /// Protobuf.
    Protobuf,
    /// JSON Schema.
    JsonSchema,
}

/// What a job does with a record it cannot decode (or a plugin rejects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Write it to the dead-letter output, with headers saying why.
    #[default]
    Dlq,
    /// Stop the job with an error naming the record.
    Fail,
    /// Leave it out and count it.
    SkipAndCount,
}

/// The `[encode]` section: the sink's rows encoded into Kafka values in the
/// Confluent wire format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncodeConfig {
    /// The values' format.
    pub format: EncodeFormat,
    /// Schema Registry client options.
    #[serde(deserialize_with = "options")]
    #[schemars(with = "Options")]
    pub registry: BTreeMap<String, String>,
    /// The output subject.
    pub subject: String,
    /// Register the rows' schema under the subject (Confluent's option).
    #[serde(default, rename = "auto.register.schemas")]
    pub auto_register_schemas: bool,
    /// The full name (`namespace.Name`) of the Avro record registered for
    /// rows that were not decoded from Avro; by default the subject's name
    /// made an Avro name (`orders-value` → `orders_value`). Rows decoded
    /// from Avro keep the reader schema's name.
    #[serde(default)]
    pub record_name: Option<String>,
}

/// A windowed aggregation: rows grouped by event-time window and key, and
/// folded by an aggregate plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateSpec {
    /// The plugin, its configuration and limits.
    pub plugin: PluginSpec,
    /// Key columns; empty for one group per window.
    pub key: Vec<String>,
    /// The columns the plugin reads; none passes every column.
    pub columns: Option<Vec<String>>,
    /// The windows.
    pub window: WindowConfig,
    /// Line of the `window` field in the job file.
    pub window_line: usize,
    /// The event-time column (a timestamp, or int64 milliseconds; Kafka's
    /// is `timestamp`).
    pub event_time: String,
    /// The column naming each row's partition, for per-partition
    /// watermarks; none treats the input as one partition.
    pub partition_column: Option<String>,
    /// Bounded out-of-orderness: how far the watermark trails the largest
    /// event time seen.
    pub watermark_delay: Duration,
    /// A partition silent this long is left out of the watermark.
    pub idle_timeout: Duration,
    /// How long after its end a window still takes late rows.
    pub allowed_lateness: Duration,
    /// How far past the host's wall clock an event time may be; later rows
    /// are dead-lettered as `invalid-event-time`. `None`: no bound.
    pub max_event_time_skew: Option<Duration>,
    /// When results are emitted.
    pub emit: EmitConfig,
    /// The named output that gets rows later than the allowed lateness.
    pub late_output: String,
    /// Largest window state, bytes.
    pub state_quota: u64,
}

/// Window kinds of an `[aggregate]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum WindowConfig {
    /// Fixed, non-overlapping windows.
    Tumbling {
        /// Window length.
        #[serde(deserialize_with = "duration")]
        #[schemars(with = "DurationText")]
        size: Duration,
    },
    /// Windows of `size` starting every `slide`.
    Hopping {
        /// Window length.
        #[serde(deserialize_with = "duration")]
        #[schemars(with = "DurationText")]
        size: Duration,
        /// Distance between window starts.
        #[serde(deserialize_with = "duration")]
        #[schemars(with = "DurationText")]
        slide: Duration,
    },
    /// Per key, activity separated by less than `gap`.
    Session {
        /// Inactivity that ends a session.
        #[serde(deserialize_with = "duration")]
        #[schemars(with = "DurationText")]
        gap: Duration,
    },
}

/// When an `[aggregate]` emits results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmitConfig {
    /// When the watermark passes a window's end, and on late updates.
    #[default]
    Final,
    /// Also after every batch, for the windows it changed.
    Updates,
}

/// When a micro-batch is cut: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Rows per batch.
    #[serde(default = "Trigger::default_max_rows")]
    pub max_rows: usize,
    /// Bytes per batch (at most 1 GiB): the source stops a batch before
    /// the record that would pass it, and its Arrow memory is held to it.
    #[serde(default = "Trigger::default_max_bytes", deserialize_with = "byte_size")]
    #[schemars(with = "ByteSizeText")]
    pub max_bytes: u64,
    /// Time from the first buffered row to the batch being cut.
    #[serde(
        default = "Trigger::default_max_interval",
        deserialize_with = "duration"
    )]
    #[schemars(with = "DurationText")]
    pub max_interval: Duration,
    /// Process what the source holds when the job starts, then stop
    /// (Spark's `Trigger.AvailableNow`).
    #[serde(default)]
    pub available_now: bool,
    /// Process records as soon as they arrive (Spark's real-time mode):
    /// a batch is cut as soon as the source has handed over what it
    /// holds, without waiting for more, and Kafka sinks send each record
    /// at once (`linger.ms` 0 unless the sink sets it). Checkpoints keep
    /// their own `[checkpoint] interval`. Not with `max_interval` or
    /// `available_now`.
    #[serde(default)]
    pub real_time: bool,
}

impl Trigger {
    /// The largest `max_bytes`: Arrow binary and string columns hold at
    /// most 2 GiB, and a batch may pass `max_bytes` by one record.
    pub const MAX_BYTES: u64 = 1 << 30;

    fn default_max_rows() -> usize {
        10_000
    }
    fn default_max_bytes() -> u64 {
        8 << 20
    }
    fn default_max_interval() -> Duration {
        Duration::from_secs(1)
    }
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger {
            max_rows: Self::default_max_rows(),
            max_bytes: Self::default_max_bytes(),
            max_interval: Self::default_max_interval(),
            available_now: false,
            real_time: false,
        }
    }
}

/// A source of rows.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceSpec {
    /// Generated rows at a fixed rate (like Spark's `rate` source).
    Datagen(DatagenSource),
    /// A JSON-lines or CSV file.
    File(FileSource),
    /// A directory whose files are read as they arrive (Spark's file
    /// stream source): Parquet, JSON lines or CSV.
    Directory(DirectorySource),
    /// Kafka topics, with the options of Spark's Kafka source.
    Kafka(KafkaSource),
    /// The Nexmark benchmark's auction events, generated as fast as asked.
    Nexmark(NexmarkSource),
}

/// A Kafka source. `options` carries Spark's option names
/// (`kafka.bootstrap.servers`, `subscribe`, `startingOffsets`, ...);
/// every other `kafka.*` option goes to librdkafka.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    /// Options by name; scalar values of any TOML type, kept as text.
    #[serde(deserialize_with = "options")]
    #[schemars(with = "Options")]
    pub options: BTreeMap<String, String>,
}

/// The built-in generator source.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatagenSource {
    /// Rows generated per second.
    #[serde(default = "DatagenSource::default_rate")]
    pub rows_per_second: u64,
    /// Stop after this many rows; unbounded if unset.
    pub rows: Option<u64>,
    /// Seed of the random generators, for reproducible data.
    #[serde(default)]
    pub seed: u64,
    /// The columns to generate.
    pub columns: Vec<DatagenColumn>,
}

impl DatagenSource {
    fn default_rate() -> u64 {
        1_000
    }
}

/// One generated column.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatagenColumn {
    /// Column name.
    pub name: String,
    /// How values are generated.
    pub generator: Generator,
    /// Smallest value (`int`, `float`, `sequence` start).
    pub min: Option<f64>,
    /// Largest value (`int`, `float`).
    pub max: Option<f64>,
    /// Candidates (`choice`).
    #[serde(default)]
    pub values: Vec<String>,
    /// Fraction of rows that are null, 0.0–1.0.
    #[serde(default)]
    pub null_fraction: f64,
}

/// A value generator of the datagen source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// int64 counting up from `min` (default 0).
    Sequence,
    /// Uniform int64 in `[min, max]`.
    Int,
    /// Uniform float64 in `[min, max)`.
    Float,
    /// One of `values`, uniformly (utf8).
    Choice,
    /// A plausible e-mail address (utf8).
    Email,
    /// A Luhn-valid card number, grouped by spaces (utf8).
    CardNumber,
    /// A short sentence that sometimes mentions an e-mail or card (utf8).
    Text,
    /// Uniform boolean.
    Bool,
    /// The generation time (timestamp, ms, UTC).
    Timestamp,
}

/// The built-in Nexmark generator (RisingWave's `nexmark` crate): the
/// people, auctions and bids of an online auction site. Rows are produced
/// as fast as the pipeline asks for them; their event times follow the
/// configured event rate from `base_time`, so one configuration always
/// gives the same rows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NexmarkSource {
    /// Stop after this many events, counted across all three kinds (of
    /// which `table` emits its own); unbounded if unset.
    pub events: Option<u64>,
    /// The stream to emit.
    #[serde(default)]
    pub table: NexmarkTable,
    /// Event time of the first event, milliseconds since the Unix epoch.
    #[serde(default)]
    pub base_time: u64,
    /// Events per second of event time, constant. It only spaces the event
    /// times: the source never waits. (The generator's varying rate shapes
    /// compute event times wrongly, so they are not offered.)
    #[serde(default = "NexmarkSource::default_event_rate")]
    pub event_rate: u64,
    /// People active for placing auctions and bids at any time.
    #[serde(default = "NexmarkSource::default_active_people")]
    pub active_people: u64,
    /// Auctions open at any time, on average.
    #[serde(default = "NexmarkSource::default_in_flight_auctions")]
    pub in_flight_auctions: u64,
}

impl NexmarkSource {
    fn default_event_rate() -> u64 {
        10_000
    }
    fn default_active_people() -> u64 {
        1_000
    }
    fn default_in_flight_auctions() -> u64 {
        100
    }
}

/// The Nexmark stream a source emits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NexmarkTable {
    /// Bids on auctions (46 of every 50 events).
    #[default]
    Bid,
    /// New auctions (3 of every 50 events).
    Auction,
    /// New people (1 of every 50 events).
    Person,
}

/// A file source.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// The file to read, relative to the job file.
    pub path: PathBuf,
    /// Its format.
    pub format: FileFormat,
    /// Declared columns; inferred from the first rows when absent.
    pub schema: Option<Vec<DeclaredColumn>>,
    /// CSV only: whether the first line is a header.
    #[serde(default = "FileSource::default_header")]
    pub header: bool,
}

impl FileSource {
    fn default_header() -> bool {
        true
    }
}

/// A directory source: the files in a directory, each read once, oldest
/// first (by modification time, then name), picked up as they arrive.
/// Like Spark's file stream source, it is not recursive and skips names
/// that start with `.` or `_` and names ending in `._COPYING_` or `.tmp`:
/// write a file under such a name and rename it into place when it is
/// complete. A file is known by its name: one that is changed, or comes
/// back under a name read within `max_file_age`, is not read again.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectorySource {
    /// The directory, relative to the job file.
    pub path: PathBuf,
    /// The files' format.
    pub format: DirectoryFormat,
    /// Declared columns. Without them: JSON lines infers them from the
    /// first 1,000 lines of the oldest files, CSV from the oldest file's
    /// first lines, Parquet takes the oldest file's schema; a later file
    /// that does not fit stops the job with an error naming it.
    pub schema: Option<Vec<DeclaredColumn>>,
    /// CSV only: whether each file's first line is a header.
    #[serde(default = "FileSource::default_header")]
    pub header: bool,
    /// New files taken per listing of the directory (Spark's
    /// `maxFilesPerTrigger`); the next listing comes when they are read.
    /// Unlimited if unset.
    #[schemars(range(min = 1))]
    pub max_files_per_trigger: Option<usize>,
    /// Take the newest new files first (Spark's `latestFirst`), for a
    /// backlog where fresh files matter most.
    #[serde(default)]
    pub latest_first: bool,
    /// Files this much older than the newest file taken are ignored, and
    /// forgotten once read (Spark's `maxFileAge`): what the checkpoint
    /// keeps is one entry per file within this age. Not applied with
    /// `latest_first` and `max_files_per_trigger` together, where a
    /// backlog of older files would be lost to it.
    #[serde(
        default = "DirectorySource::default_max_file_age",
        deserialize_with = "duration"
    )]
    #[schemars(with = "DurationText")]
    pub max_file_age: Duration,
    /// How often the directory is listed while there is nothing to read.
    #[serde(
        default = "DirectorySource::default_poll_interval",
        deserialize_with = "duration"
    )]
    #[schemars(with = "DurationText")]
    pub poll_interval: Duration,
}

impl DirectorySource {
    fn default_max_file_age() -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }
    fn default_poll_interval() -> Duration {
        Duration::from_secs(1)
    }
}

/// File formats a directory source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryFormat {
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values.
    Csv,
}

/// A declared column of a file source.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredColumn {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// Whether it may be null.
    #[serde(default = "DeclaredColumn::default_nullable")]
    pub nullable: bool,
}

impl DeclaredColumn {
    fn default_nullable() -> bool {
        true
    }
}

/// The column types a job file can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// 64-bit integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// Boolean.
    Bool,
    /// UTF-8 string.
    Utf8,
    /// Timestamp in milliseconds, UTC.
    TimestampMs,
}

/// File formats a file source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values.
    Csv,
}

/// A sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkSpec {
    /// Print each batch as a table (like Spark's console sink).
    Console(ConsoleSink),
    /// Append rows as JSON lines.
    File(FileSink),
    /// Write rows as Parquet part files in a directory (Spark's file
    /// sink): exactly-once when the job checkpoints.
    Parquet(ParquetSink),
    /// Produce rows to a Kafka topic (columns `value`, optional `key`,
    /// `headers`, `partition`, `topic`).
    Kafka(KafkaSink),
}

/// The Kafka sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSink {
    /// Options by name: `kafka.bootstrap.servers`, `topic`, and any
    /// `kafka.*` option for librdkafka.
    #[serde(deserialize_with = "options")]
    #[schemars(with = "Options")]
    pub options: BTreeMap<String, String>,
}

/// The console sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSink {
    /// Rows printed per batch.
    #[serde(default = "default_console_rows")]
    pub num_rows: usize,
}

/// The JSON-lines file sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSink {
    /// The file, relative to the job file.
    pub path: PathBuf,
}

/// The Parquet sink: part files in a directory, each written under a
/// name starting with `.` and renamed into place when complete, so
/// readers that skip such names (Spark, a `directory` source) never see
/// half a file. When the job checkpoints, an epoch's rows become
/// `part-EPOCH-N.parquet` once its checkpoint is durable, and a restart
/// finishes or drops what a crash left: each row is in one file once.
/// Without checkpoints, each batch becomes a part file as it comes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParquetSink {
    /// The directory, relative to the job file; created if missing.
    pub path: PathBuf,
    /// How the files' pages are compressed.
    #[serde(default)]
    pub compression: ParquetCompression,
}

/// Compression codecs of the Parquet sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    /// Snappy (Spark's default).
    #[default]
    Snappy,
    /// Zstandard.
    Zstd,
    /// LZ4 (raw).
    Lz4,
    /// Gzip.
    Gzip,
    /// None.
    Uncompressed,
}

fn default_console_rows() -> usize {
    20
}

/// A plugin of the job: a transform in the chain, or the aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// Name in logs, metrics and errors (defaults to the file stem).
    pub name: String,
    /// The `.wasm` component.
    pub plugin: PathBuf,
    /// Dotted path of the `plugin` field (`transform[0].plugin`,
    /// `aggregate.plugin`), for errors.
    pub field: String,
    /// Line of the `plugin` field in the job file.
    pub line: usize,
    /// The plugin's configuration, as key/value strings.
    pub config: Vec<(String, String)>,
    /// Linear memory limit per instance, bytes.
    pub memory_limit: u64,
    /// Wall-clock deadline of one call (host calls included).
    pub deadline: Duration,
}

/// How a job's `plugin` fields find their components.
pub enum PluginFiles<'a> {
    /// Paths, relative to the job file (`sluice run`).
    Paths,
    /// Names a lookup turns into a component file, or into why it cannot
    /// (`sluice serve`: digests of uploaded plugins). A plugin without a
    /// `name` is named by its place: `transform-0`, `aggregate`.
    Lookup(&'a dyn Fn(&str) -> Result<PathBuf, String>),
}

impl std::fmt::Debug for PluginFiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginFiles::Paths => "Paths",
            PluginFiles::Lookup(_) => "Lookup",
        })
    }
}

/// A Sluice job file (`sluice run JOB.toml`): where rows come from, the
/// Wasm plugins they pass through, and where they go.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Sluice job")]
pub(crate) struct RawJob {
    /// The job itself.
    #[serde(default)]
    job: RawJobSection,
    /// Where rows come from.
    source: SourceSpec,
    /// When a micro-batch is cut.
    #[serde(default)]
    trigger: Trigger,
    /// Transform plugins, applied in order, once per batch.
    #[serde(default, rename = "transform")]
    transforms: Vec<RawTransform>,
    /// Where the rows that pass every transform (or the aggregate's
    /// results) go.
    sink: SinkSpec,
    /// Named outputs: for rows plugins route by name, dead letters and
    /// late rows.
    #[serde(default)]
    outputs: BTreeMap<String, SinkSpec>,
    /// A windowed aggregation after the transforms.
    aggregate: Option<RawAggregate>,
    /// How the source's `value` is decoded into columns.
    decode: Option<DecodeConfig>,
    /// How the sink's rows are encoded into Kafka values.
    encode: Option<EncodeConfig>,
    /// Where and how often the job checkpoints (off without it).
    checkpoint: Option<CheckpointConfig>,
}

/// The `[aggregate]` section. Its plugin fields repeat `RawTransform`'s:
/// `#[serde(flatten)]` would lose both `deny_unknown_fields` and the
/// `Spanned` line of `plugin`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Aggregate")]
struct RawAggregate {
    /// Name in logs, metrics and errors (default: the plugin file's stem).
    name: Option<String>,
    /// The aggregate plugin's `.wasm` component, relative to the job file.
    #[schemars(with = "PathBuf")]
    plugin: Spanned<PathBuf>,
    /// The plugin's configuration.
    #[serde(default)]
    #[schemars(with = "PluginConfig")]
    config: toml::Table,
    /// Linear memory limit per plugin instance.
    #[serde(default = "default_memory_limit", deserialize_with = "byte_size")]
    #[schemars(with = "ByteSizeText")]
    memory_limit: u64,
    /// Wall-clock deadline of one plugin call.
    #[serde(default = "default_deadline", deserialize_with = "duration")]
    #[schemars(with = "DurationText")]
    deadline: Duration,
    /// Key columns; none for one group per window.
    #[serde(default)]
    key: Vec<String>,
    /// The columns the plugin reads (default: every column).
    columns: Option<Vec<String>>,
    /// The windows rows are assigned to.
    #[schemars(with = "WindowConfig")]
    window: Spanned<WindowConfig>,
    /// The event-time column: a timestamp, or int64 milliseconds (Kafka's
    /// is `timestamp`).
    event_time: String,
    /// The column naming each row's partition, for per-partition
    /// watermarks (default: the input is one partition).
    partition_column: Option<String>,
    /// Bounded out-of-orderness: how far the watermark trails the largest
    /// event time seen.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "DurationText")]
    watermark_delay: Duration,
    /// A partition silent this long stops holding the watermark back.
    #[serde(default = "default_idle_timeout", deserialize_with = "duration")]
    #[schemars(with = "DurationText")]
    idle_timeout: Duration,
    /// How long after its end a window still takes late rows.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "DurationText")]
    allowed_lateness: Duration,
    /// How far past the host's wall clock an event time may be: a later row
    /// is dead-lettered as `invalid-event-time` and does not move the
    /// watermark, so one far-future timestamp cannot make every later row
    /// late (default: no bound).
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<DurationText>")]
    max_event_time_skew: Option<Duration>,
    /// When results are emitted.
    #[serde(default)]
    emit: EmitConfig,
    /// The output that gets rows later than the allowed lateness.
    #[serde(default = "default_late_output")]
    late_output: String,
    /// Largest window state.
    #[serde(default = "default_state_quota", deserialize_with = "byte_size")]
    #[schemars(with = "ByteSizeText")]
    state_quota: u64,
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_late_output() -> String {
    "late".into()
}

fn default_state_quota() -> u64 {
    256 << 20
}

/// The `[job]` section.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "JobSection")]
struct RawJobSection {
    /// The job's name in logs and dead-letter headers (default: the job
    /// file's stem).
    name: Option<String>,
    /// How many batches are decoded and transformed at once, each by a
    /// task with its own plugin instances (file and directory sources also
    /// decode JSON lines on this many threads); operators that keep state
    /// and the sinks see the batches in order whatever it is (default: the
    /// machine's cores).
    parallelism: Option<NonZeroUsize>,
}

/// A `[[transform]]`: a Wasm transform plugin.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Transform")]
struct RawTransform {
    /// Name in logs, metrics and errors (default: the plugin file's stem).
    name: Option<String>,
    /// The `.wasm` component, relative to the job file.
    #[schemars(with = "PathBuf")]
    plugin: Spanned<PathBuf>,
    /// The plugin's configuration.
    #[serde(default)]
    #[schemars(with = "PluginConfig")]
    config: toml::Table,
    /// Linear memory limit per plugin instance.
    #[serde(default = "default_memory_limit", deserialize_with = "byte_size")]
    #[schemars(with = "ByteSizeText")]
    memory_limit: u64,
    /// Wall-clock deadline of one plugin call.
    #[serde(default = "default_deadline", deserialize_with = "duration")]
    #[schemars(with = "DurationText")]
    deadline: Duration,
}

fn default_memory_limit() -> u64 {
    256 << 20
}

fn default_deadline() -> Duration {
    Duration::from_secs(5)
}

impl Job {
    /// Read and validate the job file at `path`. Relative paths in it are
    /// taken relative to its directory.
    pub fn load(path: &Path) -> Result<Job, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Job::parse(path, &text)
    }

    /// Validate the job file `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Job, ConfigError> {
        Job::parse_with(path, text, PluginFiles::Paths)
    }

    /// Like [`Job::parse`], with the job's `plugin` fields found as
    /// `plugins` says.
    pub fn parse_with(
        path: &Path,
        text: &str,
        plugins: PluginFiles<'_>,
    ) -> Result<Job, ConfigError> {
        let raw: RawJob = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let invalid = |offset: usize, field: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: line_of(offset),
            field,
            message,
        };

        let plugin_spec = |t: RawTransform, field: String| {
            let span = t.plugin.span();
            let named = t.plugin.into_inner();
            let plugin = match &plugins {
                PluginFiles::Paths => {
                    let plugin = base.join(named);
                    if !plugin.is_file() {
                        return Err(invalid(
                            span.start,
                            field,
                            format!("no plugin file at {}", plugin.display()),
                        ));
                    }
                    plugin
                }
                PluginFiles::Lookup(find) => find(&named.to_string_lossy())
                    .map_err(|why| invalid(span.start, field.clone(), why))?,
            };
            let name = t.name.unwrap_or_else(|| match &plugins {
                PluginFiles::Paths => plugin
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                // A digest changes with every version: name the stage by
                // its place (`transform-0`, `aggregate`), which a swap
                // keeps, and its state with it.
                PluginFiles::Lookup(_) => field
                    .trim_end_matches(".plugin")
                    .replace('[', "-")
                    .replace(']', ""),
            });
            Ok(PluginSpec {
                name,
                plugin,
                field,
                line: line_of(span.start),
                config: t
                    .config
                    .into_iter()
                    .map(|(k, v)| (k, config_value(v)))
                    .collect(),
                memory_limit: t.memory_limit,
                deadline: t.deadline,
            })
        };
        let transforms = raw
            .transforms
            .into_iter()
            .enumerate()
            .map(|(i, t)| plugin_spec(t, format!("transform[{i}].plugin")))
            .collect::<Result<Vec<_>, _>>()?;
        let aggregate = match raw.aggregate {
            None => None,
            Some(a) => {
                let raw_plugin = RawTransform {
                    name: a.name,
                    plugin: a.plugin,
                    config: a.config,
                    memory_limit: a.memory_limit,
                    deadline: a.deadline,
                };
                let plugin = plugin_spec(raw_plugin, "aggregate.plugin".into())?;
                if !raw.outputs.contains_key(&a.late_output) {
                    let offset = text.find("[aggregate]").unwrap_or(0);
                    return Err(invalid(
                        offset,
                        "aggregate.late_output".into(),
                        format!(
                            "rows later than the allowed lateness go to output `{0}`, which the job does not define; add [outputs.{0}]",
                            a.late_output
                        ),
                    ));
                }
                Some(AggregateSpec {
                    plugin,
                    key: a.key,
                    columns: a.columns,
                    window_line: line_of(a.window.span().start),
                    window: a.window.into_inner(),
                    event_time: a.event_time,
                    partition_column: a.partition_column,
                    watermark_delay: a.watermark_delay,
                    idle_timeout: a.idle_timeout,
                    allowed_lateness: a.allowed_lateness,
                    max_event_time_skew: a.max_event_time_skew,
                    emit: a.emit,
                    late_output: a.late_output,
                    state_quota: a.state_quota,
                })
            }
        };
        if let Some(decode) = &raw.decode
            && decode.on_error == OnError::Dlq
            && !raw.outputs.contains_key(&decode.dead_letter)
        {
            let offset = text.find("[decode]").unwrap_or(0);
            return Err(invalid(
                offset,
                "decode.dead_letter".into(),
                format!(
                    "records that cannot be decoded go to output `{0}`, which the job does not define; add [outputs.{0}] or set on_error",
                    decode.dead_letter
                ),
            ));
        }
        if let Some(decode) = &raw.decode
            && decode.validate
            && decode.format != DecodeFormat::JsonSchema
        {
            let offset = text.find("[decode]").unwrap_or(0);
            return Err(invalid(
                offset,
                "decode.validate".into(),
                "validate applies to json-schema values; the other formats are checked by decoding them".into(),
            ));
        }
        let mut source = raw.source;
        match &mut source {
            SourceSpec::File(file) => file.path = base.join(&file.path),
            SourceSpec::Directory(directory) => {
                directory.path = base.join(&directory.path);
                if directory.max_files_per_trigger == Some(0) {
                    let offset = text.find("max_files_per_trigger").unwrap_or(0);
                    return Err(invalid(
                        offset,
                        "source.max_files_per_trigger".into(),
                        "must be at least 1 (leave it out for no limit)".into(),
                    ));
                }
                if directory.poll_interval.is_zero() {
                    let offset = text.find("poll_interval").unwrap_or(0);
                    return Err(invalid(
                        offset,
                        "source.poll_interval".into(),
                        "must be positive: the directory would be listed without pause".into(),
                    ));
                }
            }
            _ => {}
        }
        let rebase = |sink: SinkSpec| match sink {
            SinkSpec::File(file) => SinkSpec::File(FileSink {
                path: base.join(file.path),
            }),
            SinkSpec::Parquet(parquet) => SinkSpec::Parquet(ParquetSink {
                path: base.join(parquet.path),
                ..parquet
            }),
            other => other,
        };
        let trigger = raw.trigger;
        if trigger.max_rows == 0 || trigger.max_bytes == 0 {
            let offset = text.find("[trigger]").unwrap_or(0);
            return Err(invalid(
                offset,
                "trigger".into(),
                "max_rows and max_bytes must be positive".into(),
            ));
        }
        if trigger.max_bytes > Trigger::MAX_BYTES {
            let offset = text.find("max_bytes").unwrap_or(0);
            return Err(invalid(
                offset,
                "trigger.max_bytes".into(),
                "at most 1 GiB: an Arrow binary or string column holds at most 2 GiB".into(),
            ));
        }
        if trigger.real_time {
            let given = |key: &str| {
                toml::from_str::<toml::Table>(text)
                    .ok()
                    .and_then(|table| table.get("trigger")?.get(key).cloned())
                    .is_some()
            };
            let clash = if trigger.available_now {
                Some(("available_now", "a real-time job runs until it is stopped"))
            } else if given("max_interval") {
                Some((
                    "max_interval",
                    "a real-time job cuts a batch as soon as the source has rows",
                ))
            } else {
                None
            };
            if let Some((key, why)) = clash {
                let offset = text.find(key).unwrap_or(0);
                return Err(invalid(
                    offset,
                    format!("trigger.{key}"),
                    format!("not with real_time = true: {why}"),
                ));
            }
        }
        let checkpoint = match raw.checkpoint {
            Some(c) if c.keep < 2 => {
                let offset = text.find("[checkpoint]").unwrap_or(0);
                return Err(invalid(
                    offset,
                    "checkpoint.keep".into(),
                    "keep at least 2 epochs: the newest may be one whose output never committed"
                        .into(),
                ));
            }
            Some(mut c) => {
                if !c.location.contains("://") {
                    c.location = base.join(&c.location).display().to_string();
                }
                Some(c)
            }
            None => None,
        };
        let decode = raw
            .decode
            .or_else(|| string_values_decode(&source, &raw.outputs));
        Ok(Job {
            name: raw.job.name.unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "job".into())
            }),
            source,
            trigger,
            transforms,
            sink: rebase(raw.sink),
            outputs: raw
                .outputs
                .into_iter()
                .map(|(k, v)| (k, rebase(v)))
                .collect(),
            aggregate,
            decode,
            encode: raw.encode,
            checkpoint,
            parallelism: raw.job.parallelism.map_or_else(
                || std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
                NonZeroUsize::get,
            ),
        })
    }
}

/// The decode a Kafka source's `valueFormat = "string"` stands for when the
/// job has no `[decode]`: values checked as UTF-8, whatever their size, and
/// invalid ones dead-lettered as `invalid-utf8` (or, without a
/// `dead-letter` output, stopping the job) instead of silently altered.
fn string_values_decode(
    source: &SourceSpec,
    outputs: &BTreeMap<String, SinkSpec>,
) -> Option<DecodeConfig> {
    let SourceSpec::Kafka(kafka) = source else {
        return None;
    };
    if kafka.options.get("valueFormat").map(String::as_str) != Some("string") {
        return None;
    }
    let dead_letter = DecodeConfig::default_dead_letter();
    Some(DecodeConfig {
        format: DecodeFormat::String,
        registry: BTreeMap::new(),
        subject: None,
        version: DecodeConfig::default_version(),
        schema: None,
        on_error: if outputs.contains_key(&dead_letter) {
            OnError::Dlq
        } else {
            OnError::Fail
        },
        dead_letter,
        max_value_bytes: u64::MAX,
        keep: None,
        validate: false,
    })
}

/// A config value as the plugin sees it: strings as they are, other
/// scalars in TOML form, tables and arrays as JSON.
fn config_value(value: toml::Value) -> String {
    match value {
        toml::Value::String(s) => s,
        toml::Value::Array(_) | toml::Value::Table(_) => {
            serde_json::to_string(&value).unwrap_or_else(|_| value.to_string())
        }
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Job, ConfigError> {
        Job::parse(Path::new("/nonexistent/job.toml"), text)
    }

    const SOURCE: &str = r#"
[source]
type = "datagen"
columns = [{ name = "id", generator = "sequence" }]

[sink]
type = "console"
"#;

    #[test]
    fn minimal_job_gets_defaults() {
        let job = parse(SOURCE).unwrap();
        assert_eq!(job.name, "job");
        assert_eq!(job.trigger, Trigger::default());
        assert!(job.transforms.is_empty());
    }

    #[test]
    fn unknown_field_names_field_and_line() {
        let text = format!("{SOURCE}\n[trigger]\nmax_rowz = 5\n");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("line 10"), "{message}");
        assert!(message.contains("max_rowz"), "{message}");
    }

    #[test]
    fn bad_duration_names_the_value() {
        let text = format!("{SOURCE}\n[trigger]\nmax_interval = \"soon\"\n");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("\"soon\" is not a duration"), "{message}");
        assert!(message.contains("line 10"), "{message}");
    }

    #[test]
    fn sizes_and_durations_parse() {
        let text =
            format!("{SOURCE}\n[trigger]\nmax_bytes = \"4 MiB\"\nmax_interval = \"250ms\"\n");
        let trigger = parse(&text).unwrap().trigger;
        assert_eq!(trigger.max_bytes, 4 << 20);
        assert_eq!(trigger.max_interval, Duration::from_millis(250));
    }

    #[test]
    fn real_time_is_refused_with_a_batch_interval_or_available_now() {
        let text = format!("{SOURCE}\n[trigger]\nreal_time = true\n");
        assert!(parse(&text).unwrap().trigger.real_time);
        for (extra, key) in [
            ("max_interval = \"5ms\"", "trigger.max_interval"),
            ("available_now = true", "trigger.available_now"),
        ] {
            let text = format!("{SOURCE}\n[trigger]\nreal_time = true\n{extra}\n");
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
            assert!(message.contains("not with real_time = true"), "{message}");
            assert!(message.contains("line 11"), "{message}");
        }
    }

    #[test]
    fn a_batch_byte_limit_past_what_an_arrow_column_holds_is_refused() {
        let text = format!("{SOURCE}\n[trigger]\nmax_bytes = \"4 GiB\"\n");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("trigger.max_bytes"), "{message}");
        assert!(message.contains("at most 1 GiB"), "{message}");
        let text = format!("{SOURCE}\n[trigger]\nmax_bytes = \"1 GiB\"\n");
        assert_eq!(parse(&text).unwrap().trigger.max_bytes, 1 << 30);
    }

    #[test]
    fn a_lookup_finds_plugins_or_says_why_not_at_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let stored = dir.path().join("abc.wasm");
        std::fs::write(&stored, b"").unwrap();
        let find = |name: &str| match name {
            "sha256:abc" => Ok(stored.clone()),
            other => Err(format!("{other} is not uploaded")),
        };
        let text = format!("{SOURCE}\n[[transform]]\nplugin = \"sha256:abc\"\n");
        let job = Job::parse_with(
            Path::new("/elsewhere/job.toml"),
            &text,
            PluginFiles::Lookup(&find),
        )
        .unwrap();
        assert_eq!(job.transforms[0].plugin, stored);
        assert_eq!(job.transforms[0].name, "transform-0", "named by its place");
        let text = format!("{SOURCE}\n[[transform]]\nplugin = \"sha256:def\"\n");
        let message = Job::parse_with(
            Path::new("/elsewhere/job.toml"),
            &text,
            PluginFiles::Lookup(&find),
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("transform[0].plugin"), "{message}");
        assert!(message.contains("sha256:def is not uploaded"), "{message}");
    }

    #[test]
    fn missing_plugin_file_names_field_and_line() {
        let text = format!("{SOURCE}\n[[transform]]\nplugin = \"missing.wasm\"\n");
        let error = parse(&text).unwrap_err();
        match &error {
            ConfigError::Invalid { line, field, .. } => {
                assert_eq!((*line, field.as_str()), (10, "transform[0].plugin"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            error.to_string().contains("/nonexistent/missing.wasm"),
            "{error}"
        );
    }

    #[test]
    fn nexmark_source_gets_defaults_and_rejects_unknown_fields() {
        let text = "[source]\ntype = \"nexmark\"\nevents = 500\ntable = \"auction\"\n\n[sink]\ntype = \"console\"\n";
        let SourceSpec::Nexmark(nexmark) = parse(text).unwrap().source else {
            panic!("not a nexmark source");
        };
        assert_eq!(nexmark.events, Some(500));
        assert_eq!(nexmark.table, NexmarkTable::Auction);
        assert_eq!((nexmark.base_time, nexmark.event_rate), (0, 10_000));
        let message = parse(&text.replace("events", "event_count"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("event_count"), "{message}");
    }

    #[test]
    fn directory_source_gets_spark_defaults_and_a_path_beside_the_job() {
        let text = "[source]\ntype = \"directory\"\npath = \"in\"\nformat = \"parquet\"\n\n[sink]\ntype = \"console\"\n";
        let SourceSpec::Directory(directory) = parse(text).unwrap().source else {
            panic!("not a directory source");
        };
        assert_eq!(directory.path, Path::new("/nonexistent/in"));
        assert_eq!(directory.format, DirectoryFormat::Parquet);
        assert_eq!(directory.max_files_per_trigger, None);
        assert!(!directory.latest_first);
        assert_eq!(directory.max_file_age, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(directory.poll_interval, Duration::from_secs(1));
        let message = parse(&text.replace("parquet\"", "parquet\"\nmax_files_per_trigger = 0"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("source.max_files_per_trigger"),
            "{message}"
        );
        assert!(message.contains("line 5"), "{message}");
        let message = parse(&text.replace("parquet\"", "parquet\"\npoll_interval = \"0s\""))
            .unwrap_err()
            .to_string();
        assert!(message.contains("source.poll_interval"), "{message}");
    }

    #[test]
    fn plugin_config_values_become_strings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        let text = format!(
            "{SOURCE}\n[[transform]]\nplugin = \"p.wasm\"\nconfig = {{ column = \"a\", threshold = 10, tags = [\"x\"] }}\n"
        );
        let job = Job::parse(&dir.path().join("job.toml"), &text).unwrap();
        let config = &job.transforms[0].config;
        assert!(config.contains(&("column".into(), "a".into())));
        assert!(config.contains(&("threshold".into(), "10".into())));
        assert!(config.contains(&("tags".into(), "[\"x\"]".into())));
        assert_eq!(job.transforms[0].name, "p");
    }

    /// A job with a p.wasm plugin file in a temporary directory.
    fn parse_with_plugin(extra: &str) -> Result<Job, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        Job::parse(&dir.path().join("job.toml"), &format!("{SOURCE}{extra}"))
    }

    #[test]
    fn aggregate_section_parses_windows_and_defaults() {
        let job = parse_with_plugin(
            "\n[aggregate]\nplugin = \"p.wasm\"\nkey = [\"user\"]\nevent_time = \"ts\"\nwindow = { type = \"hopping\", size = \"10s\", slide = \"2s\" }\nallowed_lateness = \"1s\"\n\n[outputs.late]\ntype = \"console\"\n",
        )
        .unwrap();
        let aggregate = job.aggregate.unwrap();
        assert_eq!(
            aggregate.window,
            WindowConfig::Hopping {
                size: Duration::from_secs(10),
                slide: Duration::from_secs(2)
            }
        );
        assert_eq!(aggregate.key, ["user"]);
        assert_eq!(aggregate.allowed_lateness, Duration::from_secs(1));
        assert_eq!(aggregate.emit, EmitConfig::Final);
        assert_eq!(aggregate.late_output, "late");
    }

    #[test]
    fn an_aggregate_without_its_late_output_is_refused() {
        let error = parse_with_plugin(
            "\n[aggregate]\nplugin = \"p.wasm\"\nevent_time = \"ts\"\nwindow = { type = \"tumbling\", size = \"10s\" }\n",
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("aggregate.late_output"), "{message}");
        assert!(message.contains("[outputs.late]"), "{message}");
        assert!(message.contains("line 9"), "{message}");
    }

    #[test]
    fn an_unknown_window_kind_is_named() {
        let message = parse_with_plugin(
            "\n[aggregate]\nplugin = \"p.wasm\"\nevent_time = \"ts\"\nwindow = { type = \"sliding\", size = \"10s\" }\n\n[outputs.late]\ntype = \"console\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("sliding"), "{message}");
    }

    #[test]
    fn decode_and_encode_sections_parse_with_defaults() {
        let job = parse(&format!(
            "{SOURCE}\n[decode]\nformat = \"avro\"\nregistry = {{ url = \"http://r:8081\" }}\nversion = 3\ndead_letter = \"dlq\"\n\n[encode]\nformat = \"avro\"\nregistry = {{ url = \"http://r:8081\" }}\nsubject = \"out-value\"\n\"auto.register.schemas\" = true\n\n[outputs.dlq]\ntype = \"console\"\n"
        ))
        .unwrap();
        let decode = job.decode.unwrap();
        assert_eq!(decode.version, "3");
        assert_eq!(decode.on_error, OnError::Dlq);
        assert_eq!(decode.max_value_bytes, 1 << 20);
        assert_eq!(decode.registry["url"], "http://r:8081");
        assert!(job.encode.unwrap().auto_register_schemas);
    }

    #[test]
    fn a_dead_letter_policy_without_its_output_is_refused() {
        let message = parse(&format!("{SOURCE}\n[decode]\nformat = \"json\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("decode.dead_letter") && message.contains("[outputs.dead-letter]"),
            "{message}"
        );
        let job = parse(&format!(
            "{SOURCE}\n[decode]\nformat = \"json\"\non_error = \"skip-and-count\"\n"
        ))
        .unwrap();
        assert_eq!(job.decode.unwrap().on_error, OnError::SkipAndCount);
    }

    #[test]
    fn validate_is_for_json_schema_values_only() {
        let decode = |format: &str| {
            parse(&format!(
                "{SOURCE}\n[decode]\nformat = \"{format}\"\nregistry = {{ url = \"http://r:8081\" }}\non_error = \"fail\"\nvalidate = true\n"
            ))
        };
        assert!(decode("json-schema").unwrap().decode.unwrap().validate);
        let message = decode("avro").unwrap_err().to_string();
        assert!(message.contains("decode.validate"), "{message}");
    }
}
