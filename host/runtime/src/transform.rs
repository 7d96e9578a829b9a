//! A loaded transform plugin and its pool of instances.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Func, InstancePre, TypedFunc};

use crate::assemble::assemble;
use crate::bindings::sluice::plugin::types as wit;
use crate::bindings::v0_2::exports::sluice::plugin::transformer as v0_2;
use crate::carrier;
use crate::columnar::{self, BatchArg};
use crate::error::{PluginErrorKind, RuntimeError};
use crate::host::HostState;
use crate::limits::PluginLimits;
use crate::plugin::{PluginCore, read_component};
use crate::runtime::Runtime;

/// The interface a transform exports.
const TRANSFORMER: &str = "sluice:plugin/transformer";

/// A 0.1 guest's `process` export, as the host calls it.
type ProcessFn<'a> = TypedFunc<(BatchArg<'a>,), (Result<wit::Transformed, wit::PluginError>,)>;
/// A 0.2 guest's `process` export.
type ProcessV2Fn<'a> = TypedFunc<(BatchArg<'a>,), (Result<v0_2::Output, wit::PluginError>,)>;
/// The guest's `init` export.
type InitFn<'a> = TypedFunc<(&'a [(String, String)],), (Result<(), wit::PluginError>,)>;
/// The guest's `restore` export.
type RestoreFn<'a> = TypedFunc<(&'a [u8],), (Result<(), wit::PluginError>,)>;
/// The guest's `snapshot` export.
type SnapshotFn = TypedFunc<(), (Option<Vec<u8>>,)>;
/// A 0.2 guest's `reads` export.
type ReadsFn = TypedFunc<(), (Option<Vec<String>>,)>;

/// What a transform made of one batch.
#[derive(Debug, Clone)]
pub struct PluginOutput {
    /// Rows that continue down the pipeline.
    pub batch: RecordBatch,
    /// Rows sent to named outputs, in the order the plugin returned them.
    pub routed: Vec<(String, RecordBatch)>,
}

/// Input rows a plugin rejected as invalid (its `invalid-input` error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRows {
    /// The plugin's message.
    pub message: String,
    /// Indexes of the rejected rows; empty means the whole batch.
    pub rows: Vec<u32>,
}

/// A transform plugin: compiled once, instantiated from a pool, called once
/// per batch under its limits.
pub struct TransformPlugin {
    core: PluginCore<PluginInstance>,
    instance_pre: InstancePre<HostState>,
    exports: TransformerExports,
    /// The input columns the plugin reads (its 0.2 `reads`); none for
    /// every column.
    reads: Option<Vec<String>>,
    /// The state every new instance is restored to after `init`: the last
    /// one taken or restored, so an instance rebuilt after a trap starts
    /// from the last snapshot, never silently from empty.
    baseline: Mutex<Option<Arc<[u8]>>>,
    /// Whether the plugin keeps state (its first `snapshot` was not `None`).
    stateful: bool,
    /// A stateful plugin's instance was lost mid-call (trap, deadline,
    /// memory): the rows it took since the baseline are gone from its
    /// state, so it runs again only once restored.
    state_lost: AtomicBool,
    /// The linear memory of the instance that made the last call.
    memory_bytes: AtomicU64,
}

impl std::fmt::Debug for TransformPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

/// Where the transformer's functions are among the component's exports.
#[derive(Clone, Copy)]
struct TransformerExports {
    init: ComponentExportIndex,
    process: ComponentExportIndex,
    snapshot: ComponentExportIndex,
    restore: ComponentExportIndex,
    /// 0.2's `reads`; none for a 0.1 plugin.
    reads: Option<ComponentExportIndex>,
}

/// What a plugin's `process` answered, in its contract's version.
enum Processed {
    V0_1(wit::Transformed),
    V0_2(v0_2::Output),
}

/// One live instance with its own store.
struct PluginInstance {
    store: Store<HostState>,
    process: Func,
    snapshot: SnapshotFn,
}

