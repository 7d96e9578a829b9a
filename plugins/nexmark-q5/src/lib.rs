//! Nexmark query 5, hot items: per hopping window, the auctions with the
//! most bids (every auction tied for the most).
//!
//! Run it as the job's `[aggregate]` over bids with a hopping window and no
//! key. Needs the column `auction` (int64). Output per window: `auction`,
//! `num` (its bid count), one row per auction tied for the most bids.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::types::Int64Type;
use sluice_sdk::arrow_array::{ArrayRef, Int64Array};
use sluice_sdk::arrow_schema::{DataType, Field, Schema};
use sluice_sdk::{Aggregate, Config, Error, Finished, RecordBatch, Result};

/// Bid counts per auction in one window.
pub type Counts = BTreeMap<i64, i64>;

/// The hot-items aggregate.
#[derive(Debug)]
pub struct HotItems;

impl Aggregate for HotItems {
    type State = Counts;

    fn init(_config: &Config) -> Result<Self> {
        Ok(HotItems)
    }

    fn update(&self, states: &mut [Counts], batch: &RecordBatch, groups: &[u32]) -> Result<()> {
        let auctions = batch
            .column_by_name("auction")
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| Error::fatal("q5 needs an int64 column `auction`"))?;
        for (auction, &group) in auctions.iter().zip(groups) {
            if let Some(auction) = auction {
                *states[group as usize].entry(auction).or_default() += 1;
            }
        }
        Ok(())
    }

    fn merge(&self, state: &mut Counts, other: Counts) {
        for (auction, count) in other {
            *state.entry(auction).or_default() += count;
        }
    }

    fn finish(&self, states: &[Counts]) -> Result<Finished> {
        let (mut auctions, mut nums, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for (group, counts) in states.iter().enumerate() {
            let Some(&most) = counts.values().max() else {
                continue;
            };
            for (&auction, &count) in counts.iter().filter(|(_, c)| **c == most) {
                auctions.push(auction);
                nums.push(count);
                groups.push(group as u32);
            }
        }
        let schema = Schema::new(vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("num", DataType::Int64, false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(auctions)),
            Arc::new(Int64Array::from(nums)),
        ];
        Finished::with_groups(RecordBatch::try_new(Arc::new(schema), columns)?, groups)
    }
}

sluice_sdk::export_aggregate!(HotItems);

#[cfg(test)]
mod tests {
    use super::*;

    fn bids(auctions: Vec<i64>) -> RecordBatch {
        RecordBatch::try_from_iter(vec![(
            "auction",
            Arc::new(Int64Array::from(auctions)) as ArrayRef,
        )])
        .unwrap()
    }

    #[test]
    fn every_auction_tied_for_the_most_bids_is_hot() {
        let mut states = vec![Counts::new(), Counts::new()];
        HotItems
            .update(
                &mut states,
                &bids(vec![7, 8, 7, 9, 8, 1]),
                &[0, 0, 0, 1, 0, 1],
            )
            .unwrap();
        let finished = HotItems.finish(&states).unwrap();
        let auctions = finished.batch().column(0).as_primitive::<Int64Type>();
        assert_eq!(auctions.values().to_vec(), [7, 8, 1, 9]);
        assert_eq!(finished.groups(), [0, 0, 1, 1]);
    }

    #[test]
    fn merge_adds_counts() {
        let mut left = Counts::from([(1, 2)]);
        HotItems.merge(&mut left, Counts::from([(1, 1), (2, 5)]));
        assert_eq!(left, Counts::from([(1, 3), (2, 5)]));
    }
}
