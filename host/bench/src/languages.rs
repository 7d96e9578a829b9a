//! `languages`: the same transforms as Rust, Python, JavaScript, C and
//! Go plugins, on identical batches, and how fast large components start.

use std::time::Instant;

use anyhow::Context;
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{PluginLimits, Runtime, RuntimeConfig, TransformPlugin};

use crate::wasm_overhead::{rows_per_second, sample_batch};

/// (language, pii-redact, filter) components.
const PLUGINS: &[(&str, &str, &str)] = &[
    ("rust", artifacts::PII_REDACT, artifacts::FILTER),
    (
        "python",
        artifacts::PYTHON_PII_REDACT,
        artifacts::PYTHON_FILTER,
    ),
    ("js", artifacts::JS_PII_REDACT, artifacts::JS_FILTER),
    ("c", artifacts::C_PII_REDACT, artifacts::C_FILTER),
    ("go", artifacts::GO_PII_REDACT, artifacts::GO_FILTER),
];

/// Rounds per language; languages alternate so all see the same machine.
const ROUNDS: usize = 3;
/// Rows per batch.
const ROWS: usize = 8_000;

fn owned(config: &[(&str, &str)]) -> Vec<(String, String)> {
    config
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Rows per second of pii-redact and of filter in every language, their
/// ratio to Rust, then compile time against cached-load time.
pub(crate) fn run() -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let batch = sample_batch(ROWS, 42);
    let transforms: [(&str, Vec<(String, String)>); 2] = [
        ("pii-redact", owned(&[("columns", "email,note")])),
        (
            "filter",
            owned(&[("column", "amount"), ("op", "gt"), ("value", "1000")]),
        ),
    ];
    for (index, (transform, config)) in transforms.iter().enumerate() {
        let plugins = PLUGINS
            .iter()
            .map(|(language, redact, filter)| {
                let path = if index == 0 { redact } else { filter };
                let plugin = TransformPlugin::load(
                    &runtime,
                    language,
                    path.as_ref(),
                    config.clone(),
                    PluginLimits::default(),
                )
                .with_context(|| format!("loading the {language} {transform}"))?;
                Ok((*language, plugin))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The same output from every language, or the comparison means nothing.
        let reference = plugins[0].1.process(&batch)?.batch;
        for (language, plugin) in &plugins[1..] {
            anyhow::ensure!(
                plugin.process(&batch)?.batch == reference,
                "{language} {transform} differs from the Rust plugin"
            );
        }
        let mut best = vec![0.0f64; plugins.len()];
        for _ in 0..ROUNDS {
            for (i, (_, plugin)) in plugins.iter().enumerate() {
                best[i] = best[i].max(rows_per_second(ROWS, || {
                    std::hint::black_box(plugin.process(&batch).ok());
                }));
            }
        }
        for ((language, _), rate) in plugins.iter().zip(&best) {
            println!("languages.{transform}.{language}: {rate:.0} rows/s");
            println!(
                "languages.{transform}.{language}.ratio_to_rust: {:.3} x",
                best[0] / rate
            );
        }
    }
    startup()
}

/// Compiling each component in a fresh process-like runtime, against
/// loading its compiled artifact from the on-disk cache in another.
fn startup() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    };
    for (language, path, _) in PLUGINS {
        let size = std::fs::metadata(path)?.len();
        let timed = || -> anyhow::Result<f64> {
            // A new runtime: nothing compiled in memory, as after a restart.
            let runtime = Runtime::new(config.clone())?;
            let started = Instant::now();
            TransformPlugin::load(
                &runtime,
                language,
                path.as_ref(),
                Vec::new(),
                PluginLimits::default(),
            )?;
            Ok(started.elapsed().as_secs_f64())
        };
        let compile = timed()?;
        let cached = timed()?;
        println!(
            "languages.component_size.{language}: {:.1} MB",
            size as f64 / 1e6
        );
        println!("languages.load_compiling.{language}: {:.3} s", compile);
        println!("languages.load_cached.{language}: {:.1} ms", cached * 1e3);
        println!(
            "languages.load_ratio_compiling_over_cached.{language}: {:.0} x",
            compile / cached
        );
    }
    Ok(())
}
