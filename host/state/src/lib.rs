//! The checkpoint store: a job's state, epoch by epoch, in object storage
//! (a local directory by default, S3 in production, memory in tests).
//!
//! An epoch is a set of named files (window state, plugin snapshots,
//! source positions, ...) and a manifest that lists them with their sizes
//! and SHA-256 digests, plus the job's own metadata. The files are written
//! first and the manifest last, with a create-only put: a checkpoint is
//! visible only once complete, an epoch is committed at most once, and a
//! half-written one (no manifest) is ignored. Each attempt at an epoch
//! writes its files under names of its own, so an attempt that loses the
//! race for the manifest never overwrites the winner's files. Reading
//! verifies every file against the manifest, so a corrupt checkpoint is
//! reported, never used.
//!
//! ```text
//! LOCATION/epoch-00000000000000000042/9f2c41d07be3a1e5.window-state
//! LOCATION/epoch-00000000000000000042/MANIFEST
//! ```

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

/// The manifest format this store writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

const MANIFEST: &str = "MANIFEST";
const EPOCH_PREFIX: &str = "epoch-";

/// Why the checkpoint store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The checkpoint location or its options are wrong (the job's
    /// configuration; a retry cannot help).
    #[error("checkpoint location `{location}`: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The object store failed (an external service; a retry may help).
    #[error("checkpoint store `{location}`: {source}")]
    Store {
        /// The location.
        location: String,
        /// The object store's error.
        source: object_store::Error,
    },
    /// The epoch already has a manifest: it was committed before.
    #[error("checkpoint `{location}`: epoch {epoch} is already committed")]
    AlreadyCommitted {
        /// The location.
        location: String,
        /// The epoch.
        epoch: u64,
    },
    /// A committed checkpoint does not match its manifest.
    #[error("checkpoint `{location}`, epoch {epoch}, is corrupt: {reason}")]
    Corrupt {
        /// The location.
        location: String,
        /// The epoch.
        epoch: u64,
        /// What does not match.
        reason: String,
    },
    /// The epoch does not exist or was never committed.
    #[error("checkpoint `{location}` has no committed epoch {epoch}")]
    Missing {
        /// The location.
        location: String,
        /// The epoch.
        epoch: u64,
    },
}

/// One file of an epoch, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name within the epoch.
    pub name: String,
    /// The object that holds it, under the epoch's prefix.
    pub object: String,
    /// Its size, bytes.
    pub size: u64,
    /// Its SHA-256 digest, hex.
    pub sha256: String,
}

/// What an epoch holds: written last, so its presence commits the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The epoch.
    pub epoch: u64,
    /// The epoch's files.
    pub files: Vec<FileEntry>,
    /// The job's own metadata (plan fingerprint, positions, ...).
    pub metadata: serde_json::Value,
}

/// A committed epoch, every file verified against its manifest.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The manifest.
    pub manifest: Manifest,
    files: BTreeMap<String, Bytes>,
}

impl Checkpoint {
    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.manifest.epoch
    }

    /// The contents of file `name`, if the epoch has it.
    pub fn file(&self, name: &str) -> Option<&Bytes> {
        self.files.get(name)
    }
}

/// Epochs in object storage under one location.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    location: String,
}

impl CheckpointStore {
    /// Open `location` (see [`open_store`] for what it may be).
    pub fn open(location: &str, options: &BTreeMap<String, String>) -> Result<Self, StateError> {
        let (store, root) =
            open_store(location, options).map_err(|reason| StateError::Location {
                location: location.to_owned(),
                reason,
            })?;
        Ok(CheckpointStore {
            store,
            root,
            location: location.to_owned(),
        })
    }

    /// Epochs under `root` of `store`, named `location` in errors: for a
    /// store the caller has built itself.
    pub fn from_store(store: Arc<dyn ObjectStore>, root: Path, location: &str) -> Self {
        CheckpointStore {
            store,
            root,
            location: location.to_owned(),
        }
    }

