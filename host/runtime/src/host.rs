//! What a plugin's store holds: its capabilities (none beyond log and
//! metrics), its resource limiter and the host functions it may import.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::{DynFuture, DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::sluice::plugin::{host, types};
use crate::bindings::v0_2::sluice::plugin as v0_2;

/// Distinct counter names one plugin may create; adds to further new names
/// are dropped (with one warning per instance).
pub const MAX_COUNTERS_PER_PLUGIN: usize = 1000;
/// Longest counter name kept, in bytes; longer names are dropped.
pub const MAX_COUNTER_NAME_BYTES: usize = 256;
/// Log records one plugin call may write; the rest of the call's are dropped
/// (with one warning).
pub const MAX_LOGS_PER_CALL: usize = 1000;
/// Longest log message kept, in bytes; longer ones are cut there.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4096;
/// Most fields kept on one log record.
const MAX_LOG_FIELDS: usize = 32;

/// Counters that plugins add to through the `counter-add` import, keyed by
/// plugin name and counter name. Cloning shares the registry. A plugin has
/// at most [`MAX_COUNTERS_PER_PLUGIN`] counters, with names of at most
/// [`MAX_COUNTER_NAME_BYTES`].
#[derive(Debug, Clone, Default)]
pub struct MetricsRegistry {
    counters: Arc<Mutex<Counters>>,
}

#[derive(Debug, Default)]
struct Counters {
    values: BTreeMap<(String, String), u64>,
    /// How many counters each plugin has.
    per_plugin: HashMap<String, usize>,
}

impl MetricsRegistry {
    /// Add `delta` to `plugin`'s counter `name`; false, and nothing added,
    /// when that would be a new counter past the plugin's bounds.
    pub fn add(&self, plugin: &str, name: &str, delta: u64) -> bool {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let key = (plugin.to_owned(), name.to_owned());
        if let Some(value) = counters.values.get_mut(&key) {
            *value = value.saturating_add(delta);
            return true;
        }
        let existing = counters.per_plugin.entry(plugin.to_owned()).or_default();
        if name.len() > MAX_COUNTER_NAME_BYTES || *existing >= MAX_COUNTERS_PER_PLUGIN {
            return false;
        }
        *existing += 1;
        counters.values.insert(key, delta);
        true
    }

    /// The current value of `plugin`'s counter `name` (0 if never added to).
    pub fn get(&self, plugin: &str, name: &str) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters
            .values
            .get(&(plugin.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every counter as `(plugin, name, value)`, sorted.
    pub fn snapshot(&self) -> Vec<(String, String, u64)> {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters
            .values
            .iter()
            .map(|((plugin, name), value)| (plugin.clone(), name.clone(), *value))
            .collect()
    }
}

/// Denies memory growth past the plugin's limit, counted over every linear
/// memory of the instance (a component may have several), and remembers
/// that it did, so the resulting trap can be reported as a memory-limit
/// error.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit_bytes: usize,
    /// The bytes of every memory of the store's instance together.
    total_bytes: usize,
    denied: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit_bytes: usize) -> Self {
        MemoryLimiter {
            limit_bytes,
            total_bytes: 0,
            denied: false,
        }
    }

