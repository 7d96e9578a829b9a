//! Event time, watermarks and windowed aggregation.
//!
//! [`WindowOperator`] takes micro-batches, assigns each row to its windows
//! (tumbling, hopping or session) by event time and to its key, folds the
//! rows into per-(window, key) states through an [`Accumulator`] (a Wasm
//! aggregate plugin, or native code), and emits a window's result when the
//! watermark passes its end. Rows later than the allowed lateness are
//! handed back as a side output, never dropped.
//!
//! The watermark is the maximum event time seen minus a bounded
//! out-of-orderness, tracked per partition and taken as the minimum over
//! partitions that are not idle. It moves at batch boundaries: the rows of a
//! batch are judged against the watermark as it was before the batch.

mod accumulator;
mod assign;
mod operator;
mod snapshot;
mod state;
mod watermark;

pub use accumulator::Accumulator;
pub use assign::WindowKind;
pub use operator::{EmitMode, WindowOperator, WindowOutput, WindowSpec};
pub use snapshot::KEY_GROUPS;
pub use state::StateStore;
pub use watermark::{PartitionId, WatermarkState, WatermarkTracker};

/// Why windowed aggregation failed.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// The aggregate plugin failed.
    #[error(transparent)]
    Plugin(#[from] sluice_runtime::RuntimeError),
    /// Native accumulator code failed.
    #[error("aggregate: {0}")]
    Native(String),
    /// The job's window state outgrew its quota.
    #[error(
        "window state is {used} bytes, over the job's state quota of {quota} bytes; raise `state_quota`, shorten the windows or lower the allowed lateness"
    )]
    StateQuota {
        /// Bytes the state would use.
        used: usize,
        /// The quota.
        quota: usize,
    },
    /// A column the window needs is missing or of the wrong type.
    #[error("column `{column}`: {message}")]
    Column {
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A window-state snapshot cannot be read.
    #[error("window state snapshot: {0}")]
    Snapshot(String),
    /// Arrow failed assembling rows.
    #[error("assembling window rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}