    /// The location, as given to [`CheckpointStore::open`].
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Write `files` as `epoch`, then its manifest with `metadata`. Fails
    /// with [`StateError::AlreadyCommitted`] if the epoch has a manifest,
    /// before writing anything when it had one already.
    pub async fn commit(
        &self,
        epoch: u64,
        files: Vec<(String, Bytes)>,
        metadata: serde_json::Value,
    ) -> Result<Manifest, StateError> {
        let already_committed = || StateError::AlreadyCommitted {
            location: self.location.clone(),
            epoch,
        };
        match self.store.head(&self.file_path(epoch, MANIFEST)).await {
            Ok(_) => return Err(already_committed()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.store_error(e)),
        }
        let attempt = format!("{:016x}", rand::random::<u64>());
        let mut entries = Vec::with_capacity(files.len());
        for (name, bytes) in files {
            if name == MANIFEST || name.is_empty() || name.contains('/') {
                return Err(StateError::Location {
                    location: self.location.clone(),
                    reason: format!("`{name}` cannot name a checkpoint file"),
                });
            }
            let object = format!("{attempt}.{name}");
            let path = self.file_path(epoch, &object);
            entries.push(FileEntry {
                name,
                object,
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(&bytes)),
            });
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| self.store_error(e))?;
        }
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            epoch,
            files: entries,
            metadata,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.file_path(epoch, MANIFEST), bytes.into(), create)
            .await
        {
            Ok(_) => Ok(manifest),
            Err(object_store::Error::AlreadyExists { .. }) => Err(already_committed()),
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// The committed epochs, oldest first. Epochs without a manifest
    /// (torn writes) are left out.
    pub async fn committed(&self) -> Result<Vec<u64>, StateError> {
        let mut committed = Vec::new();
        for epoch in self.epochs().await? {
            match self.store.head(&self.file_path(epoch, MANIFEST)).await {
                Ok(_) => committed.push(epoch),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error(e)),
            }
        }
        Ok(committed)
    }

    /// The newest committed epoch, verified; `None` if there is none. A
    /// corrupt newest epoch is an error, never skipped for an older one.
    pub async fn latest(&self) -> Result<Option<Checkpoint>, StateError> {
        match self.committed().await?.last() {
            Some(&epoch) => self.read(epoch).await.map(Some),
            None => Ok(None),
        }
    }

    /// Read committed `epoch` and verify every file against its manifest.
    pub async fn read(&self, epoch: u64) -> Result<Checkpoint, StateError> {
        let corrupt = |reason: String| StateError::Corrupt {
            location: self.location.clone(),
            epoch,
            reason,
        };
        let manifest_bytes = match self.get(&self.file_path(epoch, MANIFEST)).await {
            Ok(bytes) => bytes,
            Err(StateError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => {
                return Err(StateError::Missing {
                    location: self.location.clone(),
                    epoch,
                });
            }
            Err(e) => return Err(e),
        };
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| corrupt(format!("the manifest is unreadable: {e}")))?;
        if manifest.version != MANIFEST_VERSION {
            return Err(corrupt(format!(
                "manifest version {} is not {MANIFEST_VERSION}, the one this host reads",
                manifest.version
            )));
        }
        if manifest.epoch != epoch {
            return Err(corrupt(format!(
                "the manifest names epoch {}",
                manifest.epoch
            )));
        }
        let mut files = BTreeMap::new();
        for entry in &manifest.files {
            if entry.object.contains('/') {
                return Err(corrupt(format!(
                    "file `{}` names an object outside its epoch",
                    entry.name
                )));
            }
            let bytes = match self.get(&self.file_path(epoch, &entry.object)).await {
                Ok(bytes) => bytes,
                Err(StateError::Store {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) => return Err(corrupt(format!("file `{}` is missing", entry.name))),
                Err(e) => return Err(e),
            };
            if bytes.len() as u64 != entry.size
                || hex::encode(Sha256::digest(&bytes)) != entry.sha256
            {
                return Err(corrupt(format!(
                    "file `{}` does not match its digest ({} bytes, {} expected)",
                    entry.name,
                    bytes.len(),
                    entry.size
                )));
            }
            files.insert(entry.name.clone(), bytes);
        }
        Ok(Checkpoint { manifest, files })
    }

    /// Keep the newest `keep` committed epochs and delete the rest, and
    /// every torn epoch older than the newest committed one. Returns the
    /// epochs deleted.
    pub async fn retain(&self, keep: usize) -> Result<Vec<u64>, StateError> {
        let committed = self.committed().await?;
        let Some(&newest) = committed.last() else {
            return Ok(Vec::new());
        };
        let kept = &committed[committed.len().saturating_sub(keep.max(1))..];
        let doomed: Vec<u64> = self
            .epochs()
            .await?
            .into_iter()
            .filter(|epoch| *epoch < newest && !kept.contains(epoch))
            .collect();
        for &epoch in &doomed {
            // The manifest first: an epoch is never seen committed and
            // partly deleted.
            match self.store.delete(&self.file_path(epoch, MANIFEST)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error(e)),
            }
            let prefix = self.epoch_path(epoch);
            let files: Vec<_> = self
                .store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .map_err(|e| self.store_error(e))?;
            for file in files {
                match self.store.delete(&file).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.store_error(e)),
                }
            }
        }
        if !doomed.is_empty() {
            tracing::debug!(location = %self.location, deleted = ?doomed, "old checkpoints deleted");
        }
        Ok(doomed)
    }

    /// Every epoch with at least one object, committed or not, oldest first.
    async fn epochs(&self) -> Result<Vec<u64>, StateError> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.root))
            .await
            .map_err(|e| self.store_error(e))?;
        let mut epochs: Vec<u64> = listing
            .common_prefixes
            .iter()
            .filter_map(|prefix| prefix.filename()?.strip_prefix(EPOCH_PREFIX)?.parse().ok())
            .collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    async fn get(&self, path: &Path) -> Result<Bytes, StateError> {
        let result = self
            .store
            .get(path)
            .await
            .map_err(|e| self.store_error(e))?;
        result.bytes().await.map_err(|e| self.store_error(e))
    }

    fn epoch_path(&self, epoch: u64) -> Path {
        self.root.clone().join(format!("{EPOCH_PREFIX}{epoch:020}"))
    }

    fn file_path(&self, epoch: u64, name: &str) -> Path {
        self.epoch_path(epoch).join(name)
    }

    fn store_error(&self, source: object_store::Error) -> StateError {
        StateError::Store {
            location: self.location.clone(),
            source,
        }
    }
}

