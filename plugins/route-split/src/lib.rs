//! Route rows to two named outputs by a numeric threshold.
//!
//! Config: `column` (numeric), `threshold`, and the output names `above`
//! (default `above`, rows where `column >= threshold`) and `below` (default
//! `below`, every other row, nulls included). Nothing continues downstream.

use arrow_ord::cmp;
use sluice_sdk::arrow_array::{Array, BooleanArray, Datum, Float64Array, Scalar};
use sluice_sdk::arrow_schema::DataType;
use sluice_sdk::{Config, Error, Output, RecordBatch, Result, transform};

/// Split the batch between the `above` and `below` outputs.
#[transform]
pub fn route(batch: RecordBatch, config: &Config) -> Result<Output> {
    let name = config.require("column")?;
    let threshold: f64 = config
        .parse("threshold")?
        .ok_or_else(|| Error::fatal("missing config key `threshold`"))?;
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::fatal(format!("no column `{name}` in the batch")))?;
    if !column.data_type().is_numeric() {
        return Err(Error::fatal(format!(
            "`{name}` is {}, not numeric",
            column.data_type()
        )));
    }
    let values = arrow_cast::cast(column, &DataType::Float64)?;
    let threshold = Scalar::new(Float64Array::from(vec![threshold]));
    let above = cmp::gt_eq(&values, &threshold as &dyn Datum)?;
    // Null comparisons are null: those rows go below, so no row is lost.
    let above = BooleanArray::from(
        (0..above.len())
            .map(|i| above.is_valid(i) && above.value(i))
            .collect::<Vec<_>>(),
    );
    let below = arrow_arith::boolean::not(&above)?;
    let filter = |mask: &BooleanArray| arrow_select::filter::filter_record_batch(&batch, mask);
    let (above_rows, below_rows) = (filter(&above)?, filter(&below)?);
    Ok(Output::new(batch.slice(0, 0))
        .route(config.get("above").unwrap_or("above"), above_rows)
        .route(config.get("below").unwrap_or("below"), below_rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::Int64Array;
    use sluice_sdk::arrow_schema::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn splits_every_row_exactly_once() {
        let schema = Schema::new(vec![Field::new("amount", DataType::Int64, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(vec![
                Some(10),
                Some(100),
                None,
                Some(99),
                Some(1000),
            ]))],
        )
        .unwrap();
        let config = Config::new([("column", "amount"), ("threshold", "100"), ("above", "big")]);
        let output = route(batch, &config).unwrap();
        assert_eq!(output.batch().num_rows(), 0);
        let routed = output.routed();
        assert_eq!(routed[0].0, "big");
        assert_eq!(routed[0].1.num_rows(), 2);
        assert_eq!(routed[1].0, "below");
        assert_eq!(routed[1].1.num_rows(), 3);
    }
}
