//! The job file's JSON Schema, derived from the types that parse it, and
//! the reference page generated from that schema. Both are kept in the
//! repo (`docs/job.schema.json`, `docs/job-file.md`), and a test fails when
//! either falls behind the code.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::job::RawJob;

/// The JSON Schema of a job file (draft 2020-12), for editors: Taplo and
/// Even Better TOML complete and check a file that starts with
/// `#:schema PATH-OR-URL`.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(RawJob).to_value();
    write_durations_as_text(&mut schema);
    schema
}

/// Defaults of duration fields as a job file writes them (`"5s"`), not as
/// `std::time::Duration` serialises (`{"secs": 5, "nanos": 0}`).
fn write_durations_as_text(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if object.get("$ref").and_then(Value::as_str) == Some("#/$defs/Duration")
                && let Some(default) = object.get_mut("default")
                && let Ok(duration) = serde_json::from_value::<Duration>(default.clone())
            {
                *default = Value::from(humantime::format_duration(duration).to_string());
            }
            object.values_mut().for_each(write_durations_as_text);
        }
        Value::Array(items) => items.iter_mut().for_each(write_durations_as_text),
        _ => {}
    }
}

/// The job file's reference page, in Markdown: every section and field,
/// with its type, default and meaning, generated from [`json_schema`].
pub fn reference() -> String {
    let schema = json_schema();
    let empty = Map::new();
    let defs = schema["$defs"].as_object().unwrap_or(&empty);
    let mut page = String::from(
        "# The job file\n\n\
         <!-- Generated from the config types by `SLUICE_BLESS=1 cargo test -p sluice-config`; do not edit. -->\n\n\
         A job is a TOML file that `sluice run JOB.toml` runs and `sluice check JOB.toml`\n\
         validates. Its JSON Schema, for editors, is [`job.schema.json`](job.schema.json):\n\
         start a job file with `#:schema PATH/docs/job.schema.json` and Taplo (or VS Code's\n\
         Even Better TOML) completes and checks it. Relative paths in a job file are taken\n\
         relative to the file.\n\n\
         Durations are text like `\"500ms\"`, `\"10s\"` or `\"1m\"`; sizes are a number of bytes\n\
         or text like `\"64 MiB\"`.\n\n## Sections\n\n",
    );
    write_properties(&mut page, &schema);
    let mut names: Vec<_> = defs.keys().collect();
    names.sort();
    for name in names {
        let def = &defs[name];
        if is_scalar_alias(def) {
            continue;
        }
        let _ = write!(page, "\n## {name}\n\n");
        write_description(&mut page, def);
        if def.get("properties").is_some() {
            write_properties(&mut page, def);
        }
        for variant in def["oneOf"].as_array().into_iter().flatten() {
            write_variant(&mut page, variant);
        }
    }
    page
}

/// Types such as `Duration` whose whole meaning is said where they are used.
fn is_scalar_alias(def: &Value) -> bool {
    def.get("properties").is_none() && def.get("oneOf").is_none()
}

fn write_description(page: &mut String, schema: &Value) {
    if let Some(description) = schema["description"].as_str() {
        let _ = write!(page, "{}\n\n", description.replace('\n', " "));
    }
}

/// One variant of a tagged enum (`type = "kafka"`) or of a plain one.
fn write_variant(page: &mut String, variant: &Value) {
    match tag_of(variant) {
        Some((tag, value)) => {
            let _ = write!(page, "### `{tag} = \"{value}\"`\n\n");
            write_description(page, variant);
            write_properties(page, variant);
        }
        None => {
            let _ = write!(page, "- {}", type_of(variant));
            if let Some(description) = variant["description"].as_str() {
                let _ = write!(page, ": {}", description.replace('\n', " "));
            }
            page.push('\n');
        }
    }
}

/// The tag property of an internally tagged enum's variant.
fn tag_of(variant: &Value) -> Option<(&str, &str)> {
    let properties = variant["properties"].as_object()?;
    properties
        .iter()
        .find_map(|(name, p)| Some((name.as_str(), p["const"].as_str()?)))
}

