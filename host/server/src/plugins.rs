//! The host's uploaded plugins, content-addressed by SHA-256 and kept in
//! object storage (`plugin_store` in the host file: the state directory's
//! `plugins/` by default, S3 in production), with which tenant uploaded
//! which. Hosts that share a store share their tenants' plugins, and a
//! host that lost its disk finds them again.
//!
//! Layout in the store: `HEX.wasm`, and `tenants/T/HEX` (empty) once
//! tenant T has uploaded it. Jobs load plugins from files, so each one
//! used is also kept in the host's local cache, `STATE/plugins/HEX.wasm`
//! (which, with the default store, is the store itself). What comes from
//! the store is checked against its digest before it is used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

/// Why the plugin store failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PluginStoreError {
    /// The object store failed.
    #[error("plugin store `{location}`: {source}")]
    Store {
        /// The store's location.
        location: String,
        /// The object store's error.
        source: object_store::Error,
    },
    /// The local cache failed.
    #[error("plugin cache: {0}")]
    Cache(#[from] std::io::Error),
    /// What the store holds under a digest is not what hashes to it.
    #[error("plugin store `{location}`: sha256:{hex} holds other bytes (sha256:{actual})")]
    Corrupt {
        /// The store's location.
        location: String,
        /// The digest asked for.
        hex: String,
        /// The digest of what was there.
        actual: String,
    },
}

/// Plugins in object storage, with a local cache of their files.
#[derive(Debug)]
pub(crate) struct PluginStore {
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    location: String,
    cache: PathBuf,
    /// Runs the store's requests for the host's synchronous callers
    /// (always `Some` until dropped).
    runtime: Option<tokio::runtime::Runtime>,
}

impl PluginStore {
    /// The store at `location` (see [`sluice_state::open_store`]) with
    /// `options`, caching files in `cache`. `None`: the directory `cache`
    /// is the store.
    pub(crate) fn open(
        location: Option<&str>,
        options: &BTreeMap<String, String>,
        cache: &Path,
    ) -> Result<Self, String> {
        let location = location.map_or_else(|| cache.display().to_string(), str::to_owned);
        let (store, root) = sluice_state::open_store(&location, options)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-plugin-store")
            .enable_all()
            .build()
            .map_err(|e| format!("starting its thread: {e}"))?;
        Ok(PluginStore {
            store,
            root,
            location,
            cache: cache.to_owned(),
            runtime: Some(runtime),
        })
    }

    /// Keep `bytes` as a plugin `tenant` uploaded; returns its digest's
    /// hex.
    pub(crate) fn put(&self, tenant: &str, bytes: &[u8]) -> Result<String, PluginStoreError> {
        let hex = hex::encode(Sha256::digest(bytes));
        self.block_on(async {
            // Create-only: a plugin already there (the same bytes, by
            // their digest) stays as it is.
            let created = self
                .store
                .put_opts(
                    &self.blob(&hex),
                    PutPayload::from(bytes.to_vec()),
                    PutOptions::from(PutMode::Create),
                )
                .await;
            match created {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(source) => return Err(self.failed(source)),
            }
            self.store
                .put(&self.owner(tenant, &hex), PutPayload::default())
                .await
                .map_err(|source| self.failed(source))?;
            Ok(())
        })?;
        self.cache_file(&hex, bytes)?;
        Ok(hex)
    }

