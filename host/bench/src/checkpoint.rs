//! `checkpoint`: what checkpoints cost.
//!
//! 1. Taking and restoring 10 MB, 100 MB and 1 GB of window state (sizes
//!    from `SLUICE_BENCH_CHECKPOINT_MB`, default `10,100,1000`): encoding
//!    the state, writing it to a local directory and to S3 (moto, at
//!    `SLUICE_TEST_S3_ENDPOINT`, if set), reading it back and restoring it.
//! 2. A windowed Kafka job (exactly-once, checkpoint every second) against
//!    the same job with checkpoints off, in the same run, on the same
//!    input: throughput, reading a filled topic as fast as it can.
//! 3. The same two jobs at a steady input rate, batches cut every 100 ms
//!    for `SLUICE_BENCH_STEADY_SECS` (default 30): the p50, p99 and
//!    maximum of batch latency (cut to handed to the sinks, the snapshot
//!    and any wait for a commit included).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice_job::RunStats;
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{Runtime, RuntimeConfig};

use crate::median;
use sluice_state::CheckpointStore;
use sluice_window::{Accumulator, EmitMode, WindowError, WindowKind, WindowOperator, WindowSpec};

use crate::kafka::{broker, fill, produce_paced, sluice_job, topic};

/// Bytes of accumulator state per group.
const STATE_BYTES: usize = 1000;
/// Groups folded in per batch while filling the state.
const FILL_BATCH: usize = 100_000;
/// Records of the windowed Kafka job.
const JOB_RECORDS: usize = 400_000;
/// Records per second of the steady job.
const STEADY_RATE: usize = 50_000;

/// An accumulator whose every state is `STATE_BYTES` bytes.
#[derive(Debug)]
struct FixedState;

impl Accumulator for FixedState {
    fn update(
        &self,
        states: &[Vec<u8>],
        _batch: &RecordBatch,
        _groups: &[u32],
    ) -> Result<Vec<Vec<u8>>, WindowError> {
        Ok(states
            .iter()
            .enumerate()
            .map(|(i, _)| vec![i as u8; STATE_BYTES])
            .collect())
    }

    fn merge(&self, left: &[Vec<u8>], _right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, WindowError> {
        Ok(left.to_vec())
    }

    fn finish(&self, _states: &[Vec<u8>]) -> Result<(RecordBatch, Vec<u32>), WindowError> {
        Ok((
            RecordBatch::new_empty(Arc::new(Schema::empty())),
            Vec::new(),
        ))
    }
}

fn operator() -> WindowOperator<FixedState> {
    let spec = WindowSpec {
        kind: WindowKind::Tumbling { size: 3_600_000 },
        key_columns: vec!["key".into()],
        input_columns: Some(Vec::new()),
        event_time_column: "t".into(),
        partition_column: None,
        out_of_orderness_ms: 0,
        idle_timeout: Duration::from_secs(3600),
        allowed_lateness_ms: 0,
        max_event_time_skew_ms: None,
        emit: EmitMode::Final,
        state_quota: usize::MAX,
    };
    WindowOperator::new(spec, FixedState)
}

/// An operator holding about `megabytes` MB of state in one open window.
fn filled(megabytes: usize) -> anyhow::Result<WindowOperator<FixedState>> {
    let groups = megabytes * 1_000_000 / STATE_BYTES;
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]));
    let mut operator = operator();
    let mut first = 0;
    while first < groups {
        let rows = FILL_BATCH.min(groups - first);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    first as i64..(first + rows) as i64,
                )),
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    std::iter::repeat_n(1_000, rows),
                )),
            ],
        )?;
        operator.process(&batch, Instant::now())?;
        first += rows;
    }
    Ok(operator)
}

fn s3_store() -> anyhow::Result<Option<CheckpointStore>> {
    let Ok(endpoint) = std::env::var("SLUICE_TEST_S3_ENDPOINT") else {
        return Ok(None);
    };
    let options: BTreeMap<String, String> = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_allow_http", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    Ok(Some(CheckpointStore::open(
        &format!("s3://sluice-test/bench-{nanos}"),
        &options,
    )?))
}

