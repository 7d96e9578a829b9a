//! Rust plugins: a cargo project on `sluice-sdk`, for `wasm32-wasip2`.

use std::path::Path;
use std::process::Command;

use crate::error::BuildError;
use crate::manifest::Project;
use crate::toolchain;

/// `cargo` (the one running this build, if any) for building guests: the
/// flags of an enclosing host build are for the host, not for the guests.
pub fn guest_cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    command
}

/// Build `project` into the component `out`.
pub(crate) fn build(project: &Project, out: &Path) -> Result<(), BuildError> {
    let target_dir = project.dir.join("target");
    let mut command = guest_cargo();
    command
        .current_dir(&project.dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    toolchain::run(command, "cargo").map_err(|e| match e {
        BuildError::ToolFailed { output, .. } if output.contains("target may not be installed") => {
            BuildError::MissingToolchain {
                tool: "the Rust target wasm32-wasip2".into(),
                needed_for: "Rust plugins",
                install: "rustup target add wasm32-wasip2".into(),
            }
        }
        other => other,
    })?;
    let built = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", project.name.replace('-', "_")));
    std::fs::copy(&built, out).map_err(BuildError::io(&built))?;
    Ok(())
}
