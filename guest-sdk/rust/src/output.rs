//! What a transform returns.

use arrow_array::RecordBatch;

/// A transform's result: the rows that continue down the pipeline, and rows
/// sent to named outputs.
#[derive(Debug, Clone)]
pub struct Output {
    batch: RecordBatch,
    routed: Vec<(String, RecordBatch)>,
}

impl Output {
    /// Rows that continue down the pipeline.
    pub fn new(batch: RecordBatch) -> Self {
        Output {
            batch,
            routed: Vec::new(),
        }
    }

    /// Also send `batch` to the named output `output`.
    pub fn route(mut self, output: impl Into<String>, batch: RecordBatch) -> Self {
        self.routed.push((output.into(), batch));
        self
    }

    /// The rows that continue down the pipeline.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The rows sent to named outputs.
    pub fn routed(&self) -> &[(String, RecordBatch)] {
        &self.routed
    }

    /// Both parts.
    pub fn into_parts(self) -> (RecordBatch, Vec<(String, RecordBatch)>) {
        (self.batch, self.routed)
    }
}

impl From<RecordBatch> for Output {
    fn from(batch: RecordBatch) -> Self {
        Output::new(batch)
    }
}
