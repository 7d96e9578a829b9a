//! `wasm-overhead`: the same transform natively and as a Wasm plugin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{PluginLimits, Runtime, RuntimeConfig, TransformPlugin};

/// How long each side of a comparison runs per round.
const ROUND: Duration = Duration::from_millis(300);
/// Rounds per size; native and Wasm alternate so both see the same machine.
const ROUNDS: usize = 5;

/// The same pii-redact transform natively and as a Wasm plugin, on identical
/// batches, plus the fixed cost of one call on an empty batch.
pub(crate) fn run() -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let config = vec![("columns".to_owned(), "email,note".to_owned())];
    let plugin = TransformPlugin::load(
        &runtime,
        "pii-redact",
        artifacts::PII_REDACT.as_ref(),
        config.clone(),
        PluginLimits::default(),
    )
    .context("loading pii-redact")?;
    let native_config = sluice_sdk::Config::from(config);

    for rows in [1_000, 8_000, 64_000] {
        let batch = sample_batch(rows, 42);
        // Same output from both, or the comparison means nothing.
        let native_out = pii_redact::redact(batch.clone(), &native_config)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            plugin.process(&batch)?.batch == native_out,
            "native and Wasm outputs differ"
        );

        let (mut native_best, mut wasm_best) = (0.0f64, 0.0f64);
        for _ in 0..ROUNDS {
            native_best = native_best.max(rows_per_second(rows, || {
                std::hint::black_box(pii_redact::redact(batch.clone(), &native_config).ok());
            }));
            wasm_best = wasm_best.max(rows_per_second(rows, || {
                std::hint::black_box(plugin.process(&batch).ok());
            }));
        }
        let label = format!("{}k", rows / 1000);
        println!("wasm-overhead.native.{label}: {native_best:.0} rows/s");
        println!("wasm-overhead.wasm.{label}: {wasm_best:.0} rows/s");
        println!(
            "wasm-overhead.ratio_wasm_over_native.{label}: {:.3} x",
            native_best / wasm_best
        );
    }

    let empty = sample_batch(0, 1);
    let calls = 20_000;
    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(plugin.process(&empty)?);
    }
    println!(
        "wasm-overhead.empty_call: {:.0} ns",
        started.elapsed().as_nanos() as f64 / calls as f64
    );
    Ok(())
}

/// Best-effort throughput of `f` over one round, in rows per second.
pub(crate) fn rows_per_second(rows: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < ROUND {
        f();
        calls += 1;
    }
    (calls * rows as u64) as f64 / started.elapsed().as_secs_f64()
}

/// Rows of sign-up events: an id, an e-mail, a free-text note that sometimes
/// holds an e-mail or card number, and an amount.
pub(crate) fn sample_batch(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = SmallRng::seed_from_u64(seed);
    let words = [
        "order", "refund", "please", "call", "about", "invoice", "today", "thanks",
    ];
    let emails: StringArray = (0..rows)
        .map(|i| Some(format!("user{i}.name@example{}.com", i % 7)))
        .collect();
    let notes: StringArray = (0..rows)
        .map(|_| {
            let mut text: Vec<String> = (0..rng.random_range(4..10))
                .map(|_| words[rng.random_range(0..words.len())].to_owned())
                .collect();
            match rng.random_range(0..4) {
                0 => text.push("reach me at jane.doe@mail.example.org".into()),
                1 => text.push("card 4111 1111 1111 1111".into()),
                _ => {}
            }
            Some(text.join(" "))
        })
        .collect();
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..rows as i64)) as ArrayRef,
        ),
        ("email", Arc::new(emails)),
        ("note", Arc::new(notes)),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| i as f64 * 0.5),
            )),
        ),
    ])
    .expect("sample batch")
}
