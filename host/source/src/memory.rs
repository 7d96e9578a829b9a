//! A source of rows held in memory, for tests of whole jobs in process.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::{Chunk, Position, Room, Source, SourceError, row_position, rows_at};

/// Hands out the rows it was given, in order, then ends (or, if
/// `unbounded`, stays idle). Seeks to any row, back or forward.
#[derive(Debug, Clone)]
pub struct MemorySource {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    unbounded: bool,
    /// Rows handed out.
    rows: u64,
}

impl MemorySource {
    /// A source of `batches`, all of `schema`, that ends after them.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        MemorySource {
            schema,
            batches,
            unbounded: false,
            rows: 0,
        }
    }

    /// The same source, but idle instead of ended after its rows, like a
    /// topic no one writes to.
    pub fn unbounded(mut self) -> Self {
        self.unbounded = true;
        self
    }

    /// The rows from `self.rows` on, up to `max_rows`.
    fn rows_from_position(&self, max_rows: usize) -> Option<RecordBatch> {
        let mut skip = self.rows as usize;
        for batch in &self.batches {
            if skip < batch.num_rows() {
                let len = (batch.num_rows() - skip).min(max_rows);
                return Some(batch.slice(skip, len));
            }
            skip -= batch.num_rows();
        }
        None
    }
}

impl Source for MemorySource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_chunk(&mut self, room: Room, max_wait: Duration) -> Result<Chunk, SourceError> {
        match self.rows_from_position(room.rows.max(1)) {
            Some(rows) => {
                self.rows += rows.num_rows() as u64;
                Ok(Chunk::Rows(rows))
            }
            None if self.unbounded => {
                std::thread::sleep(max_wait.min(Duration::from_millis(10)));
                Ok(Chunk::Idle)
            }
            None => Ok(Chunk::End),
        }
    }

    fn positions(&self) -> Vec<Position> {
        row_position(self.rows)
    }

    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError> {
        self.rows = rows_at(positions)?;
        Ok(())
    }
}
