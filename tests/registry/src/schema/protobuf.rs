//! PROTOBUF schemas, through `protox`.
//!
//! A schema is one `.proto` file; its references are the files it imports, by the reference's
//! `name`. The well-known `google/protobuf/*.proto` files are always available.
//!
//! Compatibility, a subset of Confluent's: a reader schema can read data written with a writer
//! schema unless
//! - a message of the writer's file (top-level or nested, by full name) is missing from the
//!   reader, or
//! - a field number present in both versions of a message changed type: scalar kind, message or
//!   enum type (by full name), or between singular, repeated and map.
//!
//! Removed or added fields, renamed fields, enum values and `oneof`s are not checked.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;

use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use protox::prost::Message as _;
use protox::prost_reflect::prost_types::FileDescriptorProto;
use protox::prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use super::Dependency;

/// The file name the schema itself is compiled under.
const MAIN_FILE: &str = "__schema_registry_stand_in__.proto";

/// A compiled `.proto` file and everything it imports.
#[derive(Debug)]
pub(crate) struct ProtoSchema {
    pool: DescriptorPool,
}

/// Serves the schema and its references to the compiler from memory.
struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// `text` as `.proto` text: a base64 `FileDescriptorProto` is printed; `.proto` text is kept.
///
/// `.proto` text always holds a `;`, `{` or whitespace, which base64 never does, so the two
/// cannot be confused.
pub(super) fn from_serialized(text: &str) -> Result<Cow<'_, str>, String> {
    let candidate = text.trim();
    let is_base64 = candidate
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if !is_base64 {
        return Ok(Cow::Borrowed(text));
    }
    let bytes = BASE64_STANDARD
        .decode(candidate)
        .map_err(|e| format!("neither .proto text nor a base64 FileDescriptorProto: {e}"))?;
    let file = FileDescriptorProto::decode(bytes.as_slice())
        .map_err(|e| format!("base64 text that is not a FileDescriptorProto: {e}"))?;
    super::proto_text::print(&file).map(Cow::Owned)
}

/// Compiles `text`, resolving its imports from `dependencies` by name.
pub(super) fn parse(
    text: &str,
    dependencies: &[Dependency],
) -> Result<(ProtoSchema, Vec<u8>), String> {
    let mut sources: HashMap<String, String> = dependencies
        .iter()
        .map(|d| (d.name.clone(), d.text.clone()))
        .collect();
    sources.insert(MAIN_FILE.to_owned(), text.to_owned());
    let mut resolver = ChainFileResolver::new();
    resolver.add(Sources(sources));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_source_info(false);
    compiler
        .open_file(MAIN_FILE)
        .map_err(|e| format!("not a valid protobuf schema: {e}"))?;
    let canonical = compiler
        .file_descriptor_set()
        .file
        .into_iter()
        .find(|f| f.name() == MAIN_FILE)
        .map(|f| f.encode_to_vec())
        .ok_or_else(|| "the compiler lost the schema's own file".to_owned())?;
    Ok((
        ProtoSchema {
            pool: compiler.descriptor_pool(),
        },
        canonical,
    ))
}

/// Why `reader` cannot read everything written with `writer`.
pub(super) fn can_read(writer: &ProtoSchema, reader: &ProtoSchema) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(file) = writer.pool.get_file_by_name(MAIN_FILE) else {
        return problems;
    };
    let mut messages: Vec<MessageDescriptor> = file.messages().collect();
    while let Some(w) = messages.pop() {
        messages.extend(w.child_messages().filter(|m| !m.is_map_entry()));
        let Some(r) = reader.pool.get_message_by_name(w.full_name()) else {
            problems.push(format!("message '{}' was removed", w.full_name()));
            continue;
        };
        for wf in w.fields() {
            if let Some(rf) = r.get_field(wf.number()) {
                let (wt, rt) = (field_type(&wf), field_type(&rf));
                if wt != rt {
                    problems.push(format!(
                        "field {} of message '{}' changed type from {wt} to {rt}",
                        wf.number(),
                        w.full_name()
                    ));
                }
            }
        }
    }
    problems
}

/// A field's type as text: `repeated int32`, `map<string, pkg.Value>`, `pkg.Other`.
fn field_type(field: &FieldDescriptor) -> String {
    fn kind_name(kind: &Kind) -> String {
        match kind {
            Kind::Message(m) => m.full_name().to_owned(),
            Kind::Enum(e) => e.full_name().to_owned(),
            scalar => format!("{scalar:?}").to_lowercase(),
        }
    }
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        return format!(
            "map<{}, {}>",
            kind_name(&entry.map_entry_key_field().kind()),
            kind_name(&entry.map_entry_value_field().kind())
        );
    }
    let name = kind_name(&field.kind());
    if field.is_list() {
        format!("repeated {name}")
    } else {
        name
    }
}
