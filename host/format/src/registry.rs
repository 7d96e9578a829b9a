//! The Confluent Schema Registry, through `schema_registry_converter`'s
//! blocking client: settings from the job's options, schema lookups that
//! tell a missing schema (a poison record) from an unreachable registry
//! (a transient failure that must not poison anything).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use schema_registry_converter::blocking::schema_registry::{SrSettings, perform_sr_call};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{RawError, RawRegisteredSchema, SrCall};

use crate::{FormatError, PoisonKind};

/// Confluent's error code for a schema id the registry does not have.
const SCHEMA_NOT_FOUND: u32 = 40403;
/// Confluent's error codes for a subject or version it does not have.
const SUBJECT_NOT_FOUND: u32 = 40401;
const VERSION_NOT_FOUND: u32 = 40402;

/// Which version of a subject a job reads or writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaVersion {
    /// The newest version when the job starts.
    Latest,
    /// A fixed version.
    Number(u32),
}

impl SchemaVersion {
    /// Parse `latest` or a version number.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "latest" | "-1" => Ok(SchemaVersion::Latest),
            number => number
                .parse()
                .map(SchemaVersion::Number)
                .map_err(|_| format!("{number:?} is not `latest` or a version number")),
        }
    }
}

/// A schema as the registry holds it.
#[derive(Debug, Clone)]
pub struct RegistrySchema {
    /// Its global id.
    pub id: u32,
    /// `AVRO`, `PROTOBUF` or `JSON`.
    pub schema_type: String,
    /// The schema text.
    pub schema: String,
}

/// A connection to a Schema Registry.
#[derive(Debug)]
pub struct Registry {
    settings: SrSettings,
    url: String,
}

/// How a registry answered a lookup.
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    Found(T),
    /// The registry answered that it has no such schema, subject or version.
    Missing(String),
}

impl Registry {
    /// Connect with Confluent's client options: `url` (comma-separated for
    /// several), `basic.auth.user.info` (`user:password`),
    /// `bearer.auth.token`, `request.timeout.ms`.
    pub fn connect(options: &BTreeMap<String, String>) -> Result<Self, FormatError> {
        let option_error = |option: &str, message: String| FormatError::Config {
            field: format!("registry.{option}"),
            message,
        };
        for key in options.keys() {
            if ![
                "url",
                "basic.auth.user.info",
                "bearer.auth.token",
                "request.timeout.ms",
            ]
            .contains(&key.as_str())
            {
                return Err(option_error(
                    key,
                    "unknown registry option (known: url, basic.auth.user.info, bearer.auth.token, request.timeout.ms)".into(),
                ));
            }
        }
        let url = options
            .get("url")
            .ok_or_else(|| option_error("url", "the registry's URL is required".into()))?;
        let mut urls = url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned());
        let mut builder = SrSettings::new_builder(urls.next().unwrap_or_default());
        for other in urls {
            builder.add_url(other);
        }
        if let Some(user_info) = options.get("basic.auth.user.info") {
            let (user, password) = user_info.split_once(':').ok_or_else(|| {
                option_error("basic.auth.user.info", "expected `user:password`".into())
            })?;
            builder.set_basic_authorization(user, Some(password));
        }
        if let Some(token) = options.get("bearer.auth.token") {
            builder.set_token_authorization(token);
        }
        let timeout = match options.get("request.timeout.ms") {
            Some(ms) => Duration::from_millis(ms.parse().map_err(|_| {
                option_error("request.timeout.ms", format!("{ms:?} is not milliseconds"))
            })?),
            None => Duration::from_secs(30),
        };
        builder.set_timeout(timeout);
        let settings = builder
            .build()
            .map_err(|e| option_error("url", e.to_string()))?;
        Ok(Registry {
            settings,
            url: url.clone(),
        })
    }

    /// The client settings, for `schema_registry_converter`'s decoders.
    pub(crate) fn settings(&self) -> &SrSettings {
        &self.settings
    }

    /// The schema with a global id.
    pub(crate) fn schema_by_id(&self, id: u32) -> Result<Lookup<RegistrySchema>, FormatError> {
        self.call(SrCall::GetById(id), Some(id))
    }

    /// A subject's schema at `version`.
    pub fn subject_version(
        &self,
        subject: &str,
        version: SchemaVersion,
    ) -> Result<RegistrySchema, FormatError> {
        let call = match version {
            SchemaVersion::Latest => SrCall::GetLatest(subject),
            SchemaVersion::Number(n) => SrCall::GetBySubjectAndVersion(subject, n),
        };
        match self.call(call, None)? {
            Lookup::Found(schema) => Ok(schema),
            Lookup::Missing(message) => Err(FormatError::Schema(format!(
                "registry {}: subject `{subject}` version {version:?}: {message}",
                self.url
            ))),
        }
    }

    fn call(
        &self,
        call: SrCall<'_>,
        id: Option<u32>,
    ) -> Result<Lookup<RegistrySchema>, FormatError> {
        match perform_sr_call(&self.settings, call) {
            Ok(raw) => Ok(Lookup::Found(self.schema_of(raw, id)?)),
            Err(error) => match registry_error_code(&error) {
                Some(SCHEMA_NOT_FOUND | SUBJECT_NOT_FOUND | VERSION_NOT_FOUND) => {
                    Ok(Lookup::Missing(registry_message(&error)))
                }
                _ => Err(FormatError::Registry {
                    url: self.url.clone(),
                    message: registry_message(&error),
                }),
            },
        }
    }

    fn schema_of(
        &self,
        raw: RawRegisteredSchema,
        id: Option<u32>,
    ) -> Result<RegistrySchema, FormatError> {
        let id = raw.id.or(id).ok_or_else(|| FormatError::Registry {
            url: self.url.clone(),
            message: "the registry's answer has no schema id".into(),
        })?;
        let schema = raw.schema.ok_or_else(|| FormatError::Registry {
            url: self.url.clone(),
            message: format!("the registry's answer for schema {id} has no schema"),
        })?;
        Ok(RegistrySchema {
            id,
            schema_type: raw.schema_type.unwrap_or_else(|| "AVRO".into()),
            schema,
        })
    }
}

