//! Nexmark query 2, selection: the bids on every 123rd auction.
//!
//! `SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0`. Needs the
//! columns `auction` (int64) and `price`; the output is those two. Only
//! `auction` crosses into the plugin, and only the kept rows' numbers come
//! back: the host takes the columns at them.

use sluice_sdk::arrow_array::Array;
use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::types::Int64Type;
use sluice_sdk::{Error, Output, OutputColumn, RecordBatch, Result, transform};

/// Keep the bids whose auction id is a multiple of this.
const MODULUS: i64 = 123;

/// Keep the auction and price of the bids on every 123rd auction.
#[transform(reads = ["auction"])]
pub fn q2(batch: RecordBatch) -> Result<Output> {
    let auction = batch
        .column_by_name("auction")
        .ok_or_else(|| Error::fatal("no column `auction` in the batch"))?;
    let ids = auction
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::fatal(format!("`auction` is {}, not int64", auction.data_type())))?;
    // Null ids never match.
    let kept = ids
        .values()
        .iter()
        .enumerate()
        .filter(|&(row, id)| id % MODULUS == 0 && ids.is_valid(row))
        .map(|(row, _)| row as u32)
        .collect();
    Ok(
        Output::columns([OutputColumn::input("auction"), OutputColumn::input("price")])?
            .select(kept),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::{Int64Array, StringArray};
    use sluice_sdk::arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn keeps_auction_and_price_of_bids_on_multiples_of_123() {
        let schema = Schema::new(vec![
            Field::new("auction", DataType::Int64, true),
            Field::new("bidder", DataType::Int64, false),
            Field::new("price", DataType::Int64, false),
            Field::new("channel", DataType::Utf8, false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(1107),
                    Some(1108),
                    None,
                    Some(0),
                    Some(-246),
                    Some(1230),
                ])),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
                Arc::new(Int64Array::from(vec![10, 20, 30, 40, 50, 60])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e", "f"])),
            ],
        )
        .unwrap();
        let out = q2(batch.clone()).unwrap().resolve(&batch).unwrap();
        let names: Vec<&str> = out
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["auction", "price"]);
        let column = |i: usize| out.column(i).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(column(0), vec![1107, 0, -246, 1230]);
        assert_eq!(column(1), vec![10, 40, 50, 60]);
    }

    #[test]
    fn missing_column_is_named() {
        let schema = Schema::new(vec![Field::new("auction", DataType::Int64, false)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(vec![123]))],
        )
        .unwrap();
        let error = q2(batch.clone()).unwrap().resolve(&batch).unwrap_err();
        assert!(error.to_string().contains("price"), "{error}");
        let error = q2(batch.project(&[]).unwrap()).unwrap_err();
        assert!(error.message().contains("`auction`"), "{error}");
    }
}
