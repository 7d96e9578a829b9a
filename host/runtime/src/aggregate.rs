//! A loaded aggregate plugin: vectorised accumulators over states the host
//! owns as bytes.

use std::path::Path;

use arrow_array::RecordBatch;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Func, InstancePre, TypedFunc};

use crate::bindings::aggregate::exports::sluice::plugin::aggregator::Finished;
use crate::bindings::sluice::plugin::types as wit;
use crate::carrier;
use crate::columnar::{self, BatchArg};
use crate::error::RuntimeError;
use crate::host::HostState;
use crate::limits::PluginLimits;
use crate::plugin::{PluginCore, read_component};
use crate::runtime::Runtime;

/// The interface an aggregate exports (the same in every contract version).
const AGGREGATOR: &str = "sluice:plugin/aggregator";

/// The guest's `update` export, as the host calls it: states and group ids
/// are borrowed, the batch's buffers too.
type UpdateFn<'a> =
    TypedFunc<(&'a [Vec<u8>], BatchArg<'a>, &'a [u32]), (Result<Vec<Vec<u8>>, wit::PluginError>,)>;
/// The guest's `init` export.
type InitFn<'a> = TypedFunc<(&'a [(String, String)],), (Result<(), wit::PluginError>,)>;
/// The guest's `merge` export.
type MergeFn<'a> =
    TypedFunc<(&'a [Vec<u8>], &'a [Vec<u8>]), (Result<Vec<Vec<u8>>, wit::PluginError>,)>;
/// The guest's `finish` export.
type FinishFn<'a> = TypedFunc<(&'a [Vec<u8>],), (Result<Finished, wit::PluginError>,)>;

/// Output rows of finished groups.
#[derive(Debug, Clone)]
pub struct FinishedRows {
    /// The rows.
    pub batch: RecordBatch,
    /// The state index of each row; empty means one row per state.
    pub groups: Vec<u32>,
}

/// An aggregate plugin: compiled once, instantiated from a pool, called once
/// per batch under its limits. States are opaque bytes; an empty state is a
/// new group's.
pub struct AggregatePlugin {
    core: PluginCore<AggregateInstance>,
    instance_pre: InstancePre<HostState>,
    exports: AggregatorExports,
}

/// Where the aggregator's functions are among the component's exports.
#[derive(Clone, Copy)]
struct AggregatorExports {
    init: ComponentExportIndex,
    update: ComponentExportIndex,
    merge: ComponentExportIndex,
    finish: ComponentExportIndex,
}

impl std::fmt::Debug for AggregatePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

struct AggregateInstance {
    store: Store<HostState>,
    update: Func,
    merge: Func,
    finish: Func,
}

impl AggregatePlugin {
    /// Load the component at `path`, check that it implements the
    /// `aggregate` world, and `init` a first instance.
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