/// The object store `location` names and the prefix in it: a directory
/// path or `file://` URL (created now), `s3://BUCKET/PREFIX` (credentials
/// and region from the usual `AWS_*` environment variables, overridden by
/// `options` such as `aws_endpoint`, `aws_access_key_id`, `aws_region`,
/// `aws_allow_http`), or `memory://` (this process only). The error says
/// why it cannot be opened.
pub fn open_store(
    location: &str,
    options: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path), String> {
    let url = match Url::parse(location) {
        Ok(url) if url.scheme().len() > 1 => url,
        // A path (`checkpoints/job`, `/var/lib/sluice`, or `C:\...`).
        _ => {
            let path = std::path::absolute(FsPath::new(location))
                .map_err(|e| format!("not a usable path: {e}"))?;
            Url::from_directory_path(&path).map_err(|()| "not a usable path".to_owned())?
        }
    };
    let no_options = || match options.keys().next() {
        Some(key) => Err(format!("option `{key}` applies only to s3:// locations")),
        None => Ok(()),
    };
    let opened: (Arc<dyn ObjectStore>, Path) = match url.scheme() {
        "file" => {
            no_options()?;
            let dir = url
                .to_file_path()
                .map_err(|()| "not a local path".to_owned())?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create the directory: {e}"))?;
            let store = LocalFileSystem::new_with_prefix(&dir).map_err(|e| e.to_string())?;
            (Arc::new(store), Path::default())
        }
        "memory" => {
            no_options()?;
            (Arc::new(InMemory::new()), Path::default())
        }
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
            for (key, value) in options {
                let key: AmazonS3ConfigKey = key.to_ascii_lowercase().parse().map_err(|_| {
                    format!(
                        "`{key}` is not an S3 option (aws_endpoint, aws_region, aws_access_key_id, aws_secret_access_key, aws_session_token, aws_allow_http, aws_virtual_hosted_style_request, ...)"
                    )
                })?;
                builder = builder.with_config(key, value);
            }
            let store = builder.build().map_err(|e| e.to_string())?;
            let root = Path::parse(url.path()).map_err(|e| e.to_string())?;
            (Arc::new(store), root)
        }
        other => {
            return Err(format!(
                "`{other}://` is not supported; use a directory, file://, s3:// or memory://"
            ));
        }
    };
    Ok(opened)
}
