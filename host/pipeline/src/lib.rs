//! Runs a job: cuts the source's rows into micro-batches (max rows, max
//! bytes, max interval), passes each batch once through the plugin chain
//! and, if the job has one, the windowed aggregation, and writes the
//! results to the sink and the named outputs.
//!
//! Plugin errors follow the contract: `invalid-input` rows go to the
//! `dead-letter` output and the rest of the batch is processed again;
//! `transient` errors are retried with backoff; anything else stops the job
//! with an error that names the plugin. No row is dropped silently.
//!
//! With a `[decode]` section, each batch's Kafka `value` is decoded first;
//! records that cannot be decoded, and rows a plugin rejects, go to the
//! dead-letter output with their original key, value and headers (or stop
//! the job, or are counted, as `on_error` says). With `[encode]`, the rows
//! reach the sink as Confluent-encoded values.

mod decode;
mod encode;
mod plan;

pub use plan::Plan;

use decode::{DecodeStage, count_poison, dead_letter_rows, rejected_as_poison};
use encode::EncodeStage;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, BooleanArray, StringArray, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use sluice_config::{
    AggregateSpec, EmitConfig, Job, PluginSpec, SinkSpec, SourceSpec, Trigger, WindowConfig,
};
use sluice_format::FormatError;
use sluice_kafka::{KafkaSink, KafkaSource};
use sluice_runtime::{AggregatePlugin, PluginLimits, Runtime, RuntimeError, TransformPlugin};
use sluice_sink::{Sink, SinkError};
use sluice_source::{Chunk, Source, SourceError};
use sluice_window::{EmitMode, WindowError, WindowKind, WindowOperator, WindowOutput, WindowSpec};

/// The output that receives rows a plugin rejects as invalid input.
pub const DEAD_LETTER_OUTPUT: &str = "dead-letter";

/// Attempts of a call that keeps failing with `transient`.
const TRANSIENT_ATTEMPTS: u32 = 4;
/// How long the source may wait for the first row of a batch: a stop is
/// noticed within it.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Why a job stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A plugin could not be loaded.
    #[error("`{field}` (job file line {line}): plugin `{name}`: {source}")]
    Load {
        /// The plugin's name.
        name: String,
        /// Dotted path of its `plugin` field.
        field: String,
        /// Line of its `plugin` field.
        line: usize,
        /// The runtime's error.
        source: Box<RuntimeError>,
    },
    /// A plugin failed on a batch.
    #[error(transparent)]
    Plugin(#[from] RuntimeError),
    /// A plugin routed rows to an output the job does not define.
    #[error(
        "plugin `{plugin}` routed rows to output `{output}`, which the job does not define (defined: [{defined}]); add [outputs.{output}]"
    )]
    UnknownOutput {
        /// The plugin.
        plugin: String,
        /// The output it named.
        output: String,
        /// The outputs the job defines.
        defined: String,
    },
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Kafka could not be set up.
    #[error(transparent)]
    Kafka(#[from] sluice_kafka::KafkaError),
    /// The windowed aggregation failed.
    #[error("aggregate `{name}`: {source}")]
    Window {
        /// The aggregate plugin's name.
        name: String,
        /// What failed.
        source: WindowError,
    },
    /// The job's windows are invalid.
    #[error("`aggregate.window` (job file line {line}): aggregate `{name}`: {message}")]
    WindowSpec {
        /// The aggregate plugin's name.
        name: String,
        /// Line of its `window` field.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Batches could not be assembled.
    #[error("assembling a batch: {0}")]
    Batch(String),
    /// Values could not be decoded (not a record's fault: the registry or
    /// the job's format settings).
    #[error("decode: {0}")]
    Decode(FormatError),
    /// A record could not be decoded and the job's policy is `fail`.
    #[error("decode: {0}")]
    Poison(String),
    /// Rows could not be encoded for the sink.
    #[error("encode: {0}")]
    Encode(FormatError),
}

/// What a job did.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Micro-batches processed.
    pub batches: u64,
    /// Rows read from the source.
    pub rows_in: u64,
    /// Rows written to the main sink.
    pub rows_out: u64,
    /// Rows written to each named output (the dead-letter output included).
    pub rows_routed: BTreeMap<String, u64>,
    /// Time spent reading and batching.
    pub source_time: Duration,
    /// Records that could not be decoded or that a plugin rejected, by
    /// kind, whatever the job's policy did with them.
    pub poison: BTreeMap<String, u64>,
    /// Time spent in plugins (routed-output writes included).
    pub plugin_time: Duration,
    /// Time spent handing batches to the main sink and flushing sinks.
    pub sink_time: Duration,
}

