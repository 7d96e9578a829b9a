//! Prints a `FileDescriptorProto` back as `.proto` text, as Confluent's server does with a
//! PROTOBUF schema registered in its serialized (base64 descriptor) form.
//!
//! Printed: syntax, package, imports (public and weak), the common file options, messages with
//! their nested messages and enums, fields (labels, proto3 `optional`, maps, `oneof`s, proto2
//! defaults, `packed`, `deprecated`), reserved ranges and names, extension ranges, enums (with
//! `allow_alias`) and services. Types are printed fully qualified (`.pkg.Msg`), which every
//! protobuf compiler reads as the same type. Refused with a message: editions, groups and
//! `extend` blocks.

use std::fmt::Write as _;

use protox::prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use protox::prost_reflect::prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    ServiceDescriptorProto,
};

/// `file` as `.proto` text.
pub(super) fn print(file: &FileDescriptorProto) -> Result<String, String> {
    let proto3 = match file.syntax() {
        "" | "proto2" => false,
        "proto3" => true,
        other => return Err(format!("syntax '{other}' cannot be printed as .proto text")),
    };
    if !file.extension.is_empty() {
        return Err("extend blocks are not supported".to_owned());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "syntax = \"{}\";",
        if proto3 { "proto3" } else { "proto2" }
    );
    if !file.package().is_empty() {
        let _ = writeln!(out, "package {};", file.package());
    }
    for (index, dependency) in file.dependency.iter().enumerate() {
        let index = i32::try_from(index).map_err(|_| "too many imports".to_owned())?;
        let modifier = if file.public_dependency.contains(&index) {
            "public "
        } else if file.weak_dependency.contains(&index) {
            "weak "
        } else {
            ""
        };
        let _ = writeln!(out, "import {modifier}{};", quoted(dependency));
    }
    if let Some(options) = &file.options {
        let strings = [
            ("java_package", &options.java_package),
            ("java_outer_classname", &options.java_outer_classname),
            ("go_package", &options.go_package),
            ("csharp_namespace", &options.csharp_namespace),
            ("objc_class_prefix", &options.objc_class_prefix),
            ("php_namespace", &options.php_namespace),
            ("ruby_package", &options.ruby_package),
            ("swift_prefix", &options.swift_prefix),
        ];
        for (name, value) in strings {
            if let Some(value) = value {
                let _ = writeln!(out, "option {name} = {};", quoted(value));
            }
        }
        if let Some(multiple) = options.java_multiple_files {
            let _ = writeln!(out, "option java_multiple_files = {multiple};");
        }
    }
    let printer = Printer { proto3 };
    for message in &file.message_type {
        printer.message(&mut out, message, 0)?;
    }
    for enumeration in &file.enum_type {
        printer.enumeration(&mut out, enumeration, 0);
    }
    for service in &file.service {
        service_text(&mut out, service);
    }
    Ok(out)
}

/// What printing a field depends on beyond the field itself.
struct Printer {
    proto3: bool,
}

impl Printer {
    fn message(
        &self,
        out: &mut String,
        message: &DescriptorProto,
        depth: usize,
    ) -> Result<(), String> {
        if !message.extension.is_empty() {
            return Err(format!(
                "extend blocks (in message '{}') are not supported",
                message.name()
            ));
        }
        let pad = "  ".repeat(depth);
        let inner = "  ".repeat(depth + 1);
        let _ = writeln!(out, "{pad}message {} {{", message.name());
        let map_entries: Vec<&DescriptorProto> = message
            .nested_type
            .iter()
            .filter(|n| n.options.as_ref().and_then(|o| o.map_entry) == Some(true))
            .collect();
        let mut printed_oneofs = Vec::new();
        for field in &message.field {
            match field.oneof_index {
                Some(index) if !field.proto3_optional() => {
                    if printed_oneofs.contains(&index) {
                        continue;
                    }
                    printed_oneofs.push(index);
                    let name = usize::try_from(index)
                        .ok()
                        .and_then(|i| message.oneof_decl.get(i))
                        .map(|o| o.name())
                        .ok_or_else(|| {
                            format!("field '{}' names a oneof that does not exist", field.name())
                        })?;
                    let _ = writeln!(out, "{inner}oneof {name} {{");
                    for member in message
                        .field
                        .iter()
                        .filter(|f| f.oneof_index == Some(index))
                    {
                        self.field(out, member, &map_entries, depth + 2, true)?;
                    }
                    let _ = writeln!(out, "{inner}}}");
                }
                _ => self.field(out, field, &map_entries, depth + 1, false)?,
            }
        }
        for nested in &message.nested_type {
            if !map_entries.iter().any(|entry| std::ptr::eq(*entry, nested)) {
                self.message(out, nested, depth + 1)?;
            }
        }
        for enumeration in &message.enum_type {
            self.enumeration(out, enumeration, depth + 1);
        }
        for range in &message.extension_range {
            let _ = writeln!(
                out,
                "{inner}extensions {};",
                range_text(range.start(), range.end())
            );
        }
        for range in &message.reserved_range {
            let _ = writeln!(
                out,
                "{inner}reserved {};",
                range_text(range.start(), range.end())
            );
        }
        if !message.reserved_name.is_empty() {
            let names: Vec<String> = message.reserved_name.iter().map(|n| quoted(n)).collect();
            let _ = writeln!(out, "{inner}reserved {};", names.join(", "));
        }
        let _ = writeln!(out, "{pad}}}");
        Ok(())
    }

