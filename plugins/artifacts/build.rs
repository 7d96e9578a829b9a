//! Builds every guest crate of the workspace for `wasm32-wasip2` (the
//! output is already a component) into `target/wasm`, the plugins in the
//! other languages whose features are on (`plugins/<lang>/<name>`, with
//! `sluice-plugin-build`) into `target/wasm/<lang>`, and writes their paths
//! as constants for the host's tests and benchmarks.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (constant name, crate, artifact file stem).
const GUESTS: &[(&str, &str, &str)] = &[
    ("FILTER", "filter", "filter"),
    ("PII_REDACT", "pii-redact", "pii_redact"),
    ("ENRICH", "enrich", "enrich"),
    ("ROUTE_SPLIT", "route-split", "route_split"),
    ("NEXMARK_Q0", "nexmark-q0", "nexmark_q0"),
    ("NEXMARK_Q1", "nexmark-q1", "nexmark_q1"),
    ("NEXMARK_Q2", "nexmark-q2", "nexmark_q2"),
    ("NEXMARK_Q5", "nexmark-q5", "nexmark_q5"),
    ("NEXMARK_Q7", "nexmark-q7", "nexmark_q7"),
    ("NEXMARK_Q11", "nexmark-q11", "nexmark_q11"),
    ("STATS", "stats", "stats"),
    ("TOP_K", "top-k", "top_k"),
    ("APPROX_DISTINCT", "approx-distinct", "approx_distinct"),
    ("PERCENTILES", "percentiles", "percentiles"),
    ("SPIN_FOREVER", "spin-forever", "spin_forever"),
    ("ALLOC_FOREVER", "alloc-forever", "alloc_forever"),
    ("SANDBOX_PROBE", "sandbox-probe", "sandbox_probe"),
    ("ROW_COUNTER", "row-counter", "row_counter"),
    ("HOSTILE_OUTPUTS", "hostile-outputs", "hostile_outputs"),
];

/// (constant name, project directory under `plugins/`) of the plugins in
/// other languages.
const PROJECTS: &[(&str, &str)] = &[
    ("PYTHON_PII_REDACT", "python/pii-redact"),
    ("PYTHON_FILTER", "python/filter"),
    ("PYTHON_STATS", "python/stats"),
    ("JS_PII_REDACT", "js/pii-redact"),
    ("JS_FILTER", "js/filter"),
    ("C_PII_REDACT", "c/pii-redact"),
    ("C_FILTER", "c/filter"),
    ("GO_PII_REDACT", "go/pii-redact"),
    ("GO_FILTER", "go/filter"),
];

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "wasm";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    for dir in ["plugins", "guest-sdk", "tests/guests", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    let target_dir = root.join("target").join("wasm");
    let mut command = sluice_plugin_build::guest_cargo();
    command
        .current_dir(&root)
        .args([
            "build",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
            "--target-dir",
        ])
        .arg(&target_dir);
    for (_, krate, _) in GUESTS {
        command.args(["-p", krate]);
    }
    // The other languages' packagers run beside cargo.
    let built = std::thread::scope(|scope| {
        let projects = scope.spawn(|| build_projects(&root, &target_dir));
        let status = command
            .status()
            .expect("running cargo to build the Wasm plugins");
        (
            status,
            projects.join().expect("building the plugin projects"),
        )
    });
    let (status, projects) = built;
    assert!(
        status.success(),
        "building the Wasm plugins failed; is the target installed? Run `rustup target add {TARGET}` (or ./scripts/setup)"
    );

    let mut constants = String::new();
    for (name, krate, stem) in GUESTS {
        let path = target_dir
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{stem}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        writeln!(
            constants,
            "/// The `{krate}` component.\npub const {name}: &str = {:?};",
            path.display().to_string()
        )
        .unwrap();
    }
    for (name, path) in projects {
        writeln!(
            constants,
            "/// The component built from `plugins/{}`.\npub const {name}: &str = {:?};",
            PROJECTS.iter().find(|(n, _)| *n == name).unwrap().1,
            path.display().to_string()
        )
        .unwrap();
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("artifacts.rs");
    std::fs::write(out, constants).unwrap();
}

/// Whether the crate feature of `language` (`python`, `js`, `c`, `go`) is on.
fn wanted(language: &str) -> bool {
    env::var_os(format!("CARGO_FEATURE_{}", language.to_uppercase())).is_some()
}

/// Build every project of [`PROJECTS`] whose language is wanted, two at a
/// time; returns (constant name, component path).
fn build_projects(root: &Path, target_dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let build = |&(name, dir): &(&'static str, &str)| {
        let language = dir.split('/').next().unwrap();
        let out_dir = target_dir.join(language);
        match sluice_plugin_build::build(&root.join("plugins").join(dir), &out_dir) {
            Ok(path) => (name, path),
            Err(e) => {
                panic!("building plugins/{dir}: {e}\n(./scripts/setup installs every toolchain)")
            }
        }
    };
    let projects: Vec<_> = PROJECTS
        .iter()
        .filter(|(_, dir)| wanted(dir.split('/').next().unwrap()))
        .collect();
    let (first, second) = projects.split_at(projects.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| second.iter().copied().map(build).collect::<Vec<_>>());
        let mut built: Vec<_> = first.iter().copied().map(build).collect();
        built.extend(other.join().expect("a plugin build thread"));
        built
    })
}
