//! The job's loop: batches through the operators to the sinks, epochs,
//! checkpoints, commits, and going back to the last checkpoint after a
//! failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use sluice_config::{Delivery, Job, OnError, SinkSpec, SourceSpec, Trigger};
use sluice_kafka::{KafkaSink, KafkaSource, Transactions, epoch_of_metadata, sending_at_once};
use sluice_metrics::{JobMetrics, Stage, SwapOutcome};
use sluice_operator::{Collector, Operator, Rejected, TransformOperator, WindowAggregate};
use sluice_runtime::Runtime;
use sluice_sink::Sink;
use sluice_source::{Chunk, Position, Room, Source};
use sluice_state::CheckpointStore;

use crate::checkpoint::{
    Checkpoints, EpochMetadata, SavedOperator, SavedPosition, check_compatible, describe,
    state_file,
};
use crate::commit::{Deferred, Destination, Epoch, InFlight};
use crate::dead_letter::{Cause, dead_letters, original_records};
use crate::decode::{DecodeStage, count_poison};
use crate::encode::EncodeStage;
use crate::handle::{
    BatchProgress, CheckpointProgress, JobState, JobStatus, PartitionLag, RECENT_CHECKPOINTS,
};
use crate::pace::Pace;
use crate::stages::{Staged, StatelessStages, Tasks, close_all, through};
use crate::swap::{SwapRecord, SwapRequest, Swapped, Swapper};
use crate::{DEAD_LETTER_OUTPUT, JobError};

/// How long the source may wait for the first row of a batch: a stop is
/// noticed within it.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// How often the source's lag is looked at while the job runs, with or
/// without batches.
const LAG_REFRESH: Duration = Duration::from_millis(500);

/// The longest wait before a restart, however many attempts in a row
/// have doubled the backoff (unless the job's own backoff is longer).
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(300);

/// While tasks hold batches and the source has no rows, how long the job
/// waits for the oldest batch's result before asking the source again.
const TASK_POLL: Duration = Duration::from_millis(1);

/// How a run starts.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ignore the checkpoints at the job's location (they are kept; new
    /// epochs follow them) and start from the source's starting offsets.
    pub from_scratch: bool,
    /// The flag that stops the job: set while it sets up, it gives up
    /// waiting for brokers that do not answer; set while a [`JobHandle`]
    /// runs it (by a signal handler, say), it ends the run at a batch
    /// boundary.
    ///
    /// [`JobHandle`]: crate::JobHandle
    pub stop: Arc<AtomicBool>,
    /// Prefixes of the topics the job's Kafka sinks may write (a tenant's
    /// allow-list on a shared host); `None`: any topic.
    pub allowed_topics: Option<Vec<String>>,
    /// The most source rows per second the job reads (a tenant's quota on
    /// a shared host); `None`: no limit.
    pub max_rows_per_second: Option<u64>,
    /// Where the job's metrics go; by default none are kept.
    pub metrics: JobMetrics,
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
    /// Rows that could not be decoded or that operators rejected, by kind,
    /// whatever the job's policy did with them.
    pub poison: BTreeMap<String, u64>,
    /// Time spent in operators (routed-output writes included).
    pub plugin_time: Duration,
    /// Time spent handing batches to the main sink and flushing sinks.
    pub sink_time: Duration,
    /// Epochs checkpointed and committed.
    pub checkpoints: u64,
    /// Time the job's thread spent on checkpoints: taking snapshots, and
    /// waiting for an epoch's commit where the next could not go on
    /// without it.
    pub checkpoint_time: Duration,
    /// Time the epochs took to commit (checkpoint written, transaction
    /// committed), from their snapshot, off the job's thread.
    pub commit_time: Duration,
    /// Batches processed while the last epoch was committing.
    pub batches_during_commits: u64,
    /// Times the job went back to its last checkpoint after a failure.
    pub restarts: u32,
    /// How long each batch took, from being cut to being handed to the
    /// sinks (or held back for them while the last epoch commits), the
    /// end of an epoch it closed (the snapshot, and any wait for the last
    /// epoch's commit) included.
    pub batch_latency: BatchLatency,
}

/// A histogram of batch durations, in microseconds, 3 significant figures.
#[derive(Debug, Clone)]
pub struct BatchLatency(hdrhistogram::Histogram<u64>);

impl Default for BatchLatency {
    fn default() -> Self {
        // 1 µs to an hour; longer batches count as an hour.
        BatchLatency(
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("the bounds and 3 significant figures are valid"),
        )
    }
}

impl BatchLatency {
    fn record(&mut self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    /// The duration below which `quantile` (0.0–1.0) of batches took.
    pub fn quantile(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.0.value_at_quantile(quantile))
    }

    /// Batches recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }
}

/// Where rejected rows go.
#[derive(Debug, Clone)]
enum Rejections {
    /// To this output.
    Output(String),
    /// Counted and dropped (`on_error = "skip-and-count"`).
    Skip,
    /// They stop the job; the hint says how to keep it going.
    Fail(String),
}

/// The source and sinks a job runs between.
#[derive(Debug)]
pub struct Connectors {
    /// Where rows come from.
    pub source: Box<dyn Source>,
    /// The main sink.
    pub sink: Box<dyn Sink>,
    /// The named outputs (dead letters and late rows included).
    pub outputs: BTreeMap<String, Box<dyn Sink>>,
    /// A checkpoint store to use instead of the job's
    /// `checkpoint.location` (the job's other checkpoint settings apply).
    pub checkpoint_store: Option<CheckpointStore>,
}

/// A job, ready to run.
#[derive(Debug)]
pub struct JobRunner {
    /// The flag a [`crate::JobHandle`] stops the job with.
    stop: Arc<AtomicBool>,
    /// The job's rate limit, if it has one.
    pace: Option<Pace>,
    name: String,
    trigger: Trigger,
    source: Box<dyn Source>,
    /// Decoding and the stateless transforms, inline or on tasks.
    stateless: Stateless,
    /// What a checkpoint records of the stateless transforms.
    stateless_described: Vec<SavedOperator>,
    /// The operators from the first that keeps state on, on the job's
    /// thread.
    operators: Vec<Box<dyn Operator>>,
    sink: Box<dyn Sink>,
    outputs: BTreeMap<String, Box<dyn Sink>>,
    encode: Option<EncodeStage>,
    rejections: Rejections,
    checkpoints: Option<Checkpoints>,
    transactions: Option<Transactions>,
    restart_attempts: u32,
    restart_backoff: Duration,
    /// Where the source started: where a failure before the first
    /// checkpoint goes back to.
    start_positions: Vec<Position>,
    /// Whether the current epoch has processed a batch.
    epoch_dirty: bool,
    /// The last epoch, while it commits.
    in_flight: Option<InFlight>,
    /// The current epoch's writes, while the last one commits.
    deferred: Deferred,
    epoch_started: Instant,
    /// When the batches handed to the sinks since the last were cut.
    delivered: Vec<Instant>,
    /// When the last batch's rows were written.
    last_written: Option<Instant>,
    /// Loads new versions of plugins for swaps.
    runtime: Runtime,
    /// Swap requests from the job's handle, and the sending end to give it.
    swaps: (Sender<SwapRequest>, Receiver<SwapRequest>),
    /// A swap whose new version has not yet passed its first batch.
    trial: Option<Trial>,
    status: Arc<Mutex<JobStatus>>,
    stats: RunStats,
    metrics: JobMetrics,
    /// The output the aggregate sends rows later than its lateness to.
    late_output: Option<String>,
    /// When the source's lag was last looked at.
    lag_refreshed: Option<Instant>,
    /// State bytes of the epoch committing.
    in_flight_size: u64,
}

