//! `sluice plugin new`: a plugin project with a native test.

use std::path::Path;

use crate::error::BuildError;
use crate::manifest::{Language, MANIFEST};
use crate::sdk;

/// The files of a new project in `language`: (path, contents with
/// `{{name}}` and `{{sdk}}` placeholders).
fn template(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Rust => &[
            ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
        ],
        Language::Python => &[
            ("plugin.py", include_str!("../templates/python/plugin.py")),
            (
                "test_plugin.py",
                include_str!("../templates/python/test_plugin.py"),
            ),
        ],
        Language::Js => &[
            ("package.json", include_str!("../templates/js/package.json")),
            ("plugin.js", include_str!("../templates/js/plugin.js")),
            (
                "plugin.test.js",
                include_str!("../templates/js/plugin.test.js"),
            ),
        ],
        Language::C => &[
            ("plugin.c", include_str!("../templates/c/plugin.c")),
            ("test.sh", include_str!("../templates/c/test.sh")),
            (
                "test/job.toml",
                include_str!("../templates/c/test/job.toml"),
            ),
            (
                "test/input.jsonl",
                include_str!("../templates/c/test/input.jsonl"),
            ),
            (
                "test/expected.jsonl",
                include_str!("../templates/c/test/expected.jsonl"),
            ),
        ],
        Language::Go => &[
            ("go.mod", include_str!("../templates/go/go.mod")),
            ("plugin.go", include_str!("../templates/go/plugin.go")),
            (
                "plugin_test.go",
                include_str!("../templates/go/plugin_test.go"),
            ),
        ],
    }
}

/// Create the project `dir` (named after its last component) in
/// `language`, with a transform and its test.
pub fn scaffold(language: Language, dir: &Path) -> Result<(), BuildError> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .ok_or_else(|| {
            BuildError::Scaffold(format!(
                "{}: a plugin's name is letters, digits, `-` and `_`",
                dir.display()
            ))
        })?;
    if dir.exists() {
        return Err(BuildError::Scaffold(format!(
            "{} already exists",
            dir.display()
        )));
    }
    let sdk = sdk::sdk_dir(language.name())?;
    let mut files = vec![(
        MANIFEST,
        format!("name = {name:?}\nlanguage = \"{language}\"\nworld = \"transform\"\n"),
    )];
    for (path, text) in template(language) {
        let text = text
            .replace("{{name}}", name)
            .replace("{{sdk}}", &sdk.display().to_string());
        files.push((path, text));
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        std::fs::write(&path, text).map_err(BuildError::io(&path))?;
    }
    if language == Language::Js {
        // So that `import ... from "sluice"` resolves in the native tests.
        let link = dir.join("node_modules/sluice");
        std::fs::create_dir_all(dir.join("node_modules")).map_err(BuildError::io(dir))?;
        std::os::unix::fs::symlink(&sdk, &link).map_err(BuildError::io(&link))?;
    }
    Ok(())
}
