//! C plugins: `plugin.c` over `sluice.h`, bindings from `wit-bindgen-c`
//! (as a library), clang for wasm32-wasi, and the preview1 reactor adapter
//! to make the component.

use std::path::Path;
use std::process::Command;

use crate::component;
use crate::error::BuildError;
use crate::manifest::{Project, World};
use crate::sdk;
use crate::toolchain;

/// Build `project` into the component `out`.
pub(crate) fn build(project: &Project, out: &Path) -> Result<(), BuildError> {
    let entry = project.dir.join("plugin.c");
    if !entry.is_file() {
        return Err(BuildError::Manifest {
            path: entry,
            reason: "a C plugin's source is plugin.c".into(),
        });
    }
    if project.world != World::Transform {
        return Err(BuildError::Manifest {
            path: project.dir.join(crate::MANIFEST),
            reason: "C plugins implement the transform world only".into(),
        });
    }
    let clang = toolchain::clang()?;
    let dir = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
    let world = project.world.name();
    // `<world>.h`, `<world>.c` and the object holding the component type.
    let (_, _, bindings) = component::generate_bindings(
        world,
        "wit-bindgen-c",
        wit_bindgen_c::Opts::default().build(),
    )?;
    for (name, bytes) in bindings.iter() {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).map_err(BuildError::io(&path))?;
    }
    let sdk = sdk::sdk_dir("c")?;
    let core = dir.path().join("core.wasm");
    let mut command = Command::new(clang);
    command
        .args([
            "--target=wasm32-wasi",
            "-O2",
            "-mexec-model=reactor",
            "-std=c11",
        ])
        .args(["-Wall", "-Werror=implicit-function-declaration"])
        .arg("-I")
        .arg(&sdk)
        .arg("-I")
        .arg(dir.path())
        .arg(&entry)
        .arg(sdk.join("sluice.c"))
        .arg(dir.path().join(format!("{world}.c")))
        .arg(dir.path().join(format!("{world}_component_type.o")))
        .arg("-o")
        .arg(&core);
    toolchain::run(command, "clang")?;
    let module = std::fs::read(&core).map_err(BuildError::io(&core))?;
    component::write_component(&module, out)
}
