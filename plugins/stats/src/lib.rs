//! `count`, `sum`, `avg`, `min` and `max` per window and key.
//!
//! Config: `column` (optional) names a numeric column. Without it the plugin
//! counts rows (SQL's `COUNT(*)`) and the other outputs are null; with it,
//! nulls are skipped (`COUNT(col)`, `SUM(col)`, ...). Output columns:
//! `count` (int64), `sum`, `avg`, `min`, `max` (float64, null for a group
//! with no values).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::types::Float64Type;
use sluice_sdk::arrow_array::{Array, ArrayRef, Float64Array, Int64Array};
use sluice_sdk::arrow_schema::{DataType, Field, Schema};
use sluice_sdk::{Aggregate, Config, Error, Finished, RecordBatch, Result};

/// The accumulator of one group.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    count: i64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

/// The aggregate: which column it reads.
#[derive(Debug)]
pub struct StatsAggregate {
    column: Option<String>,
}

impl Aggregate for StatsAggregate {
    type State = Stats;

    fn init(config: &Config) -> Result<Self> {
        Ok(StatsAggregate {
            column: config.get("column").map(str::to_owned),
        })
    }

    fn update(&self, states: &mut [Stats], batch: &RecordBatch, groups: &[u32]) -> Result<()> {
        let Some(name) = &self.column else {
            for &group in groups {
                states[group as usize].count += 1;
            }
            return Ok(());
        };
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| Error::fatal(format!("stats: no column `{name}` in the input")))?;
        let values = arrow_cast::cast(column, &DataType::Float64)
            .map_err(|e| Error::fatal(format!("stats: column `{name}` is not numeric: {e}")))?;
        let values = values.as_primitive::<Float64Type>();
        for (row, &group) in groups.iter().enumerate() {
            if values.is_null(row) {
                continue;
            }
            let value = values.value(row);
            let state = &mut states[group as usize];
            state.count += 1;
            state.sum += value;
            state.min = Some(state.min.map_or(value, |m| m.min(value)));
            state.max = Some(state.max.map_or(value, |m| m.max(value)));
        }
        Ok(())
    }

    fn merge(&self, state: &mut Stats, other: Stats) {
        state.count += other.count;
        state.sum += other.sum;
        state.min = match (state.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        state.max = match (state.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn finish(&self, states: &[Stats]) -> Result<Finished> {
        let has_values = |s: &Stats| self.column.is_some() && s.count > 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(states.iter().map(|s| s.count))),
            Arc::new(Float64Array::from_iter(
                states.iter().map(|s| has_values(s).then_some(s.sum)),
            )),
            Arc::new(Float64Array::from_iter(
                states
                    .iter()
                    .map(|s| has_values(s).then(|| s.sum / s.count as f64)),
            )),
            Arc::new(Float64Array::from_iter(states.iter().map(|s| s.min))),
            Arc::new(Float64Array::from_iter(states.iter().map(|s| s.max))),
        ];
        let schema = Schema::new(vec![
            Field::new("count", DataType::Int64, false),
            Field::new("sum", DataType::Float64, true),
            Field::new("avg", DataType::Float64, true),
            Field::new("min", DataType::Float64, true),
            Field::new("max", DataType::Float64, true),
        ]);
        Ok(RecordBatch::try_new(Arc::new(schema), columns)?.into())
    }
}

sluice_sdk::export_aggregate!(StatsAggregate);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::Int32Array;

    fn batch(values: Vec<Option<i32>>) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("x", DataType::Int32, true)]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int32Array::from(values))]).unwrap()
    }

    fn aggregate(column: Option<&str>) -> StatsAggregate {
        let config = column.map(|c| vec![("column".to_owned(), c.to_owned())]);
        StatsAggregate::init(&Config::from(config.unwrap_or_default())).unwrap()
    }

    #[test]
    fn folds_rows_into_their_groups_and_skips_nulls() {
        let stats = aggregate(Some("x"));
        let mut states = vec![Stats::default(), Stats::default()];
        let input = batch(vec![Some(1), Some(5), None, Some(-2)]);
        stats.update(&mut states, &input, &[0, 1, 0, 0]).unwrap();
        assert_eq!(states[0].count, 2);
        assert_eq!(states[0].sum, -1.0);
        assert_eq!((states[0].min, states[0].max), (Some(-2.0), Some(1.0)));
        assert_eq!(states[1].count, 1);
        let out = stats.finish(&states).unwrap();
        let avg = out.batch().column_by_name("avg").unwrap();
        assert_eq!(avg.as_primitive::<Float64Type>().value(0), -0.5);
    }

    #[test]
    fn merge_equals_one_update_over_both_inputs() {
        let stats = aggregate(Some("x"));
        let (mut left, mut right, mut whole) = (
            vec![Stats::default()],
            vec![Stats::default()],
            vec![Stats::default()],
        );
        stats
            .update(&mut left, &batch(vec![Some(3), Some(9)]), &[0, 0])
            .unwrap();
        stats
            .update(&mut right, &batch(vec![Some(-4)]), &[0])
            .unwrap();
        stats
            .update(
                &mut whole,
                &batch(vec![Some(3), Some(9), Some(-4)]),
                &[0, 0, 0],
            )
            .unwrap();
        let [mut merged] = left.try_into().unwrap();
        stats.merge(&mut merged, right.remove(0));
        assert_eq!(merged, whole[0]);
    }

    #[test]
    fn without_a_column_counts_rows() {
        let stats = aggregate(None);
        let mut states = vec![Stats::default()];
        stats
            .update(&mut states, &batch(vec![None, Some(1)]), &[0, 0])
            .unwrap();
        let out = stats.finish(&states).unwrap();
        assert_eq!(
            out.batch()
                .column(0)
                .as_primitive::<sluice_sdk::arrow_array::types::Int64Type>()
                .value(0),
            2
        );
        assert!(out.batch().column(1).is_null(0));
    }
}