/// The job's windowed aggregation.
#[derive(Debug)]
struct Aggregation {
    name: String,
    operator: WindowOperator<AggregatePlugin>,
    late_output: String,
}

/// A job, ready to run.
#[derive(Debug)]
pub struct Pipeline {
    trigger: Trigger,
    source: Box<dyn Source>,
    job: String,
    transforms: Vec<TransformPlugin>,
    aggregate: Option<Aggregation>,
    sink: Box<dyn Sink>,
    outputs: BTreeMap<String, Box<dyn Sink>>,
    decode: Option<DecodeStage>,
    /// The batch being processed as the source gave it, while a decode
    /// stage needs it for rows a plugin rejects.
    source_rows: Option<RecordBatch>,
    encode: Option<EncodeStage>,
    stats: RunStats,
}

impl Pipeline {
    /// Open the source and sinks and load every plugin, so a bad job fails
    /// before the first row is read.
    pub fn build(job: &Job, runtime: &Runtime) -> Result<Self, PipelineError> {
        let transforms = job
            .transforms
            .iter()
            .map(|spec| load_transform(spec, runtime))
            .collect::<Result<_, _>>()?;
        let aggregate = job
            .aggregate
            .as_ref()
            .map(|spec| Aggregation::build(spec, runtime))
            .transpose()?;
        let outputs = job
            .outputs
            .iter()
            .map(|(name, spec)| Ok((name.clone(), open_sink(spec, &format!("output `{name}`"))?)))
            .collect::<Result<_, PipelineError>>()?;
        let source: Box<dyn Source> = match &job.source {
            SourceSpec::Kafka(kafka) => Box::new(KafkaSource::open(
                &kafka.options,
                job.trigger.available_now,
            )?),
            other => sluice_source::open(other, job.trigger.max_rows)?,
        };
        let decode = job
            .decode
            .as_ref()
            .map(|config| DecodeStage::build(config, &job.source, &source.schema(), &job.name))
            .transpose()?;
        let encode = job.encode.as_ref().map(EncodeStage::new).transpose()?;
        let mut aggregate = aggregate;
        if let Some(aggregation) = aggregate.as_mut() {
            aggregation
                .operator
                .expect_partitions(source.partitions(), Instant::now());
        }
        let mut trigger = job.trigger;
        if let Some(cap) = source.max_rows_per_batch() {
            trigger.max_rows = trigger.max_rows.min(cap);
        }
        Ok(Pipeline {
            job: job.name.clone(),
            trigger,
            source,
            transforms,
            aggregate,
            sink: open_sink(&job.sink, "sink")?,
            outputs,
            decode,
            source_rows: None,
            encode,
            stats: RunStats::default(),
        })
    }

    /// Run until the source ends or `stop` is set; the batch in progress is
    /// finished first. The sinks are flushed whether the job ends, stops or
    /// fails, so what they were handed is delivered (dropping a Kafka
    /// producer would purge what it still holds).
    pub fn run(mut self, stop: &AtomicBool) -> Result<RunStats, PipelineError> {
        let result = self.run_batches(stop);
        let flushed = self.flush();
        match (result, flushed) {
            (Ok(()), Ok(())) => Ok(self.stats),
            (Err(error), Ok(())) | (Ok(()), Err(error)) => Err(error),
            (Err(error), Err(flush_error)) => {
                tracing::warn!(error = %flush_error, "flushing the sinks of a failed job");
                Err(error)
            }
        }
    }

