//! The plugin's error type.

use std::fmt;

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the host should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is bad: its rows go to the dead-letter output.
    InvalidInput,
    /// A retry of the same batch may succeed.
    Transient,
    /// The job must stop.
    Fatal,
}

/// A plugin error. Any `std::error::Error` converts with `?` into a fatal
/// error; use the constructors for the other kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    rows: Vec<u32>,
}

impl Error {
    /// The whole batch is invalid input.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::invalid_rows(message, Vec::new())
    }

    /// These rows of the input batch are invalid; the host dead-letters them
    /// and calls again with the rest.
    pub fn invalid_rows(message: impl Into<String>, rows: Vec<u32>) -> Self {
        Error {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
            rows,
        }
    }

    /// A retry of the same batch may succeed.
    pub fn transient(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Transient,
            message: message.into(),
            rows: Vec::new(),
        }
    }

    /// The job must stop.
    pub fn fatal(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Fatal,
            message: message.into(),
            rows: Vec::new(),
        }
    }

    /// What the host should do.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For invalid input: the rejected rows (empty = the whole batch).
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::fatal(message)
    }
}
