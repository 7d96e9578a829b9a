//! The `top-k`, `approx-distinct` and `percentiles` aggregate plugins run by
//! `sluice run` over a JSON-lines file, per 10 s tumbling window and key,
//! checked against exact answers computed here from the same rows.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde_json::Value;
use sluice_e2e::{iso_millis, run_aggregate_job};
use sluice_plugin_artifacts as artifacts;

/// 2023-11-14T22:13:20Z, a multiple of the window size.
const BASE: i64 = 1_700_000_000_000;
const WINDOW_MS: i64 = 10_000;
/// One row every 10 ms: four windows of 1000 rows.
const ROWS: i64 = 4_000;
const STEP_MS: i64 = 10;

/// One input row; key `z` has only null values.
#[derive(Debug, Clone)]
struct Row {
    ts: i64,
    k: &'static str,
    s: Option<String>,
    n: Option<i64>,
    x: Option<f64>,
}

/// splitmix64: a deterministic stream of random bits.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True 49 times in 50.
    fn mostly(&mut self) -> bool {
        !self.next().is_multiple_of(50)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Keys `a`, `b`, `c` and `z` in proportions 5:3:1:1; `s` is skewed towards
/// low item numbers, `n` is one of 2000 integers, `x` is exponential with
/// mean 100 in thousandths; about 2% of each value column is null besides.
fn rows() -> Vec<Row> {
    let mut random = Random(42);
    (0..ROWS)
        .map(|i| {
            let ts = BASE + i * STEP_MS;
            let k =
                ["a", "a", "a", "a", "a", "b", "b", "b", "c", "z"][(random.next() % 10) as usize];
            if k == "z" {
                return Row {
                    ts,
                    k,
                    s: None,
                    n: None,
                    x: None,
                };
            }
            let item = (random.unit().powi(2) * 12.0) as u32;
            let s = random.mostly().then(|| format!("item-{item:02}"));
            let n = random.next() % 2_000;
            let n = random.mostly().then_some(n as i64);
            let x = (-(1.0 - random.unit()).ln() * 100_000.0).round() / 1_000.0;
            let x = random.mostly().then_some(x);
            Row { ts, k, s, n, x }
        })
        .collect()
}

/// `window_start` as the JSON sink writes it.
fn window_start(ts: i64) -> String {
    iso_millis(ts - ts.rem_euclid(WINDOW_MS))
}

/// Rows grouped by (window start, key).
fn groups(rows: &[Row]) -> BTreeMap<(String, String), Vec<Row>> {
    let mut groups: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    for row in rows {
        groups
            .entry((window_start(row.ts), row.k.to_owned()))
            .or_default()
            .push(row.clone());
    }
    groups
}

/// Run `rows` through the aggregate `plugin` with `config`; returns the
/// results grouped by (window start, key), in output order within a group.
fn run_aggregate(
    rows: &[Row],
    plugin: &str,
    config: &str,
) -> BTreeMap<(String, String), Vec<Value>> {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for row in rows {
        let line =
            serde_json::json!({"ts": row.ts, "k": row.k, "s": row.s, "n": row.n, "x": row.x});
        writeln!(input, "{line}").unwrap();
    }
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let source = r#"[source]
type = "file"
path = "in.jsonl"
format = "jsonl"
schema = [
  { name = "ts", type = "int64" },
  { name = "k", type = "utf8" },
  { name = "s", type = "utf8" },
  { name = "n", type = "int64" },
  { name = "x", type = "float64" },
]

[trigger]
max_rows = 300
"#;
    let run = run_aggregate_job(
        dir.path(),
        source,
        plugin,
        &format!(
            "config = {{ {config} }}\nkey = [\"k\"]\nwindow = {{ type = \"tumbling\", size = \"10s\" }}\nevent_time = \"ts\""
        ),
    );
    assert!(
        run.late.is_empty(),
        "in-order rows were side-output as late"
    );
    let mut results: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for row in run.results {
        let group = (
            row["window_start"].as_str().unwrap().to_owned(),
            row["k"].as_str().unwrap().to_owned(),
        );
        results.entry(group).or_default().push(row);
    }
    results
}

fn assert_same_groups<A, B>(
    got: &BTreeMap<(String, String), A>,
    want: &BTreeMap<(String, String), B>,
) {
    assert!(
        want.len() >= 12,
        "the reference has {} groups: the test checks too little",
        want.len()
    );
    let got: Vec<_> = got.keys().collect();
    let want: Vec<_> = want.keys().collect();
    assert_eq!(got, want, "the (window, key) groups differ");
}

#[test]
fn top_k_gives_the_exact_most_frequent_values_per_window_and_key() {
    let rows = rows();
    let got = run_aggregate(&rows, artifacts::TOP_K, r#"column = "s", k = 3"#);
    let mut want: BTreeMap<(String, String), Vec<(String, i64)>> = BTreeMap::new();
    for (group, rows) in groups(&rows) {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for s in rows.into_iter().filter_map(|r| r.s) {
            *counts.entry(s).or_default() += 1;
        }
        let mut counts: Vec<(String, i64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts.truncate(3);
        if !counts.is_empty() {
            want.insert(group, counts);
        }
    }
    assert!(
        !want.keys().any(|(_, k)| k == "z"),
        "key z has no values, so no rows"
    );
    assert_same_groups(&got, &want);
    let mut ties = 0;
    for (group, want) in &want {
        let got: Vec<(String, i64)> = got[group]
            .iter()
            .map(|r| {
                (
                    r["value"].as_str().unwrap().to_owned(),
                    r["count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(&got, want, "group {group:?}");
        ties += want.windows(2).filter(|w| w[0].1 == w[1].1).count();
    }
    // Ties must be broken by value: make sure the data has some.
    assert!(
        ties > 0,
        "no ties among the top values: ordering is untested"
    );
}

#[test]
fn approx_distinct_is_within_three_standard_errors_per_window_and_key() {
    // 128 registers: the larger groups (~450 distinct) go past linear
    // counting (2.5 × 128) into the HyperLogLog estimate itself.
    let precision = 7;
    let standard_error = 1.04 / f64::from(1u32 << precision).sqrt();
    let rows = rows();
    let got = run_aggregate(
        &rows,
        artifacts::APPROX_DISTINCT,
        &format!(r#"column = "n", precision = {precision}"#),
    );
    let want: BTreeMap<(String, String), usize> = groups(&rows)
        .into_iter()
        .map(|(group, rows)| {
            let distinct: HashSet<i64> = rows.iter().filter_map(|r| r.n).collect();
            (group, distinct.len())
        })
        .collect();
    assert_same_groups(&got, &want);
    let mut past_linear_counting = 0;
    for (group, &exact) in &want {
        let [row] = got[group].as_slice() else {
            panic!("group {group:?} has {} rows", got[group].len());
        };
        let estimate = row["approx_distinct"].as_i64().unwrap();
        if exact == 0 {
            assert_eq!(estimate, 0, "group {group:?} has only nulls");
            continue;
        }
        let error = (estimate - exact as i64).abs() as f64 / exact as f64;
        println!(
            "approx-distinct {group:?}: exact {exact}, estimate {estimate}, error {:.1}% (3 standard errors: {:.1}%)",
            error * 100.0,
            300.0 * standard_error
        );
        assert!(
            error <= 3.0 * standard_error,
            "group {group:?}: exact {exact}, estimate {estimate}"
        );
        past_linear_counting += usize::from(exact as f64 > 2.5 * f64::from(1u32 << precision));
    }
    assert!(past_linear_counting > 0, "every group used linear counting");
}

#[test]
fn percentiles_are_within_tolerance_per_window_and_key() {
    let quantiles = [0.5, 0.9, 0.99, 0.999];
    let rows = rows();
    let got = run_aggregate(
        &rows,
        artifacts::PERCENTILES,
        r#"column = "x", quantiles = "0,0.5,0.9,0.99,0.999,1""#,
    );
    let groups = groups(&rows);
    assert_same_groups(&got, &groups);
    for (group, rows) in &groups {
        let [row] = got[group].as_slice() else {
            panic!("group {group:?} has {} rows", got[group].len());
        };
        let mut values: Vec<f64> = rows.iter().filter_map(|r| r.x).collect();
        let p = |name: &str| row.get(name).and_then(Value::as_f64);
        if values.is_empty() {
            for name in ["p0", "p50", "p90", "p99", "p99_9", "p100"] {
                assert_eq!(p(name), None, "group {group:?} has no values");
            }
            continue;
        }
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len() as f64;
        // The extremes are kept exactly.
        assert_eq!(p("p0"), Some(values[0]), "group {group:?}");
        assert_eq!(p("p100"), values.last().copied(), "group {group:?}");
        for (q, name) in quantiles.into_iter().zip(["p50", "p90", "p99", "p99_9"]) {
            let estimate = p(name).unwrap();
            // Compared by rank, so the check holds for any distribution.
            // With compression 100, t-digest's scale function lets one
            // centroid hold at most 2/100 of a group's values, and an
            // estimate interpolates within or between neighbouring
            // centroids: its rank is off by at most about one centroid's
            // weight, 2% of the values. A group is folded in over several
            // batches (300 rows each), so allow 3%, plus 2 values for where
            // between two neighbouring values the exact quantile falls.
            let rank = values.partition_point(|&v| v <= estimate) as f64;
            let off = (rank - q * n).abs();
            let tolerance = 0.03 * n + 2.0;
            println!(
                "percentiles {group:?} {name}: estimate {estimate:.3}, rank {rank} of {n}, off by {off:.1} (tolerance {tolerance:.1})"
            );
            assert!(
                off <= tolerance,
                "group {group:?} {name}: estimate {estimate} has rank {rank} of {n}"
            );
        }
    }
}