    /// Process batches until the source ends or `stop` is set.
    fn run_batches(&mut self, stop: &AtomicBool) -> Result<(), PipelineError> {
        loop {
            let started = Instant::now();
            let (batch, ended) = self.next_batch(stop)?;
            self.stats.source_time += started.elapsed();
            if let Some(batch) = batch {
                self.process(batch)?;
            }
            if ended {
                return self.finish_windows();
            }
            if stop.load(Ordering::Relaxed) {
                if let Some(aggregation) = &self.aggregate {
                    tracing::warn!(
                        groups = aggregation.operator.state().groups(),
                        "stopped with windows still open; their state is not kept"
                    );
                }
                return Ok(());
            }
        }
    }

    /// Flush the sink and every output.
    fn flush(&mut self) -> Result<(), PipelineError> {
        let started = Instant::now();
        self.sink.flush()?;
        for output in self.outputs.values_mut() {
            output.flush()?;
        }
        self.stats.sink_time += started.elapsed();
        Ok(())
    }

    /// Buffer chunks until a trigger limit is reached or the source ends.
    fn next_batch(
        &mut self,
        stop: &AtomicBool,
    ) -> Result<(Option<RecordBatch>, bool), PipelineError> {
        let mut chunks = Vec::new();
        let (mut rows, mut bytes) = (0usize, 0u64);
        let mut first_row_at: Option<Instant> = None;
        let ended = loop {
            if rows >= self.trigger.max_rows
                || bytes >= self.trigger.max_bytes
                || first_row_at.is_some_and(|t| t.elapsed() >= self.trigger.max_interval)
                || stop.load(Ordering::Relaxed)
            {
                break false;
            }
            let max_wait = source_wait(first_row_at, self.trigger.max_interval);
            match self
                .source
                .next_chunk(self.trigger.max_rows - rows, max_wait)?
            {
                Chunk::Rows(chunk) if chunk.num_rows() > 0 => {
                    first_row_at.get_or_insert_with(Instant::now);
                    rows += chunk.num_rows();
                    bytes += chunk.get_array_memory_size() as u64;
                    chunks.push(chunk);
                }
                Chunk::Rows(_) | Chunk::Idle => {}
                Chunk::End => break true,
            }
        };
        if chunks.is_empty() {
            return Ok((None, ended));
        }
        let batch = concat_batches(&self.source.schema(), &chunks)
            .map_err(|e| PipelineError::Batch(e.to_string()))?;
        Ok((Some(batch), ended))
    }

    /// Pass one batch through the chain and write the results.
    fn process(&mut self, batch: RecordBatch) -> Result<(), PipelineError> {
        self.stats.batches += 1;
        self.stats.rows_in += batch.num_rows() as u64;
        let started = Instant::now();
        let poison_before: u64 = self.stats.poison.values().sum();
        let mut batch = batch;
        if let Some(stage) = self.decode.as_mut() {
            let decoded = stage.decode(&batch)?;
            count_poison(&mut self.stats.poison, &decoded.poison);
            if let (Some(rows), Some(output)) = (&decoded.dead_letter, stage.dead_letter_output()) {
                let output = output.to_owned();
                self.write_output("decode", &output, rows)?;
            }
            self.source_rows = Some(std::mem::replace(&mut batch, decoded.rows));
        }
        for index in 0..self.transforms.len() {
            batch = self.apply(index, batch)?;
        }
        let poison_after: u64 = self.stats.poison.values().sum();
        if poison_after > poison_before {
            tracing::warn!(
                in_batch = poison_after - poison_before,
                totals = ?self.stats.poison,
                "records that could not be decoded or were rejected"
            );
        }
        if self.aggregate.is_some() {
            let Some(results) = self.aggregate_batch(&batch)? else {
                self.stats.plugin_time += started.elapsed();
                return Ok(());
            };
            batch = results;
        }
        self.stats.plugin_time += started.elapsed();
        self.write_sink(&batch)
    }

    fn write_sink(&mut self, batch: &RecordBatch) -> Result<(), PipelineError> {
        self.stats.rows_out += batch.num_rows() as u64;
        let started = Instant::now();
        match self.encode.as_mut() {
            Some(encode) => self.sink.write(&encode.encode(batch)?)?,
            None => self.sink.write(batch)?,
        }
        self.stats.sink_time += started.elapsed();
        Ok(())
    }

