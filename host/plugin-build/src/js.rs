//! JavaScript plugins: `plugin.js` and the `sluice` module, by
//! componentize-js.

use std::path::Path;
use std::process::Command;

use crate::error::BuildError;
use crate::manifest::{Project, World};
use crate::sdk;
use crate::toolchain;

/// The SDK's modules, copied beside the plugin for componentize-js.
const SDK_FILES: &[&str] = &[
    "sluice.js",
    "_columnar.js",
    "_transform.js",
    "_aggregate.js",
];

/// Build `project` into the component `out`.
pub(crate) fn build(project: &Project, out: &Path) -> Result<(), BuildError> {
    let entry = project.dir.join("plugin.js");
    let source = std::fs::read_to_string(&entry).map_err(|e| BuildError::Manifest {
        path: entry.clone(),
        reason: format!("{e}; a JavaScript plugin's source is plugin.js"),
    })?;
    let (node, modules) = toolchain::componentize_js()?;
    let dir = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
    let sdk = sdk::sdk_dir("js")?;
    for file in SDK_FILES {
        let from = sdk.join(file);
        std::fs::copy(&from, dir.path().join(file)).map_err(BuildError::io(&from))?;
    }
    // componentize-js resolves relative imports only: the author's
    // `from "sluice"` becomes the copy beside it.
    let source = source
        .replace("from \"sluice\"", "from \"./sluice.js\"")
        .replace("from 'sluice'", "from './sluice.js'");
    let plugin = dir.path().join("plugin.js");
    std::fs::write(&plugin, source).map_err(BuildError::io(&plugin))?;
    let export = match project.world {
        World::Transform => "export { transformer } from \"./_transform.js\";",
        World::Aggregate => "export { aggregator } from \"./_aggregate.js\";",
    };
    let main = dir.path().join("main.js");
    std::fs::write(&main, format!("import \"./plugin.js\";\n{export}\n"))
        .map_err(BuildError::io(&main))?;
    let mut command = Command::new(node);
    command
        .arg(sdk.join("build.mjs"))
        .arg(&modules)
        .arg(&main)
        .arg(sdk::newest_wit_dir()?)
        .arg(project.world.name())
        .arg(out);
    toolchain::run(command, "componentize-js")
}
