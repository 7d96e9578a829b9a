//! The plugin contract and guest SDKs that plugins build against. This
//! build of Sluice carries them (see `build.rs`) and unpacks them once into
//! the toolchains directory, so an installed `sluice` needs no checkout.

use std::path::{Path, PathBuf};

use crate::error::BuildError;
use crate::toolchain;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// The unpacked `wit/` and `guest-sdk/` of this build:
/// `<toolchains>/sdk-<hash>`, written on first use. A build with other
/// contents has another hash, so it never sees a stale copy.
fn root() -> Result<PathBuf, BuildError> {
    let parent = toolchain::toolchains_dir();
    let root = parent.join(format!("sdk-{}", embedded::HASH));
    if root.exists() {
        return Ok(root);
    }
    // Unpack beside it, then rename: a concurrent build sees all or nothing.
    std::fs::create_dir_all(&parent).map_err(BuildError::io(&parent))?;
    let partial = tempfile::Builder::new()
        .prefix("sdk-partial-")
        .tempdir_in(&parent)
        .map_err(BuildError::io(&parent))?;
    for (path, contents) in embedded::FILES {
        let path = partial.path().join(path);
        let dir = path.parent().expect("an embedded file has a directory");
        std::fs::create_dir_all(dir).map_err(BuildError::io(dir))?;
        std::fs::write(&path, contents).map_err(BuildError::io(&path))?;
    }
    // A concurrent build may have won the rename; its copy is as good.
    if let Err(error) = std::fs::rename(partial.path(), &root)
        && !root.exists()
    {
        return Err(BuildError::io(&root)(error));
    }
    Ok(root)
}

/// The contract's newest WIT package, which the Rust, Python and
/// JavaScript SDKs are written against.
pub(crate) fn newest_wit_dir() -> Result<PathBuf, BuildError> {
    Ok(root()?.join("wit"))
}

/// The contract's 0.1 WIT package, which the host keeps loading and the C
/// and Go SDKs are still written against.
pub(crate) fn wit_dir() -> Result<PathBuf, BuildError> {
    Ok(newest_wit_dir()?.join("v0.1"))
}

/// The directory of a guest-language SDK. Rust's is the `sluice-sdk` crate
/// of the checkout this build comes from (it is not published yet).
pub(crate) fn sdk_dir(language: &str) -> Result<PathBuf, BuildError> {
    if language != "rust" {
        return Ok(root()?.join("guest-sdk").join(language));
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk/rust");
    checkout.canonicalize().map_err(|_| {
        BuildError::Scaffold(format!(
            "Rust plugins depend on the sluice-sdk crate of a Sluice checkout, and {} is gone",
            checkout.display()
        ))
    })
}
