//! Approximate percentiles of a numeric column per window and key, with a
//! t-digest (the `tdigest` crate).
//!
//! Config: `column` names a numeric column; `quantiles` (comma-separated,
//! default `0.5,0.9,0.99`) lists the quantiles, each from 0 to 1;
//! `compression` (default 100) bounds the centroids a digest keeps: more is
//! more accurate and a larger state (about 16 bytes a centroid). Nulls and
//! non-finite values (NaN, ±inf) are skipped. Output: one float64 column a
//! quantile, named `p` and the quantile in percent with `_` for the decimal
//! point (`0.5` → `p50`, `0.999` → `p99_9`, `1` → `p100`); null for a group
//! with no values. `0` and `1` give the exact minimum and maximum.
//!
//! The state is the digest's centroids with its count, sum and extremes
//! (the crate's own serde support pins proc-macro crates the workspace
//! cannot share). Each batch's values are sorted per group and merged into
//! the group's digest at once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::types::Float64Type;
use sluice_sdk::arrow_array::{ArrayRef, Float64Array};
use sluice_sdk::arrow_schema::{DataType, Field, Schema};
use sluice_sdk::{Aggregate, Config, Error, Finished, RecordBatch, Result};
use tdigest::{Centroid, TDigest};

/// The t-digest of one group, as stored. Empty (`count` 0) until the
/// group's first value.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// (mean, weight) of each centroid, by ascending mean.
    centroids: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Digest {
    fn is_empty(&self) -> bool {
        self.count == 0.0
    }

    /// The digest to compute with, compressed to at most `compression`
    /// centroids.
    fn to_tdigest(&self, compression: usize) -> TDigest {
        if self.is_empty() {
            return TDigest::new_with_size(compression);
        }
        let centroids = self
            .centroids
            .iter()
            .map(|&(mean, weight)| Centroid::new(mean, weight))
            .collect();
        TDigest::new(
            centroids,
            self.sum,
            self.count,
            Some(self.max),
            Some(self.min),
            compression,
        )
    }

    fn from_tdigest(digest: &TDigest) -> Self {
        Digest {
            centroids: digest
                .centroids()
                .iter()
                .map(|c| (c.mean(), c.weight()))
                .collect(),
            count: digest.count(),
            sum: digest.sum(),
            min: digest.min().unwrap_or_default(),
            max: digest.max().unwrap_or_default(),
        }
    }
}

/// The aggregate: which column, which quantiles, how precise.
#[derive(Debug)]
pub struct Percentiles {
    column: String,
    quantiles: Vec<f64>,
    names: Vec<String>,
    compression: usize,
}

impl Aggregate for Percentiles {
    type State = Digest;

    fn init(config: &Config) -> Result<Self> {
        let compression = config.parse("compression")?.unwrap_or(100);
        if compression == 0 {
            return Err(Error::fatal(
                "percentiles: config key `compression` must be at least 1",
            ));
        }
        let listed = match config.list("quantiles") {
            list if list.is_empty() => vec!["0.5", "0.9", "0.99"],
            list => list,
        };
        let mut quantiles = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for text in listed {
            let quantile: f64 = text
                .parse()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))
                .ok_or_else(|| {
                    Error::fatal(format!(
                        "percentiles: quantile {text:?} is not a number from 0 to 1"
                    ))
                })?;
            let name = column_name(quantile);
            if names.contains(&name) {
                return Err(Error::fatal(format!(
                    "percentiles: quantile {text:?} is listed twice (as `{name}`)"
                )));
            }
            quantiles.push(quantile);
            names.push(name);
        }
        Ok(Percentiles {
            column: config.require("column")?.to_owned(),
            quantiles,
            names,
            compression,
        })
    }

    fn update(&self, states: &mut [Digest], batch: &RecordBatch, groups: &[u32]) -> Result<()> {
        let name = &self.column;
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| Error::fatal(format!("percentiles: no column `{name}` in the input")))?;
        let values = arrow_cast::cast(column, &DataType::Float64).map_err(|e| {
            Error::fatal(format!("percentiles: column `{name}` is not numeric: {e}"))
        })?;
        // (group, value) sorted: each group's values come as one sorted run.
        let mut rows: Vec<(u32, f64)> = values
            .as_primitive::<Float64Type>()
            .iter()
            .zip(groups)
            .filter_map(|(value, &group)| value.filter(|v| v.is_finite()).map(|v| (group, v)))
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        for run in rows.chunk_by(|a, b| a.0 == b.0) {
            let state = &mut states[run[0].0 as usize];
            let sorted = run.iter().map(|&(_, value)| value).collect();
            let digest = state.to_tdigest(self.compression).merge_sorted(sorted);
            *state = Digest::from_tdigest(&digest);
        }
        Ok(())
    }

    fn merge(&self, state: &mut Digest, other: Digest) {
        if other.is_empty() {
            return;
        }
        if state.is_empty() {
            *state = other;
            return;
        }
        let merged = TDigest::merge_digests(vec![
            state.to_tdigest(self.compression),
            other.to_tdigest(self.compression),
        ]);
        *state = Digest::from_tdigest(&merged);
    }

    fn finish(&self, states: &[Digest]) -> Result<Finished> {
        let estimates: Vec<Vec<Option<f64>>> = states
            .iter()
            .map(|state| {
                state
                    .to_tdigest(self.compression)
                    .quantiles(&self.quantiles)
            })
            .collect();
        let columns: Vec<ArrayRef> = (0..self.quantiles.len())
            .map(|i| Arc::new(Float64Array::from_iter(estimates.iter().map(|e| e[i]))) as ArrayRef)
            .collect();
        let fields: Vec<Field> = self
            .names
            .iter()
            .map(|name| Field::new(name, DataType::Float64, true))
            .collect();
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?.into())
    }
}

