//! Schema types: parsing (validation), identity and reader/writer compatibility.

mod avro;
mod json;
mod proto_text;
mod protobuf;

use std::borrow::Cow;
use std::fmt;

/// The `schemaType` of a schema; absent means AVRO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SchemaKind {
    Avro,
    Protobuf,
    Json,
}

impl SchemaKind {
    /// Reads a request's `schemaType`; `None` is AVRO, as in Confluent.
    pub(crate) fn from_request(schema_type: Option<&str>) -> Result<Self, String> {
        match schema_type {
            None | Some("AVRO") => Ok(SchemaKind::Avro),
            Some("PROTOBUF") => Ok(SchemaKind::Protobuf),
            Some("JSON") => Ok(SchemaKind::Json),
            Some(other) => Err(format!(
                "unknown schema type '{other}' (known: AVRO, PROTOBUF, JSON)"
            )),
        }
    }

    /// The name Confluent uses in `schemaType`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SchemaKind::Avro => "AVRO",
            SchemaKind::Protobuf => "PROTOBUF",
            SchemaKind::Json => "JSON",
        }
    }
}

impl fmt::Display for SchemaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schema that a new schema references, with everything it references in turn already
/// flattened into the same list.
#[derive(Debug)]
pub(crate) struct Dependency {
    /// The reference's `name`: a protobuf import path, an Avro type name, a JSON `$ref`.
    pub(crate) name: String,
    /// The referenced schema's text.
    pub(crate) text: String,
}

/// A schema that parsed and validated.
#[derive(Debug)]
pub(crate) enum Parsed {
    Avro(apache_avro::Schema),
    Protobuf(protobuf::ProtoSchema),
    Json(serde_json::Value),
}

/// The text a schema is stored and served as: a PROTOBUF schema registered as a base64
/// `FileDescriptorProto` (as Confluent's Python serializer sends it) becomes `.proto` text, as
/// Confluent's server prints it; anything else stays as sent.
pub(crate) fn stored_text(kind: SchemaKind, text: &str) -> Result<Cow<'_, str>, String> {
    match kind {
        SchemaKind::Protobuf => protobuf::from_serialized(text),
        SchemaKind::Avro | SchemaKind::Json => Ok(Cow::Borrowed(text)),
    }
}

/// Parses and validates `text` as a schema of `kind`, resolving names from `dependencies`.
///
/// Returns the parsed schema and its canonical form: two texts with equal canonical forms are
/// the same schema (whitespace does not count, nor, for PROTOBUF, comments).
pub(crate) fn parse(
    kind: SchemaKind,
    text: &str,
    dependencies: &[Dependency],
) -> Result<(Parsed, Vec<u8>), String> {
    match kind {
        SchemaKind::Avro => avro::parse(text, dependencies).map(|(s, c)| (Parsed::Avro(s), c)),
        SchemaKind::Protobuf => {
            protobuf::parse(text, dependencies).map(|(s, c)| (Parsed::Protobuf(s), c))
        }
        SchemaKind::Json => json::parse(text).map(|(s, c)| (Parsed::Json(s), c)),
    }
}

/// Why a reader schema cannot read all data written with a writer schema; empty if it can.
pub(crate) fn can_read(writer: &Parsed, reader: &Parsed) -> Vec<String> {
    match (writer, reader) {
        (Parsed::Avro(w), Parsed::Avro(r)) => avro::can_read(w, r),
        (Parsed::Protobuf(w), Parsed::Protobuf(r)) => protobuf::can_read(w, r),
        (Parsed::Json(w), Parsed::Json(r)) => json::can_read(w, r),
        (w, r) => vec![format!(
            "schema type changed from {} to {}",
            w.kind(),
            r.kind()
        )],
    }
}

impl Parsed {
    fn kind(&self) -> SchemaKind {
        match self {
            Parsed::Avro(_) => SchemaKind::Avro,
            Parsed::Protobuf(_) => SchemaKind::Protobuf,
            Parsed::Json(_) => SchemaKind::Json,
        }
    }
}
