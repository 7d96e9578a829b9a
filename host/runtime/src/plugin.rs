//! What every kind of plugin shares: loading and compiling the component,
//! the limits armed on every call, the pool of idle instances, and turning
//! a failed call into an error that names the plugin and the reason.

use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower,
    TypedFunc,
};
use wasmtime::{Store, Trap};

use crate::bindings::sluice::plugin::types as wit;
use crate::error::{PluginErrorKind, RuntimeError};
use crate::host::HostState;
use crate::limits::PluginLimits;
use crate::runtime::Runtime;

/// A loaded component and the pool of its idle instances (of type `I`).
pub(crate) struct PluginCore<I> {
    pub(crate) name: Arc<str>,
    pub(crate) digest: String,
    pub(crate) runtime: Runtime,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) limits: PluginLimits,
    idle: Mutex<Vec<I>>,
}

impl<I> std::fmt::Debug for PluginCore<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Read a plugin's `.wasm` file.
pub(crate) fn read_component(name: &str, path: &Path) -> Result<Vec<u8>, RuntimeError> {
    std::fs::read(path).map_err(|source| RuntimeError::ReadPlugin {
        plugin: name.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// The versions of the plugin contract the host loads, newest first.
pub(crate) const CONTRACT_VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];

/// A component checked to export one world's interface.
pub(crate) struct WorldComponent<I> {
    pub(crate) core: PluginCore<I>,
    pub(crate) component: Component,
    /// The contract version the component was built against (one of
    /// [`CONTRACT_VERSIONS`]).
    pub(crate) version: &'static str,
    /// The exported interface.
    interface: ComponentExportIndex,
    /// The interface's versioned name, for errors.
    interface_name: String,
    world: &'static str,
    pub(crate) instance_pre: InstancePre<HostState>,
}

impl<I> WorldComponent<I> {
    /// The export index of the interface's `function`.
    pub(crate) fn function(&self, function: &str) -> Result<ComponentExportIndex, RuntimeError> {
        self.component
            .get_export_index(Some(&self.interface), function)
            .ok_or_else(|| {
                self.core.wrong_world(
                    self.world,
                    &self.component,
                    format!("`{}` has no function `{function}`", self.interface_name),
                )
            })
    }
}

impl<I> PluginCore<I> {
    /// Load a component that exports `interface` (unversioned, such as
    /// `sluice:plugin/transformer`) of one of the contract's versions, as
    /// the `world` the job uses it as, and link it.
    pub(crate) fn load_world(
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        config: Vec<(String, String)>,
        limits: PluginLimits,
        (world, interface): (&'static str, &str),
    ) -> Result<WorldComponent<I>, RuntimeError> {
        let (core, component) = Self::load(runtime, name, bytes, config, limits)?;
        let exported = CONTRACT_VERSIONS.iter().find_map(|version| {
            let name = format!("{interface}@{version}");
            let index = component.get_export_index(None, &name)?;
            Some((*version, index, name))
        });
        let Some((version, index, interface_name)) = exported else {
            let versions = CONTRACT_VERSIONS.join(", ");
            return Err(core.wrong_world(
                world,
                &component,
                format!(
                    "no `{interface}` export of a contract version this host loads ({versions})"
                ),
            ));
        };
        let instance_pre = runtime.linker().instantiate_pre(&component).map_err(|e| {
            RuntimeError::Instantiate {
                plugin: name.to_owned(),
                reason: format!("{e:#}"),
            }
        })?;
        Ok(WorldComponent {
            core,
            component,
            version,
            interface: index,
            interface_name,
            world,
            instance_pre,
        })
    }

    /// The component does not implement `world`: say what it does export.
    pub(crate) fn wrong_world(
        &self,
        world: &'static str,
        component: &Component,
        reason: String,
    ) -> RuntimeError {
        RuntimeError::WrongWorld {
            plugin: self.name.to_string(),
            world,
            reason: format!("{reason}; {}", self.describe_exports(component)),
        }
    }

    /// Check the limits against the host's and compile (or take from the
    /// cache) the component.
    fn load(
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Result<(Self, Component), RuntimeError> {
        if limits.memory_bytes > runtime.config().max_memory_bytes {
            return Err(RuntimeError::Instantiate {
                plugin: name.to_owned(),
                reason: format!(
                    "memory limit {} bytes is above the host's maximum of {} bytes",
                    limits.memory_bytes,
                    runtime.config().max_memory_bytes
                ),
            });
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let component = runtime.component(name, &digest, bytes)?;
        let core = PluginCore {
            name: name.into(),
            digest,
            runtime: runtime.clone(),
            config,
            limits,
            idle: Mutex::new(Vec::new()),
        };
        Ok((core, component))
    }

    /// "it exports [...]", for errors about a component of the wrong world.
    fn describe_exports(&self, component: &Component) -> String {
        let names: Vec<String> = component
            .component_type()
            .exports(self.runtime.engine())
            .map(|(n, _)| n.to_owned())
            .collect();
        format!("it exports [{}]", names.join(", "))
    }

    /// The function at `export` of `instance`, checked to have the type
    /// `P -> R`.
    pub(crate) fn typed_func<P, R>(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        (world, export, function): (&'static str, ComponentExportIndex, &str),
    ) -> Result<TypedFunc<P, R>, RuntimeError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let func =
            instance
                .get_func(&mut *store, export)
                .ok_or_else(|| RuntimeError::Instantiate {
                    plugin: self.name.to_string(),
                    reason: format!("the instance has no function `{function}`"),
                })?;
        func.typed::<P, R>(&*store)
            .map_err(|e| RuntimeError::WrongWorld {
                plugin: self.name.to_string(),
                world,
                reason: format!("`{function}` has the wrong type: {e:#}"),
            })
    }

    /// A store with this plugin's memory limit and a fresh deadline.
    pub(crate) fn new_store(&self) -> Store<HostState> {
        let state = HostState::new(
            self.name.clone(),
            self.runtime.metrics().clone(),
            self.limits.memory_bytes,
        );
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|state| &mut state.limiter);
        self.arm(&mut store);
        store
    }

    /// Give the store a fresh deadline (wall time) and reset what is bounded per call.
    pub(crate) fn arm(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(self.runtime.deadline_ticks(self.limits.deadline));
        store.data_mut().begin_call();
    }

    /// Say why a call into the guest failed: deadline, memory or trap.
    pub(crate) fn call_failed(
        &self,
        store: &Store<HostState>,
        function: &'static str,
        error: wasmtime::Error,
    ) -> RuntimeError {
        let plugin = self.name.to_string();
        tracing::warn!(plugin, function, "discarding plugin instance: {error:#}");
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            RuntimeError::DeadlineExceeded {
                plugin,
                function,
                deadline_ms: u64::try_from(self.limits.deadline.as_millis()).unwrap_or(u64::MAX),
            }
        } else if store.data().limiter.denied() {
            RuntimeError::MemoryLimitExceeded {
                plugin,
                function,
                limit_bytes: self.limits.memory_bytes,
            }
        } else {
            RuntimeError::Trap {
                plugin,
                function,
                reason: format!("{error:?}"),
            }
        }
    }

    /// The plugin's typed error, attributed to it, for a call on a batch of
    /// `input_rows` rows (0 for calls without one). The rows of an
    /// `invalid-input` error come sorted and without duplicates; one the
    /// batch does not have makes the answer invalid output.
    pub(crate) fn plugin_error(&self, error: wit::PluginError, input_rows: usize) -> RuntimeError {
        let plugin = self.name.to_string();
        let (kind, message, rows) = match error {
            wit::PluginError::InvalidInput(mut input) => {
                input.rows.sort_unstable();
                input.rows.dedup();
                if let Some(&last) = input.rows.last()
                    && usize::try_from(last).map_or(true, |row| row >= input_rows)
                {
                    return RuntimeError::InvalidOutput {
                        plugin,
                        reason: format!(
                            "invalid-input names row {last} of a batch of {input_rows} rows"
                        ),
                    };
                }
                (PluginErrorKind::InvalidInput, input.message, input.rows)
            }
            wit::PluginError::Transient(message) => {
                (PluginErrorKind::Transient, message, Vec::new())
            }
            wit::PluginError::Fatal(message) => (PluginErrorKind::Fatal, message, Vec::new()),
        };
        RuntimeError::Plugin {
            plugin,
            kind,
            message,
            rows,
        }
    }

    /// An idle instance, or a new one from `instantiate`.
    pub(crate) fn checkout(
        &self,
        instantiate: impl FnOnce() -> Result<I, RuntimeError>,
    ) -> Result<I, RuntimeError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(instance) => Ok(instance),
            None => instantiate(),
        }
    }

    /// Drop every idle instance.
    pub(crate) fn clear_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Return a healthy instance to the pool (or drop it if the pool is full).
    pub(crate) fn release(&self, instance: I) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.limits.max_idle_instances {
            idle.push(instance);
        }
    }
}
