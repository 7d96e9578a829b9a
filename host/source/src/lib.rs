//! Sources of rows for a job: the built-in `datagen` and `nexmark`
//! generators and files (JSON lines, CSV). A source hands out Arrow
//! chunks; the pipeline cuts them into micro-batches.

mod datagen;
mod file;
mod nexmark;

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_config::SourceSpec;

pub use self::nexmark::Nexmark;
pub use datagen::Datagen;
pub use file::{FileReader, arrow_type};

/// Why a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source's configuration cannot be used.
    #[error("source configuration: {0}")]
    Config(String),
    /// Reading the input failed.
    #[error("reading {what}: {message}")]
    Read {
        /// What was being read.
        what: String,
        /// Why it failed.
        message: String,
    },
}

/// What a source has for the pipeline right now.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Rows that are ready.
    Rows(RecordBatch),
    /// Nothing ready yet; ask again.
    Idle,
    /// The source is exhausted.
    End,
}

/// A source of rows.
pub trait Source: Send + std::fmt::Debug {
    /// The schema of every chunk.
    fn schema(&self) -> SchemaRef;

    /// Up to `max_rows` rows that are ready now. Waits at most `max_wait`
    /// for the first of them before answering [`Chunk::Idle`]: the
    /// pipeline passes what is left of the trigger interval, so a batch
    /// is never held past it.
    fn next_chunk(&mut self, max_rows: usize, max_wait: Duration) -> Result<Chunk, SourceError>;

    /// A cap on rows per micro-batch the source imposes (Kafka's
    /// `maxOffsetsPerTrigger`), on top of the job's trigger.
    fn max_rows_per_batch(&self) -> Option<usize> {
        None
    }

    /// The input partitions, as the `partition` column numbers them, when
    /// the source knows them up front (Kafka); event-time watermarks wait
    /// for each of them.
    fn partitions(&self) -> Vec<i64> {
        Vec::new()
    }
}

/// Open the source a job describes.
pub fn open(spec: &SourceSpec, chunk_rows: usize) -> Result<Box<dyn Source>, SourceError> {
    Ok(match spec {
        SourceSpec::Datagen(spec) => Box::new(Datagen::new(spec)?),
        SourceSpec::File(spec) => Box::new(FileReader::open(spec, chunk_rows)?),
        SourceSpec::Nexmark(spec) => Box::new(Nexmark::new(spec)?),
        SourceSpec::Kafka(_) => {
            return Err(SourceError::Config(
                "a Kafka source is opened by sluice-kafka".into(),
            ));
        }
    })
}