fn write_properties(page: &mut String, schema: &Value) {
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    page.push_str("| field | type | default | meaning |\n|---|---|---|---|\n");
    for (name, property) in properties {
        if property.get("const").is_some() {
            continue;
        }
        let default = match property.get("default") {
            Some(value) => format!("`{value}`"),
            None if required.contains(&name.as_str()) => "required".into(),
            None => "optional".into(),
        };
        let meaning = property["description"]
            .as_str()
            .unwrap_or("")
            .replace('\n', " ")
            .replace('|', "\\|");
        let _ = writeln!(
            page,
            "| `{name}` | {} | {default} | {meaning} |",
            type_of(property).replace('|', "\\|")
        );
    }
    page.push('\n');
}

/// A schema's type in a few words, linking to the sections of named types.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return match name {
            "Duration" | "ByteSize" | "SchemaVersion" | "Options" | "PluginConfig" => {
                name.to_lowercase()
            }
            _ => format!("[{name}](#{})", name.to_lowercase()),
        };
    }
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    if let Some(values) = schema["enum"].as_array() {
        return join(values.iter().map(|v| format!("`{v}`")));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema[key].as_array() {
            return join(options.iter().filter(|o| o["type"] != "null").map(type_of));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    join(types.into_iter().filter(|t| *t != "null").map(|t| match t {
        "array" => format!("array of {}", type_of(&schema["items"])),
        "object" => match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) => format!("table of {}", type_of(values)),
            _ => "table".into(),
        },
        other => other.into(),
    }))
}

fn join(parts: impl Iterator<Item = String>) -> String {
    let parts: Vec<String> = parts.collect();
    if parts.is_empty() {
        "any".into()
    } else {
        parts.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn docs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
    }

    /// The committed file at `name` must be what the code generates; with
    /// `SLUICE_BLESS=1` it is rewritten instead.
    fn check_generated(name: &str, generated: &str) {
        let path = docs().join(name);
        if std::env::var_os("SLUICE_BLESS").is_some() {
            std::fs::write(&path, generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/{name} is not what the config types generate: a field was added, removed or \
             documented differently. Regenerate it with `SLUICE_BLESS=1 cargo test -p sluice-config` \
             and commit the result."
        );
    }

    #[test]
    fn the_committed_json_schema_matches_the_config_types() {
        let schema = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        check_generated("job.schema.json", &schema);
    }

    #[test]
    fn the_committed_reference_page_matches_the_config_types() {
        check_generated("job-file.md", &reference());
    }

    /// The job files in `examples/` as JSON, by name.
    fn example_jobs() -> Vec<(String, Value)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut jobs: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).unwrap();
                let job: toml::Table = toml::from_str(&text).unwrap();
                (
                    path.display().to_string(),
                    serde_json::to_value(job).unwrap(),
                )
            })
            .collect();
        jobs.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(!jobs.is_empty(), "no example jobs found");
        jobs
    }

    #[test]
    fn every_example_job_is_valid_under_the_schema_and_a_misspelt_field_is_not() {
        let validator = jsonschema::validator_for(&json_schema()).unwrap();
        for (path, job) in example_jobs() {
            let errors: Vec<String> = validator.iter_errors(&job).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{path}: {errors:?}");
            let mut misspelt = job.clone();
            let trigger = misspelt["trigger"].as_object_mut();
            let section = match trigger {
                Some(trigger) => trigger,
                None => misspelt["source"].as_object_mut().unwrap(),
            };
            section.insert("max_rowz".into(), Value::from(5));
            assert!(
                !validator.is_valid(&misspelt),
                "{path} with a misspelt field passed"
            );
        }
    }

    #[test]
    fn the_schema_names_every_section_and_rejects_unknown_ones() {
        let schema = json_schema();
        for section in [
            "job",
            "source",
            "trigger",
            "transform",
            "sink",
            "outputs",
            "aggregate",
            "decode",
            "encode",
        ] {
            assert!(
                schema["properties"].get(section).is_some(),
                "no `{section}` in the schema"
            );
        }
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], serde_json::json!(["source", "sink"]));
    }
}
