//! `nexmark`: events/s per core of each Nexmark query as a Wasm plugin and
//! as the same Rust compiled into the host (the plugin crate linked
//! natively), on the same pre-generated bids.

use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use sluice_config::{NexmarkSource, NexmarkTable};
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{AggregatePlugin, PluginLimits, Runtime, RuntimeConfig, TransformPlugin};
use sluice_sdk::{Aggregate, StateCodec};
use sluice_source::{Chunk, Nexmark, Source};
use sluice_window::{Accumulator, EmitMode, WindowError, WindowKind, WindowOperator, WindowSpec};

/// Events generated (of every kind; about 92% are bids).
const EVENTS: u64 = 1_000_000;
/// Rows per micro-batch.
const BATCH_ROWS: usize = 8_192;
/// Native and Wasm alternate for this many rounds; the best of each counts.
const ROUNDS: usize = 3;

/// The columns each windowed query's plugin reads (q11 reads none: it counts).
const Q5_COLUMNS: &[&str] = &["auction"];
const Q7_COLUMNS: &[&str] = &["auction", "bidder", "price", "date_time"];

/// A query under test: one pass over every batch.
type Query<'a> = Box<dyn FnMut(&[RecordBatch]) -> anyhow::Result<usize> + 'a>;

pub(crate) fn run() -> anyhow::Result<()> {
    let batches = bids()?;
    let events: usize = batches.iter().map(RecordBatch::num_rows).sum();
    println!("nexmark.bids: {events} events");
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let transform = |path: &str, name: &str| {
        TransformPlugin::load(
            &runtime,
            name,
            path.as_ref(),
            Vec::new(),
            PluginLimits::default(),
        )
        .with_context(|| format!("loading {name}"))
    };
    let aggregate = |path: &str, name: &str| {
        AggregatePlugin::load(
            &runtime,
            name,
            path.as_ref(),
            Vec::new(),
            PluginLimits::default(),
        )
        .with_context(|| format!("loading {name}"))
    };

    let q0 = transform(artifacts::NEXMARK_Q0, "q0")?;
    let q1 = transform(artifacts::NEXMARK_Q1, "q1")?;
    let q2 = transform(artifacts::NEXMARK_Q2, "q2")?;
    compare(
        &batches,
        "q0",
        stateless(native_output(nexmark_q0::q0)),
        stateless_wasm(&q0),
    )?;
    compare(
        &batches,
        "q1",
        stateless(native_output(nexmark_q1::q1)),
        stateless_wasm(&q1),
    )?;
    compare(
        &batches,
        "q2",
        stateless(native_output(nexmark_q2::q2)),
        stateless_wasm(&q2),
    )?;

    let q5 = WindowKind::Hopping {
        size: 10_000,
        slide: 2_000,
    };
    let q7 = WindowKind::Tumbling { size: 10_000 };
    let q11 = WindowKind::Session { gap: 10_000 };
    let q5_wasm = aggregate(artifacts::NEXMARK_Q5, "q5")?;
    let q7_wasm = aggregate(artifacts::NEXMARK_Q7, "q7")?;
    let q11_wasm = aggregate(artifacts::NEXMARK_Q11, "q11")?;
    compare(
        &batches,
        "q5",
        windowed(q5, &[], Q5_COLUMNS, native::<nexmark_q5::HotItems>),
        windowed(q5, &[], Q5_COLUMNS, || Ok(&q5_wasm)),
    )?;
    compare(
        &batches,
        "q7",
        windowed(q7, &[], Q7_COLUMNS, native::<nexmark_q7::HighestBid>),
        windowed(q7, &[], Q7_COLUMNS, || Ok(&q7_wasm)),
    )?;
    compare(
        &batches,
        "q11",
        windowed(q11, &["bidder"], &[], || {
            native::<nexmark_q11::SessionBids>()
        }),
        windowed(q11, &["bidder"], &[], || Ok(&q11_wasm)),
    )?;
    Ok(())
}

/// Run both sides `ROUNDS` times, alternating; check they give the same
/// number of output rows; print events/s per core and the ratio.
fn compare(
    batches: &[RecordBatch],
    name: &str,
    mut native: Query<'_>,
    mut wasm: Query<'_>,
) -> anyhow::Result<()> {
    let events: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let (mut native_best, mut wasm_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let native_rows = native(batches)?;
        native_best = native_best.min(started.elapsed());
        let started = Instant::now();
        let wasm_rows = wasm(batches)?;
        wasm_best = wasm_best.min(started.elapsed());
        anyhow::ensure!(
            native_rows == wasm_rows,
            "{name}: native gave {native_rows} rows, Wasm {wasm_rows}"
        );
    }
    let per_second = |d: Duration| events as f64 / d.as_secs_f64();
    println!(
        "nexmark.{name}.native: {:.0} events/s",
        per_second(native_best)
    );
    println!("nexmark.{name}.wasm: {:.0} events/s", per_second(wasm_best));
    println!(
        "nexmark.{name}.ratio_wasm_over_native: {:.3} x",
        wasm_best.as_secs_f64() / native_best.as_secs_f64()
    );
    Ok(())
}

