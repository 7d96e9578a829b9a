//! The Wasm runtime of the Sluice host.
//!
//! One [`Runtime`] per process owns the wasmtime `Engine` (component model,
//! pooling allocator, epoch interruption), the on-disk cache of compiled
//! components and the epoch ticker that enforces per-call deadlines (wall time).
//! [`TransformPlugin`] and [`AggregatePlugin`] load a component once and hands out instances from a
//! pool; every call gets a memory limit and a deadline, and a trap discards
//! the instance, never the host.
//!
//! Batches cross the boundary in the columnar form of `wit/plugin.wit`;
//! [`columnar`] converts Arrow `RecordBatch`es with one copy per buffer each
//! way.

mod aggregate;
mod assemble;
mod bindings;
mod cache;
mod carrier;
pub mod columnar;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod gate;
mod host;
mod limits;
mod plugin;
mod runtime;
mod transform;

pub use aggregate::{AggregatePlugin, FinishedRows};
pub use error::{PluginErrorKind, RuntimeError};
pub use host::{
    MAX_COUNTER_NAME_BYTES, MAX_COUNTERS_PER_PLUGIN, MAX_LOG_MESSAGE_BYTES, MAX_LOGS_PER_CALL,
    MetricsRegistry,
};
pub use limits::PluginLimits;
pub use runtime::{Runtime, RuntimeConfig};
pub use transform::{PluginOutput, RejectedRows, TransformPlugin};

/// The newest version of the plugin contract (`sluice:plugin`) this host
/// speaks; it loads plugins built against every version in
/// `wit/` (0.1 and 0.2).
pub const WIT_VERSION: &str = "0.2.0";

/// The version of wasmtime this host runs plugins with.
pub const WASMTIME_VERSION: &str = env!("SLUICE_WASMTIME_VERSION");