/// The Confluent error code behind a client error, if the registry sent one.
pub(crate) fn registry_error_code(error: &SRCError) -> Option<u32> {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<RawError>())
        .map(|raw| raw.error_code)
}

/// A client error in one line: the registry's own message when it sent one.
pub(crate) fn registry_message(error: &SRCError) -> String {
    match std::error::Error::source(error).and_then(|s| s.downcast_ref::<RawError>()) {
        Some(raw) => format!("{} (error code {})", raw.message, raw.error_code),
        None => match &error.cause {
            Some(cause) => format!("{}: {cause}", error.error),
            None => error.error.clone(),
        },
    }
}

/// The writer schema ids a decoder has met, and whether their records can
/// be decoded (the registry is asked once per id).
#[derive(Debug)]
pub(crate) struct WriterIds {
    schema_type: &'static str,
    known: HashMap<u32, Option<(PoisonKind, String)>>,
}

impl WriterIds {
    /// Writer ids that must be schemas of `schema_type`.
    pub(crate) fn new(schema_type: &'static str) -> Self {
        WriterIds {
            schema_type,
            known: HashMap::new(),
        }
    }

    /// `None` if records of schema `id` can be decoded, else the poison
    /// kind and message for each of them.
    pub(crate) fn check(
        &mut self,
        registry: &Registry,
        id: u32,
    ) -> Result<Option<(PoisonKind, String)>, FormatError> {
        if let Some(known) = self.known.get(&id) {
            return Ok(known.clone());
        }
        let reason = match registry.schema_by_id(id)? {
            Lookup::Missing(message) => Some((
                PoisonKind::UnknownSchemaId,
                format!("schema id {id}: {message}"),
            )),
            Lookup::Found(schema) if schema.schema_type != self.schema_type => Some((
                PoisonKind::IncompatibleSchema,
                format!(
                    "schema id {id} is {}, not {}",
                    schema.schema_type, self.schema_type
                ),
            )),
            Lookup::Found(_) => None,
        };
        self.known.insert(id, reason.clone());
        Ok(reason)
    }
}