impl TransformPlugin {
    /// Load the component at `path`, check that it implements the
    /// `transform` world, and create (and `init`) a first instance so that a
    /// bad plugin or config fails now rather than on the first batch.
    pub fn load(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Result<Self, RuntimeError> {
        let bytes = read_component(name, path)?;
        Self::from_bytes(runtime, name, &bytes, config, limits)
    }

    /// Like [`TransformPlugin::load`], from the component's bytes.
    pub fn from_bytes(
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Result<Self, RuntimeError> {
        let loaded = PluginCore::load_world(
            runtime,
            name,
            bytes,
            config,
            limits,
            ("transform", TRANSFORMER),
        )?;
        let exports = TransformerExports {
            init: loaded.function("init")?,
            process: loaded.function("process")?,
            snapshot: loaded.function("snapshot")?,
            restore: loaded.function("restore")?,
            reads: match loaded.version {
                "0.1.0" => None,
                _ => Some(loaded.function("reads")?),
            },
        };
        let mut plugin = TransformPlugin {
            core: loaded.core,
            instance_pre: loaded.instance_pre,
            exports,
            reads: None,
            baseline: Mutex::new(None),
            stateful: false,
            state_lost: AtomicBool::new(false),
            memory_bytes: AtomicU64::new(0),
        };
        let (mut first, instance) = plugin.instantiate_with_handle()?;
        if let Some(reads) = exports.reads {
            plugin.core.arm(&mut first.store);
            let reads: ReadsFn = plugin.core.typed_func(
                &mut first.store,
                &instance,
                ("transform", reads, "reads"),
            )?;
            let (reads,) = reads
                .call(&mut first.store, ())
                .map_err(|e| plugin.core.call_failed(&first.store, "reads", e))?;
            plugin.reads = reads;
        }
        plugin.core.arm(&mut first.store);
        let (state,) = first
            .snapshot
            .call(&mut first.store, ())
            .map_err(|e| plugin.core.call_failed(&first.store, "snapshot", e))?;
        plugin.core.release(first);
        Ok(TransformPlugin {
            stateful: state.is_some(),
            ..plugin
        })
    }

    /// Bytes of linear memory the instance that made the last call holds.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes.load(Ordering::Relaxed)
    }

    /// The plugin's name in the job.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The sha256 of the component's bytes: the plugin's identity.
    pub fn digest(&self) -> &str {
        &self.core.digest
    }

    /// Whether the plugin keeps state of its own (its `snapshot` export
    /// answered with state when it was loaded).
    pub fn is_stateful(&self) -> bool {
        self.stateful
    }

    /// Transform one batch. On a trap, an exceeded deadline or memory limit,
    /// the instance is discarded and the error names the plugin and the
    /// reason; the next call gets a fresh instance.
    pub fn process(&self, batch: &RecordBatch) -> Result<PluginOutput, RuntimeError> {
        self.check_state()?;
        let read = self.read_columns(batch);
        let normalized = carrier::for_plugin(&read)?;
        let arg = columnar::lower_batch(&normalized)?;
        let mut instance = self.core.checkout(|| self.instantiate())?;
        let slot = self.core.runtime.call_slot();
        self.core.arm(&mut instance.store);
        let result = if self.exports.reads.is_some() {
            // SAFETY: `instantiate` type-checked this function against
            // `ProcessV2Fn<'static>`; the lifetime does not change the type.
            let process: ProcessV2Fn<'_> = unsafe { TypedFunc::new_unchecked(instance.process) };
            process
                .call(&mut instance.store, (arg,))
                .map(|(result,)| (result.map(Processed::V0_2),))
        } else {
            // SAFETY: as above, against `ProcessFn<'static>`.
            let process: ProcessFn<'_> = unsafe { TypedFunc::new_unchecked(instance.process) };
            process
                .call(&mut instance.store, (arg,))
                .map(|(result,)| (result.map(Processed::V0_1),))
        };
        drop(slot);
        let result = match result {
            Ok((result,)) => result,
            Err(error) => return Err(self.lost(&instance.store, "process", error)),
        };
        self.memory_bytes.store(
            instance.store.data().limiter.bytes() as u64,
            Ordering::Relaxed,
        );
        self.core.release(instance);
        match result {
            Ok(processed) => self.lift_output(processed, batch),
            Err(error) => Err(self.core.plugin_error(error, batch.num_rows())),
        }
    }

    /// The columns of `batch` that cross into the plugin: those it reads.
    fn read_columns(&self, batch: &RecordBatch) -> RecordBatch {
        let Some(reads) = &self.reads else {
            return batch.clone();
        };
        let schema = batch.schema_ref();
        let indices: Vec<usize> = reads
            .iter()
            .filter_map(|name| schema.index_of(name).ok())
            .collect();
        batch
            .project(&indices)
            .expect("indices found in the batch's own schema project it")
    }

    /// The plugin's own state (its `snapshot` export); `None` for a
    /// stateless plugin. The state also becomes the one a rebuilt instance
    /// is restored to.
    pub fn snapshot(&self) -> Result<Option<Vec<u8>>, RuntimeError> {
        self.check_state()?;
        let mut instance = self.core.checkout(|| self.instantiate())?;
        self.core.arm(&mut instance.store);
        let state = instance.snapshot.call(&mut instance.store, ());
        let state = match state {
            Ok((state,)) => state,
            Err(error) => return Err(self.lost(&instance.store, "snapshot", error)),
        };
        self.core.release(instance);
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = state.as_deref().map(Arc::from);
        Ok(state)
    }

    /// Put the plugin back to `state` (from [`TransformPlugin::snapshot`],
    /// maybe of an earlier version of the plugin), or to its initial state
    /// with `None`. Idle instances are dropped: every instance from now on
    /// is initialised and then restored to `state`. A plugin that cannot
    /// read the state answers with its error.
    pub fn restore(&self, state: Option<&[u8]>) -> Result<(), RuntimeError> {
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = state.map(Arc::from);
        self.core.clear_idle();
        let instance = self.instantiate()?;
        self.core.release(instance);
        self.state_lost.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Refuses to run a stateful plugin whose state was lost.
    fn check_state(&self) -> Result<(), RuntimeError> {
        if self.state_lost.load(Ordering::Relaxed) {
            return Err(RuntimeError::StateLost {
                plugin: self.core.name.to_string(),
            });
        }
        Ok(())
    }

    /// The error of a call that lost its instance; a stateful plugin's
    /// state is then lost too.
    fn lost(
        &self,
        store: &Store<HostState>,
        function: &'static str,
        error: wasmtime::Error,
    ) -> RuntimeError {
        if self.stateful {
            self.state_lost.store(true, Ordering::Relaxed);
        }
        self.core.call_failed(store, function, error)
    }

    /// The rows a plugin's `invalid-input` error rejected, if that is the
    /// error it returned.
    pub fn rejected_rows(error: &RuntimeError) -> Option<RejectedRows> {
        match error {
            RuntimeError::Plugin {
                kind: PluginErrorKind::InvalidInput,
                message,
                rows,
                ..
            } => Some(RejectedRows {
                message: message.clone(),
                rows: rows.clone(),
            }),
            _ => None,
        }
    }

    /// The plugin's batches as Arrow, with the columns that crossed as a
    /// carrier of an `input` type back in that type, and a 0.2 output put
    /// together with the input columns it names.
    fn lift_output(
        &self,
        processed: Processed,
        input: &RecordBatch,
    ) -> Result<PluginOutput, RuntimeError> {
        let invalid = |reason: String| RuntimeError::InvalidOutput {
            plugin: self.core.name.to_string(),
            reason,
        };
        let schema = input.schema();
        // Rows cost a plugin memory only through their columns: a batch of
        // none may not claim more rows than it was given.
        let lift = |batch: wit::Batch| {
            let columns_free = batch.columns.is_empty()
                && usize::try_from(batch.num_rows).map_or(true, |rows| rows > input.num_rows());
            if columns_free {
                return Err(format!(
                    "a batch of no columns claims {} rows, more than the {} it was given",
                    batch.num_rows,
                    input.num_rows()
                ));
            }
            columnar::lift_batch(batch).and_then(|batch| carrier::raise(batch, &schema))
        };
        let (batch, routed) = match processed {
            Processed::V0_1(transformed) => (
                lift(transformed.batch).map_err(invalid)?,
                transformed.routed,
            ),
            Processed::V0_2(output) => {
                let made = lift(output.batch).map_err(invalid)?;
                let batch = assemble(
                    input,
                    self.reads.as_deref(),
                    &made,
                    output.rows,
                    &output.columns,
                )
                .map_err(invalid)?;
                (batch, output.routed)
            }
        };
        let routed = routed
            .into_iter()
            .map(|routed| {
                let batch = lift(routed.batch)
                    .map_err(|e| invalid(format!("output `{}`: {e}", routed.output)))?;
                Ok((routed.output, batch))
            })
            .collect::<Result<_, RuntimeError>>()?;
        Ok(PluginOutput { batch, routed })
    }

    /// A new instance: instantiated, type-checked and `init`ed.
    fn instantiate(&self) -> Result<PluginInstance, RuntimeError> {
        self.instantiate_with_handle().map(|(instance, _)| instance)
    }

    /// A new instance and its wasmtime handle.
    fn instantiate_with_handle(
        &self,
    ) -> Result<(PluginInstance, wasmtime::component::Instance), RuntimeError> {
        let mut store = self.core.new_store();
        let instance = self
            .instance_pre
            .instantiate(&mut store)
            .map_err(|e| self.core.call_failed(&store, "instantiate", e))?;
        let exports = self.exports;
        let at = |export, function| ("transform", export, function);
        let process = if exports.reads.is_some() {
            let process: ProcessV2Fn<'static> =
                self.core
                    .typed_func(&mut store, &instance, at(exports.process, "process"))?;
            *process.func()
        } else {
            let process: ProcessFn<'static> =
                self.core
                    .typed_func(&mut store, &instance, at(exports.process, "process"))?;
            *process.func()
        };
        let snapshot: SnapshotFn =
            self.core
                .typed_func(&mut store, &instance, at(exports.snapshot, "snapshot"))?;
        let restore: RestoreFn<'static> =
            self.core
                .typed_func(&mut store, &instance, at(exports.restore, "restore"))?;
        let init: InitFn<'_> =
            self.core
                .typed_func(&mut store, &instance, at(exports.init, "init"))?;
        let (init,) = init
            .call(&mut store, (&self.core.config,))
            .map_err(|e| self.core.call_failed(&store, "init", e))?;
        init.map_err(|e| self.core.plugin_error(e, 0))?;
        let baseline = self
            .baseline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(state) = baseline {
            self.core.arm(&mut store);
            let (restored,) = restore
                .call(&mut store, (&state,))
                .map_err(|e| self.core.call_failed(&store, "restore", e))?;
            restored.map_err(|e| self.core.plugin_error(e, 0))?;
        }
        Ok((
            PluginInstance {
                store,
                process,
                snapshot,
            },
            instance,
        ))
    }
}
