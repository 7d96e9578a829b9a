//! Serde helpers for human-friendly values: durations and byte sizes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserialize `"500ms"`, `"2s"`, `"1m"`.
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration like \"500ms\" or \"2s\": {e}"
        ))
    })
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
