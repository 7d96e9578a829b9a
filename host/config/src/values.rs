//! Serde helpers for human-friendly values: durations and byte sizes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserialize `"500ms"`, `"2s"`, `"1m"`.
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration like \"500ms\" or \"2s\": {e}"
        ))
    })
}

/// Deserialize an optional duration (present: as [`duration`]).
pub(crate) fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

/// Deserialize a byte count: an integer, or a string like `"64 MiB"`.
pub(crate) fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(text) => text
            .parse::<bytesize::ByteSize>()
            .map(|size| size.as_u64())
            .map_err(|e| {
                serde::de::Error::custom(format!("{text:?} is not a size like \"64 MiB\": {e}"))
            }),
    }
}

/// Deserialize a table of options whose values are TOML scalars, as text.
pub(crate) fn options<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let table = BTreeMap::<String, toml::Value>::deserialize(deserializer)?;
    table
        .into_iter()
        .map(|(key, value)| match value {
            toml::Value::String(s) => Ok((key, s)),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                Ok((key, value.to_string()))
            }
            other => Err(serde::de::Error::custom(format!(
                "option `{key}` must be a string, number or boolean, not {}",
                other.type_str()
            ))),
        })
        .collect()
}

/// A schema version: `latest` or a number, written as a string or an integer.
pub(crate) fn version<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Version {
        Number(u32),
        Text(String),
    }
    Ok(match Version::deserialize(deserializer)? {
        Version::Number(n) => n.to_string(),
        Version::Text(text) => text,
    })
}

/// JSON Schemas of the values the helpers above read, for the job file's
/// schema (`docs/job.schema.json`).
pub(crate) mod schema {
    use std::borrow::Cow;

    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

    /// A duration written as text.
    pub(crate) struct DurationText;

    impl JsonSchema for DurationText {
        fn schema_name() -> Cow<'static, str> {
            "Duration".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "A duration like \"500ms\", \"2s\" or \"1m\".",
                "examples": ["500ms", "10s"]
            })
        }
    }

    /// A byte count: an integer, or text with a unit.
    pub(crate) struct ByteSizeText;

    impl JsonSchema for ByteSizeText {
        fn schema_name() -> Cow<'static, str> {
            "ByteSize".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "A size: a number of bytes, or text like \"64 MiB\".",
                "type": ["integer", "string"],
                "minimum": 0,
                "examples": ["64 MiB", 1048576]
            })
        }
    }

    /// A table of options whose values are scalars.
    pub(crate) struct Options;

    impl JsonSchema for Options {
        fn schema_name() -> Cow<'static, str> {
            "Options".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "Options by name; values are strings, numbers or booleans.",
                "type": "object",
                "additionalProperties": { "type": ["string", "number", "boolean"] }
            })
        }
    }

    /// A schema version: `latest` or a number.
    pub(crate) struct Version;

    impl JsonSchema for Version {
        fn schema_name() -> Cow<'static, str> {
            "SchemaVersion".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "A schema version: \"latest\" or a version number.",
                "anyOf": [
                    { "const": "latest" },
                    { "type": "integer", "minimum": 1 },
                    { "type": "string", "pattern": "^[0-9]+$" }
                ]
            })
        }
    }

    /// A plugin's configuration: a table of any TOML values.
    pub(crate) struct PluginConfig;

    impl JsonSchema for PluginConfig {
        fn schema_name() -> Cow<'static, str> {
            "PluginConfig".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "The plugin's configuration: strings reach it as they are, other scalars in TOML form, tables and arrays as JSON.",
                "type": "object"
            })
        }
    }
}
