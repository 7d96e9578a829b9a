//! Paths of the repo's guest plugins, built from source into Wasm
//! components by this crate's build script.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// Every plugin meant for users, as (crate name, component path).
pub const EXAMPLE_PLUGINS: &[(&str, &str)] = &[
    ("filter", FILTER),
    ("pii-redact", PII_REDACT),
    ("enrich", ENRICH),
    ("route-split", ROUTE_SPLIT),
];
