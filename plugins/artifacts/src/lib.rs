//! Paths of the repo's guest plugins, built from source into Wasm
//! components by this crate's build script.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
