//! Putting decoded rows back in input order.

use arrow::array::UInt32Array;
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::FormatError;

/// Batches decoded out of input order (one decoder per writer schema), with
/// the input row of each of their rows.
#[derive(Debug)]
pub(crate) struct Reassembly {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: Vec<u32>,
}

impl Reassembly {
    pub(crate) fn new(schema: SchemaRef) -> Self {
        Reassembly {
            schema,
            batches: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Add a decoded batch; `rows[i]` is the input row of its row `i`.
    pub(crate) fn push(&mut self, batch: RecordBatch, rows: Vec<u32>) {
        debug_assert_eq!(batch.num_rows(), rows.len());
        self.batches.push(batch);
        self.rows.extend(rows);
    }

    /// One batch in input order, and the input row of each of its rows.
    pub(crate) fn finish(self) -> Result<(RecordBatch, Vec<u32>), FormatError> {
        let error = |e: arrow::error::ArrowError| FormatError::Schema(e.to_string());
        let batch = match self.batches.len() {
            0 => RecordBatch::new_empty(self.schema.clone()),
            1 => self.batches.into_iter().next().expect("one batch"),
            _ => concat_batches(&self.batches[0].schema(), &self.batches).map_err(error)?,
        };
        if self.rows.is_sorted() {
            return Ok((batch, self.rows));
        }
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        order.sort_unstable_by_key(|&i| self.rows[i as usize]);
        let rows = order.iter().map(|&i| self.rows[i as usize]).collect();
        let batch = take_record_batch(&batch, &UInt32Array::from(order)).map_err(error)?;
        Ok((batch, rows))
    }
}
