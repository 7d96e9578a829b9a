//! AVRO schemas, through `apache-avro`.
//!
//! Named types may come from references. For compatibility checks each referenced type is
//! inlined where it is first used, so a change inside a referenced schema is checked like any
//! other, and a type that moved between inline and referenced still compares by content.
//!
//! Compatibility is `apache_avro::schema_compatibility::SchemaCompatibility::can_read`; only
//! its `Full` answer counts as compatible, so a reader that lacks an enum symbol or a union
//! branch of the writer is incompatible, as in Confluent.

use std::collections::{HashMap, HashSet};

use apache_avro::Schema;
use apache_avro::schema::{Name, UnionSchema};
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

use super::Dependency;

/// Parses an Avro schema whose named types may come from `dependencies`; the result has those
/// types inlined.
pub(super) fn parse(text: &str, dependencies: &[Dependency]) -> Result<(Schema, Vec<u8>), String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let (schema, referenced) =
        Schema::parse_str_with_list(text, dependencies.iter().map(|d| d.text.as_str()))
            .map_err(|e| format!("not a valid Avro schema: {e}"))?;
    let definitions: HashMap<Name, Schema> = referenced
        .into_iter()
        .filter_map(|s| Some((s.name()?.clone(), s)))
        .collect();
    let schema = inline(schema, &definitions, &mut HashSet::new());
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
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            vec![message]
        }
    }
}

/// Replaces the first use of each type in `definitions` by its (inlined) definition; later
/// uses stay references, as Avro requires.
fn inline(
    schema: Schema,
    definitions: &HashMap<Name, Schema>,
    defined: &mut HashSet<Name>,
) -> Schema {
    match schema {
        Schema::Ref { name } => match definitions.get(&name) {
            Some(definition) if defined.insert(name.clone()) => {
                inline(definition.clone(), definitions, defined)
            }
            _ => Schema::Ref { name },
        },
        Schema::Record(mut record) => {
            defined.insert(record.name.clone());
            for field in &mut record.fields {
                let schema = std::mem::replace(&mut field.schema, Schema::Null);
                field.schema = inline(schema, definitions, defined);
            }
            Schema::Record(record)
        }
        Schema::Array(mut array) => {
            let items = std::mem::replace(array.items.as_mut(), Schema::Null);
            *array.items = inline(items, definitions, defined);
            Schema::Array(array)
        }
        Schema::Map(mut map) => {
            let values = std::mem::replace(map.types.as_mut(), Schema::Null);
            *map.types = inline(values, definitions, defined);
            Schema::Map(map)
        }
        Schema::Union(union) => {
            let variants = union
                .variants()
                .iter()
                .map(|v| inline(v.clone(), definitions, defined))
                .collect();
            // Inlining keeps each variant's kind, so the union stays valid.
            UnionSchema::new(variants).map_or(Schema::Union(union), Schema::Union)
        }
        other => {
            if let Some(name) = other.name() {
                defined.insert(name.clone());
            }
            other
        }
    }
}
