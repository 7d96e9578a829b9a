//! Nexmark query 11, user sessions: how many bids each bidder made in each
//! of their sessions.
//!
//! Run it as the job's `[aggregate]` over bids with a session window keyed
//! by `bidder`. Output per session: `bid_count`.

use std::sync::Arc;

use sluice_sdk::arrow_array::{ArrayRef, Int64Array};
use sluice_sdk::arrow_schema::{DataType, Field, Schema};
use sluice_sdk::{Aggregate, Config, Finished, RecordBatch, Result};

/// The bids-per-session aggregate.
#[derive(Debug)]
pub struct SessionBids;

impl Aggregate for SessionBids {
    type State = i64;

    fn init(_config: &Config) -> Result<Self> {
        Ok(SessionBids)
    }

    fn update(&self, states: &mut [i64], _batch: &RecordBatch, groups: &[u32]) -> Result<()> {
        for &group in groups {
            states[group as usize] += 1;
        }
        Ok(())
    }

    fn merge(&self, state: &mut i64, other: i64) {
        *state += other;
    }

    fn finish(&self, states: &[i64]) -> Result<Finished> {
        let schema = Schema::new(vec![Field::new("bid_count", DataType::Int64, false)]);
        let counts: ArrayRef = Arc::new(Int64Array::from(states.to_vec()));
        Ok(RecordBatch::try_new(Arc::new(schema), vec![counts])?.into())
    }
}

sluice_sdk::export_aggregate!(SessionBids);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_per_group_and_merges_by_adding() {
        let batch = RecordBatch::try_from_iter(vec![(
            "bidder",
            Arc::new(Int64Array::from(vec![1, 2, 1])) as ArrayRef,
        )])
        .unwrap();
        let mut states = vec![0, 0];
        SessionBids.update(&mut states, &batch, &[0, 1, 0]).unwrap();
        assert_eq!(states, [2, 1]);
        SessionBids.merge(&mut states[0], 5);
        assert_eq!(states[0], 7);
    }
}
