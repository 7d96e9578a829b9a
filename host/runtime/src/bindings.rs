//! Host bindings generated from the plugin contract: 0.1
//! (`wit/v0.1/plugin.wit`) at the root, and 0.2 (`wit/plugin.wit`) in
//! [`v0_2`]. 0.2 left the shared types as 0.1 had them, so both versions
//! use 0.1's Rust types for them.

wasmtime::component::bindgen!({
    path: "../../wit/v0.1",
    world: "transform",
});

/// The 0.1 `aggregate` world, sharing the types and host imports above.
/// Its aggregator is the same in 0.2.
pub(crate) mod aggregate {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "aggregate",
        with: {
            "sluice:plugin/types": super::sluice::plugin::types,
            "sluice:plugin/host": super::sluice::plugin::host,
        },
    });
}

/// The 0.2 contract: its host imports and its transformer's output.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "transform",
        with: {
            "sluice:plugin/types@0.2.0": super::sluice::plugin::types,
        },
    });
}
