//! Operators: the stages between a job's source and its sinks.
//!
//! An [`Operator`] takes a batch and gives the batch for the next stage;
//! rows it routes to named outputs or rejects go into a [`Collector`], and
//! the job decides where they go (the outputs, the dead-letter output).
//! Only `process_batch` is required; the watermark, state and closing
//! hooks have defaults for stateless operators. Two kinds exist: a
//! [`TransformOperator`] per transform plugin and the [`WindowAggregate`].

mod transform;
mod window;

pub use transform::TransformOperator;
pub use window::WindowAggregate;

use arrow::record_batch::RecordBatch;
use sluice_runtime::RuntimeError;
use sluice_window::WindowError;

/// Why an operator failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
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
    /// A plugin failed on a batch (a trap, a limit, its `fatal` error, or
    /// `transient` errors past the retries).
    #[error(transparent)]
    Plugin(#[from] RuntimeError),
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
    /// Rows could not be assembled.
    #[error("operator `{operator}`: {message}")]
    Batch {
        /// The operator.
        operator: String,
        /// What failed.
        message: String,
    },
    /// Saved state cannot be restored into this operator.
    #[error("operator `{operator}` cannot restore its checkpointed state: {reason}")]
    Restore {
        /// The operator.
        operator: String,
        /// Why.
        reason: String,
    },
}

impl OperatorError {
    /// Whether going back to the last checkpoint and trying again can help:
    /// a trap, an exceeded limit or an outage may not recur; a bad job or
    /// a plugin's `fatal` error will.
    pub fn is_recoverable(&self) -> bool {
        match self {
            OperatorError::Plugin(error) => error.is_recoverable(),
            OperatorError::Window {
                source: WindowError::Plugin(error),
                ..
            } => error.is_recoverable(),
            _ => false,
        }
    }
}

/// Why rows were rejected, as the dead-letter output says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// A plugin returned `invalid-input` for them.
    InvalidInput,
    /// They have no event time, so no window can hold them.
    MissingEventTime,
    /// Their event time is one no window can hold.
    InvalidEventTime,
}

impl RejectKind {
    /// The kind's name in the dead-letter output.
    pub fn name(self) -> &'static str {
        match self {
            RejectKind::InvalidInput => "invalid-input",
            RejectKind::MissingEventTime => "missing-event-time",
            RejectKind::InvalidEventTime => "invalid-event-time",
        }
    }
}

/// Rows an operator rejected.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The operator (its plugin's name).
    pub operator: String,
    /// Why.
    pub kind: RejectKind,
    /// The plugin's or the host's message.
    pub message: String,
    /// The rows, as the operator received them.
    pub rows: RecordBatch,
}

/// Rows an operator routed to a named output.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The operator that routed them.
    pub operator: String,
    /// The output's name.
    pub output: String,
    /// The rows.
    pub rows: RecordBatch,
}

/// What operators set aside while processing one batch.
#[derive(Debug, Default)]
pub struct Collector {
    /// Rows for named outputs, in the order they were routed.
    pub routed: Vec<Routed>,
    /// Rows for the dead-letter output.
    pub rejected: Vec<Rejected>,
}

/// One stage of a job.
pub trait Operator: Send + std::fmt::Debug {
    /// The operator's name (its plugin's name in the job).
    fn name(&self) -> &str;

    /// Process one batch; `None` sends nothing downstream.
    fn process_batch(
        &mut self,
        batch: RecordBatch,
        out: &mut Collector,
    ) -> Result<Option<RecordBatch>, OperatorError>;

    /// The input's event time has passed `watermark` (ms): emit what it
    /// closes. `i64::MAX` means the input has ended.
    fn on_watermark(
        &mut self,
        _watermark: i64,
        _out: &mut Collector,
    ) -> Result<Option<RecordBatch>, OperatorError> {
        Ok(None)
    }

    /// The operator's state at a batch boundary; `None` if it keeps none.
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, OperatorError> {
        Ok(None)
    }

    /// Go back to `state` (from [`Operator::snapshot`]), or to the initial
    /// state with `None`.
    fn restore(&mut self, _state: Option<&[u8]>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// What the meaning of this operator's state depends on (its window
    /// definition and key); a checkpoint whose state was taken under
    /// another definition is refused. Empty for operators whose state, if
    /// any, is the plugin's own to judge.
    fn state_definition(&self) -> String {
        String::new()
    }

    /// The digest of the plugin behind the operator.
    fn plugin_digest(&self) -> &str;

    /// Whether each batch's result depends on that batch alone (no state,
    /// no watermarks), so that copies of the operator may process batches
    /// side by side.
    fn is_stateless(&self) -> bool {
        false
    }

    /// Bytes of state held now (0 for a stateless operator).
    fn state_bytes(&self) -> usize {
        0
    }

    /// Bytes of linear memory the operator's plugin instance held after its
    /// last call (0 for an operator without one).
    fn memory_bytes(&self) -> u64 {
        0
    }

    /// The event-time watermark the operator has reached, ms; `None` for
    /// one that keeps no watermark, or before its first.
    fn watermark(&self) -> Option<i64> {
        None
    }

    /// The job is stopping: release what the operator holds.
    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }
}