    fn field(
        &self,
        out: &mut String,
        field: &FieldDescriptorProto,
        map_entries: &[&DescriptorProto],
        depth: usize,
        in_oneof: bool,
    ) -> Result<(), String> {
        let pad = "  ".repeat(depth);
        if field.r#type() == Type::Group {
            return Err(format!("group field '{}' is not supported", field.name()));
        }
        let map_entry = (field.label() == Label::Repeated && field.r#type() == Type::Message)
            .then(|| {
                let short = field.type_name().rsplit('.').next().unwrap_or_default();
                map_entries.iter().find(|entry| entry.name() == short)
            })
            .flatten();
        let type_text = match map_entry {
            Some(entry) => {
                let part = |number: i32| {
                    entry
                        .field
                        .iter()
                        .find(|f| f.number() == number)
                        .map(type_name)
                        .ok_or_else(|| format!("map field '{}' has no key or value", field.name()))
                };
                format!("map<{}, {}>", part(1)?, part(2)?)
            }
            None => type_name(field),
        };
        let label = match (field.label(), map_entry.is_some(), in_oneof) {
            (_, true, _) | (_, _, true) => "",
            (Label::Repeated, ..) => "repeated ",
            (Label::Required, ..) => "required ",
            (Label::Optional, ..) if !self.proto3 || field.proto3_optional() => "optional ",
            (Label::Optional, ..) => "",
        };
        let mut options = Vec::new();
        if let Some(default) = &field.default_value {
            options.push(format!(
                "default = {}",
                default_text(field.r#type(), default)
            ));
        }
        if let Some(field_options) = &field.options {
            if let Some(packed) = field_options.packed {
                options.push(format!("packed = {packed}"));
            }
            if field_options.deprecated == Some(true) {
                options.push("deprecated = true".to_owned());
            }
        }
        let options = if options.is_empty() {
            String::new()
        } else {
            format!(" [{}]", options.join(", "))
        };
        let _ = writeln!(
            out,
            "{pad}{label}{type_text} {} = {}{options};",
            field.name(),
            field.number()
        );
        Ok(())
    }

    fn enumeration(&self, out: &mut String, enumeration: &EnumDescriptorProto, depth: usize) {
        let pad = "  ".repeat(depth);
        let inner = "  ".repeat(depth + 1);
        let _ = writeln!(out, "{pad}enum {} {{", enumeration.name());
        if enumeration.options.as_ref().and_then(|o| o.allow_alias) == Some(true) {
            let _ = writeln!(out, "{inner}option allow_alias = true;");
        }
        for value in &enumeration.value {
            let _ = writeln!(out, "{inner}{} = {};", value.name(), value.number());
        }
        for range in &enumeration.reserved_range {
            // Enum reserved ranges are inclusive, unlike message ones.
            let _ = writeln!(
                out,
                "{inner}reserved {};",
                range_text(range.start(), range.end().saturating_add(1))
            );
        }
        if !enumeration.reserved_name.is_empty() {
            let names: Vec<String> = enumeration
                .reserved_name
                .iter()
                .map(|n| quoted(n))
                .collect();
            let _ = writeln!(out, "{inner}reserved {};", names.join(", "));
        }
        let _ = writeln!(out, "{pad}}}");
    }
}

fn service_text(out: &mut String, service: &ServiceDescriptorProto) {
    let _ = writeln!(out, "service {} {{", service.name());
    for method in &service.method {
        let stream = |yes: bool| if yes { "stream " } else { "" };
        let _ = writeln!(
            out,
            "  rpc {}({}{}) returns ({}{});",
            method.name(),
            stream(method.client_streaming()),
            method.input_type(),
            stream(method.server_streaming()),
            method.output_type()
        );
    }
    let _ = writeln!(out, "}}");
}

/// A field's type: a scalar's keyword, or the message or enum type's name as the descriptor
/// holds it (fully qualified, with a leading dot).
fn type_name(field: &FieldDescriptorProto) -> String {
    let scalar = match field.r#type() {
        Type::Message | Type::Enum | Type::Group => return field.type_name().to_owned(),
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
    };
    scalar.to_owned()
}

/// A half-open range `[start, end)` as `.proto` writes it: `5`, `5 to 9`, `5 to max`.
fn range_text(start: i32, end: i32) -> String {
    const MAX_FIELD_NUMBER_END: i32 = 536_870_912;
    if end == start.saturating_add(1) {
        start.to_string()
    } else if end >= MAX_FIELD_NUMBER_END {
        format!("{start} to max")
    } else {
        format!("{start} to {}", end - 1)
    }
}

/// A proto2 default as the descriptor holds it (text), as `.proto` writes it.
fn default_text(field_type: Type, default: &str) -> String {
    match field_type {
        Type::String => quoted(default),
        // A bytes default is already C-escaped in the descriptor.
        Type::Bytes => format!("\"{default}\""),
        _ => default.to_owned(),
    }
}

/// `text` as a `.proto` string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                for byte in c.to_string().bytes() {
                    let _ = write!(out, "\\{byte:03o}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
