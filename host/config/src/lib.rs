//! The job file (`sluice run JOB.toml`): what it may say, and errors that
//! name the field and the line when it says something wrong.
//!
//! ```toml
//! [job]
//! name = "redact-clicks"
//!
//! [source]
//! type = "datagen"
//! rows_per_second = 1000
//! rows = 5000
//! columns = [
//!   { name = "id", generator = "sequence" },
//!   { name = "email", generator = "email" },
//! ]
//!
//! [trigger]
//! max_rows = 1000
//! max_bytes = "4 MiB"
//! max_interval = "500ms"
//!
//! [[transform]]
//! plugin = "pii_redact.wasm"
//! config = { columns = "email" }
//!
//! [sink]
//! type = "console"
//! ```

mod job;
mod schema;
mod values;

pub use schema::{json_schema, reference};
pub use values::duration;

pub use job::{
    AggregateSpec, CheckpointConfig, ColumnType, ConsoleSink, DatagenColumn, DatagenSource,
    DeclaredColumn, DecodeConfig, DecodeFormat, Delivery, DirectoryFormat, DirectorySource,
    EmitConfig, EncodeConfig, EncodeFormat, FileFormat, FileSink, FileSource, Generator, Job,
    KafkaSink, KafkaSource, NexmarkSource, NexmarkTable, OnError, ParquetCompression, ParquetSink,
    PluginFiles, PluginSpec, SinkSpec, SourceSpec, Trigger, WindowConfig,
};

use std::path::PathBuf;

/// Why a job file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read job file {path}: {source}")]
    Read {
        /// The job file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the job schema.
    #[error("invalid job file {path}: {message}")]
    Parse {
        /// The job file.
        path: PathBuf,
        /// The parser's message, with line, column and field.
        message: String,
    },
    /// A field has a value the job cannot use.
    #[error("invalid job file {path}, line {line}: `{field}`: {message}")]
    Invalid {
        /// The job file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
}
