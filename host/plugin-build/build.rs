//! Embeds the plugin contract (`wit/`) and the guest SDKs that are plain
//! files (`guest-sdk/{python,js,c,go}`), so `sluice plugin new|build` work
//! from an installed binary, away from the checkout it was built from.

use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};

/// The embedded directories, relative to the repository.
const DIRS: &[&str] = &[
    "wit",
    "guest-sdk/python",
    "guest-sdk/js",
    "guest-sdk/c",
    "guest-sdk/go",
];
/// Generated or installed entries that are not part of an SDK.
const SKIPPED: &[&str] = &["__pycache__", "node_modules", "target"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let mut files = Vec::new();
    for dir in DIRS {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(&dir, &mut files);
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    let mut entries = String::new();
    for path in &files {
        let relative = path.strip_prefix(&root).unwrap().to_str().unwrap();
        hasher.write(relative.as_bytes());
        hasher.write(&std::fs::read(path).unwrap());
        writeln!(
            entries,
            "    ({relative:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    let code = format!(
        "/// The embedded files: (path relative to the repository, contents).\n\
         pub(crate) const FILES: &[(&str, &[u8])] = &[\n{entries}];\n\
         /// A hash of every embedded path and content.\n\
         pub(crate) const HASH: &str = \"{:016x}\";\n",
        hasher.finish()
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sdk_files.rs");
    std::fs::write(out, code).unwrap();
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if SKIPPED.contains(&name.as_ref()) || name.ends_with(".pyc") {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
