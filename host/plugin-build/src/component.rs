//! Shared steps of the languages that compile to a core module: the
//! contract's WIT, and adapting a core module into a component.

use std::path::Path;

use wit_bindgen_core::wit_parser::{Resolve, WorldId};
use wit_bindgen_core::{Files, WorldGenerator};

use crate::error::BuildError;
use crate::sdk;

/// The contract's WIT package resolved, and the id of `world` in it.
fn resolve_world(world: &str) -> Result<(Resolve, WorldId), BuildError> {
    let failed = |e: anyhow::Error| BuildError::ToolFailed {
        tool: "wit-parser".into(),
        status: format!("world {world}"),
        output: format!("{e:#}"),
    };
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(sdk::wit_dir()?).map_err(failed)?;
    let id = resolve
        .select_world(&[package], Some(world))
        .map_err(failed)?;
    Ok((resolve, id))
}

/// The bindings of `world` that `generator` (the `tool` named in errors)
/// writes, with the resolved contract they were generated from.
pub(crate) fn generate_bindings(
    world: &str,
    tool: &str,
    mut generator: Box<dyn WorldGenerator>,
) -> Result<(Resolve, WorldId, Files), BuildError> {
    let (mut resolve, id) = resolve_world(world)?;
    let mut files = Files::default();
    generator
        .generate(&mut resolve, id, &mut files)
        .map_err(|e| BuildError::ToolFailed {
            tool: tool.into(),
            status: format!("world {world}"),
            output: format!("{e:#}"),
        })?;
    Ok((resolve, id, files))
}

/// Write the component made of the wasip1 reactor `module` (which carries
/// its component type) to `out`, adapting WASI preview1 to preview2.
pub(crate) fn write_component(module: &[u8], out: &Path) -> Result<(), BuildError> {
    let component = wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| {
            encoder.validate(true).adapter(
                "wasi_snapshot_preview1",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|encoder| encoder.encode())
        .map_err(|e| BuildError::ToolFailed {
            tool: "wit-component".into(),
            status: "component new".into(),
            output: format!("{e:#}"),
        })?;
    std::fs::write(out, component).map_err(BuildError::io(out))
}
