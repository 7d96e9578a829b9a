//! The `k` most frequent values of a column per window and key, counted
//! exactly.
//!
//! Config: `column` names the value column (int64, float64, utf8, or any
//! type Arrow casts to text); `k` (default 10) is how many values to keep.
//! Values are compared by their text, and nulls are skipped. Output, per
//! group, up to `k` rows: `value` (utf8, the value as text) and `count`
//! (int64), by count descending, ties by value ascending as text (so `10`
//! comes before `9`). A group with only nulls gives no rows.
//!
//! The counts are exact: the state keeps a counter for every distinct value
//! of its group, so it grows with the number of distinct values. On a
//! high-cardinality column, mind the `[aggregate]`'s `state_quota`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::{ArrayRef, Int64Array, StringArray};
use sluice_sdk::arrow_schema::{DataType, Field, Schema};
use sluice_sdk::{Aggregate, Config, Error, Finished, RecordBatch, Result};

/// How often each value (as text) occurred in one group.
pub type Counts = BTreeMap<String, i64>;

/// The top-k aggregate: which column, and how many values to emit.
#[derive(Debug)]
pub struct TopK {
    column: String,
    k: usize,
}

impl Aggregate for TopK {
    type State = Counts;

    fn init(config: &Config) -> Result<Self> {
        let k = config.parse("k")?.unwrap_or(10);
        if k == 0 {
            return Err(Error::fatal("top-k: config key `k` must be at least 1"));
        }
        Ok(TopK {
            column: config.require("column")?.to_owned(),
            k,
        })
    }

