//! Host bindings generated from `wit/plugin.wit`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "transform",
});

/// The `aggregate` world, sharing the types and host imports above.
pub(crate) mod aggregate {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "aggregate",
        with: {
            "sluice:plugin/types": super::sluice::plugin::types,
            "sluice:plugin/host": super::sluice::plugin::host,
        },
    });
}
