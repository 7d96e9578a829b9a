//! Sources of rows for a job: the built-in `datagen` and `nexmark`
//! generators, files (JSON lines, CSV), directories of files as they
//! arrive (Parquet, JSON lines, CSV) and, for tests, memory. Every
//! source says where it is ([`Position`]) and can go back there, so a
//! checkpoint can hold it. A source hands out Arrow
//! chunks; the pipeline cuts them into micro-batches.

mod datagen;
mod directory;
mod file;
mod json_lines;
mod memory;
mod nexmark;
mod ordered;
mod read_ahead;

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_config::{SourceSpec, Trigger};

pub use self::nexmark::Nexmark;
pub use datagen::Datagen;
pub use directory::DirectoryReader;
pub use file::{FileReader, arrow_type};
pub use memory::MemorySource;

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
    /// A file cannot be read as it is: malformed, not of the source's
    /// format or schema, or gone. Going back and reading it again cannot
    /// help.
    #[error("cannot read {file}: {message}")]
    Unreadable {
        /// The file.
        file: String,
        /// What is wrong, with the line where there is one.
        message: String,
    },
}

/// Where a source is in one of its partitions: the offset of the next
/// record it will read. Sources without topics or partitions have one
/// position, topic `""` and partition 0, counting rows. The directory
/// source's positions name its files (see [`DirectoryReader`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The topic (`""` for a source without topics).
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
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

/// How much a chunk may hold: the room left in the micro-batch being cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Rows.
    pub rows: usize,
    /// Bytes of record data (keys, values, headers, text). A chunk stops
    /// before the record that would pass this, unless it is the chunk's
    /// first, so one record larger than the room still gets through alone.
    pub bytes: u64,
}

impl Room {
    /// Room for `rows` rows of any size.
    pub fn rows(rows: usize) -> Self {
        Room {
            rows,
            bytes: u64::MAX,
        }
    }
}

/// The bytes a chunk holds: a slice counts its own rows, not the whole of
/// the buffers it shares with the batch it was cut from.
pub fn chunk_bytes(chunk: &RecordBatch) -> u64 {
    let bytes: usize = chunk
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size())
        })
        .sum();
    bytes as u64
}

/// A source of rows.
pub trait Source: Send + std::fmt::Debug {
    /// The schema of every chunk.
    fn schema(&self) -> SchemaRef;

    /// Rows that are ready now, as many as fit in `room`. Waits at most
    /// `max_wait` for the first of them before answering [`Chunk::Idle`]:
    /// the pipeline passes what is left of the trigger interval, so a
    /// batch is never held past it. Sources whose rows are small and
    /// bounded (the generators) or already in memory count rows only.
    fn next_chunk(&mut self, room: Room, max_wait: Duration) -> Result<Chunk, SourceError>;

    /// A cap on rows per micro-batch the source imposes (Kafka's
    /// `maxOffsetsPerTrigger`), on top of the job's trigger.
    fn max_rows_per_batch(&self) -> Option<usize> {
        None
    }

    /// The input partitions, as (`topic`, `partition`) columns name them,
    /// when the source knows them up front (Kafka); event-time watermarks
    /// wait for each of them.
    fn partitions(&self) -> Vec<(String, i64)> {
        Vec::new()
    }

    /// Where the source is: reading from here gives exactly the records
    /// after the last chunk handed out.
    fn positions(&self) -> Vec<Position>;

    /// The end of each partition, as far as the source has heard: the
    /// offset after its last record. The job's lag is the distance from
    /// [`Source::positions`] to these. Empty for a source that cannot tell.
    fn ends(&self) -> Vec<Position> {
        Vec::new()
    }

    /// Go to `positions` (taken by [`Source::positions`], maybe by an
    /// earlier run); partitions they do not name keep their position.
    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError>;
}

/// The one position of a source without partitions, at `rows` rows.
pub fn row_position(rows: u64) -> Vec<Position> {
    vec![Position {
        topic: String::new(),
        partition: 0,
        offset: i64::try_from(rows).unwrap_or(i64::MAX),
    }]
}

/// The row count a source without partitions is to go to, from positions.
pub fn rows_at(positions: &[Position]) -> Result<u64, SourceError> {
    match positions {
        [] => Ok(0),
        [
            Position {
                topic,
                partition: 0,
                offset,
            },
        ] if topic.is_empty() => u64::try_from(*offset)
            .map_err(|_| SourceError::Config(format!("a negative position, {offset}"))),
        other => Err(SourceError::Config(format!(
            "positions of another kind of source ({} partitions); this source has one",
            other.len()
        ))),
    }
}

/// Open the source a job describes, for batches cut by `trigger`; a source
/// that parses its input may do so on up to `parallelism` threads.
pub fn open(
    spec: &SourceSpec,
    trigger: &Trigger,
    parallelism: usize,
) -> Result<Box<dyn Source>, SourceError> {
    Ok(match spec {
        SourceSpec::Datagen(spec) => Box::new(Datagen::new(spec)?),
        SourceSpec::File(spec) => Box::new(FileReader::open(spec, trigger.max_rows, parallelism)?),
        SourceSpec::Directory(spec) => Box::new(DirectoryReader::open(
            spec,
            trigger.max_rows,
            trigger.available_now,
            parallelism,
        )?),
        SourceSpec::Nexmark(spec) => Box::new(Nexmark::new(spec)?),
        SourceSpec::Kafka(_) => {
            return Err(SourceError::Config(
                "a Kafka source is opened by sluice-kafka".into(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;

    #[test]
    fn a_slice_counts_its_own_rows_bytes() {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1000));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..1000).map(|i| format!("name-{i:04}")),
        ));
        let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap();
        let whole = chunk_bytes(&batch);
        let tenth = chunk_bytes(&batch.slice(100, 100));
        // 8 bytes an id; 9 bytes and a 4-byte offset a name.
        assert_eq!(whole, 1000 * (8 + 9 + 4) + 4);
        assert_eq!(tenth, 100 * (8 + 9 + 4) + 4);
    }
}