    fn update(&self, states: &mut [Counts], batch: &RecordBatch, groups: &[u32]) -> Result<()> {
        let name = &self.column;
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| Error::fatal(format!("top-k: no column `{name}` in the input")))?;
        let values = arrow_cast::cast(column, &DataType::Utf8).map_err(|e| {
            Error::fatal(format!(
                "top-k: column `{name}` cannot be read as text: {e}"
            ))
        })?;
        for (value, &group) in values.as_string::<i32>().iter().zip(groups) {
            let Some(value) = value else {
                continue;
            };
            let counts = &mut states[group as usize];
            match counts.get_mut(value) {
                Some(count) => *count += 1,
                None => {
                    counts.insert(value.to_owned(), 1);
                }
            }
        }
        Ok(())
    }

    fn merge(&self, state: &mut Counts, other: Counts) {
        for (value, count) in other {
            *state.entry(value).or_default() += count;
        }
    }

    fn finish(&self, states: &[Counts]) -> Result<Finished> {
        let (mut values, mut counts, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for (group, state) in states.iter().enumerate() {
            for (value, count) in top(state, self.k) {
                values.push(value);
                counts.push(count);
                groups.push(group as u32);
            }
        }
        let schema = Schema::new(vec![
            Field::new("value", DataType::Utf8, false),
            Field::new("count", DataType::Int64, false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(values)),
            Arc::new(Int64Array::from(counts)),
        ];
        Finished::with_groups(RecordBatch::try_new(Arc::new(schema), columns)?, groups)
    }
}

/// The `k` most frequent values, by count descending then value ascending.
fn top(counts: &Counts, k: usize) -> Vec<(&str, i64)> {
    let order = |a: &(&str, i64), b: &(&str, i64)| -> Ordering { b.1.cmp(&a.1).then(a.0.cmp(b.0)) };
    let mut entries: Vec<(&str, i64)> = counts.iter().map(|(v, &c)| (v.as_str(), c)).collect();
    if entries.len() > k {
        entries.select_nth_unstable_by(k - 1, order);
        entries.truncate(k);
    }
    entries.sort_unstable_by(order);
    entries
}

sluice_sdk::export_aggregate!(TopK);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::types::Int64Type;
    use sluice_sdk::arrow_array::{Array, Float64Array};

    fn top_k(k: usize) -> TopK {
        let config = vec![
            ("column".to_owned(), "v".to_owned()),
            ("k".to_owned(), k.to_string()),
        ];
        TopK::init(&Config::from(config)).unwrap()
    }

    fn batch(values: ArrayRef) -> RecordBatch {
        RecordBatch::try_from_iter(vec![("v", values)]).unwrap()
    }

    fn rows(finished: &Finished) -> Vec<(u32, String, i64)> {
        let values = finished.batch().column(0).as_string::<i32>();
        let counts = finished.batch().column(1).as_primitive::<Int64Type>();
        (0..values.len())
            .map(|i| {
                (
                    finished.groups()[i],
                    values.value(i).to_owned(),
                    counts.value(i),
                )
            })
            .collect()
    }

    #[test]
    fn emits_the_k_most_frequent_per_group_ties_by_value() {
        let aggregate = top_k(2);
        let mut states = vec![Counts::new(), Counts::new(), Counts::new()];
        let input = batch(Arc::new(StringArray::from(vec![
            Some("b"),
            Some("a"),
            Some("c"),
            None,
            Some("c"),
            Some("x"),
            Some("b"),
            Some("a"),
            None,
        ])));
        aggregate
            .update(&mut states, &input, &[0, 0, 0, 0, 0, 1, 0, 0, 2])
            .unwrap();
        let out = aggregate.finish(&states).unwrap();
        // Group 0 counts a, b and c twice each: the two smallest win the tie.
        // Group 2 only saw a null: no rows.
        assert_eq!(
            rows(&out),
            [
                (0, "a".to_owned(), 2),
                (0, "b".to_owned(), 2),
                (1, "x".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn numbers_are_counted_by_their_text() {
        let aggregate = top_k(10);
        let mut states = vec![Counts::new()];
        let ints = batch(Arc::new(Int64Array::from(vec![9, 10, 10, 9, 7, 10])));
        aggregate.update(&mut states, &ints, &[0; 6]).unwrap();
        let floats = batch(Arc::new(Float64Array::from(vec![0.5, 0.5])));
        aggregate.update(&mut states, &floats, &[0; 2]).unwrap();
        let out = aggregate.finish(&states).unwrap();
        assert_eq!(
            rows(&out),
            [
                (0, "10".to_owned(), 3),
                (0, "0.5".to_owned(), 2),
                (0, "9".to_owned(), 2),
                (0, "7".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn merge_adds_counts_and_equals_one_update_over_both_inputs() {
        let aggregate = top_k(3);
        let left_input = batch(Arc::new(StringArray::from(vec!["a", "b", "a"])));
        let right_input = batch(Arc::new(StringArray::from(vec!["b", "c", "b"])));
        let whole_input = batch(Arc::new(StringArray::from(vec![
            "a", "b", "a", "b", "c", "b",
        ])));
        let (mut left, mut right, mut whole) = (
            vec![Counts::new()],
            vec![Counts::new()],
            vec![Counts::new()],
        );
        aggregate.update(&mut left, &left_input, &[0; 3]).unwrap();
        aggregate.update(&mut right, &right_input, &[0; 3]).unwrap();
        aggregate.update(&mut whole, &whole_input, &[0; 6]).unwrap();
        let [mut merged] = left.try_into().unwrap();
        aggregate.merge(&mut merged, right.remove(0));
        assert_eq!(
            merged,
            Counts::from([("a".into(), 2), ("b".into(), 3), ("c".into(), 1)])
        );
        assert_eq!(merged, whole[0]);
    }

    #[test]
    fn k_must_be_positive_and_the_column_present() {
        let config = Config::from(vec![
            ("column".to_owned(), "v".to_owned()),
            ("k".to_owned(), "0".to_owned()),
        ]);
        assert!(TopK::init(&config).unwrap_err().message().contains("`k`"));
        let aggregate = top_k(1);
        let input = RecordBatch::try_from_iter(vec![(
            "w",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let error = aggregate
            .update(&mut [Counts::new()], &input, &[0])
            .unwrap_err();
        assert!(
            error.message().contains("no column `v`"),
            "{}",
            error.message()
        );
    }
}
