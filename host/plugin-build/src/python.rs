//! Python plugins: `plugin.py` and the `sluice` package, by componentize-py.

use std::path::Path;
use std::process::Command;

use crate::error::BuildError;
use crate::manifest::{Project, World};
use crate::sdk;
use crate::toolchain;

/// Build `project` into the component `out`.
pub(crate) fn build(project: &Project, out: &Path) -> Result<(), BuildError> {
    let entry = project.dir.join("plugin.py");
    if !entry.is_file() {
        return Err(BuildError::Manifest {
            path: entry,
            reason: "a Python plugin's source is plugin.py".into(),
        });
    }
    let componentize = toolchain::componentize_py()?;
    // The app module componentize-py wraps: the author's module, which
    // registers its function, and the SDK's export of the world.
    let app = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
    let export = match project.world {
        World::Transform => "from sluice._transform import Transformer",
        World::Aggregate => "from sluice._aggregate import Aggregator",
    };
    let main = app.path().join("sluice_main.py");
    std::fs::write(
        &main,
        format!("import plugin  # noqa: F401\n{export}  # noqa: F401\n"),
    )
    .map_err(BuildError::io(&main))?;
    let mut command = Command::new(componentize);
    command
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-d")
        .arg(sdk::newest_wit_dir()?)
        .args(["-w", project.world.name(), "componentize", "sluice_main"])
        .arg("-p")
        .arg(app.path())
        .arg("-p")
        .arg(sdk::sdk_dir("python")?)
        .arg("-p")
        .arg(&project.dir)
        .arg("-o")
        .arg(out);
    toolchain::run(command, "componentize-py")
}
