//! Go plugins: a package with `func Transform(*sluice.Batch, sluice.Config)
//! error`, bindings from `wit-bindgen-go` (as a library), Go's wasip1
//! target as a reactor, and the preview1 reactor adapter.
//!
//! The build module is assembled in a temporary directory: the generated
//! bindings, the SDK's glue as the export package, the plugin's `.go` files
//! (not its tests) as package `wit_component/plugin`, and a `go.mod` that
//! points `sluice` and `go.bytecodealliance.org/pkg` at local copies, since
//! the Go module proxy is out of reach.

use std::path::Path;
use std::process::Command;

use wit_component::StringEncoding;

use crate::component;
use crate::error::BuildError;
use crate::manifest::{Project, World};
use crate::sdk;
use crate::toolchain;

/// Build `project` into the component `out`.
pub(crate) fn build(project: &Project, out: &Path) -> Result<(), BuildError> {
    if project.world != World::Transform {
        return Err(BuildError::Manifest {
            path: project.dir.join(crate::MANIFEST),
            reason: "Go plugins implement the transform world only".into(),
        });
    }
    let sources = plugin_sources(&project.dir)?;
    let go = toolchain::go()?;
    let dir = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
    let world = project.world.name();
    let (resolve, id, files) = component::generate_bindings(
        world,
        "wit-bindgen-go",
        wit_bindgen_go::Opts {
            format: wit_bindgen_go::Format::False,
            ..Default::default()
        }
        .build(),
    )?;
    let sdk = sdk::sdk_dir("go")?;
    let mut module_files: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(name, _)| *name != "go.mod")
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect();
    module_files.push(("go.mod".into(), go_mod(&sdk).into_bytes()));
    let glue = sdk.join("glue/transformer.go");
    let glue_text = std::fs::read(&glue).map_err(BuildError::io(&glue))?;
    module_files.push((
        "export_sluice_plugin_transformer/transformer.go".into(),
        glue_text,
    ));
    for source in sources {
        let text = std::fs::read(&source).map_err(BuildError::io(&source))?;
        let name = source.file_name().expect("a listed file has a name");
        module_files.push((format!("plugin/{}", name.to_string_lossy()), text));
    }
    for (name, bytes) in module_files {
        let path = dir.path().join(name);
        let parent = path.parent().expect("a module file has a directory");
        std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        std::fs::write(&path, bytes).map_err(BuildError::io(&path))?;
    }
    let core = dir.path().join("core.wasm");
    let mut command = Command::new(go);
    command
        .current_dir(dir.path())
        .envs([
            ("GOOS", "wasip1"),
            ("GOARCH", "wasm"),
            ("GOTOOLCHAIN", "local"),
            ("GOPROXY", "off"),
            ("GOFLAGS", "-mod=mod"),
            ("GOWORK", "off"),
        ])
        .args([
            "build",
            "-buildmode=c-shared",
            "-ldflags=-checklinkname=0",
            "-o",
        ])
        .arg(&core)
        .arg(".");
    toolchain::run(command, "go build")?;
    let mut module = std::fs::read(&core).map_err(BuildError::io(&core))?;
    // Names exactly as the WIT spells them (`sluice:plugin@0.1.0`), not
    // the canonical `@0.1` form.
    let canonical_names = false;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        id,
        StringEncoding::UTF8,
        canonical_names,
    )
    .map_err(|e| BuildError::ToolFailed {
        tool: "wit-component".into(),
        status: "component embed".into(),
        output: format!("{e:#}"),
    })?;
    component::write_component(&module, out)
}

/// The plugin's Go sources: every `.go` file of the project but its tests.
fn plugin_sources(dir: &Path) -> Result<Vec<std::path::PathBuf>, BuildError> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(BuildError::io(dir))? {
        let path = entry.map_err(BuildError::io(dir))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".go") && !name.ends_with("_test.go") {
            sources.push(path);
        }
    }
    if sources.is_empty() {
        return Err(BuildError::Manifest {
            path: dir.join(crate::MANIFEST),
            reason: "a Go plugin's source is the project's .go files (none found)".into(),
        });
    }
    sources.sort();
    Ok(sources)
}

/// The build module's `go.mod`: the SDK and the bindings' runtime package
/// resolve to the SDK's directory and its copy of go-pkg.
fn go_mod(sdk: &Path) -> String {
    format!(
        "module wit_component\n\ngo 1.25\n\nrequire (\n\tgo.bytecodealliance.org/pkg {pkg}\n\tsluice v0.0.0\n)\n\n\
         replace go.bytecodealliance.org/pkg => {sdk}/third_party/go-pkg\n\nreplace sluice => {sdk}\n",
        pkg = wit_bindgen_go::remote_pkg_version()
            .rsplit(' ')
            .next()
            .expect("a module version"),
        sdk = sdk.display(),
    )
}
