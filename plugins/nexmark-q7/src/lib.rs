//! Nexmark query 7, highest bid: per tumbling window, the bids with the
//! highest price (every bid tied for it).
//!
//! Run it as the job's `[aggregate]` over bids with a tumbling window and
//! no key. Needs int64 columns `auction`, `bidder`, `price` and a timestamp
//! column `date_time`. Output per window: `auction`, `bidder`, `price`,
//! `date_time` (ms since the epoch).

use std::sync::Arc;

use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::types::{Int64Type, TimestampMillisecondType};
use sluice_sdk::arrow_array::{Array, ArrayRef, Int64Array, TimestampMillisecondArray};
use sluice_sdk::arrow_schema::{DataType, Field, Schema, TimeUnit};
use sluice_sdk::{Aggregate, Config, Error, Finished, RecordBatch, Result};

/// A bid: auction, bidder, price, event time (ms).
pub type Bid = (i64, i64, i64, i64);

/// The highest-priced bids of one window so far.
pub type Highest = Vec<Bid>;

/// The highest-bid aggregate.
#[derive(Debug)]
pub struct HighestBid;

fn keep(state: &mut Highest, bid: Bid) {
    match state.first() {
        Some(top) if top.2 > bid.2 => {}
        Some(top) if top.2 == bid.2 => state.push(bid),
        _ => {
            state.clear();
            state.push(bid);
        }
    }
}

impl Aggregate for HighestBid {
    type State = Highest;

    fn init(_config: &Config) -> Result<Self> {
        Ok(HighestBid)
    }

    fn update(&self, states: &mut [Highest], batch: &RecordBatch, groups: &[u32]) -> Result<()> {
        let int = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| Error::fatal(format!("q7 needs an int64 column `{name}`")))
        };
        let (auction, bidder, price) = (int("auction")?, int("bidder")?, int("price")?);
        let time = batch
            .column_by_name("date_time")
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| Error::fatal("q7 needs a timestamp(ms) column `date_time`"))?;
        // One pass for each group's top price, then keep only its bids.
        let mut top = vec![i64::MIN; states.len()];
        for (state, top) in states.iter().zip(top.iter_mut()) {
            if let Some(bid) = state.first() {
                *top = bid.2;
            }
        }
        let prices = price.values();
        for (row, &group) in groups.iter().enumerate() {
            if !price.is_null(row) {
                let top = &mut top[group as usize];
                *top = (*top).max(prices[row]);
            }
        }
        for (row, &group) in groups.iter().enumerate() {
            if price.is_null(row) || prices[row] < top[group as usize] {
                continue;
            }
            let bid = (
                auction.value(row),
                bidder.value(row),
                prices[row],
                time.value(row),
            );
            keep(&mut states[group as usize], bid);
        }
        Ok(())
    }

    fn merge(&self, state: &mut Highest, other: Highest) {
        for bid in other {
            keep(state, bid);
        }
    }

    fn finish(&self, states: &[Highest]) -> Result<Finished> {
        let bids: Vec<(u32, &Bid)> = states
            .iter()
            .enumerate()
            .flat_map(|(g, bids)| bids.iter().map(move |b| (g as u32, b)))
            .collect();
        let column = |f: fn(&Bid) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(bids.iter().map(|(_, b)| f(b))))
        };
        let schema = Schema::new(vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("bidder", DataType::Int64, false),
            Field::new("price", DataType::Int64, false),
            Field::new(
                "date_time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]);
        let columns = vec![
            column(|b| b.0),
            column(|b| b.1),
            column(|b| b.2),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                bids.iter().map(|(_, b)| b.3),
            )) as ArrayRef,
        ];
        let groups = bids.iter().map(|(g, _)| *g).collect();
        Finished::with_groups(RecordBatch::try_new(Arc::new(schema), columns)?, groups)
    }
}

sluice_sdk::export_aggregate!(HighestBid);

#[cfg(test)]
mod tests {
    use super::*;

    fn bids(rows: &[Bid]) -> RecordBatch {
        let int = |f: fn(&Bid) -> i64| {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(f))) as ArrayRef
        };
        RecordBatch::try_from_iter(vec![
            ("auction", int(|b| b.0)),
            ("bidder", int(|b| b.1)),
            ("price", int(|b| b.2)),
            (
                "date_time",
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    rows.iter().map(|b| b.3),
                )) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn keeps_every_bid_at_the_top_price_per_group() {
        let mut states = vec![Highest::new(), Highest::new()];
        let input = bids(&[(1, 1, 50, 0), (2, 2, 90, 1), (3, 3, 90, 2), (4, 4, 10, 3)]);
        HighestBid
            .update(&mut states, &input, &[0, 0, 0, 1])
            .unwrap();
        assert_eq!(states[0], vec![(2, 2, 90, 1), (3, 3, 90, 2)]);
        HighestBid
            .update(&mut states, &bids(&[(5, 5, 95, 4)]), &[0])
            .unwrap();
        assert_eq!(states[0], vec![(5, 5, 95, 4)]);
        let finished = HighestBid.finish(&states).unwrap();
        assert_eq!(finished.groups(), [0, 1]);
    }
}
