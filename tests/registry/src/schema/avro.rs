//! AVRO schemas, through `apache-avro`.
//!
//! Compatibility is `apache_avro::schema_compatibility::SchemaCompatibility::can_read`; only
//! its `Full` answer counts as compatible, so a reader that lacks an enum symbol or a union
//! branch of the writer is incompatible, as in Confluent.

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

use super::Dependency;

/// Parses an Avro schema whose named types may come from `dependencies`.
pub(super) fn parse(text: &str, dependencies: &[Dependency]) -> Result<(Schema, Vec<u8>), String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let (schema, _) =
        Schema::parse_str_with_list(text, dependencies.iter().map(|d| d.text.as_str()))
            .map_err(|e| format!("not a valid Avro schema: {e}"))?;
    Ok((schema, json.to_string().into_bytes()))
}

/// Why `reader` cannot read everything written with `writer`.
pub(super) fn can_read(writer: &Schema, reader: &Schema) -> Vec<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Vec::new(),
        Ok(Compatibility::Partial) => vec![
            "the reader can read only part of the writer's data (an enum symbol or union branch is missing)"
                .to_owned(),
        ],
        Err(e) => vec![e.to_string()],
    }
}
