//! The Confluent Schema Registry, through `schema_registry_converter`'s
//! blocking client: settings from the job's options, schema lookups that
//! tell a missing schema (a poison record) from an unreachable registry
//! (a transient failure that must not poison anything).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

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
    lookups: LookupLimits,
}

/// How decoders ask the registry about writer schema ids they have not met.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LookupLimits {
    /// How long "no such schema" is believed (a lagging replica may answer
    /// it for a schema that exists); `negative.cache.ttl.ms`, default 30 s.
    pub(crate) negative_ttl: Duration,
    /// New ids looked up per second, at most (a flood of made-up ids must
    /// not cost one blocking call each); `lookups.per.second`, default 50.
    pub(crate) per_second: u32,
}

/// The lookups a decoder may still make this second.
#[derive(Debug)]
pub(crate) struct LookupBudget {
    limits: LookupLimits,
    second: Instant,
    used: u32,
}

impl LookupBudget {
    pub(crate) fn new(limits: LookupLimits) -> Self {
        LookupBudget {
            limits,
            second: Instant::now(),
            used: 0,
        }
    }

    /// Whether one more lookup fits in this second's budget (and take it).
    pub(crate) fn take(&mut self) -> bool {
        if self.second.elapsed() >= Duration::from_secs(1) {
            self.second = Instant::now();
            self.used = 0;
        }
        let fits = self.used < self.limits.per_second;
        self.used += u32::from(fits);
        fits
    }

    /// Whether a "no such schema" answer of `since` is too old to believe.
    pub(crate) fn expired(&self, since: Instant) -> bool {
        since.elapsed() >= self.limits.negative_ttl
    }

    /// Why a record of schema `id` was not decoded when the budget ran out.
    pub(crate) fn over_budget(&self, id: u32) -> (PoisonKind, String) {
        (
            PoisonKind::UnknownSchemaId,
            format!(
                "schema id {id} was not looked up: more than {} new schema ids a second (registry option lookups.per.second)",
                self.limits.per_second
            ),
        )
    }
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
                "negative.cache.ttl.ms",
                "lookups.per.second",
            ]
            .contains(&key.as_str())
            {
                return Err(option_error(
                    key,
                    "unknown registry option (known: url, basic.auth.user.info, bearer.auth.token, request.timeout.ms, negative.cache.ttl.ms, lookups.per.second)".into(),
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
        let number = |option: &str, default: u64| -> Result<u64, FormatError> {
            options.get(option).map_or(Ok(default), |text| {
                text.parse()
                    .map_err(|_| option_error(option, format!("{text:?} is not a whole number")))
            })
        };
        let per_second = u32::try_from(number("lookups.per.second", 50)?)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| option_error("lookups.per.second", "must be 1 to 2^32-1".into()))?;
        let lookups = LookupLimits {
            negative_ttl: Duration::from_millis(number("negative.cache.ttl.ms", 30_000)?),
            per_second,
        };
        Ok(Registry {
            settings,
            url: url.clone(),
            lookups,
        })
    }

    /// A budget of writer-id lookups under this registry's limits.
    pub(crate) fn lookup_budget(&self) -> LookupBudget {
        LookupBudget::new(self.lookups)
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
/// be decoded: the registry is asked once per id, except that "no such
/// schema" is asked again once it expires, and new ids are asked within a
/// budget per second.
#[derive(Debug)]
pub(crate) struct WriterIds {
    schema_type: &'static str,
    known: HashMap<u32, (Option<(PoisonKind, String)>, Instant)>,
    budget: LookupBudget,
}

impl WriterIds {
    /// Writer ids that must be schemas of `schema_type`, looked up in
    /// `registry`. The reader schema's id is known from the start: records
    /// written with it need no lookup, so a flood of made-up ids cannot
    /// spend the budget they would need.
    pub(crate) fn new(schema_type: &'static str, registry: &Registry, reader_id: u32) -> Self {
        WriterIds {
            schema_type,
            known: HashMap::from([(reader_id, (None, Instant::now()))]),
            budget: registry.lookup_budget(),
        }
    }

    /// `None` if records of schema `id` can be decoded, else the poison
    /// kind and message for each of them.
    pub(crate) fn check(
        &mut self,
        registry: &Registry,
        id: u32,
    ) -> Result<Option<(PoisonKind, String)>, FormatError> {
        if let Some((known, since)) = self.known.get(&id) {
            let missing = matches!(known, Some((PoisonKind::UnknownSchemaId, _)));
            if !(missing && self.budget.expired(*since)) {
                return Ok(known.clone());
            }
        }
        if !self.budget.take() {
            return Ok(Some(self.budget.over_budget(id)));
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
        self.known.insert(id, (reason.clone(), Instant::now()));
        Ok(reason)
    }
}
