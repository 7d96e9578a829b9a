//! The process-wide Wasm engine, its linker and its epoch ticker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{Transform, v0_2};
use crate::cache::ComponentCache;
use crate::error::RuntimeError;
use crate::gate::{CallAccount, CallGate, CallSlot};
use crate::host::{HostState, MetricsRegistry};

/// How the process-wide engine is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory of compiled components, keyed by content hash; `None`
    /// compiles every component on every start.
    pub cache_dir: Option<PathBuf>,
    /// The largest linear memory any plugin may be granted, in bytes.
    pub max_memory_bytes: usize,
    /// How many component instances may be alive at once in the process.
    pub max_instances: u32,
    /// Granularity of call deadlines.
    pub epoch_tick: Duration,
    /// How many calls into plugins may run at once in the process;
    /// callers beyond wait for a turn, shared fairly by call time between
    /// the runtime's handles (see [`Runtime::own_turns`]). `None`: as
    /// many as there are callers.
    pub max_concurrent_calls: Option<usize>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_memory_bytes: 1 << 30,
            max_instances: 256,
            epoch_tick: Duration::from_millis(5),
            max_concurrent_calls: None,
        }
    }
}

/// The process-wide Wasm runtime. Cheap to clone; clones share the engine
/// and the account their plugin calls are charged to at the call gate.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
    account: Arc<CallAccount>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    loaded: Mutex<HashMap<String, Component>>,
    metrics: MetricsRegistry,
    config: RuntimeConfig,
    gate: Option<CallGate>,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Create the engine (component model, pooling allocator, epoch
    /// interruption) and start the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memory_size(config.max_memory_bytes);

        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| crate::host::link_timers_that_never_wait(&mut linker))
            .and_then(|()| Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state))
            .and_then(|()| {
                v0_2::Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            })
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let cache = config
            .cache_dir
            .clone()
            .map(ComponentCache::open)
            .transpose()?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone());
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                loaded: Mutex::new(HashMap::new()),
                metrics: MetricsRegistry::default(),
                gate: config.max_concurrent_calls.map(CallGate::new),
                config,
                ticker_stop,
            }),
            account: Arc::default(),
        })
    }

    /// A handle on the same engine whose plugin calls are charged to an
    /// account of their own at the call gate: give each job one, so that
    /// jobs share the gate's slots fairly by call time, whatever their
    /// number of plugins, calls or restarts.
    pub fn own_turns(&self) -> Runtime {
        Runtime {
            inner: Arc::clone(&self.inner),
            account: Arc::default(),
        }
    }

    /// The counters plugins have added to.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.inner.metrics
    }

    /// The engine's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// A turn to call into a plugin, waited for if the process runs
    /// [`RuntimeConfig::max_concurrent_calls`] calls already; held until
    /// dropped, and charged to this handle's account.
    pub(crate) fn call_slot(&self) -> Option<CallSlot<'_>> {
        let gate = self.inner.gate.as_ref()?;
        Some(gate.enter(&self.account))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Compile `bytes` (content hash `digest`), or take it from this
    /// process's components or the on-disk cache.
    pub(crate) fn component(
        &self,
        plugin: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<Component, RuntimeError> {
        let mut loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(component) = loaded.get(digest) {
            return Ok(component.clone());
        }
        let compile = || {
            Component::new(&self.inner.engine, bytes).map_err(|e| RuntimeError::InvalidComponent {
                plugin: plugin.to_owned(),
                reason: format!("{e:#}"),
            })
        };
        let component = match &self.inner.cache {
            Some(cache) => cache.load_or_compile(&self.inner.engine, digest, compile)?,
            None => compile()?,
        };
        loaded.insert(digest.to_owned(), component.clone());
        Ok(component)
    }

    /// Number of epoch ticks that make up `deadline` (at least one).
    pub(crate) fn deadline_ticks(&self, deadline: Duration) -> u64 {
        /// Far more ticks than any deadline needs (millennia), and far from
        /// overflowing when the engine adds its current epoch.
        const MAX_TICKS: u64 = 1 << 48;
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        let ticks = u64::try_from(deadline.as_nanos().div_ceil(tick)).unwrap_or(MAX_TICKS);
        // One extra tick: the current tick may be about to end.
        ticks.min(MAX_TICKS) + 1
    }
}

/// Advances the engine's epoch every `tick` until `stop` is set.
fn spawn_epoch_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch ticker thread");
}
