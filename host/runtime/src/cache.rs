//! On-disk cache of compiled components, keyed by content hash and engine.
//!
//! A compiled artifact is native code: loading one runs whatever it holds.
//! So the cache keeps to a directory only this user can reach, and every
//! artifact ends in an HMAC-SHA256 over its file name and bytes, under a
//! random key kept in that directory. An artifact is read into memory and
//! checked before wasmtime sees it; one that does not verify (tampered,
//! truncated, or another artifact copied over it) is recompiled, with a
//! warning, and never loaded.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::RuntimeError;

/// The file in the cache directory that holds the MAC key.
const KEY_FILE: &str = "key";
/// Bytes of the MAC key, and of the MAC at the end of each artifact.
const MAC_LEN: usize = 32;
/// Permission bits that would let anyone but the owner in.
const NOT_PRIVATE: u32 = 0o077;

type ArtifactMac = Hmac<Sha256>;

/// A private directory of precompiled components
/// (`<sha256>-<engine>.cwasm`, each followed by its MAC).
#[derive(Clone)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
    key: [u8; MAC_LEN],
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ComponentCache {
    /// Open the cache in `dir`, creating it (mode 0700) and its key if
    /// needed. A directory or key another user owns is refused; a directory
    /// of ours that others can reach is made private again.
    pub(crate) fn open(dir: PathBuf) -> Result<Self, RuntimeError> {
        let error = |reason: String| RuntimeError::Cache {
            path: dir.clone(),
            reason,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| error(format!("cannot create the directory: {e}")))?;
        let metadata = std::fs::metadata(&dir).map_err(|e| error(e.to_string()))?;
        if !metadata.is_dir() {
            return Err(error("not a directory".to_owned()));
        }
        check_owner(&metadata).map_err(error)?;
        if metadata.mode() & NOT_PRIVATE != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{:o}", metadata.mode() & 0o777),
                "the compiled-plugin cache was reachable by other users; making it private (0700)"
            );
            std::fs::set_permissions(&dir, Permissions::from_mode(0o700))
                .map_err(|e| error(format!("cannot make the directory private: {e}")))?;
        }
        let key = read_or_create_key(&dir).map_err(error)?;
        Ok(ComponentCache { dir, key })
    }

    /// Load the compiled form of the component with content hash `digest`,
    /// or `compile` it and store the result for the next process.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        compile: impl FnOnce() -> Result<Component, RuntimeError>,
    ) -> Result<Component, RuntimeError> {
        let name = format!("{digest}-{:016x}.cwasm", engine_fingerprint(engine));
        let path = self.dir.join(&name);
        match self.read_verified(&path, &name) {
            Ok(Some(artifact)) => {
                // SAFETY: the MAC proves these bytes are what this cache
                // wrote under this name: the output of `Component::serialize`
                // on an engine with the same compatibility hash (it is in the
                // name). wasmtime checks the header again before use.
                match unsafe { Component::deserialize(engine, &artifact) } {
                    Ok(component) => return Ok(component),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "recompiling: cached component is unusable: {e:#}")
                    }
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(path = %path.display(), "recompiling: cached component failed verification, not loaded: {reason}")
            }
        }
        let component = compile()?;
        if let Err(e) = self.store(&path, &name, &component) {
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {e}");
        }
        Ok(component)
    }

    /// The artifact stored under `name`, if there is one and its MAC holds.
    fn read_verified(&self, path: &Path, name: &str) -> Result<Option<Vec<u8>>, String> {
        let mut file = match open_no_follow(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        let Some(split) = bytes.len().checked_sub(MAC_LEN) else {
            return Err(format!("{} bytes is shorter than a MAC", bytes.len()));
        };
        let tag = bytes.split_off(split);
        self.mac(name, &bytes)
            .verify_slice(&tag)
            .map_err(|_| "its MAC does not match its name and contents".to_owned())?;
        Ok(Some(bytes))
    }

    /// Write `component` under `name`, followed by its MAC. The bytes go to
    /// a fresh temporary file (created exclusively, mode 0600) that is then
    /// renamed, so a reader never sees half a file and nothing is written
    /// through a planted link.
    fn store(&self, path: &Path, name: &str, component: &Component) -> Result<(), RuntimeError> {
        let cache_error = |reason: String| RuntimeError::Cache {
            path: self.dir.clone(),
            reason,
        };
        let bytes = component
            .serialize()
            .map_err(|e| cache_error(format!("{e:#}")))?;
        let tag = self.mac(name, &bytes).finalize().into_bytes();
        let mut file =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| cache_error(e.to_string()))?;
        file.write_all(&bytes)
            .and_then(|()| file.write_all(&tag))
            .map_err(|e| cache_error(e.to_string()))?;
        file.persist(path)
            .map(drop)
            .map_err(|e| cache_error(e.error.to_string()))
    }

    /// The MAC of an artifact's `bytes` stored under `name`, so that one
    /// valid artifact cannot stand in for another.
    fn mac(&self, name: &str, bytes: &[u8]) -> ArtifactMac {
        let mut mac =
            ArtifactMac::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name.as_bytes());
        mac.update(bytes);
        mac
    }
}

