//! A running job behind a handle: started on a thread of its own, stopped
//! at a batch boundary, its status read while it runs. The CLI and the
//! server both drive jobs through it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sluice_source::Position;

use sluice_config::PluginSpec;

use crate::swap::{SwapRecord, Swapped, Swapper};
use crate::{JobError, JobRunner, RunStats};

/// Where a job is in its life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum JobState {
    /// Built, not yet running.
    #[default]
    Starting,
    /// Processing batches.
    Running,
    /// Finishing the batch in flight and its epoch.
    Stopping,
    /// Ended: its source ended or it was stopped.
    Finished,
    /// Stopped by an error, given here.
    Failed(String),
}

/// What a running job has done so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobStatus {
    /// Where the job is.
    pub state: JobState,
    /// Batches processed.
    pub batches: u64,
    /// Source rows read.
    pub rows_in: u64,
    /// The newest committed (or restored) checkpoint epoch.
    pub last_checkpoint: Option<u64>,
    /// Rows written to the main sink.
    pub rows_out: u64,
    /// The last batch, as Spark's `StreamingQueryProgress` shows one.
    pub last_batch: Option<BatchProgress>,
    /// Where the source is: the next offset of each partition (or
    /// position of each file) after the last batch.
    pub positions: Vec<Position>,
    /// How far the source is behind the end of each partition whose end
    /// it knows (Kafka), looked at twice a second.
    pub lag: Vec<PartitionLag>,
    /// The aggregate's event-time watermark, ms, once it has one.
    pub watermark: Option<i64>,
    /// Bytes of state the operators hold.
    pub state_bytes: u64,
    /// Each plugin of the job, by name, with its digest: the versions
    /// running.
    pub plugins: Vec<(String, String)>,
    /// The plugin swaps made while it runs, oldest first.
    pub swaps: Vec<SwapRecord>,
    /// Rows written to each named output (dead letters and late rows
    /// included).
    pub outputs: BTreeMap<String, u64>,
    /// Rows that could not be decoded or that operators rejected, by kind.
    pub rejected: BTreeMap<String, u64>,
    /// Times the job went back to its last checkpoint after a failure.
    pub restarts: u32,
    /// The last checkpoints committed, oldest first (at most
    /// [`RECENT_CHECKPOINTS`]).
    pub checkpoints: Vec<CheckpointProgress>,
}

/// How many of the last checkpoints [`JobStatus::checkpoints`] keeps.
pub const RECENT_CHECKPOINTS: usize = 10;

/// A committed checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointProgress {
    /// Its epoch.
    pub epoch: u64,
    /// When it committed, ms since the Unix epoch.
    pub committed_at_ms: i64,
    /// From its snapshot to its commit, ms.
    pub took_ms: f64,
    /// Bytes of operator state it holds.
    pub state_bytes: u64,
}

/// Records of a source partition not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Records between the job's position and the partition's end, as
    /// the consumer last heard of it.
    pub records: i64,
}

/// One batch's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchProgress {
    /// Source rows in the batch.
    pub rows: u64,
    /// Source rows per second, from the previous batch's end to this
    /// one's (Spark's `inputRowsPerSecond`).
    pub input_rows_per_second: f64,
    /// Rows per second of the batch's own processing, cut to written
    /// (Spark's `processedRowsPerSecond`).
    pub processed_rows_per_second: f64,
    /// From the batch being cut to its rows written, ms.
    pub duration_ms: f64,
}

/// A job running on its own thread.
#[derive(Debug)]
pub struct JobHandle {
    stop: Arc<AtomicBool>,
    control: JobControl,
    thread: JoinHandle<Result<RunStats, JobError>>,
}

/// The part of a [`JobHandle`] that can be shared: swap the job's plugins
/// and read its status from other threads while one waits for the job
/// (which consumes the handle). Cloning it is cheap; once the job has
/// ended, a swap fails and the status stays as the job left it.
#[derive(Debug, Clone)]
pub struct JobControl {
    status: Arc<Mutex<JobStatus>>,
    swapper: Arc<Swapper>,
}

impl JobControl {
    /// As [`JobHandle::swap`].
    pub fn swap(&self, transform: &str, spec: &PluginSpec) -> Result<Swapped, JobError> {
        self.swapper.swap(transform, spec)
    }

    /// As [`JobHandle::status`].
    pub fn status(&self) -> JobStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl JobHandle {
    /// Start `runner` on a new thread. It stops when its
    /// [`RunOptions::stop`](crate::RunOptions::stop) flag is set (by a
    /// signal handler, say) or [`JobHandle::stop`] is called.
    pub fn start(runner: JobRunner) -> std::io::Result<Self> {
        let stop = runner.stop_flag();
        let status = runner.status();
        let swapper = runner.swapper();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sluice-job".into())
            .spawn(move || runner.run(&flag))?;
        Ok(JobHandle {
            stop,
            control: JobControl {
                status,
                swapper: Arc::new(swapper),
            },
            thread,
        })
    }

    /// Ask the job to stop: it finishes the batch in flight, checkpoints,
    /// commits and ends.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Swap the plugin of the transform named `transform` for the one
    /// `spec` describes (its name is taken from `transform`). The new
    /// version is loaded on this thread; the job switches at its next
    /// batch boundary, carrying the plugin's state across, and this
    /// returns once it has. A new version that cannot restore the state is
    /// refused (the job goes on with the old one); one that fails its
    /// first batch is rolled back, which the status's `swaps` records.
    pub fn swap(&self, transform: &str, spec: &PluginSpec) -> Result<Swapped, JobError> {
        self.control.swap(transform, spec)
    }

    /// What the job has done so far.
    pub fn status(&self) -> JobStatus {
        self.control.status()
    }

    /// A shareable control of the job, for swaps and its status from
    /// another thread.
    pub fn control(&self) -> JobControl {
        self.control.clone()
    }

    /// Whether the job's thread has ended, however it ended (a panic
    /// included, which leaves the status as it was).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the job to end.
    pub fn wait(self) -> Result<RunStats, JobError> {
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
