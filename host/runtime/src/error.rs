//! Errors of the Wasm runtime.

use std::path::PathBuf;

/// What a plugin told the host through its typed error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginErrorKind {
    /// The input is bad; the rows belong in the dead-letter output.
    InvalidInput,
    /// A retry of the same call may succeed.
    Transient,
    /// The job must stop.
    Fatal,
}

/// An error of the Wasm runtime. Each variant says which domain failed:
/// the plugin (its code or its output), the plugin file, or the host.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The plugin file could not be read.
    #[error("cannot read plugin `{plugin}` from {path}: {source}")]
    ReadPlugin {
        /// Plugin name.
        plugin: String,
        /// Path of the `.wasm` file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a valid Wasm component.
    #[error("plugin `{plugin}` is not a valid Wasm component: {reason}")]
    InvalidComponent {
        /// Plugin name.
        plugin: String,
        /// Why compilation failed.
        reason: String,
    },
    /// The component does not implement the world the host asked for.
    #[error("plugin `{plugin}` does not implement the `{world}` world of sluice:plugin: {reason}")]
    WrongWorld {
        /// Plugin name.
        plugin: String,
        /// The world the host expected.
        world: &'static str,
        /// What is missing or mismatched, with what the component does export.
        reason: String,
    },
    /// A stateful plugin lost its instance mid-call, and with it the rows
    /// it took since its last snapshot: it must be restored first.
    #[error(
        "plugin `{plugin}` lost its state in a failed call; restore it (the job goes back to its last checkpoint) before it runs again"
    )]
    StateLost {
        /// Plugin name.
        plugin: String,
    },
    /// The component needs imports this host does not grant.
    #[error("plugin `{plugin}` cannot be instantiated: {reason}")]
    Instantiate {
        /// Plugin name.
        plugin: String,
        /// Wasmtime's reason.
        reason: String,
    },
    /// The call ran past its deadline (wall time) and was interrupted.
    #[error(
        "plugin `{plugin}` exceeded its deadline of {deadline_ms} ms in `{function}` and was stopped"
    )]
    DeadlineExceeded {
        /// Plugin name.
        plugin: String,
        /// The export being called.
        function: &'static str,
        /// The deadline per call.
        deadline_ms: u64,
    },
    /// The plugin tried to grow its memory past its limit.
    #[error(
        "plugin `{plugin}` exceeded its memory limit of {limit_bytes} bytes in `{function}` and was stopped"
    )]
    MemoryLimitExceeded {
        /// Plugin name.
        plugin: String,
        /// The export being called.
        function: &'static str,
        /// The memory limit.
        limit_bytes: usize,
    },
    /// The plugin trapped (panic, unreachable, out-of-bounds access...).
    #[error("plugin `{plugin}` trapped in `{function}`: {reason}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The export being called.
        function: &'static str,
        /// The trap and its backtrace.
        reason: String,
    },
    /// The plugin returned a typed error.
    #[error("plugin `{plugin}` failed ({kind:?}): {message}")]
    Plugin {
        /// Plugin name.
        plugin: String,
        /// The kind of error the plugin reported.
        kind: PluginErrorKind,
        /// The plugin's message.
        message: String,
        /// For `invalid-input`: the rejected rows (empty = the whole batch).
        rows: Vec<u32>,
    },
    /// The plugin returned a batch that is not valid Arrow data.
    #[error("plugin `{plugin}` returned an invalid batch: {reason}")]
    InvalidOutput {
        /// Plugin name.
        plugin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input batch has a column type the plugin contract cannot carry.
    #[error(
        "column `{column}` has type {data_type}, which sluice:plugin@{} cannot carry",
        crate::WIT_VERSION
    )]
    UnsupportedType {
        /// Column name.
        column: String,
        /// The Arrow type.
        data_type: String,
    },
    /// The compiled-component cache could not be used.
    #[error("component cache at {path}: {reason}")]
    Cache {
        /// Cache path.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The engine could not be created with the requested configuration.
    #[error("cannot create the Wasm engine: {0}")]
    Engine(String),
}

impl RuntimeError {
    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RuntimeError::Plugin {
                kind: PluginErrorKind::Transient,
                ..
            }
        )
    }

    /// Whether the job may go back to its last checkpoint and try again: a
    /// trap, an exceeded limit or a plugin's `transient` error may not
    /// recur on a fresh instance; a plugin's `fatal` error, a bad component
    /// or bad output will.
    pub fn is_recoverable(&self) -> bool {
        match self {
            RuntimeError::DeadlineExceeded { .. }
            | RuntimeError::MemoryLimitExceeded { .. }
            | RuntimeError::Trap { .. }
            | RuntimeError::StateLost { .. } => true,
            RuntimeError::Plugin { kind, .. } => *kind == PluginErrorKind::Transient,
            _ => false,
        }
    }
}