fn stateless<'a>(f: impl Fn(RecordBatch) -> anyhow::Result<RecordBatch> + 'a) -> Query<'a> {
    Box::new(move |batches| {
        let mut rows = 0;
        for batch in batches {
            rows += f(batch.clone())?.num_rows();
        }
        Ok(rows)
    })
}

fn stateless_wasm(plugin: &TransformPlugin) -> Query<'_> {
    Box::new(move |batches| {
        let mut rows = 0;
        for batch in batches {
            rows += plugin.process(batch)?.batch.num_rows();
        }
        Ok(rows)
    })
}

/// A native transform's output as the host would put it together.
fn native_output(
    transform: impl Fn(RecordBatch) -> sluice_sdk::Result<sluice_sdk::Output>,
) -> impl Fn(RecordBatch) -> anyhow::Result<RecordBatch> {
    move |batch| {
        let output = transform(batch.clone()).map_err(sdk_error)?;
        Ok(output.resolve(&batch)?)
    }
}

fn sdk_error(error: sluice_sdk::Error) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// A fresh window operator per pass, fed every batch, then finished.
fn windowed<'a, A: Accumulator + 'a>(
    kind: WindowKind,
    key: &'a [&'a str],
    columns: &'a [&'a str],
    accumulator: impl Fn() -> anyhow::Result<A> + 'a,
) -> Query<'a> {
    Box::new(move |batches| {
        let spec = WindowSpec {
            kind,
            key_columns: key.iter().map(|k| (*k).to_owned()).collect(),
            input_columns: Some(columns.iter().map(|c| (*c).to_owned()).collect()),
            event_time_column: "date_time".into(),
            partition_column: None,
            out_of_orderness_ms: 0,
            idle_timeout: Duration::from_secs(3600),
            allowed_lateness_ms: 0,
            max_event_time_skew_ms: None,
            emit: EmitMode::Final,
            state_quota: 1 << 30,
        };
        let mut operator = WindowOperator::new(spec, accumulator()?);
        let now = Instant::now();
        let mut rows = 0;
        for batch in batches {
            let output = operator.process(batch, now)?;
            rows += output.results.map_or(0, |r| r.num_rows());
        }
        rows += operator.finish()?.map_or(0, |r| r.num_rows());
        Ok(rows)
    })
}

/// An aggregate plugin's Rust compiled into the host, on the same byte
/// states as its Wasm build.
#[derive(Debug)]
struct Native<A>(StateCodec<A>);

fn native<A: Aggregate>() -> anyhow::Result<Native<A>> {
    Ok(Native(
        StateCodec::new(&sluice_sdk::Config::default()).map_err(sdk_error)?,
    ))
}

impl<A: Aggregate + std::fmt::Debug> Accumulator for Native<A> {
    fn update(
        &self,
        states: &[Vec<u8>],
        batch: &RecordBatch,
        groups: &[u32],
    ) -> Result<Vec<Vec<u8>>, WindowError> {
        self.0
            .update(states.to_vec(), batch, groups)
            .map_err(|e| WindowError::Native(e.to_string()))
    }

    fn merge(&self, left: &[Vec<u8>], right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, WindowError> {
        self.0
            .merge(left.to_vec(), right.to_vec())
            .map_err(|e| WindowError::Native(e.to_string()))
    }

    fn finish(&self, states: &[Vec<u8>]) -> Result<(RecordBatch, Vec<u32>), WindowError> {
        let finished = self
            .0
            .finish(states.to_vec())
            .map_err(|e| WindowError::Native(e.to_string()))?;
        Ok(finished.into_parts())
    }
}

/// The bids among [`EVENTS`] Nexmark events, in batches.
pub(crate) fn bids() -> anyhow::Result<Vec<RecordBatch>> {
    let mut source = Nexmark::new(&NexmarkSource {
        events: Some(EVENTS),
        table: NexmarkTable::Bid,
        base_time: 0,
        event_rate: 10_000,
        active_people: 1_000,
        in_flight_auctions: 100,
    })?;
    let mut batches = Vec::new();
    loop {
        match source.next_chunk(
            sluice_source::Room::rows(BATCH_ROWS),
            std::time::Duration::ZERO,
        )? {
            Chunk::Rows(batch) => batches.push(batch),
            Chunk::Idle => {}
            Chunk::End => return Ok(batches),
        }
    }
}
