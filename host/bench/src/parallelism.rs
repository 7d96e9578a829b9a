//! `parallelism`: whole jobs, in process between a memory source and a
//! memory sink, at parallelism 1 and 2 on the same input, alternating;
//! events/s of each and the ratio.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{ArrayRef, BinaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_config::Job;
use sluice_job::{Connectors, JobRunner, RunOptions};
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{Runtime, RuntimeConfig};
use sluice_sink::{MemoryRows, MemorySink};
use sluice_source::MemorySource;

use crate::nexmark::bids;
use crate::wasm_overhead::sample_batch;

/// Rounds per job; the parallelisms alternate and the best of each counts.
const ROUNDS: usize = 3;
/// Rows per micro-batch.
const BATCH_ROWS: usize = 8_192;
/// Rows of the Python job (it is the slowest per row).
const PYTHON_ROWS: usize = 200_000;

pub(crate) fn run() -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let bids = bids()?;
    let json = json_values(&bids)?;
    compare(
        &runtime,
        "json-q1-q2",
        &format!(
            r#"
[decode]
format = "json"
schema = [
  {{ name = "auction", type = "int64" }},
  {{ name = "bidder", type = "int64" }},
  {{ name = "price", type = "int64" }},
  {{ name = "date_time", type = "timestamp_ms" }},
]
on_error = "fail"
[[transform]]
name = "q1"
plugin = "{q1}"
[[transform]]
name = "q2"
plugin = "{q2}"
"#,
            q1 = artifacts::NEXMARK_Q1,
            q2 = artifacts::NEXMARK_Q2,
        ),
        &json,
    )?;
    compare(
        &runtime,
        "q1-then-q5-window",
        &format!(
            r#"
[[transform]]
name = "q1"
plugin = "{q1}"
[aggregate]
plugin = "{q5}"
columns = ["auction"]
event_time = "date_time"
window = {{ type = "hopping", size = "10s", slide = "2s" }}
[outputs.late]
type = "console"
"#,
            q1 = artifacts::NEXMARK_Q1,
            q5 = artifacts::NEXMARK_Q5,
        ),
        &bids,
    )?;
    let emails: Vec<RecordBatch> = (0..PYTHON_ROWS.div_ceil(BATCH_ROWS))
        .map(|i| sample_batch(BATCH_ROWS, i as u64))
        .collect();
    compare(
        &runtime,
        "python-pii-redact",
        &format!(
            r#"
[[transform]]
name = "redact"
plugin = "{redact}"
config = {{ columns = "email,note" }}
"#,
            redact = artifacts::PYTHON_PII_REDACT,
        ),
        &emails,
    )?;
    Ok(())
}

/// Run the job `stages` describes on `input` at parallelism 1 and 2,
/// `ROUNDS` times each, alternating; check both give the same rows; print
/// events/s and the ratio.
fn compare(
    runtime: &Runtime,
    name: &str,
    stages: &str,
    input: &[RecordBatch],
) -> anyhow::Result<()> {
    let events: usize = input.iter().map(RecordBatch::num_rows).sum();
    let mut best = [Duration::MAX; 2];
    let mut outputs: [Option<Vec<RecordBatch>>; 2] = [None, None];
    for _ in 0..ROUNDS {
        for (index, parallelism) in [1, 2].into_iter().enumerate() {
            let job = job(name, parallelism, stages)?;
            let (took, rows) = run_job(runtime, &job, input)?;
            best[index] = best[index].min(took);
            outputs[index].get_or_insert(rows);
        }
    }
    anyhow::ensure!(
        outputs[0] == outputs[1],
        "{name}: parallelism 2 gave other rows than parallelism 1"
    );
    let rate = |took: Duration| events as f64 / took.as_secs_f64();
    println!(
        "parallelism.{name}: {:.0} events/s at 1, {:.0} events/s at 2, 2/1 = {:.2}x ({events} events)",
        rate(best[0]),
        rate(best[1]),
        best[0].as_secs_f64() / best[1].as_secs_f64(),
    );
    Ok(())
}

/// A job of `stages` at `parallelism`, between memory connectors.
fn job(name: &str, parallelism: usize, stages: &str) -> anyhow::Result<Job> {
    let text = format!(
        r#"
[job]
name = "{name}"
parallelism = {parallelism}
[source]
type = "datagen"
columns = [{{ name = "unused", generator = "int" }}]
[trigger]
max_rows = {BATCH_ROWS}
max_bytes = "256 MiB"
{stages}
[sink]
type = "console"
"#
    );
    Job::parse(Path::new("bench.toml"), &text).with_context(|| format!("job {name}"))
}

/// Run `job` over `input`: how long the run took (its set-up, plugin
/// loading included, not counted) and what the sink got.
fn run_job(
    runtime: &Runtime,
    job: &Job,
    input: &[RecordBatch],
) -> anyhow::Result<(Duration, Vec<RecordBatch>)> {
    let schema = input.first().context("no input")?.schema();
    let rows = MemoryRows::default();
    let late = MemoryRows::default();
    let connectors = Connectors {
        source: Box::new(MemorySource::new(schema, input.to_vec())),
        sink: Box::new(MemorySink::new(rows.clone())),
        outputs: job
            .outputs
            .keys()
            .map(|name| {
                let sink: Box<dyn sluice_sink::Sink> = Box::new(MemorySink::new(late.clone()));
                (name.clone(), sink)
            })
            .collect(),
        checkpoint_store: None,
    };
    let runner = JobRunner::with_connectors(job, runtime, RunOptions::default(), connectors)?;
    let started = Instant::now();
    runner.run(&AtomicBool::new(false))?;
    Ok((started.elapsed(), rows.batches()))
}

/// The bids as Kafka-style records: one JSON object per `value`.
fn json_values(bids: &[RecordBatch]) -> anyhow::Result<Vec<RecordBatch>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Binary,
        false,
    )]));
    bids.iter()
        .map(|batch| {
            let mut buffer = Vec::new();
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut buffer);
            writer.write(batch)?;
            writer.finish()?;
            drop(writer);
            let values: BinaryArray = buffer
                .split(|byte| *byte == b'\n')
                .filter(|line| !line.is_empty())
                .map(Some)
                .collect();
            Ok(RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(values) as ArrayRef],
            )?)
        })
        .collect()
}
