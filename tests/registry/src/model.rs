//! The JSON bodies of requests and responses.

use serde::{Deserialize, Serialize};

/// A schema reference: `name` (import path or type name), `subject` and `version` of the
/// referenced schema. Other fields clients send (`properties`, `tags`) are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Reference {
    pub(crate) name: String,
    pub(crate) subject: String,
    /// `-1` in a request means the subject's latest version; stored references hold a number.
    pub(crate) version: i64,
}

/// The body of `POST /subjects/{s}/versions`, `POST /subjects/{s}` and
/// `POST /compatibility/...`. Unknown fields (`metadata`, `ruleSet`, ...) are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct SchemaRequest {
    pub(crate) schema: Option<String>,
    #[serde(rename = "schemaType")]
    pub(crate) schema_type: Option<String>,
    pub(crate) references: Option<Vec<Reference>>,
}

/// The body of `PUT /config` and `PUT /config/{s}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfigRequest {
    pub(crate) compatibility: Option<String>,
}

/// `GET /schemas/ids/{id}`: `schemaType` is left out for AVRO and `references` when empty, as
/// Confluent does.
#[derive(Debug, Serialize)]
pub(crate) struct SchemaById {
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    pub(crate) schema_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) references: Vec<Reference>,
    pub(crate) schema: String,
}

/// A subject's version: `GET /subjects/{s}/versions/{v}` and the lookup `POST /subjects/{s}`.
#[derive(Debug, Serialize)]
pub(crate) struct SubjectVersion {
    pub(crate) subject: String,
    pub(crate) version: u32,
    pub(crate) id: u32,
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    pub(crate) schema_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) references: Vec<Reference>,
    pub(crate) schema: String,
}

/// One entry of `GET /schemas/ids/{id}/versions`.
#[derive(Debug, Serialize)]
pub(crate) struct SubjectAndVersion {
    pub(crate) subject: String,
    pub(crate) version: u32,
}

/// `POST /compatibility/...`; `messages` only with `?verbose=true`.
#[derive(Debug, Serialize)]
pub(crate) struct CompatibilityAnswer {
    pub(crate) is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) messages: Option<Vec<String>>,
}
