//! Window kinds with out-of-order and late data; every expected row is
//! worked out by hand in the comments. The accumulator is a native count
//! and sum of column `v`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use sluice_window::{
    Accumulator, EmitMode, WindowError, WindowKind, WindowOperator, WindowOutput, WindowSpec,
};

/// count and sum of `v`; a state is 16 bytes, or empty for a new group.
#[derive(Debug)]
struct CountSum;

fn decode(state: &[u8]) -> (i64, i64) {
    if state.is_empty() {
        return (0, 0);
    }
    let count = i64::from_le_bytes(state[..8].try_into().unwrap());
    let sum = i64::from_le_bytes(state[8..16].try_into().unwrap());
    (count, sum)
}

fn encode((count, sum): (i64, i64)) -> Vec<u8> {
    [count.to_le_bytes(), sum.to_le_bytes()].concat()
}

impl Accumulator for CountSum {
    fn update(
        &self,
        states: &[Vec<u8>],
        batch: &RecordBatch,
        groups: &[u32],
    ) -> Result<Vec<Vec<u8>>, WindowError> {
        let mut decoded: Vec<(i64, i64)> = states.iter().map(|s| decode(s)).collect();
        let v = batch
            .column_by_name("v")
            .unwrap()
            .as_primitive::<Int64Type>();
        for (row, &g) in groups.iter().enumerate() {
            decoded[g as usize].0 += 1;
            decoded[g as usize].1 += v.value(row);
        }
        Ok(decoded.into_iter().map(encode).collect())
    }