    /// Take in the plugins of a host kept before the plugin store: each
    /// `STATE/tenants/T/plugins/HEX` (T uploaded HEX, whose bytes are in
    /// `STATE/plugins/HEX.wasm`) is put in the store as T's, then removed.
    /// A mark whose bytes are missing or do not hash to it is left, with
    /// a warning. Returns how many were taken in.
    pub(crate) fn adopt_old_layout(&self, state: &Path) -> Result<usize, PluginStoreError> {
        let mut adopted = 0;
        let Ok(tenants) = std::fs::read_dir(state.join("tenants")) else {
            return Ok(0);
        };
        for tenant in tenants.flatten() {
            let marks = tenant.path().join("plugins");
            let Ok(entries) = std::fs::read_dir(&marks) else {
                continue;
            };
            let name = tenant.file_name().to_string_lossy().into_owned();
            for mark in entries.flatten() {
                let hex = mark.file_name().to_string_lossy().into_owned();
                let bytes = std::fs::read(state.join("plugins").join(format!("{hex}.wasm")));
                match bytes {
                    Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == hex => {
                        self.put(&name, &bytes)?;
                        std::fs::remove_file(mark.path()).map_err(PluginStoreError::Cache)?;
                        adopted += 1;
                    }
                    _ => tracing::warn!(
                        tenant = %name,
                        "plugin {hex} of the old layout ({}) has no bytes that hash to it; left as it is",
                        mark.path().display()
                    ),
                }
            }
            // Gone once every mark was taken in.
            let _ = std::fs::remove_dir(&marks);
        }
        Ok(adopted)
    }

    /// The digests (hex) of the plugins `tenant` uploaded, sorted.
    pub(crate) fn owned(&self, tenant: &str) -> Result<Vec<String>, PluginStoreError> {
        let prefix = self.root.clone().join("tenants").join(tenant);
        let mut digests: Vec<String> = self.block_on(async {
            self.store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location.filename().unwrap_or_default().to_owned())
                .try_collect()
                .await
                .map_err(|source| self.failed(source))
        })?;
        digests.retain(|hex| is_digest(hex));
        digests.sort();
        Ok(digests)
    }

    /// The file of plugin `hex`, if `tenant` uploaded it: from the local
    /// cache, else fetched from the store and checked against `hex`.
    pub(crate) fn file(
        &self,
        tenant: &str,
        hex: &str,
    ) -> Result<Option<PathBuf>, PluginStoreError> {
        let owned = self.block_on(async {
            match self.store.head(&self.owner(tenant, hex)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(source) => Err(self.failed(source)),
            }
        })?;
        if !owned {
            return Ok(None);
        }
        let file = self.cache.join(format!("{hex}.wasm"));
        if file.is_file() {
            return Ok(Some(file));
        }
        let bytes = self.block_on(async {
            let fetched = self.store.get(&self.blob(hex)).await;
            match fetched {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(source) => Err(source),
            }
            .map_err(|source| self.failed(source))
        })?;
        let Some(bytes) = bytes else { return Ok(None) };
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != hex {
            return Err(PluginStoreError::Corrupt {
                location: self.location.clone(),
                hex: hex.to_owned(),
                actual,
            });
        }
        Ok(Some(self.cache_file(hex, &bytes)?))
    }

    /// Run `request` against the store to its end.
    fn block_on<T>(&self, request: impl Future<Output = T>) -> T {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
            .block_on(request)
    }

    /// Where plugin `hex`'s bytes are in the store.
    fn blob(&self, hex: &str) -> StorePath {
        self.root.clone().join(format!("{hex}.wasm"))
    }

    /// The mark that `tenant` uploaded plugin `hex`.
    fn owner(&self, tenant: &str, hex: &str) -> StorePath {
        self.root.clone().join("tenants").join(tenant).join(hex)
    }

    /// Keep `bytes` as plugin `hex`'s local file, unless it is there.
    fn cache_file(&self, hex: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let file = self.cache.join(format!("{hex}.wasm"));
        if !file.is_file() {
            crate::jobs::write_atomically(&file, bytes)?;
        }
        Ok(file)
    }

    fn failed(&self, source: object_store::Error) -> PluginStoreError {
        PluginStoreError::Store {
            location: self.location.clone(),
            source,
        }
    }
}

impl Drop for PluginStore {
    fn drop(&mut self) {
        // Without waiting: the host may be dropped on an async thread,
        // where waiting is not allowed, and no request is in flight.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether `text` is a SHA-256 digest in hex.
pub(crate) fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}
