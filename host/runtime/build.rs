//! Names the wasmtime this host is built with (from the workspace's
//! `Cargo.lock`) as `SLUICE_WASMTIME_VERSION`, for `sluice --version`.

use std::path::PathBuf;

fn main() {
    let lock = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let version = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|lock| {
            lock.get("package")?
                .as_array()?
                .iter()
                .find(|package| package.get("name").and_then(|n| n.as_str()) == Some("wasmtime"))?
                .get("version")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown (built without the workspace's Cargo.lock)".into());
    println!("cargo:rustc-env=SLUICE_WASMTIME_VERSION={version}");
}
