//! What computes the aggregate: vectorised accumulators over states the
//! host owns as bytes.

use arrow::record_batch::RecordBatch;
use sluice_runtime::AggregatePlugin;

use crate::WindowError;

/// Vectorised accumulators over opaque states. An empty state is a new
/// group's. Implemented by Wasm aggregate plugins and by native code.
pub trait Accumulator: std::fmt::Debug {
    /// Fold `batch` into `states`: row `i` belongs to `states[groups[i]]`.
    fn update(
        &self,
        states: &[Vec<u8>],
        batch: &RecordBatch,
        groups: &[u32],
    ) -> Result<Vec<Vec<u8>>, WindowError>;

    /// Combine `left[i]` with `right[i]`.
    fn merge(&self, left: &[Vec<u8>], right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, WindowError>;

    /// Output rows of `states`, and the state index of each row (empty:
    /// one row per state).
    fn finish(&self, states: &[Vec<u8>]) -> Result<(RecordBatch, Vec<u32>), WindowError>;
}

impl<A: Accumulator + ?Sized> Accumulator for &A {
    fn update(
        &self,
        states: &[Vec<u8>],
        batch: &RecordBatch,
        groups: &[u32],
    ) -> Result<Vec<Vec<u8>>, WindowError> {
        (**self).update(states, batch, groups)
    }

    fn merge(&self, left: &[Vec<u8>], right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, WindowError> {
        (**self).merge(left, right)
    }

    fn finish(&self, states: &[Vec<u8>]) -> Result<(RecordBatch, Vec<u32>), WindowError> {
        (**self).finish(states)
    }
}

impl Accumulator for AggregatePlugin {
    fn update(
        &self,
        states: &[Vec<u8>],
        batch: &RecordBatch,
        groups: &[u32],
    ) -> Result<Vec<Vec<u8>>, WindowError> {
        Ok(AggregatePlugin::update(self, states, batch, groups)?)
    }

    fn merge(&self, left: &[Vec<u8>], right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, WindowError> {
        Ok(AggregatePlugin::merge(self, left, right)?)
    }

    fn finish(&self, states: &[Vec<u8>]) -> Result<(RecordBatch, Vec<u32>), WindowError> {
        let finished = AggregatePlugin::finish(self, states)?;
        Ok((finished.batch, finished.groups))
    }
}
