//! Helpers for the end-to-end tests: find and run the `sluice` binary,
//! and talk to the test brokers.

pub mod kafka;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `sluice` binary cargo built beside this test executable.
pub fn sluice_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = dir.join("sluice");
    assert!(
        binary.exists(),
        "{} not built; run `cargo test --workspace`",
        binary.display()
    );
    binary
}

/// Run `sluice run JOB` with a private compile cache.
pub fn run_job(job: &Path, cache: &Path) -> Output {
    Command::new(sluice_binary())
        .arg("run")
        .arg(job)
        .arg("--cache-dir")
        .arg(cache)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running sluice")
}

/// The JSON objects of a JSON-lines file.
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}