/// State checkpoint and restore times, per size and store.
fn state_sizes(io: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("SLUICE_BENCH_CHECKPOINT_MB")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("SLUICE_BENCH_CHECKPOINT_MB: comma-separated megabytes")?;
    let local_dir = tempfile::tempdir()?;
    let mut stores = vec![(
        "local",
        CheckpointStore::open(&local_dir.path().display().to_string(), &BTreeMap::new())?,
    )];
    if let Some(s3) = s3_store()? {
        stores.push(("s3", s3));
    } else {
        eprintln!("checkpoint: SLUICE_TEST_S3_ENDPOINT unset; S3 figures skipped");
    }
    let mut epoch = 0;
    for megabytes in sizes {
        let full = filled(megabytes)?;
        let held = full.state().bytes();
        let started = Instant::now();
        let encoded = bytes::Bytes::from(full.snapshot()?);
        let encode = started.elapsed();
        drop(full);
        println!(
            "checkpoint.state_{megabytes}mb.encode: {:.1} ms ({:.0} MB held, {:.0} MB encoded)",
            ms(encode),
            held as f64 / 1e6,
            encoded.len() as f64 / 1e6
        );
        for (name, store) in &stores {
            epoch += 1;
            let started = Instant::now();
            io.block_on(store.commit(
                epoch,
                vec![("operator.bench".into(), encoded.clone())],
                serde_json::json!({}),
            ))?;
            let write = started.elapsed();
            let started = Instant::now();
            let checkpoint = io.block_on(store.read(epoch))?;
            let read = started.elapsed();
            let mut restored = operator();
            let started = Instant::now();
            restored.restore(
                checkpoint
                    .file("operator.bench")
                    .context("the state file")?,
                Instant::now(),
            )?;
            let decode = started.elapsed();
            println!(
                "checkpoint.state_{megabytes}mb.{name}.checkpoint: {:.1} ms (encode + write)",
                ms(encode + write)
            );
            println!(
                "checkpoint.state_{megabytes}mb.{name}.restore: {:.1} ms (read {:.1} + decode {:.1})",
                ms(read + decode),
                ms(read),
                ms(decode)
            );
            io.block_on(store.retain(1))?;
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The windowed Kafka job, with `checkpoint` as its `[checkpoint]` section;
/// named after its output, so each run has a consumer group of its own.
fn windowed_job(input: &str, output: &str, checkpoint: &str) -> String {
    format!(
        "[job]\nname = {output:?}\n\n[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {b:?}, subscribe = {input:?}, startingOffsets = \"earliest\" }}\n\n\
         [trigger]\nmax_rows = 10000\nmax_interval = \"100ms\"\navailable_now = true\n\n\
         [aggregate]\nplugin = {stats:?}\nkey = [\"key\"]\ncolumns = []\nevent_time = \"timestamp\"\npartition_column = \"partition\"\nwindow = {{ type = \"tumbling\", size = \"1s\" }}\n\n\
         [sink]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {b:?}, topic = {output:?}, valueFormat = \"json\" }}\n\n\
         [outputs.late]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {b:?}, topic = {output:?}, valueFormat = \"json\" }}\n\n{checkpoint}",
        b = broker(),
        stats = artifacts::STATS,
    )
}

/// Throughput of the windowed job with checkpoints every second and off.
fn job_overhead() -> anyhow::Result<()> {
    let input = topic("ckpt-in");
    fill(&input, JOB_RECORDS)
        .context("filling the input topic; is a broker running (scripts/services start)?")?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let run = |checkpoint: &str| -> anyhow::Result<(f64, RunStats)> {
        let output = topic("ckpt-out");
        let job = sluice_job(&runtime, &windowed_job(&input, &output, checkpoint))?;
        let started = Instant::now();
        let stats = job.run(&AtomicBool::new(false))?;
        anyhow::ensure!(
            stats.rows_in == JOB_RECORDS as u64,
            "read {} rows",
            stats.rows_in
        );
        Ok((JOB_RECORDS as f64 / started.elapsed().as_secs_f64(), stats))
    };
    let mut off = Vec::new();
    let mut on = Vec::new();
    let (mut off_p99, mut on_p99) = (Vec::new(), Vec::new());
    // Alternate, so a broker pause lands on either side.
    for _ in 0..3 {
        let (rate, stats) = run("")?;
        off.push(rate);
        off_p99.push(ms(stats.batch_latency.quantile(0.99)));
        let dir = tempfile::tempdir()?;
        let (rate, stats) = run(&format!(
            "[checkpoint]\nlocation = {:?}\ninterval = \"1s\"\n",
            dir.path().display().to_string()
        ))?;
        eprintln!(
            "checkpoint.job: {} checkpoints took {:?} in all",
            stats.checkpoints, stats.checkpoint_time
        );
        on.push(rate);
        on_p99.push(ms(stats.batch_latency.quantile(0.99)));
    }
    let (off, on) = (median(&mut off), median(&mut on));
    let (off_p99, on_p99) = (median(&mut off_p99), median(&mut on_p99));
    println!("checkpoint.job.off.batch_p99: {off_p99:.1} ms (median of 3)");
    println!("checkpoint.job.every_1s_exactly_once.batch_p99: {on_p99:.1} ms (median of 3)");
    println!("checkpoint.job.off: {off:.0} records/s (median of 3)");
    println!("checkpoint.job.every_1s_exactly_once: {on:.0} records/s (median of 3)");
    println!("checkpoint.job.ratio_on_over_off: {:.3} x", on / off);
    Ok(())
}

/// Batch latency of the windowed job at a steady rate, checkpoints off and
/// every second.
fn steady_latency() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("SLUICE_BENCH_STEADY_SECS")
        .ok()
        .map(|s| s.parse())
        .transpose()
        .context("SLUICE_BENCH_STEADY_SECS")?
        .unwrap_or(30);
    let duration = Duration::from_secs(seconds);
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let run = |checkpoint: &str| -> anyhow::Result<RunStats> {
        let input = topic("steady-in");
        let output = topic("steady-out");
        let text = windowed_job(&input, &output, checkpoint)
            .replace("available_now = true", "available_now = false")
            .replace(
                "startingOffsets = \"earliest\"",
                "startingOffsets = \"latest\"",
            );
        let job = sluice_job(&runtime, &text)?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || job.run(&stop))
        };
        // Give the consumer its assignment before the first record.
        std::thread::sleep(Duration::from_secs(2));
        produce_paced(&input, STEADY_RATE, duration)?;
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let stats = running
            .join()
            .map_err(|_| anyhow::anyhow!("the job panicked"))??;
        let expected = (STEADY_RATE as f64 * duration.as_secs_f64() * 0.9) as u64;
        anyhow::ensure!(
            stats.rows_in >= expected,
            "read {} rows of some {}",
            stats.rows_in,
            STEADY_RATE as u64 * seconds
        );
        Ok(stats)
    };
    for round in 1..=2 {
        for checkpointed in [false, true] {
            let dir = tempfile::tempdir()?;
            let (name, checkpoint) = if checkpointed {
                (
                    "every_1s_exactly_once",
                    format!(
                        "[checkpoint]\nlocation = {:?}\ninterval = \"1s\"\n",
                        dir.path().display().to_string()
                    ),
                )
            } else {
                ("off", String::new())
            };
            let stats = run(&checkpoint)?;
            let latency = &stats.batch_latency;
            println!(
                "checkpoint.steady.round{round}.{name}.batch_latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} batches, {} checkpoints, {} batches during commits, commits took {:.1} ms on average)",
                ms(latency.quantile(0.5)),
                ms(latency.quantile(0.99)),
                ms(latency.quantile(1.0)),
                latency.count(),
                stats.checkpoints,
                stats.batches_during_commits,
                ms(stats.commit_time) / stats.checkpoints.max(1) as f64,
            );
        }
    }
    Ok(())
}

/// `checkpoint`.
pub(crate) fn run() -> anyhow::Result<()> {
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    state_sizes(&io)?;
    job_overhead()?;
    steady_latency()
}