    /// The bytes of every memory of the instance together.
    pub(crate) fn bytes(&self) -> usize {
        self.total_bytes
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
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .total_bytes
            .saturating_add(desired.saturating_sub(current));
        let allowed = total <= self.limit_bytes;
        if allowed {
            self.total_bytes = total;
        }
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
    /// Log records written in the current call.
    logs_this_call: usize,
    /// Whether a dropped counter was already warned about.
    warned_counters: bool,
    pub(crate) limiter: MemoryLimiter,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// Resets what is bounded per call, before a call into the guest.
    pub(crate) fn begin_call(&mut self) {
        self.limiter.reset();
        self.logs_this_call = 0;
    }

    /// A store for `plugin` with no WASI capabilities: no preopened
    /// directories, no network, no environment, no arguments, stdio closed,
    /// and frozen clocks. Only randomness is left (hash seeds need it).
    pub(crate) fn new(plugin: Arc<str>, metrics: MetricsRegistry, memory_bytes: usize) -> Self {
        HostState {
            plugin,
            metrics,
            logs_this_call: 0,
            warned_counters: false,
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
    fn log(&mut self, level: host::Level, mut message: String, mut fields: Vec<(String, String)>) {
        let plugin = &*self.plugin;
        self.logs_this_call += 1;
        if self.logs_this_call > MAX_LOGS_PER_CALL {
            if self.logs_this_call == MAX_LOGS_PER_CALL + 1 {
                tracing::warn!(target: "sluice::plugin", plugin, "the plugin logged more than {MAX_LOGS_PER_CALL} records in one call; the rest of this call's are dropped");
            }
            return;
        }
        truncate_at_char(&mut message, MAX_LOG_MESSAGE_BYTES);
        fields.truncate(MAX_LOG_FIELDS);
        for (key, value) in &mut fields {
            truncate_at_char(key, MAX_COUNTER_NAME_BYTES);
            truncate_at_char(value, MAX_LOG_MESSAGE_BYTES);
        }
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
        if !self.metrics.add(&self.plugin, &name, delta) && !self.warned_counters {
            self.warned_counters = true;
            tracing::warn!(
                target: "sluice::plugin",
                plugin = &*self.plugin,
                "counter `{}` dropped: a plugin has at most {MAX_COUNTERS_PER_PLUGIN} counters, named in at most {MAX_COUNTER_NAME_BYTES} bytes",
                name.chars().take(64).collect::<String>()
            );
        }
    }
}

/// The 0.2 contract's host imports are 0.1's.
impl v0_2::host::Host for HostState {
    fn log(&mut self, level: v0_2::host::Level, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            v0_2::host::Level::Trace => host::Level::Trace,
            v0_2::host::Level::Debug => host::Level::Debug,
            v0_2::host::Level::Info => host::Level::Info,
            v0_2::host::Level::Warn => host::Level::Warn,
            v0_2::host::Level::Error => host::Level::Error,
        };
        host::Host::log(self, level, message, fields);
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        host::Host::counter_add(self, name, delta);
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The version of `wasi:clocks` that `wasmtime-wasi` links (guests that
/// import an older 0.2 version are served by it).
const WASI_CLOCKS: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces `wasi:clocks/monotonic-clock`'s `subscribe-duration` and
/// `subscribe-instant` with timers that are ready at once. A plugin's clock
/// is frozen, so no time it could wait for would come; a real timer lets a
/// plugin sleep past its deadline, since the deadline only interrupts
/// running Wasm code, not a host call blocked in `poll`.
pub(crate) fn link_timers_that_never_wait(
    linker: &mut wasmtime::component::Linker<HostState>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(WASI_CLOCKS)?;
    clock.func_wrap("subscribe-duration", |mut store, (_,): (u64,)| {
        Ok((ready_now(store.data_mut())?,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (_,): (u64,)| {
        Ok((ready_now(store.data_mut())?,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable that is ready as soon as it is polled.
struct ReadyNow;

impl Pollable for ReadyNow {
    fn ready<'a, 'b>(&'a mut self) -> DynFuture<'b>
    where
        'a: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}

fn ready_now(state: &mut HostState) -> wasmtime::Result<Resource<DynPollable>> {
    let timer = state.table.push(ReadyNow)?;
    subscribe(&mut state.table, timer)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_counts_every_memory_of_an_instance_together() {
        const MIB: usize = 1 << 20;
        let mut limiter = MemoryLimiter::new(10 * MIB);
        // A first memory of 6 MiB fits, and grows to 8 MiB.
        assert!(limiter.memory_growing(0, 6 * MIB, None).unwrap());
        assert!(limiter.memory_growing(6 * MIB, 8 * MIB, None).unwrap());
        // A second memory may not take the instance past 10 MiB in all.
        assert!(!limiter.memory_growing(0, 4 * MIB, None).unwrap());
        assert!(limiter.denied());
        assert!(limiter.memory_growing(0, 2 * MIB, None).unwrap());
        assert!(!limiter.memory_growing(8 * MIB, 9 * MIB, None).unwrap());
    }
}
