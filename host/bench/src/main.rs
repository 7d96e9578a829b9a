//! Benchmarks. Each prints its figures as lines `NAME: VALUE UNIT`.
//!
//! ```text
//! cargo run --release -p sluice-bench -- wasm-overhead
//! cargo run --release -p sluice-bench -- kafka-throughput   # needs scripts/services start
//! cargo run --release -p sluice-bench -- kafka-latency
//! cargo run --release -p sluice-bench -- nexmark
//! cargo run --release -p sluice-bench -- decode
//! cargo run --release -p sluice-bench -- languages
//! cargo run --release -p sluice-bench -- parallelism
//! cargo run --release -p sluice-bench -- checkpoint   # needs scripts/services start
//! cargo run --release -p sluice-bench -- hot-swap
//! cargo run --release -p sluice-bench -- tenants
//! ```

mod checkpoint;
mod decode;
mod hot_swap;
mod kafka;
mod languages;
mod nexmark;
mod parallelism;
mod tenants;
mod wasm_overhead;

use anyhow::bail;

fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_default();
    match name.as_str() {
        "wasm-overhead" => wasm_overhead::run(),
        "kafka-throughput" => kafka::throughput(),
        "kafka-latency" => kafka::latency(),
        "nexmark" => nexmark::run(),
        "decode" => decode::run(),
        "languages" => languages::run(),
        "parallelism" => parallelism::run(),
        "checkpoint" => checkpoint::run(),
        "hot-swap" => hot_swap::run(),
        "tenants" => tenants::run(),
        other => bail!(
            "unknown benchmark {other:?}; available: wasm-overhead, kafka-throughput, kafka-latency, nexmark, decode, languages, parallelism, checkpoint, hot-swap, tenants"
        ),
    }
}

/// The middle of `values` (the upper middle of an even count).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