/// Where a swapped transform runs.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// On the job's thread, among the operators that keep state.
    Stateful(usize),
    /// On the job's thread, among the stateless stages.
    Inline(usize),
    /// On every task, among the stateless stages.
    Tasks,
}

/// A swap whose new version has not passed its first batch.
#[derive(Debug)]
struct Trial {
    place: Place,
    /// The old version, on the job's thread (tasks keep their own).
    old: Option<Box<dyn Operator>>,
    /// The transform.
    name: String,
    /// The old version's digest.
    from: String,
}

/// Where a job decodes and runs its stateless transforms.
#[derive(Debug)]
enum Stateless {
    /// On the job's thread, one batch at a time.
    Inline(StatelessStages),
    /// On tasks, several batches at once.
    Tasks(Tasks),
}

impl JobRunner {
    /// Open the source and sinks, load every plugin and, with
    /// `[checkpoint]`, restore the checkpoint the job left (unless
    /// `options.from_scratch`), so a bad job fails before the first row.
    pub fn build(job: &Job, runtime: &Runtime, options: RunOptions) -> Result<Self, JobError> {
        let group_id = format!("sluice-{}", job.name);
        // The Kafka source is needed as itself first, for its group's
        // offsets and metadata.
        let kafka = match &job.source {
            SourceSpec::Kafka(kafka) => Some(KafkaSource::open(
                &kafka.options,
                job.trigger.available_now,
                &group_id,
                &options.stop,
            )?),
            _ => None,
        };
        // A real-time job's Kafka producers send each record at once.
        let producer_options = |options: &BTreeMap<String, String>| {
            if job.trigger.real_time {
                sending_at_once(options)
            } else {
                options.clone()
            }
        };
        let kafka_sink = std::iter::once(&job.sink)
            .chain(job.outputs.values())
            .find_map(|spec| match spec {
                SinkSpec::Kafka(kafka) => Some(producer_options(&kafka.options)),
                _ => None,
            });
        let exactly_once = job
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.delivery == Delivery::ExactlyOnce);
        let (transactions, group_offsets) = match (exactly_once, kafka_sink, &kafka) {
            (true, Some(sink_options), Some(source)) => {
                let transactions =
                    Transactions::open(&sink_options, &group_id, source.group_metadata()?)?;
                (Some(transactions), Some(source.committed()?))
            }
            (true, Some(_), None) => {
                return Err(JobError::Setup(
                    "exactly-once into Kafka commits the source's offsets in the output's transaction, so it needs a Kafka source; set checkpoint.delivery = \"at-least-once\"".into(),
                ));
            }
            _ => (None, None),
        };
        let source: Box<dyn Source> = match kafka {
            Some(kafka) => Box::new(kafka),
            None => sluice_source::open(&job.source, &job.trigger, job.parallelism)?,
        };
        let options_allowed_topics = options.allowed_topics.clone();
        let open = |spec: &SinkSpec, label: &str| -> Result<Box<dyn Sink>, JobError> {
            Ok(match (spec, &transactions) {
                (SinkSpec::Kafka(kafka), transactions) => {
                    let options = producer_options(&kafka.options);
                    let mut sink = match transactions {
                        Some(t) => KafkaSink::open_in(&options, t)?,
                        None => KafkaSink::open(&options)?,
                    };
                    if let Some(prefixes) = &options_allowed_topics {
                        sink.allow_only_topics(prefixes.clone());
                    }
                    Box::new(sink)
                }
                (other, _) => sluice_sink::open(other, label)?,
            })
        };
        let connectors = Connectors {
            sink: open(&job.sink, "sink")?,
            outputs: job
                .outputs
                .iter()
                .map(|(name, spec)| Ok((name.clone(), open(spec, &format!("output `{name}`"))?)))
                .collect::<Result<_, JobError>>()?,
            source,
            checkpoint_store: None,
        };
        let stop = Arc::clone(&options.stop);
        let metrics = options.metrics.clone();
        let mut runner = Self::assemble(job, runtime, connectors, transactions, stop, metrics)?;
        runner.pace = options.max_rows_per_second.map(Pace::new);
        runner.resume(options, group_offsets)?;
        Ok(runner)
    }

    /// Like [`JobRunner::build`], with the source and sinks given instead
    /// of opened from the job file (whose `[source]`, `[sink]` and
    /// `[outputs]` are then ignored): for running a job in process, with
    /// memory sources and sinks.
    pub fn with_connectors(
        job: &Job,
        runtime: &Runtime,
        options: RunOptions,
        connectors: Connectors,
    ) -> Result<Self, JobError> {
        let stop = Arc::clone(&options.stop);
        let metrics = options.metrics.clone();
        let mut runner = Self::assemble(job, runtime, connectors, None, stop, metrics)?;
        runner.pace = options.max_rows_per_second.map(Pace::new);
        runner.resume(options, None)?;
        Ok(runner)
    }

    /// Load the operators and set up the stages around the connectors.
    fn assemble(
        job: &Job,
        runtime: &Runtime,
        connectors: Connectors,
        transactions: Option<Transactions>,
        stop: Arc<AtomicBool>,
        metrics: JobMetrics,
    ) -> Result<Self, JobError> {
        let Connectors {
            source,
            sink,
            outputs,
            checkpoint_store,
        } = connectors;
        let mut operators: Vec<Box<dyn Operator>> = Vec::new();
        for spec in &job.transforms {
            operators.push(Box::new(TransformOperator::load(spec, runtime)?));
        }
        if let Some(spec) = &job.aggregate {
            let mut aggregate = WindowAggregate::load(spec, runtime)?;
            aggregate.expect_partitions(source.partitions());
            operators.push(Box::new(aggregate));
        }
        let decode_stage = || {
            job.decode
                .as_ref()
                .map(|config| DecodeStage::build(config, &job.source, &source.schema()))
                .transpose()
        };
        let decode = decode_stage()?;
        let template = decode.as_ref().and_then(DecodeStage::template);
        let stateless_count = operators.iter().take_while(|o| o.is_stateless()).count();
        let stateful = operators.split_off(stateless_count);
        let lead = StatelessStages {
            decode,
            operators,
            metrics: metrics.clone(),
        };
        let stateless_described = describe(&lead.operators, &vec![false; stateless_count]);
        let stateless = if job.parallelism > 1 && (lead.decode.is_some() || stateless_count > 0) {
            let mut copies = vec![lead];
            for _ in 1..job.parallelism {
                let operators = job.transforms[..stateless_count]
                    .iter()
                    .map(|spec| {
                        Ok(Box::new(TransformOperator::load(spec, runtime)?) as Box<dyn Operator>)
                    })
                    .collect::<Result<_, JobError>>()?;
                copies.push(StatelessStages {
                    decode: decode_stage()?,
                    operators,
                    metrics: metrics.clone(),
                });
            }
            Stateless::Tasks(Tasks::start(&job.name, copies)?)
        } else {
            Stateless::Inline(lead)
        };
        let operators = stateful;
        let checkpoints = job
            .checkpoint
            .as_ref()
            .map(|config| match checkpoint_store {
                Some(store) => Checkpoints::with_store(store, config),
                None => Checkpoints::open(config),
            })
            .transpose()?;
        let encode = job
            .encode
            .as_ref()
            .map(|config| EncodeStage::new(config, template))
            .transpose()?;
        let mut trigger = job.trigger;
        if trigger.real_time {
            trigger.max_interval = Duration::ZERO;
        }
        if let Some(cap) = source.max_rows_per_batch() {
            trigger.max_rows = trigger.max_rows.min(cap);
        }
        let (restart_attempts, restart_backoff) =
            job.checkpoint.as_ref().map_or((0, Duration::ZERO), |c| {
                (c.restart_attempts, c.restart_backoff)
            });
        let plugins = running_plugins(&stateless_described, &operators);
        Ok(JobRunner {
            stop,
            pace: None,
            name: job.name.clone(),
            trigger,
            start_positions: source.positions(),
            source,
            stateless,
            stateless_described,
            operators,
            sink,
            outputs,
            encode,
            rejections: rejections(job),
            checkpoints,
            transactions,
            restart_attempts,
            restart_backoff,
            epoch_dirty: false,
            in_flight: None,
            deferred: Deferred::default(),
            epoch_started: Instant::now(),
            delivered: Vec::new(),
            status: Arc::new(Mutex::new(JobStatus {
                plugins,
                ..JobStatus::default()
            })),
            last_written: None,
            runtime: runtime.clone(),
            swaps: channel(),
            trial: None,
            stats: RunStats::default(),
            metrics,
            late_output: job.aggregate.as_ref().map(|a| a.late_output.clone()),
            lag_refreshed: None,
            in_flight_size: 0,
        })
    }

    /// The flag that stops the job ([`RunOptions::stop`]).
    pub(crate) fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The status the job keeps up to date while it runs.
    pub(crate) fn status(&self) -> Arc<Mutex<JobStatus>> {
        Arc::clone(&self.status)
    }

    /// What a handle needs to ask the job for plugin swaps.
    pub(crate) fn swapper(&self) -> Swapper {
        Swapper {
            requests: self.swaps.0.clone(),
            runtime: self.runtime.clone(),
            copies: match &self.stateless {
                Stateless::Tasks(tasks) => tasks.len(),
                Stateless::Inline(_) => 1,
            },
        }
    }

    /// Restore the checkpoint a restart resumes from: the one the Kafka
    /// group's committed offsets name (exactly-once), or the newest.
    fn restore_at_start(
        &mut self,
        group_offsets: Option<Vec<(Position, String)>>,
    ) -> Result<(), JobError> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(());
        };
        let epoch = match group_offsets {
            Some(offsets) if offsets.is_empty() => None,
            Some(offsets) => {
                let tagged: Vec<Option<u64>> =
                    offsets.iter().map(|(_, m)| epoch_of_metadata(m)).collect();
                let named = match tagged.first() {
                    Some(Some(first)) if tagged.iter().all(|t| *t == Some(*first)) => Some(*first),
                    _ => None,
                };
                let positions: Vec<Position> = offsets.into_iter().map(|(p, _)| p).collect();
                let found = match named {
                    Some(epoch) => Some(epoch),
                    None => checkpoints.epoch_at(&positions)?,
                };
                match found {
                    Some(epoch) => Some(epoch),
                    None => {
                        return Err(JobError::Incompatible {
                            location: checkpoints.location().to_owned(),
                            epoch: 0,
                            reason: format!(
                                "the consumer group `sluice-{}` has committed offsets that match none of the checkpoints",
                                self.name
                            ),
                        });
                    }
                }
            }
            None => checkpoints.committed()?.last().copied(),
        };
        if let Some(epoch) = epoch {
            self.restore(epoch)?;
            tracing::info!(job = %self.name, epoch, "restored from the checkpoint");
        }
        Ok(())
    }

    /// Restore the job's checkpoint (unless `options.from_scratch`), let
    /// the sinks recover, and note where the source starts.
    fn resume(
        &mut self,
        options: RunOptions,
        group_offsets: Option<Vec<(Position, String)>>,
    ) -> Result<(), JobError> {
        if !options.from_scratch {
            self.restore_at_start(group_offsets)?;
        }
        self.recover_sinks()?;
        self.start_positions = self.source.positions();
        Ok(())
    }

    /// With checkpoints, tell every sink which epoch the job resumes from,
    /// so sinks that hold epochs back finish or drop what a crash left.
    fn recover_sinks(&mut self) -> Result<(), JobError> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(());
        };
        let restored = checkpoints.last_committed;
        self.sink.recover(restored)?;
        for output in self.outputs.values_mut() {
            output.recover(restored)?;
        }
        Ok(())
    }

    /// Put the operators and the source back to checkpointed `epoch`.
    fn restore(&mut self, epoch: u64) -> Result<(), JobError> {
        let checkpoints = self.checkpoints.as_mut().expect("only with checkpoints");
        let location = checkpoints.location().to_owned();
        let incompatible = |reason: String| JobError::Incompatible {
            location: location.clone(),
            epoch,
            reason,
        };
        let checkpoint = checkpoints.read(epoch)?;
        let metadata: EpochMetadata = serde_json::from_value(checkpoint.manifest.metadata.clone())
            .map_err(|e| incompatible(format!("its manifest is not a Sluice job's: {e}")))?;
        check_compatible(
            &metadata.operators,
            &self.stateless_described,
            &self.operators,
        )
        .map_err(incompatible)?;
        for operator in &mut self.operators {
            let state = checkpoint.file(&state_file(operator.name()));
            operator
                .restore(state.map(|s| s.as_ref()))
                .map_err(|e| incompatible(e.to_string()))?;
        }
        let positions: Vec<Position> = metadata.positions.iter().map(Position::from).collect();
        self.source.seek(&positions)?;
        checkpoints.last_committed = Some(epoch);
        self.status_mut(|s| s.last_checkpoint = Some(epoch));
        Ok(())
    }

    /// Go back to the last committed epoch (or the start) after a failure:
    /// the open transaction and whatever sinks hold of the epoch are
    /// dropped, the operators and the source restored.
    fn go_back(&mut self) -> Result<(), JobError> {
        self.drop_current_epoch();
        if let Some(transactions) = &mut self.transactions {
            transactions.abort()?;
        }
        self.sink.abort()?;
        for output in self.outputs.values_mut() {
            output.abort()?;
        }
        self.epoch_dirty = false;
        match self.checkpoints.as_ref().and_then(|c| c.last_committed) {
            Some(epoch) => self.restore(epoch),
            None => {
                for operator in &mut self.operators {
                    operator.restore(None)?;
                }
                let start = self.start_positions.clone();
                Ok(self.source.seek(&start)?)
            }
        }
    }

    /// Run until the source ends or `stop` is set; the batch in progress is
    /// finished and, with checkpoints, the epoch committed. A failure that
    /// a restart may cure goes back to the last checkpoint and tries again,
    /// up to the restart attempts. Sinks are flushed whether the job ends,
    /// stops or fails.
    pub fn run(mut self, stop: &AtomicBool) -> Result<RunStats, JobError> {
        self.status_mut(|s| s.state = JobState::Running);
        let mut attempt = 0;
        // The last epoch committed when the job last went back.
        let mut committed_at_restart = None;
        let result = loop {
            let outcome = self
                .run_epochs(stop)
                .map_err(|error| match self.trial.take() {
                    Some(trial) => self.roll_back(trial, error),
                    None => error,
                });
            // A checkpoint committed since the last restart means the
            // restart worked: this failure starts a new series of
            // attempts, with the first backoff.
            let last_committed = self.checkpoints.as_ref().and_then(|c| c.last_committed);
            if last_committed > committed_at_restart {
                attempt = 0;
            }
            match outcome {
                Ok(()) => break Ok(()),
                Err(error)
                    if error.is_recoverable()
                        && self.checkpoints.is_some()
                        && attempt < self.restart_attempts
                        && !stop.load(Ordering::Relaxed) =>
                {
                    attempt += 1;
                    committed_at_restart = last_committed;
                    let backoff = (self.restart_backoff * 2u32.saturating_pow(attempt - 1))
                        .min(MAX_RESTART_BACKOFF.max(self.restart_backoff));
                    tracing::warn!(
                        job = %self.name,
                        attempt,
                        of = self.restart_attempts,
                        ?backoff,
                        "going back to the last checkpoint: {error}"
                    );
                    self.stats.restarts += 1;
                    self.metrics.restarted();
                    let restarts = self.stats.restarts;
                    self.status_mut(|s| s.restarts = restarts);
                    std::thread::sleep(backoff);
                    if let Err(error) = self.go_back() {
                        break Err(error);
                    }
                }
                Err(error) => break Err(error),
            }
        };
        let result = match result {
            Ok(()) => self.flush().map(|()| self.stats.clone()),
            Err(error) => {
                self.drop_current_epoch();
                if let Some(transactions) = &mut self.transactions
                    && let Err(abort) = transactions.abort()
                {
                    tracing::warn!("aborting the transaction of a failed job: {abort}");
                }
                if let Err(flush) = self.flush() {
                    tracing::warn!("flushing the sinks of a failed job: {flush}");
                }
                Err(error)
            }
        };
        self.status_mut(|s| {
            s.state = match &result {
                Ok(_) => JobState::Finished,
                Err(error) => JobState::Failed(error.to_string()),
            }
        });
        let inline = match &mut self.stateless {
            Stateless::Inline(stages) => stages.operators.as_mut_slice(),
            Stateless::Tasks(_) => &mut [],
        };
        close_all(inline.iter_mut().chain(&mut self.operators));
        result
    }

    /// Process batches until the source ends or `stop` is set, ending an
    /// epoch every checkpoint interval.
    fn run_epochs(&mut self, stop: &AtomicBool) -> Result<(), JobError> {
        loop {
            let started = Instant::now();
            let (batch, ended) = self.next_batch(stop)?;
            self.stats.source_time += started.elapsed();
            self.refresh_lag();
            if let Some(batch) = batch {
                self.metrics.stage(Stage::Source, started.elapsed());
                if let Some(pace) = &mut self.pace {
                    pace.take(batch.num_rows() as u64, stop);
                }
                self.process(batch)?;
            }
            if ended {
                self.finish_operators()?;
                self.end_epoch()?;
                return self.settle();
            }
            if stop.load(Ordering::Relaxed) {
                self.status_mut(|s| s.state = JobState::Stopping);
                if self.checkpoints.is_none() {
                    let open: usize = self.operators.iter().map(|o| o.state_bytes()).sum();
                    if open > 0 {
                        tracing::warn!(
                            state_bytes = open,
                            "stopped with state and no [checkpoint]: the state is not kept"
                        );
                    }
                }
                self.end_epoch()?;
                return self.settle();
            }
            self.poll_commit()?;
            self.take_swaps()?;
            // A new version on trial passes its first batch before an
            // epoch holds its state.
            if self.trial.is_none()
                && self
                    .checkpoints
                    .as_ref()
                    .is_some_and(|c| self.epoch_started.elapsed() >= c.interval)
            {
                self.end_epoch()?;
            }
            for cut in self.delivered.drain(..) {
                self.stats.batch_latency.record(cut.elapsed());
            }
        }
    }

    /// End the epoch: wait for the last epoch's commit, flush the sinks,
    /// take the snapshot, and start the epoch's commit (checkpoint, then,
    /// exactly-once, the transaction with its offsets) on a thread of its
    /// own. Without checkpoints, only the flush and the sinks' commit.
    fn end_epoch(&mut self) -> Result<(), JobError> {
        self.take_results(true)?;
        self.epoch_started = Instant::now();
        if !self.epoch_dirty {
            return Ok(());
        }
        let started = Instant::now();
        self.settle()?;
        self.flush()?;
        let Some(checkpoints) = self.checkpoints.as_mut() else {
            self.sink.commit(0)?;
            for output in self.outputs.values_mut() {
                output.commit(0)?;
            }
            self.epoch_dirty = false;
            return Ok(());
        };
        let positions = self.source.positions();
        let mut files = Vec::new();
        let mut has_state = Vec::with_capacity(self.operators.len());
        for operator in &mut self.operators {
            let state = operator.snapshot()?;
            has_state.push(state.is_some());
            if let Some(state) = state {
                files.push((state_file(operator.name()), Bytes::from(state)));
            }
        }
        let metadata = EpochMetadata {
            job: self.name.clone(),
            positions: positions.iter().map(SavedPosition::from).collect(),
            operators: [
                self.stateless_described.clone(),
                describe(&self.operators, &has_state),
            ]
            .concat(),
        };
        self.in_flight_size = files.iter().map(|(_, state)| state.len() as u64).sum();
        let (number, writer) = checkpoints.next_epoch();
        let epoch = Epoch {
            number,
            files,
            metadata,
            positions,
        };
        self.in_flight = Some(InFlight::start(writer, epoch, self.transactions.take())?);
        self.epoch_dirty = false;
        self.stats.checkpoint_time += started.elapsed();
        self.metrics.stage(Stage::Checkpoint, started.elapsed());
        Ok(())
    }

    /// If the last epoch's commit has ended, finish it.
    fn poll_commit(&mut self) -> Result<(), JobError> {
        if self.in_flight.as_ref().is_some_and(InFlight::is_done) {
            self.settle()?;
        }
        Ok(())
    }

    /// Wait for the last epoch's commit, if one is running; then let the
    /// sinks commit it, and write what the current epoch held back.
    fn settle(&mut self) -> Result<(), JobError> {
        let Some(in_flight) = self.in_flight.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let committed = in_flight.wait();
        self.stats.checkpoint_time += started.elapsed();
        self.transactions = committed.transactions;
        if committed.result.is_err() {
            self.metrics.checkpoint_failed();
        }
        committed.result?;
        let epoch = committed.epoch;
        self.metrics
            .checkpoint_committed(committed.took, self.in_flight_size);
        self.sink.commit(epoch)?;
        for output in self.outputs.values_mut() {
            output.commit(epoch)?;
        }
        if let Some(checkpoints) = self.checkpoints.as_mut() {
            checkpoints.last_committed = Some(epoch);
        }
        self.stats.checkpoints += 1;
        self.stats.commit_time += committed.took;
        let checkpoint = CheckpointProgress {
            epoch,
            committed_at_ms: unix_millis(),
            took_ms: committed.took.as_secs_f64() * 1000.0,
            state_bytes: self.in_flight_size,
        };
        self.status_mut(|s| {
            s.last_checkpoint = Some(epoch);
            if s.checkpoints.len() == RECENT_CHECKPOINTS {
                s.checkpoints.remove(0);
            }
            s.checkpoints.push(checkpoint);
        });
        tracing::debug!(job = %self.name, epoch, took = ?committed.took, "checkpoint committed");
        for (to, batch) in self.deferred.take() {
            self.deliver(to, batch)?;
        }
        Ok(())
    }

    /// After a failure: forget what the current epoch held back, and let
    /// the last epoch's commit end (if it committed, the sinks commit it
    /// too, and it is where the job goes back to).
    fn drop_current_epoch(&mut self) {
        if let Some(tasks) = self.tasks() {
            tasks.discard();
        }
        self.deferred.take();
        if let Err(error) = self.settle() {
            tracing::warn!(job = %self.name, "the last epoch did not commit: {error}");
        }
    }

    /// Flush the sink and every output.
    fn flush(&mut self) -> Result<(), JobError> {
        let started = Instant::now();
        self.sink.flush()?;
        for output in self.outputs.values_mut() {
            output.flush()?;
        }
        self.stats.sink_time += started.elapsed();
        Ok(())
    }

    /// Buffer chunks until a trigger limit is reached or the source ends.
    fn next_batch(&mut self, stop: &AtomicBool) -> Result<(Option<RecordBatch>, bool), JobError> {
        let mut chunks = Vec::new();
        let (mut rows, mut bytes) = (0usize, 0u64);
        let mut first_row_at: Option<Instant> = None;
        let ended = loop {
            self.take_results(false)?;
            if rows >= self.trigger.max_rows
                || bytes >= self.trigger.max_bytes
                || first_row_at.is_some_and(|t| t.elapsed() >= self.trigger.max_interval)
                || stop.load(Ordering::Relaxed)
            {
                break false;
            }
            // While tasks hold batches the source gives only what it has
            // at once, and the wait goes to the oldest batch's result: it
            // is written as soon as it is done, not after a source wait.
            let busy = self.tasks().is_some_and(|tasks| tasks.is_busy());
            let max_wait = if busy {
                Duration::ZERO
            } else {
                source_wait(first_row_at, self.trigger.max_interval)
            };
            match self.source.next_chunk(
                Room {
                    rows: self.trigger.max_rows - rows,
                    bytes: self.trigger.max_bytes.saturating_sub(bytes),
                },
                max_wait,
            )? {
                Chunk::Rows(chunk) if chunk.num_rows() > 0 => {
                    first_row_at.get_or_insert_with(Instant::now);
                    rows += chunk.num_rows();
                    bytes += sluice_source::chunk_bytes(&chunk);
                    chunks.push(chunk);
                }
                Chunk::Rows(_) | Chunk::Idle => {
                    let wait = source_wait(first_row_at, self.trigger.max_interval).min(TASK_POLL);
                    if busy
                        && let Some(staged) =
                            self.tasks().and_then(|tasks| tasks.oldest_within(wait))
                    {
                        self.apply(staged?)?;
                    }
                    if first_row_at.is_none()
                        && self
                            .checkpoints
                            .as_ref()
                            .is_some_and(|c| self.epoch_started.elapsed() >= c.interval)
                    {
                        // Idle, with an epoch due: end it rather than wait.
                        break false;
                    }
                }
                Chunk::End => break true,
            }
        };
        if chunks.is_empty() {
            return Ok((None, ended));
        }
        let batch = concat_batches(&self.source.schema(), &chunks)
            .map_err(|e| JobError::Batch(e.to_string()))?;
        Ok((Some(batch), ended))
    }

    /// Pass one batch through the stages: at once on this thread, or on
    /// the next free task (taking results back, oldest first, until one
    /// is free).
    fn process(&mut self, source_rows: RecordBatch) -> Result<(), JobError> {
        let cut = Instant::now();
        let span = tracing::info_span!(
            target: crate::TRACE_TARGET,
            "batch",
            job = %self.name,
            // As i64: OpenTelemetry's integers are signed.
            rows = source_rows.num_rows() as i64,
        );
        // Every task holds a batch: the oldest one's result frees its task.
        if let Stateless::Tasks(tasks) = &mut self.stateless
            && !tasks.has_room()
            && let Some(staged) = tasks.oldest(true)
        {
            self.apply(staged?)?;
        }
        match &mut self.stateless {
            Stateless::Inline(stages) => {
                let staged = stages.run(source_rows, cut, span)?;
                self.apply(staged)
            }
            Stateless::Tasks(tasks) => tasks.send(source_rows, cut, span),
        }
    }

    /// The tasks, if the job runs its stateless stages on tasks.
    fn tasks(&mut self) -> Option<&mut Tasks> {
        match &mut self.stateless {
            Stateless::Tasks(tasks) => Some(tasks),
            Stateless::Inline(_) => None,
        }
    }

    /// Apply the tasks' results that are ready, in the order the batches
    /// were cut; with `wait`, every batch out.
    fn take_results(&mut self, wait: bool) -> Result<(), JobError> {
        while let Some(staged) = self.tasks().and_then(|tasks| tasks.oldest(wait)) {
            self.apply(staged?)?;
        }
        Ok(())
    }

    /// Set a batch's decode failures aside, pass it through the operators
    /// that keep state, and write the results.
    fn apply(&mut self, staged: Staged) -> Result<(), JobError> {
        let Staged {
            source_rows,
            poison,
            out: mut collected,
            rows,
            took,
            cut,
            span,
        } = staged;
        let _entered = span.enter();
        self.epoch_dirty = true;
        self.stats.batches += 1;
        if self.in_flight.is_some() {
            self.stats.batches_during_commits += 1;
        }
        self.stats.rows_in += source_rows.num_rows() as u64;
        let source_count = source_rows.num_rows() as u64;
        self.metrics.rows("source", source_count, source_count);
        let started = Instant::now();
        let poison_before: u64 = self.stats.poison.values().sum();
        count_poison(&mut self.stats.poison, &poison);
        for p in &poison {
            self.metrics.rejected(p.kind.name(), 1);
        }
        if !poison.is_empty()
            && let Rejections::Output(output) = self.rejections.clone()
        {
            let indices =
                arrow::array::UInt32Array::from(poison.iter().map(|p| p.row).collect::<Vec<_>>());
            let records = arrow::compute::take_record_batch(&source_rows, &indices)
                .map_err(|e| JobError::Batch(e.to_string()))?;
            let causes: Vec<Cause> = poison
                .iter()
                .map(|p| Cause {
                    kind: p.kind.name().to_owned(),
                    message: p.message.clone(),
                    operator: "decode".into(),
                })
                .collect();
            let dead = dead_letters(&records, &causes, &self.name)?;
            self.write_output("decode", &output, &dead)?;
        }
        let current = through(&mut self.operators, rows, &mut collected, &self.metrics)?;
        self.set_aside(&source_rows, collected)?;
        let poison_after: u64 = self.stats.poison.values().sum();
        if poison_after > poison_before {
            tracing::warn!(
                in_batch = poison_after - poison_before,
                totals = ?self.stats.poison,
                "rows that could not be decoded or were rejected"
            );
        }
        self.stats.plugin_time += took + started.elapsed();
        self.metrics.stage(Stage::Process, took + started.elapsed());
        if let Some(batch) = current {
            self.write_sink(&batch)?;
        }
        // The new version on trial has passed its first batch: kept before
        // the batch shows in the status, so whoever sees it may swap again.
        if let Some(trial) = self.trial.take() {
            self.keep(trial);
        }
        self.report_progress(source_rows.num_rows() as u64, cut);
        self.delivered.push(cut);
        Ok(())
    }

    /// The input has ended: let every operator emit what it holds, each
    /// passing on through the operators after it.
    fn finish_operators(&mut self) -> Result<(), JobError> {
        self.take_results(true)?;
        for index in 0..self.operators.len() {
            let mut out = Collector::default();
            let emitted = self.operators[index].on_watermark(i64::MAX, &mut out)?;
            let current = through(
                &mut self.operators[index + 1..],
                emitted,
                &mut out,
                &self.metrics,
            )?;
            let empty = RecordBatch::new_empty(self.source.schema());
            self.set_aside(&empty, out)?;
            if let Some(batch) = current {
                self.epoch_dirty = true;
                self.write_sink(&batch)?;
            }
        }
        Ok(())
    }

    /// Write what operators routed, and dead-letter what they rejected.
    fn set_aside(&mut self, source_rows: &RecordBatch, out: Collector) -> Result<(), JobError> {
        for routed in out.routed {
            if self.late_output.as_ref() == Some(&routed.output) {
                self.metrics.late(routed.rows.num_rows() as u64);
            }
            self.write_output(&routed.operator, &routed.output, &routed.rows)?;
        }
        for rejected in out.rejected {
            self.reject(source_rows, rejected)?;
        }
        Ok(())
    }

    /// Rows an operator rejected: to the dead-letter output, as the records
    /// they came from where they can be found; or counted, or an error, as
    /// the job says.
    fn reject(&mut self, source_rows: &RecordBatch, rejected: Rejected) -> Result<(), JobError> {
        let rows = rejected.rows.num_rows();
        *self
            .stats
            .poison
            .entry(rejected.kind.name().to_owned())
            .or_default() += rows as u64;
        self.metrics.rejected(rejected.kind.name(), rows as u64);
        match self.rejections.clone() {
            Rejections::Skip => Ok(()),
            Rejections::Fail(hint) => Err(JobError::Rejected {
                operator: rejected.operator,
                rows,
                kind: rejected.kind.name().to_owned(),
                message: rejected.message,
                hint,
            }),
            Rejections::Output(output) => {
                let records = original_records(source_rows, &rejected.rows);
                let cause = Cause {
                    kind: rejected.kind.name().to_owned(),
                    message: rejected.message,
                    operator: rejected.operator.clone(),
                };
                let dead = dead_letters(&records, &vec![cause; rows], &self.name)?;
                self.write_output(&rejected.operator, &output, &dead)
            }
        }
    }

    /// Open the epoch's transaction, if the job has one and it is not
    /// open: every write goes into it, whatever stage makes it.
    fn in_transaction(&mut self) -> Result<(), JobError> {
        if let Some(transactions) = &mut self.transactions {
            transactions.begin()?;
        }
        Ok(())
    }

    fn write_sink(&mut self, batch: &RecordBatch) -> Result<(), JobError> {
        self.stats.rows_out += batch.num_rows() as u64;
        let rows = batch.num_rows() as u64;
        self.metrics.rows("sink", rows, rows);
        let encoded = match self.encode.as_mut() {
            Some(encode) => encode.encode(batch)?,
            None => batch.clone(),
        };
        self.deliver(Destination::Sink, encoded)
    }

    fn write_output(
        &mut self,
        operator: &str,
        output: &str,
        rows: &RecordBatch,
    ) -> Result<(), JobError> {
        if !self.outputs.contains_key(output) {
            return Err(JobError::UnknownOutput {
                plugin: operator.to_owned(),
                output: output.to_owned(),
                defined: self.outputs.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        if rows.num_rows() > 0 {
            self.deliver(Destination::Output(output.to_owned()), rows.clone())?;
        }
        *self.stats.rows_routed.entry(output.to_owned()).or_default() += rows.num_rows() as u64;
        self.metrics.output(output, rows.num_rows() as u64);
        Ok(())
    }

    /// Hand rows to a sink, in the epoch's transaction; or, while the last
    /// epoch commits and the sink waits for commits, hold them back
    /// (waiting for the commit once too much is held).
    fn deliver(&mut self, to: Destination, batch: RecordBatch) -> Result<(), JobError> {
        if self.in_flight.is_some() && self.destination(&to).waits_for_commits() {
            self.deferred.push(to, batch);
            if self.deferred.is_full() {
                self.settle()?;
            }
            return Ok(());
        }
        self.in_transaction()?;
        let started = Instant::now();
        self.destination(&to).write(&batch)?;
        self.stats.sink_time += started.elapsed();
        self.metrics.stage(Stage::Sink, started.elapsed());
        Ok(())
    }

    /// The sink or output `to` names.
    fn destination(&mut self, to: &Destination) -> &mut Box<dyn Sink> {
        match to {
            Destination::Sink => &mut self.sink,
            Destination::Output(name) => self
                .outputs
                .get_mut(name)
                .expect("outputs are checked before their rows are delivered"),
        }
    }

    /// Make the swaps asked for, at this batch boundary (every batch out
    /// taken back first), answering each.
    fn take_swaps(&mut self) -> Result<(), JobError> {
        let requests: Vec<SwapRequest> = self.swaps.1.try_iter().collect();
        if requests.is_empty() {
            return Ok(());
        }
        self.take_results(true)?;
        for request in requests {
            let started = Instant::now();
            let outcome = self
                .swap(&request.transform, request.copies)
                .map(|(from, to)| Swapped {
                    pause: started.elapsed(),
                    from,
                    to,
                });
            match &outcome {
                Ok(swapped) => {
                    tracing::info!(job = %self.name, transform = %request.transform, from = %swapped.from, to = %swapped.to, pause = ?swapped.pause, "swapped")
                }
                Err(error) => {
                    self.metrics.swap(&request.transform, SwapOutcome::Refused);
                    tracing::warn!(job = %self.name, "{error}")
                }
            }
            let _ = request.reply.send(outcome);
        }
        Ok(())
    }

    /// Put the first of `copies` (every copy, for a transform on tasks) in
    /// place of transform `name`, carrying its state across; returns the
    /// digests replaced and now running. The old version is kept until
    /// the new one passes its first batch.
    fn swap(
        &mut self,
        name: &str,
        mut copies: Vec<Box<dyn Operator>>,
    ) -> Result<(String, String), JobError> {
        let refuse = |message: String| JobError::Swap {
            transform: name.to_owned(),
            message,
        };
        if self.trial.is_some() {
            return Err(refuse(
                "the last swap's new version has not passed its first batch yet".into(),
            ));
        }
        let new = copies
            .pop()
            .ok_or_else(|| refuse("no new version was given".into()))?;
        let to = new.plugin_digest().to_owned();
        let shape = |stateless: bool| {
            refuse(format!(
                "the new version {} state where the running one {}; a swap keeps the job's shape",
                if stateless { "keeps no" } else { "keeps" },
                if stateless { "keeps it" } else { "keeps none" },
            ))
        };
        let (place, from, old) = if let Some(index) =
            self.operators.iter().position(|o| o.name() == name)
        {
            let mut new = new;
            if new.is_stateless() {
                return Err(shape(true));
            }
            let state = self.operators[index].snapshot()?;
            new.restore(state.as_deref()).map_err(|e| {
                    refuse(format!(
                        "the new version cannot restore the running state, so the job goes on with the old one: {e}"
                    ))
                })?;
            let from = self.operators[index].plugin_digest().to_owned();
            let old = std::mem::replace(&mut self.operators[index], new);
            (Place::Stateful(index), from, Some(old))
        } else if let Some(index) = self.stateless_described.iter().position(|o| o.name == name) {
            if !new.is_stateless() {
                return Err(shape(false));
            }
            let from = std::mem::replace(
                &mut self.stateless_described[index].plugin_digest,
                to.clone(),
            );
            match &mut self.stateless {
                Stateless::Inline(stages) => {
                    let old = std::mem::replace(&mut stages.operators[index], new);
                    (Place::Inline(index), from, Some(old))
                }
                Stateless::Tasks(tasks) => {
                    copies.push(new);
                    tasks.swap(index, copies)?;
                    (Place::Tasks, from, None)
                }
            }
        } else {
            let names: Vec<&str> = self
                .stateless_described
                .iter()
                .map(|o| o.name.as_str())
                .chain(self.operators.iter().map(|o| o.name()))
                .collect();
            return Err(refuse(format!(
                "the job has no transform by that name; it has: {}",
                names.join(", ")
            )));
        };
        self.trial = Some(Trial {
            place,
            old,
            name: name.to_owned(),
            from: from.clone(),
        });
        let plugins = running_plugins(&self.stateless_described, &self.operators);
        self.status_mut(|s| {
            s.plugins = plugins;
            s.swaps.push(SwapRecord {
                transform: name.to_owned(),
                from: from.clone(),
                to: to.clone(),
                rolled_back: None,
            });
        });
        Ok((from, to))
    }

    /// The new version passed its first batch: let the old one go.
    fn keep(&mut self, trial: Trial) {
        self.metrics.swap(&trial.name, SwapOutcome::Swapped);
        match (trial.place, &mut self.stateless) {
            (Place::Tasks, Stateless::Tasks(tasks)) => tasks.keep(),
            _ => close_all(trial.old.into_iter().collect::<Vec<_>>().iter_mut()),
        }
    }

    /// The new version failed (`error`) before passing its first batch:
    /// put the old one back. Returns the error to go back to the last
    /// checkpoint with.
    fn roll_back(&mut self, trial: Trial, error: JobError) -> JobError {
        let cause = error.to_string();
        self.metrics.swap(&trial.name, SwapOutcome::RolledBack);
        tracing::warn!(job = %self.name, transform = %trial.name, "going back to the old version: {cause}");
        let mut new = match (trial.place, trial.old, &mut self.stateless) {
            (Place::Stateful(index), Some(old), _) => {
                Some(std::mem::replace(&mut self.operators[index], old))
            }
            (Place::Inline(index), Some(old), Stateless::Inline(stages)) => {
                Some(std::mem::replace(&mut stages.operators[index], old))
            }
            (Place::Tasks, _, Stateless::Tasks(tasks)) => {
                tasks.discard();
                tasks.roll_back();
                None
            }
            _ => None,
        };
        close_all(new.iter_mut());
        if let Some(described) = self
            .stateless_described
            .iter_mut()
            .find(|o| o.name == trial.name)
        {
            described.plugin_digest.clone_from(&trial.from);
        }
        let plugins = running_plugins(&self.stateless_described, &self.operators);
        self.status_mut(|s| {
            s.plugins = plugins;
            if let Some(record) = s.swaps.last_mut() {
                record.rolled_back = Some(cause.clone());
            }
        });
        JobError::SwapRolledBack {
            transform: trial.name,
            cause,
        }
    }

    /// Show a batch of `rows` source rows, cut at `cut` and now written,
    /// in the job's status.
    fn report_progress(&mut self, rows: u64, cut: Instant) {
        let now = Instant::now();
        let duration = now.duration_since(cut).as_secs_f64();
        let since_last = self
            .last_written
            .replace(now)
            .map_or(duration, |last| now.duration_since(last).as_secs_f64());
        let per_second = |seconds: f64| {
            if seconds > 0.0 {
                rows as f64 / seconds
            } else {
                0.0
            }
        };
        let progress = BatchProgress {
            rows,
            input_rows_per_second: per_second(since_last),
            processed_rows_per_second: per_second(duration),
            duration_ms: duration * 1000.0,
        };
        let positions = self.source.positions();
        let watermark = self.operators.iter().find_map(|o| o.watermark());
        let state_bytes = self.operators.iter().map(|o| o.state_bytes() as u64).sum();
        let rows_out = self.stats.rows_out;
        let outputs = self.stats.rows_routed.clone();
        let rejected = self.stats.poison.clone();
        self.metrics.batch(now.duration_since(cut));
        self.metrics.state(state_bytes);
        if let Some(watermark) = watermark {
            self.metrics.watermark(watermark);
        }
        self.status_mut(|s| {
            s.batches += 1;
            s.rows_in += rows;
            s.rows_out = rows_out;
            s.last_batch = Some(progress);
            s.positions = positions;
            s.watermark = watermark;
            s.state_bytes = state_bytes;
            s.outputs = outputs;
            s.rejected = rejected;
        });
    }

    /// Every [`LAG_REFRESH`], show how far the source is behind the end of
    /// each partition it knows the end of.
    fn refresh_lag(&mut self) {
        if self
            .lag_refreshed
            .is_some_and(|last| last.elapsed() < LAG_REFRESH)
        {
            return;
        }
        self.lag_refreshed = Some(Instant::now());
        let ends = self.source.ends();
        if ends.is_empty() {
            return;
        }
        let positions = self.source.positions();
        let lag: Vec<PartitionLag> = ends
            .into_iter()
            .filter_map(|end| {
                let position = positions
                    .iter()
                    .find(|p| p.topic == end.topic && p.partition == end.partition)?;
                Some(PartitionLag {
                    records: (end.offset - position.offset).max(0),
                    topic: end.topic,
                    partition: end.partition,
                })
            })
            .collect();
        for partition in &lag {
            self.metrics
                .lag(&partition.topic, partition.partition, partition.records);
        }
        self.status_mut(|s| s.lag = lag);
    }

    fn status_mut(&self, update: impl FnOnce(&mut JobStatus)) {
        update(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Now, in ms since the Unix epoch.
fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where a job's rejected rows go: `[decode]`'s policy when it has one;
/// else the `dead-letter` output if the job defines it; else they stop
/// the job.
fn rejections(job: &Job) -> Rejections {
    match &job.decode {
        Some(decode) => match decode.on_error {
            OnError::Dlq => Rejections::Output(decode.dead_letter.clone()),
            OnError::SkipAndCount => Rejections::Skip,
            OnError::Fail => Rejections::Fail(
                "decode.on_error is \"fail\"; set it to \"dlq\" or \"skip-and-count\" to go on"
                    .into(),
            ),
        },
        None if job.outputs.contains_key(DEAD_LETTER_OUTPUT) => {
            Rejections::Output(DEAD_LETTER_OUTPUT.into())
        }
        None => Rejections::Fail(format!(
            "the job has no dead-letter output; add [outputs.{DEAD_LETTER_OUTPUT}]"
        )),
    }
}

/// The plugins a job runs, by name, with their digests: its stateless
/// transforms as checkpoints describe them, then the operators that keep
/// state.
fn running_plugins(
    stateless: &[SavedOperator],
    operators: &[Box<dyn Operator>],
) -> Vec<(String, String)> {
    stateless
        .iter()
        .map(|o| (o.name.clone(), o.plugin_digest.clone()))
        .chain(
            operators
                .iter()
                .map(|o| (o.name().to_owned(), o.plugin_digest().to_owned())),
        )
        .collect()
}

/// How long the source may wait for rows: before a batch's first row,
/// [`IDLE_WAIT`] (so a stop is noticed); after it, what is left of the
/// trigger interval, so no batch is held past `max_interval`.
fn source_wait(first_row_at: Option<Instant>, max_interval: Duration) -> Duration {
    first_row_at.map_or(IDLE_WAIT, |t| max_interval.saturating_sub(t.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_latency_keeps_long_batches_apart_from_short_ones() {
        let mut latency = BatchLatency::default();
        for _ in 0..98 {
            latency.record(Duration::from_millis(2));
        }
        latency.record(Duration::from_millis(250));
        latency.record(Duration::from_secs(5));
        let near = |got: Duration, want: Duration| {
            let error = got.abs_diff(want).as_secs_f64() / want.as_secs_f64();
            assert!(error < 0.01, "{got:?} is not {want:?}");
        };
        assert_eq!(latency.count(), 100);
        near(latency.quantile(0.5), Duration::from_millis(2));
        near(latency.quantile(0.99), Duration::from_millis(250));
        near(latency.quantile(1.0), Duration::from_secs(5));
    }

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
