//! `sluice.toml`: a plugin project's name, language and world.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::error::BuildError;

/// The file that marks a plugin project.
pub const MANIFEST: &str = "sluice.toml";

/// A guest language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Rust with the `sluice-sdk` crate (`src/lib.rs`).
    Rust,
    /// Python with the `sluice` package (`plugin.py`), by componentize-py.
    Python,
    /// JavaScript with the `sluice` module (`plugin.js`), by componentize-js.
    Js,
    /// C with `sluice.h` (`plugin.c`), by clang for wasm32-wasi.
    C,
    /// Go with the `sluice` package (the project's `.go` files), by Go's
    /// wasip1 target.
    Go,
}

impl Language {
    /// Every language, in the order `--lang` lists them.
    pub const ALL: [Language; 5] = [
        Language::Rust,
        Language::Python,
        Language::Js,
        Language::C,
        Language::Go,
    ];

    /// The name used in `sluice.toml` and `--lang`.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
            Language::Go => "go",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Language::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Language::ALL.iter().map(|l| l.name()).collect();
                format!("unknown language `{s}`; one of {}", names.join(", "))
            })
    }
}

/// The contract world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Batch in, batch out.
    #[default]
    Transform,
    /// Accumulators over host-owned window state.
    Aggregate,
}

impl World {
    /// The world's name in `wit/plugin.wit`.
    pub fn name(self) -> &'static str {
        match self {
            World::Transform => "transform",
            World::Aggregate => "aggregate",
        }
    }
}

/// A plugin project: a directory with a `sluice.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The plugin's name; the component is `<name>.wasm`.
    pub name: String,
    /// The language its source is in.
    pub language: Language,
    /// The world it implements (default: transform).
    #[serde(default)]
    pub world: World,
    /// The project directory.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Project {
    /// Read the project in `dir` (its `sluice.toml`).
    pub fn open(dir: &Path) -> Result<Project, BuildError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| BuildError::Manifest {
            path: path.clone(),
            reason: format!(
                "{e}; a plugin project has a {MANIFEST} (`sluice plugin new` makes one)"
            ),
        })?;
        let mut project: Project = toml::from_str(&text).map_err(|e| BuildError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let valid = !project.name.is_empty()
            && project
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(BuildError::Manifest {
                path,
                reason: format!(
                    "name {:?} must be letters, digits, `-` and `_`",
                    project.name
                ),
            });
        }
        project.dir = dir.to_path_buf();
        Ok(project)
    }
}