    /// Fold a batch into the windows; write late rows to the late output
    /// and rows without an event time to the dead-letter output. Returns
    /// the results the batch closed.
    fn aggregate_batch(
        &mut self,
        batch: &RecordBatch,
    ) -> Result<Option<RecordBatch>, PipelineError> {
        let aggregation = self.aggregate.as_mut().expect("checked by the caller");
        let name = aggregation.name.clone();
        let late_output = aggregation.late_output.clone();
        let WindowOutput {
            results,
            late,
            invalid,
        } = aggregation
            .operator
            .process(batch, Instant::now())
            .map_err(|source| PipelineError::Window {
                name: name.clone(),
                source,
            })?;
        if let Some(late) = late {
            self.write_output(&name, &late_output, &late)?;
        }
        if let Some(invalid) = invalid {
            let message = "the event-time column is null";
            if !self.outputs.contains_key(DEAD_LETTER_OUTPUT) {
                return Err(PipelineError::Window {
                    name,
                    source: WindowError::Column {
                        column: "event time".into(),
                        message: format!(
                            "{} rows have no event time and the job has no [outputs.{DEAD_LETTER_OUTPUT}]",
                            invalid.num_rows()
                        ),
                    },
                });
            }
            let dead =
                with_error_columns(&invalid, &name, message).map_err(PipelineError::Batch)?;
            self.write_output(&name, DEAD_LETTER_OUTPUT, &dead)?;
        }
        Ok(results)
    }

    /// The input has ended: emit every open window.
    fn finish_windows(&mut self) -> Result<(), PipelineError> {
        let Some(aggregation) = self.aggregate.as_mut() else {
            return Ok(());
        };
        let results = aggregation
            .operator
            .finish()
            .map_err(|source| PipelineError::Window {
                name: aggregation.name.clone(),
                source,
            })?;
        match results {
            Some(results) => self.write_sink(&results),
            None => Ok(()),
        }
    }

    /// Apply transform `index`, handling its typed errors, and write what it
    /// routes.
    fn apply(
        &mut self,
        index: usize,
        mut batch: RecordBatch,
    ) -> Result<RecordBatch, PipelineError> {
        let mut transient_failures = 0;
        loop {
            let plugin = &self.transforms[index];
            match plugin.process(&batch) {
                Ok(output) => {
                    let plugin = plugin.name().to_owned();
                    for (output_name, rows) in &output.routed {
                        self.write_output(&plugin, output_name, rows)?;
                    }
                    return Ok(output.batch);
                }
                Err(error)
                    if error.is_retryable() && transient_failures + 1 < TRANSIENT_ATTEMPTS =>
                {
                    transient_failures += 1;
                    let backoff = Duration::from_millis(100 << transient_failures);
                    tracing::warn!(
                        plugin = plugin.name(),
                        attempt = transient_failures,
                        ?backoff,
                        "retrying: {error}"
                    );
                    std::thread::sleep(backoff);
                }
                Err(error) => {
                    let Some(rejected) = TransformPlugin::rejected_rows(&error) else {
                        return Err(error.into());
                    };
                    let plugin = plugin.name().to_owned();
                    let (bad, good) =
                        split_rows(&batch, &rejected.rows).map_err(PipelineError::Batch)?;
                    if let Some(stage) = &self.decode {
                        // The job decodes Kafka records: the rejected rows
                        // go where poison records go, as the records were.
                        let source_rows = self.source_rows.as_ref().expect("set by process");
                        let rows = source_rows_of(source_rows, &bad)?;
                        let poison = rejected_as_poison(&rows, &rejected.message);
                        count_poison(&mut self.stats.poison, &poison);
                        match stage.dead_letter_output() {
                            Some(output) => {
                                let output = output.to_owned();
                                let dead = dead_letter_rows(source_rows, &poison, &self.job)?;
                                self.write_output(&plugin, &output, &dead)?;
                            }
                            None if stage.fails_on_poison() => return Err(error.into()),
                            None => {}
                        }
                    } else {
                        if !self.outputs.contains_key(DEAD_LETTER_OUTPUT) {
                            return Err(error.into());
                        }
                        let dead = with_error_columns(&bad, &plugin, &rejected.message)
                            .map_err(PipelineError::Batch)?;
                        self.write_output(&plugin, DEAD_LETTER_OUTPUT, &dead)?;
                    }
                    if good.num_rows() == 0 {
                        return Ok(good);
                    }
                    batch = good;
                }
            }
        }
    }