/// Opens `path` for reading, refusing to follow a symbolic link.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Refuses a file or directory owned by anyone but this process's user.
fn check_owner(metadata: &std::fs::Metadata) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() == me {
        Ok(())
    } else {
        Err(format!(
            "owned by uid {}, not by this user (uid {me}); the cache holds native code, so it must be this user's own",
            metadata.uid()
        ))
    }
}

/// The cache's MAC key: read from `dir/key`, or made from the OS's random
/// source and written there (mode 0600) if there is none or it is damaged.
fn read_or_create_key(dir: &Path) -> Result<[u8; MAC_LEN], String> {
    let path = dir.join(KEY_FILE);
    match open_no_follow(&path) {
        Ok(file) => {
            if let Some(key) = read_key(file, &path)? {
                return Ok(key);
            }
            tracing::warn!(path = %path.display(), "replacing a damaged cache key; cached plugins will be recompiled");
            let key = new_key()?;
            write_key(dir, &key)?
                .persist(&path)
                .map_err(|e| e.error.to_string())?;
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let key = new_key()?;
            match write_key(dir, &key)?.persist_noclobber(&path) {
                Ok(_) => Ok(key),
                // Another process made the key first: use theirs.
                Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {
                    let file = open_no_follow(&path).map_err(|e| e.to_string())?;
                    read_key(file, &path)?.ok_or_else(|| format!("{} is damaged", path.display()))
                }
                Err(e) => Err(e.error.to_string()),
            }
        }
        Err(e) => Err(format!("cannot open {}: {e}", path.display())),
    }
}

/// A key from the OS's random source.
fn new_key() -> Result<[u8; MAC_LEN], String> {
    let mut key = [0; MAC_LEN];
    getrandom::fill(&mut key).map_err(|e| format!("no random source for the cache key: {e}"))?;
    Ok(key)
}

/// `key` in a fresh private temporary file in `dir`, ready to be renamed.
fn write_key(dir: &Path, key: &[u8]) -> Result<tempfile::NamedTempFile, String> {
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    file.write_all(key).map_err(|e| e.to_string())?;
    Ok(file)
}

/// The key in `file`, or `None` if it is not one; an error if someone else
/// owns it or others can read it.
fn read_key(mut file: File, path: &Path) -> Result<Option<[u8; MAC_LEN]>, String> {
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    check_owner(&metadata).map_err(|e| format!("{}: {e}", path.display()))?;
    if metadata.mode() & NOT_PRIVATE != 0 {
        return Err(format!(
            "{} is readable by other users (mode {:o}); remove it and a new key is made",
            path.display(),
            metadata.mode() & 0o777
        ));
    }
    let mut key = [0; MAC_LEN];
    match file.read_exact(&mut key) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).map_err(|e| e.to_string())?;
    Ok(rest.is_empty().then_some(key))
}

/// Distinguishes engines whose compiled artifacts are not interchangeable.
fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}