/// `p` and the quantile in percent, `_` for its decimal point: 0.999 →
/// `p99_9`.
fn column_name(quantile: f64) -> String {
    // Nine decimals hide the binary rounding of `quantile * 100`.
    let percent = format!("{:.9}", quantile * 100.0);
    let percent = percent.trim_end_matches('0').trim_end_matches('.');
    format!("p{}", percent.replace('.', "_"))
}

sluice_sdk::export_aggregate!(Percentiles);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::Array;

    fn percentiles(quantiles: &str) -> Percentiles {
        let config = vec![
            ("column".to_owned(), "v".to_owned()),
            ("quantiles".to_owned(), quantiles.to_owned()),
        ];
        Percentiles::init(&Config::from(config)).unwrap()
    }

    fn values(values: Vec<Option<f64>>) -> RecordBatch {
        let values: ArrayRef = Arc::new(Float64Array::from(values));
        RecordBatch::try_from_iter(vec![("v", values)]).unwrap()
    }

    /// A deterministic shuffle of 0..n scaled to [0, 1000): uniform values.
    fn uniform(n: u64) -> Vec<f64> {
        // 7919 is prime and does not divide n, so i * 7919 mod n permutes 0..n.
        (0..n)
            .map(|i| (i * 7_919 % n) as f64 * 1_000.0 / n as f64)
            .collect()
    }

    /// Fold `all` into one state, `batch` values at a time.
    fn digest(aggregate: &Percentiles, all: &[f64], batch: usize) -> Digest {
        let mut states = vec![Digest::default()];
        for chunk in all.chunks(batch) {
            let input = values(chunk.iter().copied().map(Some).collect());
            aggregate
                .update(&mut states, &input, &vec![0; chunk.len()])
                .unwrap();
        }
        states.remove(0)
    }

    fn estimates(aggregate: &Percentiles, state: &Digest) -> Vec<f64> {
        let out = aggregate.finish(std::slice::from_ref(state)).unwrap();
        out.batch()
            .columns()
            .iter()
            .map(|c| c.as_primitive::<Float64Type>().value(0))
            .collect()
    }

    /// The exact quantile: the value at rank `q * n` of the sorted values.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
    }

    fn assert_within_one_percent(label: &str, got: &[f64], all: &[f64]) {
        let mut sorted = all.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        for (q, got) in [0.5, 0.9, 0.99].into_iter().zip(got) {
            let want = exact(&sorted, q);
            let error = (got - want).abs() / want;
            println!(
                "percentiles ({label}): q{q} estimated {got:.3}, exact {want:.3}, error {:.4}%",
                error * 100.0
            );
            assert!(error < 0.01, "q{q}: {got} against {want}");
        }
    }

    #[test]
    fn quantiles_of_100k_uniform_values_are_within_one_percent() {
        let aggregate = percentiles("0.5,0.9,0.99");
        let all = uniform(100_000);
        let state = digest(&aggregate, &all, 1_000);
        assert_eq!(state.count, 100_000.0);
        assert!(state.centroids.len() <= 100);
        assert_within_one_percent("100 batches", &estimates(&aggregate, &state), &all);
    }

    #[test]
    fn merged_halves_estimate_the_whole() {
        let aggregate = percentiles("0.5,0.9,0.99");
        let all = uniform(100_000);
        let (low, high) = all.split_at(30_000);
        let mut merged = digest(&aggregate, low, 5_000);
        aggregate.merge(&mut merged, digest(&aggregate, high, 5_000));
        assert_eq!(merged.count, 100_000.0);
        assert_eq!((merged.min, merged.max), (0.0, 999.99));
        assert_within_one_percent("merged", &estimates(&aggregate, &merged), &all);

        let mut empty = Digest::default();
        aggregate.merge(&mut empty, merged.clone());
        aggregate.merge(&mut empty, Digest::default());
        assert_eq!(empty, merged);
    }

    #[test]
    fn groups_are_kept_apart_and_nulls_and_non_finite_values_skipped() {
        let aggregate = percentiles("0,0.5,1");
        let mut states = vec![Digest::default(), Digest::default(), Digest::default()];
        let input = values(vec![
            Some(5.0),
            Some(100.0),
            None,
            Some(f64::NAN),
            Some(1.0),
            Some(f64::INFINITY),
            Some(3.0),
            Some(200.0),
        ]);
        aggregate
            .update(&mut states, &input, &[0, 1, 0, 0, 0, 2, 0, 1])
            .unwrap();
        assert_eq!(estimates(&aggregate, &states[0]), [1.0, 3.0, 5.0]);
        assert_eq!(estimates(&aggregate, &states[1]), [100.0, 150.0, 200.0]);
        let out = aggregate.finish(&states).unwrap();
        assert_eq!(out.batch().num_rows(), 3);
        for column in out.batch().columns() {
            assert!(column.is_null(2), "a group without values gives nulls");
        }
    }

    #[test]
    fn columns_are_named_from_the_quantiles() {
        let aggregate = percentiles("0, 0.5,0.9,0.99,0.999,0.125,1");
        assert_eq!(
            aggregate.names,
            ["p0", "p50", "p90", "p99", "p99_9", "p12_5", "p100"]
        );
        let default =
            Percentiles::init(&Config::from(vec![("column".to_owned(), "v".to_owned())])).unwrap();
        assert_eq!(default.names, ["p50", "p90", "p99"]);
        for bad in ["1.5", "x", "0.5,0.50"] {
            let config = Config::from(vec![
                ("column".to_owned(), "v".to_owned()),
                ("quantiles".to_owned(), bad.to_owned()),
            ]);
            assert!(Percentiles::init(&config).is_err(), "{bad}");
        }
    }
}