    fn write_output(
        &mut self,
        plugin: &str,
        output: &str,
        rows: &RecordBatch,
    ) -> Result<(), PipelineError> {
        let Some(sink) = self.outputs.get_mut(output) else {
            return Err(PipelineError::UnknownOutput {
                plugin: plugin.to_owned(),
                output: output.to_owned(),
                defined: self.outputs.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        if rows.num_rows() > 0 {
            sink.write(rows)?;
        }
        *self.stats.rows_routed.entry(output.to_owned()).or_default() += rows.num_rows() as u64;
        Ok(())
    }
}

impl Aggregation {
    /// Load the aggregate plugin and set up its windows.
    fn build(spec: &AggregateSpec, runtime: &Runtime) -> Result<Self, PipelineError> {
        let (window, accumulator) = window_and_plugin(spec, runtime)?;
        Ok(Aggregation {
            name: spec.plugin.name.clone(),
            operator: WindowOperator::new(window, accumulator),
            late_output: spec.late_output.clone(),
        })
    }
}

/// Check an aggregate's windows and load its plugin.
fn window_and_plugin(
    spec: &AggregateSpec,
    runtime: &Runtime,
) -> Result<(WindowSpec, AggregatePlugin), PipelineError> {
    let plugin = &spec.plugin;
    let spec_error = |message: String| PipelineError::WindowSpec {
        name: plugin.name.clone(),
        line: spec.window_line,
        message,
    };
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let kind = match spec.window {
        WindowConfig::Tumbling { size } => WindowKind::Tumbling { size: millis(size) },
        WindowConfig::Hopping { size, slide } => WindowKind::Hopping {
            size: millis(size),
            slide: millis(slide),
        },
        WindowConfig::Session { gap } => WindowKind::Session { gap: millis(gap) },
    };
    kind.validate().map_err(spec_error)?;
    let accumulator = AggregatePlugin::load(
        runtime,
        &plugin.name,
        &plugin.plugin,
        plugin.config.clone(),
        limits_of(plugin),
    )
    .map_err(load_error(plugin))?;
    let window = WindowSpec {
        kind,
        key_columns: spec.key.clone(),
        input_columns: spec.columns.clone(),
        event_time_column: spec.event_time.clone(),
        partition_column: spec.partition_column.clone(),
        out_of_orderness_ms: millis(spec.watermark_delay),
        idle_timeout: spec.idle_timeout,
        allowed_lateness_ms: millis(spec.allowed_lateness),
        emit: match spec.emit {
            EmitConfig::Final => EmitMode::Final,
            EmitConfig::Updates => EmitMode::Updates,
        },
        state_quota: usize::try_from(spec.state_quota).unwrap_or(usize::MAX),
    };
    Ok((window, accumulator))
}

/// How long the source may wait for rows: before a batch's first row,
/// [`IDLE_WAIT`] (so a stop is noticed); after it, what is left of the
/// trigger interval, so no batch is held past `max_interval`.
fn source_wait(first_row_at: Option<Instant>, max_interval: Duration) -> Duration {
    first_row_at.map_or(IDLE_WAIT, |t| max_interval.saturating_sub(t.elapsed()))
}

/// Load a transform plugin with the limits its job file gives it.
fn load_transform(spec: &PluginSpec, runtime: &Runtime) -> Result<TransformPlugin, PipelineError> {
    TransformPlugin::load(
        runtime,
        &spec.name,
        &spec.plugin,
        spec.config.clone(),
        limits_of(spec),
    )
    .map_err(load_error(spec))
}

/// The error of a plugin that could not be loaded, naming it and its line.
fn load_error(spec: &PluginSpec) -> impl FnOnce(RuntimeError) -> PipelineError + '_ {
    |source| PipelineError::Load {
        name: spec.name.clone(),
        field: spec.field.clone(),
        line: spec.line,
        source: Box::new(source),
    }
}

/// The limits a job file gives a plugin.
fn limits_of(spec: &PluginSpec) -> PluginLimits {
    PluginLimits {
        memory_bytes: usize::try_from(spec.memory_limit).unwrap_or(usize::MAX),
        deadline: spec.deadline,
        ..PluginLimits::default()
    }
}

/// Open a sink of any kind.
fn open_sink(spec: &SinkSpec, label: &str) -> Result<Box<dyn Sink>, PipelineError> {
    Ok(match spec {
        SinkSpec::Kafka(kafka) => Box::new(KafkaSink::open(&kafka.options)?),
        other => sluice_sink::open(other, label)?,
    })
}

/// The source rows that `rows` (decoded rows that kept the Kafka `topic`,
/// `partition` and `offset` columns) came from.
fn source_rows_of(source: &RecordBatch, rows: &RecordBatch) -> Result<Vec<u32>, PipelineError> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int32Type, Int64Type};
    type Position = (Option<String>, i32, i64);
    let positions = |batch: &RecordBatch| -> Option<Vec<Position>> {
        let topics = batch
            .column_by_name("topic")
            .and_then(|c| c.as_string_opt::<i32>().cloned());
        let partitions = batch
            .column_by_name("partition")?
            .as_primitive_opt::<Int32Type>()?
            .clone();
        let offsets = batch
            .column_by_name("offset")?
            .as_primitive_opt::<Int64Type>()?
            .clone();
        Some(
            (0..batch.num_rows())
                .map(|row| {
                    let topic = topics.as_ref().map(|t| t.value(row).to_owned());
                    (topic, partitions.value(row), offsets.value(row))
                })
                .collect(),
        )
    };
    let missing = || {
        PipelineError::Batch(
            "a plugin rejected rows without the Kafka `partition` and `offset` columns, so their records cannot be found for the dead-letter output; keep them (decode.keep) and let them through the plugins".into(),
        )
    };
    let source_positions = positions(source).ok_or_else(missing)?;
    let index: std::collections::HashMap<&Position, u32> = source_positions
        .iter()
        .enumerate()
        .map(|(row, position)| (position, row as u32))
        .collect();
    positions(rows)
        .ok_or_else(missing)?
        .iter()
        .map(|position| index.get(position).copied().ok_or_else(missing))
        .collect()
}

