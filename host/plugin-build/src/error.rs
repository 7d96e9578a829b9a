//! What can go wrong while building or scaffolding a plugin.

use std::path::PathBuf;

/// A plugin build or scaffold failure; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The project's `sluice.toml` is missing or says something wrong.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tool the language needs is not installed.
    #[error("{tool} is not installed ({needed_for}); install it with:\n    {install}")]
    MissingToolchain {
        /// The missing program or package.
        tool: String,
        /// Which language build needs it.
        needed_for: &'static str,
        /// The command that installs it.
        install: String,
    },
    /// A compiler or packager ran and failed.
    #[error("{tool} failed ({status}):\n{output}")]
    ToolFailed {
        /// The program that failed.
        tool: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `plugin new` was asked for something it cannot make.
    #[error("{0}")]
    Scaffold(String),
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}