    /// Like [`AggregatePlugin::load`], from the component's bytes.
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
            ("aggregate", AGGREGATOR),
        )?;
        let exports = AggregatorExports {
            init: loaded.function("init")?,
            update: loaded.function("update")?,
            merge: loaded.function("merge")?,
            finish: loaded.function("finish")?,
        };
        let plugin = AggregatePlugin {
            core: loaded.core,
            instance_pre: loaded.instance_pre,
            exports,
        };
        let first = plugin.instantiate()?;
        plugin.core.release(first);
        Ok(plugin)
    }

    /// The plugin's name in the job.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The sha256 of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.core.digest
    }

    /// Fold `batch` into `states`: row `i` belongs to `states[groups[i]]`.
    pub fn update(
        &self,
        states: &[Vec<u8>],
        batch: &RecordBatch,
        groups: &[u32],
    ) -> Result<Vec<Vec<u8>>, RuntimeError> {
        let normalized = carrier::for_plugin(batch)?;
        let arg = columnar::lower_batch(&normalized)?;
        let new_states = self.call("update", batch.num_rows(), |instance| {
            // SAFETY: `instantiate` type-checked this function against
            // `UpdateFn<'static>`; the lifetime does not change the type.
            let update: UpdateFn<'_> = unsafe { TypedFunc::new_unchecked(instance.update) };
            update
                .call(&mut instance.store, (states, arg, groups))
                .map(|(result,)| result)
        })?;
        self.check_count("update", states.len(), new_states.len())?;
        Ok(new_states)
    }

    /// Combine `left[i]` with `right[i]`.
    pub fn merge(&self, left: &[Vec<u8>], right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, RuntimeError> {
        let merged = self.call("merge", left.len(), |instance| {
            // SAFETY: `instantiate` type-checked this function against
            // `MergeFn<'static>`; the lifetime does not change the type.
            let merge: MergeFn<'_> = unsafe { TypedFunc::new_unchecked(instance.merge) };
            merge
                .call(&mut instance.store, (left, right))
                .map(|(result,)| result)
        })?;
        self.check_count("merge", left.len(), merged.len())?;
        Ok(merged)
    }

    /// The output rows of `states`.
    pub fn finish(&self, states: &[Vec<u8>]) -> Result<FinishedRows, RuntimeError> {
        let finished = self.call("finish", states.len(), |instance| {
            // SAFETY: `instantiate` type-checked this function against
            // `FinishFn<'static>`; the lifetime does not change the type.
            let finish: FinishFn<'_> = unsafe { TypedFunc::new_unchecked(instance.finish) };
            finish
                .call(&mut instance.store, (states,))
                .map(|(result,)| result)
        })?;
        let invalid = |reason: String| RuntimeError::InvalidOutput {
            plugin: self.core.name.to_string(),
            reason,
        };
        let batch = columnar::lift_batch(finished.batch).map_err(invalid)?;
        let groups = finished.groups;
        if groups.is_empty() {
            if batch.num_rows() != states.len() {
                return Err(invalid(format!(
                    "finish returned {} rows for {} states and no group ids",
                    batch.num_rows(),
                    states.len()
                )));
            }
        } else if groups.len() != batch.num_rows()
            || groups.iter().any(|&g| g as usize >= states.len())
        {
            return Err(invalid(format!(
                "finish returned {} rows with {} group ids for {} states",
                batch.num_rows(),
                groups.len(),
                states.len()
            )));
        }
        Ok(FinishedRows { batch, groups })
    }

    /// Run `call` on a pooled instance under the plugin's limits; a trap
    /// discards the instance. `rows` bounds the rows an `invalid-input`
    /// answer may name.
    fn call<T>(
        &self,
        function: &'static str,
        rows: usize,
        call: impl FnOnce(&mut AggregateInstance) -> wasmtime::Result<Result<T, wit::PluginError>>,
    ) -> Result<T, RuntimeError> {
        let mut instance = self.core.checkout(|| self.instantiate())?;
        let slot = self.core.runtime.call_slot();
        self.core.arm(&mut instance.store);
        let called = call(&mut instance);
        drop(slot);
        let result = match called {
            Ok(result) => result,
            Err(error) => return Err(self.core.call_failed(&instance.store, function, error)),
        };
        self.core.release(instance);
        result.map_err(|e| self.core.plugin_error(e, rows))
    }

    fn check_count(&self, function: &str, expected: usize, got: usize) -> Result<(), RuntimeError> {
        if expected == got {
            return Ok(());
        }
        Err(RuntimeError::InvalidOutput {
            plugin: self.core.name.to_string(),
            reason: format!("{function} returned {got} states for {expected}"),
        })
    }

    /// A new instance: instantiated, type-checked and `init`ed.
    fn instantiate(&self) -> Result<AggregateInstance, RuntimeError> {
        let mut store = self.core.new_store();
        let instance = self
            .instance_pre
            .instantiate(&mut store)
            .map_err(|e| self.core.call_failed(&store, "instantiate", e))?;
        let exports = self.exports;
        let update: UpdateFn<'static> = self.core.typed_func(
            &mut store,
            &instance,
            ("aggregate", exports.update, "update"),
        )?;
        let merge: MergeFn<'static> =
            self.core
                .typed_func(&mut store, &instance, ("aggregate", exports.merge, "merge"))?;
        let finish: FinishFn<'static> = self.core.typed_func(
            &mut store,
            &instance,
            ("aggregate", exports.finish, "finish"),
        )?;
        let init: InitFn<'_> =
            self.core
                .typed_func(&mut store, &instance, ("aggregate", exports.init, "init"))?;
        let (init,) = init
            .call(&mut store, (&self.core.config,))
            .map_err(|e| self.core.call_failed(&store, "init", e))?;
        init.map_err(|e| self.core.plugin_error(e, 0))?;
        Ok(AggregateInstance {
            store,
            update: *update.func(),
            merge: *merge.func(),
            finish: *finish.func(),
        })
    }
}
