//! Runs one job: cuts the source's rows into micro-batches, passes each
//! batch once through the operators (the transform plugins, then the
//! windowed aggregate), writes the results to the sink and the named
//! outputs, and, with `[checkpoint]`, ends an epoch at a batch boundary
//! every interval: a checkpoint of the operators' state and the source's
//! positions in object storage, then the commit of the epoch's output.
//!
//! The commit protocol (DESIGN.md, "Checkpoints and exactly-once"): the
//! sinks are flushed, the checkpoint is written (files first, manifest
//! last), and only then does the epoch's output commit: for Kafka sinks,
//! in one transaction with the source offsets. On restart the committed
//! offsets name the checkpoint to restore, so a crash at any moment loses
//! nothing and writes nothing twice for `read_committed` readers.
//!
//! Rows that cannot go on (a record that cannot be decoded, rows a plugin
//! rejects, rows without an event time) go to the job's dead-letter
//! output, in one schema (`dead_letter`), or stop the job when it has
//! none. A failure that going back to the last checkpoint may cure (a
//! plugin trap, a sink outage) is retried under the restart strategy.

mod checkpoint;
mod commit;
mod dead_letter;
mod decode;
mod encode;
mod handle;
mod pace;
mod plan;
mod runner;
mod stages;
mod swap;

pub use handle::{
    BatchProgress, CheckpointProgress, JobControl, JobHandle, JobState, JobStatus, PartitionLag,
    RECENT_CHECKPOINTS,
};
pub use plan::Plan;

/// The target of a job's trace spans: one per batch, and inside it one
/// per operator call (plugins included). No log line uses it, so a
/// subscriber can send these spans on (over OTLP) and leave them out of
/// the log.
pub const TRACE_TARGET: &str = "sluice::spans";
pub use runner::{BatchLatency, Connectors, JobRunner, RunOptions, RunStats};
pub use swap::{SwapRecord, Swapped};

use sluice_format::FormatError;
use sluice_operator::OperatorError;
use sluice_sink::SinkError;
use sluice_source::SourceError;
use sluice_state::StateError;

/// The output that receives dead letters when the job has no `[decode]`
/// section naming another.
pub const DEAD_LETTER_OUTPUT: &str = "dead-letter";

/// Why a job stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An operator failed.
    #[error(transparent)]
    Operator(#[from] OperatorError),
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
    /// Rows were rejected and the job's policy is to stop.
    #[error("`{operator}` rejected {rows} rows ({kind}: {message}); {hint}")]
    Rejected {
        /// The stage that rejected them.
        operator: String,
        /// How many.
        rows: usize,
        /// Why, in the dead-letter kinds.
        kind: String,
        /// The message.
        message: String,
        /// How to keep the job going.
        hint: String,
    },
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Kafka could not be set up, or a transaction failed.
    #[error(transparent)]
    Kafka(#[from] sluice_kafka::KafkaError),
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
    /// The checkpoint store failed.
    #[error(transparent)]
    Checkpoint(#[from] StateError),
    /// The checkpoint cannot be restored into the job as it is now.
    #[error(
        "the checkpoint at {location} (epoch {epoch}) does not fit this job: {reason}; run with --from-scratch to start over without it"
    )]
    Incompatible {
        /// The checkpoint location.
        location: String,
        /// The epoch.
        epoch: u64,
        /// What changed.
        reason: String,
    },
    /// The job's settings cannot work together.
    #[error("{0}")]
    Setup(String),
    /// A swap of a transform's plugin was refused; the job goes on with
    /// the version it had.
    #[error("swapping `{transform}`: {message}")]
    Swap {
        /// The transform.
        transform: String,
        /// Why.
        message: String,
    },
    /// The new version of a transform failed its first batch: the job went
    /// back to the old version (and, to try again, to its last checkpoint).
    #[error(
        "the new version of `{transform}` failed its first batch, so the job went back to the old one: {cause}"
    )]
    SwapRolledBack {
        /// The transform.
        transform: String,
        /// The new version's failure.
        cause: String,
    },
}

impl JobError {
    /// Whether going back to the last checkpoint and trying again may
    /// help: a plugin trap or exceeded limit, a source, sink, broker or
    /// store outage. A bad job, a poison record under `fail`, a plugin's
    /// `fatal` error or an incompatible checkpoint will fail again.
    pub fn is_recoverable(&self) -> bool {
        match self {
            JobError::Operator(error) => error.is_recoverable(),
            JobError::Source(SourceError::Read { .. })
            | JobError::Sink(SinkError::Write { .. })
            | JobError::Kafka(sluice_kafka::KafkaError::Client { .. })
            | JobError::Kafka(sluice_kafka::KafkaError::Delivery { .. })
            | JobError::Checkpoint(StateError::Store { .. }) => true,
            JobError::Decode(error) => error.is_transient(),
            JobError::SwapRolledBack { .. } => true,
            _ => false,
        }
    }
}
