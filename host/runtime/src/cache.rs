//! On-disk cache of compiled components, keyed by content hash and engine.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::RuntimeError;

/// A directory of precompiled components (`<sha256>-<engine>.cwasm`).
#[derive(Debug, Clone)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        ComponentCache { dir }
    }

    /// Load the compiled form of the component with content hash `digest`,
    /// or `compile` it and store the result for the next process.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        compile: impl FnOnce() -> Result<Component, RuntimeError>,
    ) -> Result<Component, RuntimeError> {
        let path = self.dir.join(format!(
            "{digest}-{:016x}.cwasm",
            engine_fingerprint(engine)
        ));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (it is in the name),
            // into a directory owned by this host; wasmtime validates the
            // header again before use.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached component: {e:#}")
                }
            }
        }
        let component = compile()?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {e}");
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> Result<(), RuntimeError> {
        let cache_error = |reason: String| RuntimeError::Cache {
            path: self.dir.clone(),
            reason,
        };
        let bytes = component
            .serialize()
            .map_err(|e| cache_error(format!("{e:#}")))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| cache_error(e.to_string()))?;
        // Write then rename, so a reader never sees half a file.
        let tmp = tempfile_path(path);
        std::fs::write(&tmp, bytes).map_err(|e| cache_error(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| cache_error(e.to_string()))
    }
}

fn tempfile_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Distinguishes engines whose compiled artifacts are not interchangeable.
fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}
