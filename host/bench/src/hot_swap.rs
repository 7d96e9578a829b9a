//! `hot-swap`: a job reads 50,000 generated rows/s through a stateful
//! plugin (row-counter) while its plugin is swapped 20 times, between two
//! configs of it. Prints the job's pause per swap (from the batch boundary,
//! every batch out taken back, to the new version in place, state carried
//! across), the time to load a new version off the job's thread, and checks
//! that the count went on across every swap (no row lost or repeated).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use sluice_config::Job;
use sluice_job::{Connectors, JobHandle, JobRunner, RunOptions};
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{Runtime, RuntimeConfig};
use sluice_sink::{MemoryRows, MemorySink};

const RATE: u64 = 50_000;
const SWAPS: usize = 20;

pub(crate) fn run() -> anyhow::Result<()> {
    let text = format!(
        "[source]\ntype = \"datagen\"\nrows_per_second = {RATE}\ncolumns = [{{ name = \"id\", generator = \"sequence\" }}]\n\
         [trigger]\nmax_interval = \"10ms\"\n\
         [[transform]]\nname = \"counter\"\nplugin = {plugin:?}\nconfig = {{ label = \"v1\" }}\n\
         [sink]\ntype = \"console\"\n",
        plugin = artifacts::ROW_COUNTER
    );
    let job = Job::parse(Path::new("hot-swap.toml"), &text)?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let rows = MemoryRows::default();
    let connectors = Connectors {
        source: sluice_source::open(&job.source, &job.trigger, job.parallelism)?,
        sink: Box::new(MemorySink::new(rows.clone())),
        outputs: BTreeMap::new(),
        checkpoint_store: None,
    };
    let handle = JobHandle::start(JobRunner::with_connectors(
        &job,
        &runtime,
        RunOptions::default(),
        connectors,
    )?)?;
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let (mut pauses, mut loads) = (Vec::new(), Vec::new());
    for swap in 0..SWAPS {
        let label = if swap % 2 == 0 { "v2" } else { "v1" };
        let spec = sluice_config::PluginSpec {
            config: vec![("label".into(), label.into())],
            ..job.transforms[0].clone()
        };
        let asked = Instant::now();
        let swapped = handle.swap("counter", &spec)?;
        loads.push(asked.elapsed().saturating_sub(swapped.pause));
        pauses.push(swapped.pause);
        std::thread::sleep(Duration::from_millis(200));
    }
    let rate = handle.status().rows_in as f64 / (started.elapsed().as_secs_f64() + 1.0);
    handle.stop();
    handle.wait()?;
    // The count goes on across every swap: no row lost or repeated.
    let seen: Vec<i64> = rows
        .batches()
        .iter()
        .flat_map(|b| {
            b.column_by_name("seen")
                .map(|c| c.as_primitive::<Int64Type>().values().to_vec())
                .unwrap_or_default()
        })
        .collect();
    ensure!(
        seen.iter().copied().eq(1..=seen.len() as i64),
        "the count broke across a swap"
    );
    pauses.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("hot-swap.input_rate: {rate:.0} rows/s (target {RATE})");
    println!(
        "hot-swap.swaps: {SWAPS}, {} rows counted through them in order",
        seen.len()
    );
    println!("hot-swap.pause_p50: {:.2} ms", ms(pauses[SWAPS / 2]));
    println!("hot-swap.pause_max: {:.2} ms", ms(pauses[SWAPS - 1]));
    println!(
        "hot-swap.load_mean: {:.1} ms (loading the new version, off the job's thread)",
        loads.iter().map(|d| ms(*d)).sum::<f64>() / SWAPS as f64
    );
    Ok(())
}
