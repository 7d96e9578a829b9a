//! Nexmark query 1, currency conversion: each bid's price from dollars to
//! euros.
//!
//! `SELECT auction, bidder, 0.908 * price AS price, date_time FROM bid`.
//! Prices are whole cents (int64), so the euro price is truncated toward
//! zero to a whole cent. Needs the columns `auction`, `bidder`, `price`
//! (int64) and `date_time`; the output keeps their types and order. Only
//! `price` crosses into the plugin and back: the host keeps the others.

use std::sync::Arc;

use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::types::Int64Type;
use sluice_sdk::arrow_array::{Array, Int64Array};
use sluice_sdk::{Error, Output, OutputColumn, RecordBatch, Result, transform};

/// Convert every bid's price to euros.
#[transform(reads = ["price"])]
pub fn q1(batch: RecordBatch) -> Result<Output> {
    let price = batch
        .column_by_name("price")
        .ok_or_else(|| Error::fatal("no column `price` in the batch"))?;
    let dollars = price
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::fatal(format!("`price` is {}, not int64", price.data_type())))?;
    let euros: Int64Array = arrow_arith::arity::unary(dollars, dollars_to_euros);
    let price_field = batch.schema_ref().field_with_name("price")?.clone();
    Ok(Output::columns([
        OutputColumn::input("auction"),
        OutputColumn::input("bidder"),
        OutputColumn::Made(Arc::new(price_field), Arc::new(euros)),
        OutputColumn::input("date_time"),
    ])?)
}

/// `0.908 * cents`, truncated toward zero. Split as `cents = 1000 q + r` so
/// that no intermediate overflows: `908 q + 908 r / 1000`.
fn dollars_to_euros(cents: i64) -> i64 {
    cents / 1000 * 908 + cents % 1000 * 908 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::{StringArray, TimestampMillisecondArray};
    use sluice_sdk::arrow_schema::{DataType, Field, Schema, TimeUnit};

    fn bids(prices: Vec<i64>) -> RecordBatch {
        let n = prices.len() as i64;
        let schema = Schema::new(vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("bidder", DataType::Int64, false),
            Field::new("price", DataType::Int64, false),
            Field::new("channel", DataType::Utf8, false),
            Field::new(
                "date_time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(1000..1000 + n)),
                Arc::new(Int64Array::from_iter_values(2000..2000 + n)),
                Arc::new(Int64Array::from(prices)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("c{i}")),
                )),
                Arc::new(TimestampMillisecondArray::from_iter_values(0..n)),
            ],
        )
        .unwrap()
    }

    /// The output columns, in order.
    const COLUMNS: [&str; 4] = ["auction", "bidder", "price", "date_time"];
    /// Where `price` is among [`COLUMNS`].
    const PRICE: usize = 2;

    #[test]
    fn converts_prices_and_keeps_the_other_columns() {
        let input = bids(vec![100, 1_000, 12_345, 1, 0]);
        let out = q1(input.clone()).unwrap().resolve(&input).unwrap();
        let names: Vec<&str> = out
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, COLUMNS);
        let prices = out.column(PRICE).as_primitive::<Int64Type>();
        assert_eq!(prices.values().to_vec(), vec![90, 908, 11_209, 0, 0]);
        assert_eq!(out.column(0), input.column(0));
        assert_eq!(out.column(1), input.column(1));
        assert_eq!(out.column(3), input.column(4));
        assert_eq!(out.schema().field(3), input.schema().field(4));
    }

    #[test]
    fn conversion_is_exact_truncation_and_never_overflows() {
        for cents in [-12_345, -1, 999, 1_001, 987_654_321, i64::MAX, i64::MIN] {
            let exact = (i128::from(cents) * 908 / 1000) as i64;
            assert_eq!(dollars_to_euros(cents), exact, "{cents}");
        }
    }

    #[test]
    fn missing_column_is_named() {
        let input = bids(vec![1]);
        let without_price = input.project(&[0, 1, 3, 4]).unwrap();
        let error = q1(without_price).unwrap_err();
        assert!(error.message().contains("`price`"), "{error}");
        let without_date = input.project(&[0, 1, 2]).unwrap();
        let error = q1(without_date.clone())
            .unwrap()
            .resolve(&without_date)
            .unwrap_err();
        assert!(error.to_string().contains("date_time"), "{error}");
    }
}
