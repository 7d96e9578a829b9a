//! What a plugin's store holds: its capabilities (none beyond log and
//! metrics), its resource limiter and the host functions it may import.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::sluice::plugin::{host, types};

/// Counters that plugins add to through the `counter-add` import, keyed by
/// plugin name and counter name. Cloning shares the registry.
#[derive(Debug, Clone, Default)]
pub struct MetricsRegistry {
    counters: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

impl MetricsRegistry {
    /// Add `delta` to `plugin`'s counter `name`.
    pub fn add(&self, plugin: &str, name: &str, delta: u64) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let value = counters
            .entry((plugin.to_owned(), name.to_owned()))
            .or_default();
        *value = value.saturating_add(delta);
    }

    /// The current value of `plugin`'s counter `name` (0 if never added to).
    pub fn get(&self, plugin: &str, name: &str) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters
            .get(&(plugin.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every counter as `(plugin, name, value)`, sorted.
    pub fn snapshot(&self) -> Vec<(String, String, u64)> {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters
            .iter()
            .map(|((plugin, name), value)| (plugin.clone(), name.clone(), *value))
            .collect()
    }
}

/// Denies memory growth past the plugin's limit and remembers that it did,
/// so the resulting trap can be reported as a memory-limit error.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit_bytes: usize,
    denied: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit_bytes: usize) -> Self {
        MemoryLimiter {
            limit_bytes,
            denied: false,
        }
    }

    /// Whether growth was denied since the last [`MemoryLimiter::reset`].
    pub(crate) fn denied(&self) -> bool {
        self.denied
    }

    pub(crate) fn reset(&mut self) {
        self.denied = false;
    }
}

/// Tables hold function references; far more than any real guest needs.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit_bytes;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one plugin instance's store.
pub(crate) struct HostState {
    plugin: Arc<str>,
    metrics: MetricsRegistry,
    pub(crate) limiter: MemoryLimiter,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// A store for `plugin` with no WASI capabilities: no preopened
    /// directories, no network, no environment, no arguments, stdio closed,
    /// and frozen clocks. Only randomness is left (hash seeds need it).
    pub(crate) fn new(plugin: Arc<str>, metrics: MetricsRegistry, memory_bytes: usize) -> Self {
        HostState {
            plugin,
            metrics,
            limiter: MemoryLimiter::new(memory_bytes),
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .wall_clock(FrozenClock)
                .monotonic_clock(FrozenClock)
                .build(),
            table: ResourceTable::new(),
        }
    }
}

/// A clock that never moves: time is a capability a job has not granted.
/// The wall clock reads the Unix epoch. The monotonic clock reads a constant
/// one second: its value means nothing alone, and Go's runtime refuses to
/// start on a monotonic clock that reads zero.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        1_000_000_000
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String, fields: Vec<(String, String)>) {
        let plugin = &*self.plugin;
        let fields = FieldsDisplay(&fields);
        match level {
            host::Level::Trace => {
                tracing::trace!(target: "sluice::plugin", plugin, %fields, "{message}")
            }
            host::Level::Debug => {
                tracing::debug!(target: "sluice::plugin", plugin, %fields, "{message}")
            }
            host::Level::Info => {
                tracing::info!(target: "sluice::plugin", plugin, %fields, "{message}")
            }
            host::Level::Warn => {
                tracing::warn!(target: "sluice::plugin", plugin, %fields, "{message}")
            }
            host::Level::Error => {
                tracing::error!(target: "sluice::plugin", plugin, %fields, "{message}")
            }
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        self.metrics.add(&self.plugin, &name, delta);
    }
}

/// Renders plugin log fields as `k=v k=v`.
struct FieldsDisplay<'a>(&'a [(String, String)]);

impl std::fmt::Display for FieldsDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{key}={value:?}")?;
        }
        Ok(())
    }
}