    fn merge(&self, left: &[Vec<u8>], right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, WindowError> {
        Ok(left
            .iter()
            .zip(right)
            .map(|(l, r)| {
                let (l, r) = (decode(l), decode(r));
                encode((l.0 + r.0, l.1 + r.1))
            })
            .collect())
    }

    fn finish(&self, states: &[Vec<u8>]) -> Result<(RecordBatch, Vec<u32>), WindowError> {
        let decoded: Vec<(i64, i64)> = states.iter().map(|s| decode(s)).collect();
        let batch = RecordBatch::try_from_iter(vec![
            (
                "count",
                Arc::new(Int64Array::from_iter_values(decoded.iter().map(|d| d.0))) as _,
            ),
            (
                "sum",
                Arc::new(Int64Array::from_iter_values(decoded.iter().map(|d| d.1))) as _,
            ),
        ])?;
        Ok((batch, Vec::new()))
    }
}

fn spec(kind: WindowKind, delay: i64, lateness: i64, keyed: bool) -> WindowSpec {
    WindowSpec {
        kind,
        key_columns: if keyed { vec!["k".into()] } else { Vec::new() },
        input_columns: Some(vec!["v".into()]),
        event_time_column: "t".into(),
        partition_column: None,
        out_of_orderness_ms: delay,
        idle_timeout: Duration::from_secs(3600),
        allowed_lateness_ms: lateness,
        max_event_time_skew_ms: None,
        emit: EmitMode::Final,
        state_quota: 1 << 20,
    }
}

/// Rows of (key, event time ms, value).
fn rows(rows: &[(&str, i64, i64)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("t", DataType::Int64, true),
        Field::new("v", DataType::Int64, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

/// Result rows as (start, end, key or "", count, sum).
fn results(batch: &Option<RecordBatch>) -> Vec<(i64, i64, String, i64, i64)> {
    let Some(batch) = batch else {
        return Vec::new();
    };
    let ts = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<TimestampMillisecondType>()
            .clone()
    };
    let int = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone()
    };
    let (start, end, count, sum) = (
        ts("window_start"),
        ts("window_end"),
        int("count"),
        int("sum"),
    );
    let key = batch
        .column_by_name("k")
        .map(|k| k.as_string::<i32>().clone());
    (0..batch.num_rows())
        .map(|i| {
            let key = key
                .as_ref()
                .map(|k| k.value(i).to_owned())
                .unwrap_or_default();
            (
                start.value(i),
                end.value(i),
                key,
                count.value(i),
                sum.value(i),
            )
        })
        .collect()
}

/// Event times of the late side output.
fn late(output: &WindowOutput) -> Vec<i64> {
    output
        .late
        .as_ref()
        .map(|b| {
            b.column_by_name("t")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .unwrap_or_default()
}

fn w(start: i64, end: i64, count: i64, sum: i64) -> (i64, i64, String, i64, i64) {
    (start, end, String::new(), count, sum)
}

#[test]
fn a_tumbling_window_closes_exactly_when_the_watermark_reaches_its_end() {
    let now = Instant::now();
    let mut op = WindowOperator::new(
        spec(WindowKind::Tumbling { size: 10 }, 0, 0, false),
        CountSum,
    );
    // Watermark 9: [0, 10) may still get a row at 9.
    let out = op.process(&rows(&[("", 3, 1), ("", 9, 1)]), now).unwrap();
    assert_eq!(op.watermark(), 9);
    assert_eq!(results(&out.results), []);
    // A row at 9 is still on time; then the watermark reaches 10.
    let out = op.process(&rows(&[("", 9, 5), ("", 10, 1)]), now).unwrap();
    assert_eq!(op.watermark(), 10);
    assert_eq!(results(&out.results), [w(0, 10, 3, 7)]);
}

#[test]
fn tumbling_late_rows_within_lateness_update_and_beyond_it_go_to_the_side_output() {
    let now = Instant::now();
    // size 10, watermark delay 2, allowed lateness 5.
    let mut op = WindowOperator::new(
        spec(WindowKind::Tumbling { size: 10 }, 2, 5, false),
        CountSum,
    );
    // max 12 → watermark 10: [0,10) = {1, 5} fires.
    let out = op
        .process(&rows(&[("", 1, 1), ("", 5, 2), ("", 12, 3)]), now)
        .unwrap();
    assert_eq!(results(&out.results), [w(0, 10, 2, 3)]);
    // 8 is late for [0,10) but within its lateness (10 + 5 > 10): updated
    // result. max 14 → watermark 12.
    let out = op
        .process(&rows(&[("", 8, 10), ("", 14, 20)]), now)
        .unwrap();
    assert_eq!(results(&out.results), [w(0, 10, 3, 13)]);
    assert_eq!(late(&out), Vec::<i64>::new());
    // max 25 → watermark 23: [10,20) = {12, 14} fires; [0,10) is dropped
    // (10 + 5 <= 23).
    let out = op.process(&rows(&[("", 25, 100)]), now).unwrap();
    assert_eq!(results(&out.results), [w(10, 20, 2, 23)]);
    // 3 is beyond [0,10)'s lateness: side output. 19 still updates
    // [10,20) (20 + 5 > 23).
    let out = op
        .process(&rows(&[("", 3, 1000), ("", 19, 7)]), now)
        .unwrap();
    assert_eq!(late(&out), [3]);
    assert_eq!(results(&out.results), [w(10, 20, 3, 30)]);
    // End of input: [20,30) fires; nothing is emitted twice.
    assert_eq!(results(&op.finish().unwrap()), [w(20, 30, 1, 100)]);
    assert_eq!(op.state().groups(), 0);
    assert_eq!(op.state().bytes(), 0);
}

#[test]
fn hopping_rows_count_in_every_window_and_are_late_only_when_all_their_windows_are() {
    let now = Instant::now();
    // size 10, slide 5, no delay, no lateness.
    let mut op = WindowOperator::new(
        spec(WindowKind::Hopping { size: 10, slide: 5 }, 0, 0, false),
        CountSum,
    );
    // 3 → [-5,5), [0,10); 7 → [0,10), [5,15). Watermark 7: [-5,5) fires.
    let out = op.process(&rows(&[("", 3, 1), ("", 7, 2)]), now).unwrap();
    assert_eq!(results(&out.results), [w(-5, 5, 1, 1)]);
    // 4 → [-5,5) has closed, [0,10) has not: counted there, not late.
    let out = op.process(&rows(&[("", 4, 4)]), now).unwrap();
    assert!(out.late.is_none() && out.results.is_none());
    // 12 → [5,15), [10,20). Watermark 12: [0,10) = {3, 7, 4} fires.
    let out = op.process(&rows(&[("", 12, 8)]), now).unwrap();
    assert_eq!(results(&out.results), [w(0, 10, 3, 7)]);
    // 9 → [0,10) closed, [5,15) open: counted. 1 → both windows closed: late.
    let out = op.process(&rows(&[("", 9, 16), ("", 1, 32)]), now).unwrap();
    assert_eq!(late(&out), [1]);
    assert!(out.results.is_none());
    assert_eq!(
        results(&op.finish().unwrap()),
        [w(5, 15, 3, 26), w(10, 20, 1, 8)]
    );
}

#[test]
fn sessions_per_key_close_with_the_watermark_and_late_rows_extend_or_go_aside() {
    let now = Instant::now();
    // gap 5, no delay, allowed lateness 3, keyed by k.
    let mut op = WindowOperator::new(spec(WindowKind::Session { gap: 5 }, 0, 3, true), CountSum);
    // a: 1, 4 → [1,9); a: 20 → [20,25); b: 2 → [2,7). Watermark 20.
    let out = op
        .process(
            &rows(&[("a", 1, 1), ("a", 4, 2), ("b", 2, 4), ("a", 20, 8)]),
            now,
        )
        .unwrap();
    let row = |s, e, k: &str, c, sum| (s, e, k.to_owned(), c, sum);
    assert_eq!(
        results(&out.results),
        [row(2, 7, "b", 1, 4), row(1, 9, "a", 2, 3)]
    );
    // a: 17 → [17,22) joins [20,25) into [17,25) (22 + 3 > 20: not late).
    // a: 2 → [2,7) is past its lateness (7 + 3 <= 20): side output.
    let out = op
        .process(&rows(&[("a", 17, 16), ("a", 2, 32)]), now)
        .unwrap();
    assert_eq!(late(&out), [2]);
    assert!(out.results.is_none());
    // b: 40 → watermark 40: a's [17,25) fires.
    let out = op.process(&rows(&[("b", 40, 64)]), now).unwrap();
    assert_eq!(results(&out.results), [row(17, 25, "a", 2, 24)]);
    assert_eq!(results(&op.finish().unwrap()), [row(40, 45, "b", 1, 64)]);
}

#[test]
fn a_row_between_two_sessions_merges_them_and_their_states() {
    let now = Instant::now();
    let mut op = WindowOperator::new(spec(WindowKind::Session { gap: 5 }, 100, 0, true), CountSum);
    // c: 30 → [30,35); c: 38 → [38,43): two sessions.
    op.process(&rows(&[("c", 30, 1), ("c", 38, 2)]), now)
        .unwrap();
    assert_eq!(op.state().groups(), 2);
    // c: 34 → [34,39) touches both: one session [30,43).
    op.process(&rows(&[("c", 34, 4)]), now).unwrap();
    assert_eq!(op.state().groups(), 1);
    assert_eq!(
        results(&op.finish().unwrap()),
        [(30, 43, "c".to_owned(), 3, 7)]
    );
}

#[test]
fn updates_mode_emits_early_results_then_the_final_one() {
    let now = Instant::now();
    let mut spec = spec(WindowKind::Tumbling { size: 10 }, 0, 0, false);
    spec.emit = EmitMode::Updates;
    let mut op = WindowOperator::new(spec, CountSum);
    let out = op.process(&rows(&[("", 1, 1)]), now).unwrap();
    assert_eq!(results(&out.results), [w(0, 10, 1, 1)]);
    let out = op.process(&rows(&[("", 2, 2)]), now).unwrap();
    assert_eq!(results(&out.results), [w(0, 10, 2, 3)]);
    let out = op.process(&rows(&[("", 11, 4)]), now).unwrap();
    assert_eq!(results(&out.results), [w(0, 10, 2, 3), w(10, 20, 1, 4)]);
}

#[test]
fn state_over_the_quota_is_a_clear_error() {
    let mut spec = spec(WindowKind::Tumbling { size: 10 }, 1000, 0, true);
    spec.state_quota = 500;
    let mut op = WindowOperator::new(spec, CountSum);
    let keys: Vec<String> = (0..20).map(|i| format!("key-{i}")).collect();
    let input: Vec<(&str, i64, i64)> = keys.iter().map(|k| (k.as_str(), 1, 1)).collect();
    let error = op.process(&rows(&input), Instant::now()).unwrap_err();
    assert!(
        matches!(error, WindowError::StateQuota { quota: 500, .. }),
        "{error}"
    );
}

#[test]
fn rows_without_event_time_are_handed_back_not_dropped() {
    let schema = Schema::new(vec![
        Field::new("t", DataType::Int64, true),
        Field::new("v", DataType::Int64, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ],
    )
    .unwrap();
    let mut op = WindowOperator::new(
        spec(WindowKind::Tumbling { size: 10 }, 0, 0, false),
        CountSum,
    );
    let out = op.process(&batch, Instant::now()).unwrap();
    let invalid = out.invalid.unwrap();
    assert_eq!(invalid.num_rows(), 1);
    assert!(invalid.column(0).is_null(0));
}

#[test]
fn a_far_future_event_time_past_the_skew_bound_is_set_aside_and_does_not_move_the_watermark() {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = 3_600_000;
    let ten_years = 10 * 365 * 24 * hour;
    let bounded = WindowSpec {
        max_event_time_skew_ms: Some(hour),
        ..spec(WindowKind::Tumbling { size: 1000 }, 0, 0, false)
    };
    let mut op = WindowOperator::new(bounded, CountSum);
    let now = Instant::now();
    let out = op
        .process(&rows(&[("", wall, 1), ("", wall + ten_years, 1)]), now)
        .unwrap();
    assert_eq!(op.watermark(), wall, "the far-future row does not move it");
    let aside = out.out_of_range.expect("the far-future row is set aside");
    assert_eq!(aside.num_rows(), 1);
    // Rows of the present are still on time.
    let out = op.process(&rows(&[("", wall + 1, 1)]), now).unwrap();
    assert!(late(&out).is_empty());
    // Within the skew a future time is accepted.
    op.process(&rows(&[("", wall + hour / 2, 1)]), now).unwrap();
    assert_eq!(op.watermark(), wall + hour / 2);
    // Without a bound, the same row moves the watermark ten years ahead.
    let mut unbounded = WindowOperator::new(
        spec(WindowKind::Tumbling { size: 1000 }, 0, 0, false),
        CountSum,
    );
    unbounded
        .process(&rows(&[("", wall, 1), ("", wall + ten_years, 1)]), now)
        .unwrap();
    assert_eq!(unbounded.watermark(), wall + ten_years);
}
