//! Builds Sluice plugin projects, in any guest language, into Wasm
//! components, and scaffolds new ones (`sluice plugin new|build`).
//!
//! A project is a directory with a `sluice.toml` naming the plugin, its
//! language and its world; the source is `plugin.<ext>` (Rust: a cargo
//! crate; Go: the directory's `.go` files). Each language's SDK
//! (`guest-sdk/<lang>`, carried in the binary) hides the bindings, so the
//! author writes one function over a batch.

mod c;
mod component;
mod error;
mod go;
mod js;
mod manifest;
mod python;
mod rust;
mod scaffold;
mod sdk;
mod toolchain;

use std::path::{Path, PathBuf};

pub use error::BuildError;
pub use manifest::{Language, MANIFEST, Project, World};
pub use rust::guest_cargo;
pub use scaffold::scaffold;
pub use toolchain::toolchains_dir;

/// Build the project in `dir` into `out_dir/<name>.wasm`; returns its path.
pub fn build(dir: &Path, out_dir: &Path) -> Result<PathBuf, BuildError> {
    let project = Project::open(dir)?;
    std::fs::create_dir_all(out_dir).map_err(BuildError::io(out_dir))?;
    let out = out_dir.join(format!("{}.wasm", project.name));
    match project.language {
        Language::Rust => rust::build(&project, &out)?,
        Language::Python => python::build(&project, &out)?,
        Language::Js => js::build(&project, &out)?,
        Language::C => c::build(&project, &out)?,
        Language::Go => go::build(&project, &out)?,
    }
    Ok(out)
}