/// Split `batch` into the rows at `rows` (all rows if empty) and the rest.
fn split_rows(batch: &RecordBatch, rows: &[u32]) -> Result<(RecordBatch, RecordBatch), String> {
    if rows.is_empty() {
        return Ok((batch.clone(), batch.slice(0, 0)));
    }
    let mut rejected = vec![false; batch.num_rows()];
    for &row in rows {
        *rejected.get_mut(row as usize).ok_or_else(|| {
            format!(
                "plugin rejected row {row} of a {}-row batch",
                batch.num_rows()
            )
        })? = true;
    }
    let keep = BooleanArray::from(rejected.iter().map(|r| !r).collect::<Vec<_>>());
    let indices = UInt32Array::from(rows.to_vec());
    let bad = take_record_batch(batch, &indices).map_err(|e| e.to_string())?;
    let good = filter_record_batch(batch, &keep).map_err(|e| e.to_string())?;
    Ok((bad, good))
}

/// `batch` plus `_error` and `_plugin` columns saying why it was rejected.
fn with_error_columns(
    batch: &RecordBatch,
    plugin: &str,
    message: &str,
) -> Result<RecordBatch, String> {
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("_error", DataType::Utf8, false));
    fields.push(Field::new("_plugin", DataType::Utf8, false));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![message; batch.num_rows()])) as ArrayRef);
    columns.push(Arc::new(StringArray::from(vec![plugin; batch.num_rows()])) as ArrayRef);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_never_waits_past_the_trigger_interval() {
        let interval = Duration::from_millis(5);
        assert_eq!(source_wait(None, interval), IDLE_WAIT);
        let just_now = Instant::now();
        assert!(source_wait(Some(just_now), interval) <= interval);
        let long_ago = Instant::now() - Duration::from_secs(1);
        assert_eq!(source_wait(Some(long_ago), interval), Duration::ZERO);
    }
}
