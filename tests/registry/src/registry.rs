//! The registry's in-memory state and the operations on it.
//!
//! Schema ids are global: the same schema (same type, same canonical form, same references)
//! gets the same id under every subject. Versions of a subject count from 1; soft-deleted
//! versions keep their number and the next version comes after the highest ever given.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;

use crate::compatibility::{self, Level};
use crate::error::ApiError;
use crate::model::{Reference, SchemaById, SchemaRequest, SubjectAndVersion, SubjectVersion};
use crate::schema::{self, Dependency, Parsed, SchemaKind};

/// All subjects, schemas and compatibility settings.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Schema with id `n` at index `n - 1`.
    schemas: Vec<StoredSchema>,
    ids: HashMap<Identity, u32>,
    subjects: BTreeMap<String, Vec<Version>>,
    global_level: Level,
    subject_levels: HashMap<String, Level>,
}

#[derive(Debug)]
struct StoredSchema {
    kind: SchemaKind,
    /// The text as first registered.
    text: String,
    /// A PROTOBUF schema's `FileDescriptorProto`, base64: its
    /// `?format=serialized` form.
    serialized: Option<String>,
    references: Vec<Reference>,
}

impl StoredSchema {
    /// The schema as `GET ...?format=serialized` (or without) answers it;
    /// other formats, and other schema types, answer the text.
    fn text_as(&self, format: Format) -> String {
        match (format, &self.serialized) {
            (Format::Serialized, Some(serialized)) => serialized.clone(),
            _ => self.text.clone(),
        }
    }
}

/// The `format` a schema is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// As registered.
    Default,
    /// PROTOBUF as a base64 `FileDescriptorProto` (`format=serialized`).
    Serialized,
}

impl Format {
    /// The `format` query parameter's value.
    pub(crate) fn parse(value: Option<&str>) -> Format {
        match value {
            Some("serialized") => Format::Serialized,
            _ => Format::Default,
        }
    }
}

/// What makes two registrations the same schema.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Identity {
    kind: SchemaKind,
    canonical: Vec<u8>,
    references: Vec<Reference>,
}

#[derive(Clone, Copy, Debug)]
struct Version {
    number: u32,
    id: u32,
    deleted: bool,
}

/// A version in a path: a number, or `latest` / `-1`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum VersionSelector {
    Latest,
    Number(u32),
}

impl VersionSelector {
    /// Reads a version path segment; anything but `latest`, `-1` or 1..=2^31-1 is 42202.
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        if text == "latest" || text == "-1" {
            return Ok(VersionSelector::Latest);
        }
        match text.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(VersionSelector::Number(n.unsigned_abs())),
            _ => Err(ApiError::invalid_version(text)),
        }
    }

    fn pick(self, versions: &[Version]) -> Option<Version> {
        match self {
            VersionSelector::Latest => versions.last().copied(),
            VersionSelector::Number(n) => versions.iter().find(|v| v.number == n).copied(),
        }
    }

    fn describe(self) -> String {
        match self {
            VersionSelector::Latest => "latest".to_owned(),
            VersionSelector::Number(n) => n.to_string(),
        }
    }
}

/// A schema from a request that parsed, with its references resolved to version numbers.
struct Candidate {
    identity: Identity,
    text: String,
    parsed: Parsed,
}

impl Registry {
    /// `POST /subjects/{s}/versions`: the id of the schema, registering it as a new version of
    /// `subject` unless the subject already has it.
    pub(crate) fn register(
        &mut self,
        subject: &str,
        request: SchemaRequest,
    ) -> Result<u32, ApiError> {
        let candidate = self.candidate(request)?;
        let known_id = self.ids.get(&candidate.identity).copied();
        let live = self.versions(subject, false);
        if let Some(existing) = known_id.and_then(|id| live.iter().find(|v| v.id == id)) {
            return Ok(existing.id);
        }
        let level = self.level_of(subject);
        let earlier: &[Version] = if level.is_transitive() {
            &live
        } else {
            live.last().map(std::slice::from_ref).unwrap_or_default()
        };
        let problems = compatibility::check(level, &candidate.parsed, &self.parse_all(earlier)?);
        if !problems.is_empty() {
            return Err(ApiError::incompatible(subject, &problems));
        }
        let id = match known_id {
            Some(id) => id,
            None => {
                let serialized = (candidate.identity.kind == SchemaKind::Protobuf)
                    .then(|| BASE64_STANDARD.encode(&candidate.identity.canonical));
                self.schemas.push(StoredSchema {
                    kind: candidate.identity.kind,
                    text: candidate.text,
                    serialized,
                    references: candidate.identity.references.clone(),
                });
                let id = u32::try_from(self.schemas.len()).expect("fewer than 2^32 schemas");
                self.ids.insert(candidate.identity, id);
                id
            }
        };
        let versions = self.subjects.entry(subject.to_owned()).or_default();
        let number = versions.last().map_or(1, |v| v.number + 1);
        versions.push(Version {
            number,
            id,
            deleted: false,
        });
        Ok(id)
    }

    /// `POST /subjects/{s}`: the version of `subject` that holds this schema.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        request: SchemaRequest,
        include_deleted: bool,
    ) -> Result<SubjectVersion, ApiError> {
        let versions = self.existing_versions(subject, include_deleted)?;
        let candidate = self.candidate(request)?;
        let id = self
            .ids
            .get(&candidate.identity)
            .ok_or_else(ApiError::schema_not_found)?;
        let version = versions
            .iter()
            .rev()
            .find(|v| v.id == *id)
            .ok_or_else(ApiError::schema_not_found)?;
        Ok(self.subject_version(subject, *version, Format::Default))
    }

    /// `GET /schemas/ids/{id}`. A schema stays readable by id while any version, soft-deleted
    /// or not, holds it.
    pub(crate) fn schema_by_id(&self, id: u32, format: Format) -> Result<SchemaById, ApiError> {
        if self.uses_of(id, true).is_empty() {
            return Err(ApiError::schema_id_not_found(id));
        }
        let stored = &self.schemas[id as usize - 1];
        Ok(SchemaById {
            schema_type: type_field(stored.kind),
            references: stored.references.clone(),
            schema: stored.text_as(format),
        })
    }

    /// `GET /schemas/ids/{id}/versions`: the subject versions that hold schema `id`.
    pub(crate) fn versions_of_id(
        &self,
        id: u32,
        include_deleted: bool,
    ) -> Result<Vec<SubjectAndVersion>, ApiError> {
        let uses = self.uses_of(id, include_deleted);
        if uses.is_empty() {
            return Err(ApiError::schema_id_not_found(id));
        }
        Ok(uses)
    }

    /// `GET /subjects`, sorted.
    pub(crate) fn subject_names(&self, include_deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, vs)| vs.iter().any(|v| include_deleted || !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// `GET /subjects/{s}/versions`.
    pub(crate) fn version_numbers(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<u32>, ApiError> {
        Ok(self
            .existing_versions(subject, include_deleted)?
            .iter()
            .map(|v| v.number)
            .collect())
    }

    /// `GET /subjects/{s}/versions/{v}`.
    pub(crate) fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        include_deleted: bool,
        format: Format,
    ) -> Result<SubjectVersion, ApiError> {
        let versions = self.existing_versions(subject, include_deleted)?;
        let version = selector
            .pick(&versions)
            .ok_or_else(|| ApiError::version_not_found(&selector.describe()))?;
        Ok(self.subject_version(subject, version, format))
    }

    /// `DELETE /subjects/{s}`: soft-deletes every version, or with `permanent` forgets a
    /// subject that was soft-deleted before. Returns the version numbers.
    pub(crate) fn delete_subject(
        &mut self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, ApiError> {
        let versions = self.existing_versions(subject, permanent)?;
        if permanent && versions.iter().any(|v| !v.deleted) {
            return Err(ApiError::subject_not_soft_deleted(subject));
        }
        let numbers = versions.iter().map(|v| v.number).collect();
        if permanent {
            self.subjects.remove(subject);
            self.subject_levels.remove(subject);
        } else if let Some(stored) = self.subjects.get_mut(subject) {
            stored.iter_mut().for_each(|v| v.deleted = true);
        }
        Ok(numbers)
    }

    /// `DELETE /subjects/{s}/versions/{v}`: soft-deletes one version, or with `permanent`
    /// forgets a version that was soft-deleted before. Returns its number.
    pub(crate) fn delete_version(
        &mut self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
    ) -> Result<u32, ApiError> {
        let versions = self.existing_versions(subject, permanent)?;
        let version = selector
            .pick(&versions)
            .ok_or_else(|| ApiError::version_not_found(&selector.describe()))?;
        if permanent && !version.deleted {
            return Err(ApiError::version_not_soft_deleted(subject, version.number));
        }
        let stored = self
            .subjects
            .get_mut(subject)
            .expect("subject has versions");
        if permanent {
            stored.retain(|v| v.number != version.number);
            if stored.is_empty() {
                self.subjects.remove(subject);
            }
        } else if let Some(v) = stored.iter_mut().find(|v| v.number == version.number) {
            v.deleted = true;
        }
        Ok(version.number)
    }

    /// `POST /compatibility/subjects/{s}/versions[/{v}]`: why the schema would be rejected
    /// under the subject's level, against one version or (without `selector`) against the
    /// versions the level asks for. A subject without versions accepts anything unless a
    /// version is named.
    pub(crate) fn compatibility(
        &self,
        subject: &str,
        selector: Option<VersionSelector>,
        request: SchemaRequest,
    ) -> Result<Vec<String>, ApiError> {
        let level = self.level_of(subject);
        let earlier = match selector {
            Some(selector) => {
                let versions = self.existing_versions(subject, false)?;
                let version = selector
                    .pick(&versions)
                    .ok_or_else(|| ApiError::version_not_found(&selector.describe()))?;
                vec![version]
            }
            None => {
                let mut live = self.versions(subject, false);
                if !level.is_transitive() && live.len() > 1 {
                    live.drain(..live.len() - 1);
                }
                live
            }
        };
        let candidate = self.candidate(request)?;
        Ok(compatibility::check(
            level,
            &candidate.parsed,
            &self.parse_all(&earlier)?,
        ))
    }

    /// `GET /config`.
    pub(crate) fn global_level(&self) -> Level {
        self.global_level
    }

    /// `PUT /config`.
    pub(crate) fn set_global_level(&mut self, level: Level) {
        self.global_level = level;
    }

    /// `GET /config/{s}`: the subject's own level, else (with `default_to_global`) the global
    /// one, else 40408.
    pub(crate) fn subject_level(
        &self,
        subject: &str,
        default_to_global: bool,
    ) -> Result<Level, ApiError> {
        match self.subject_levels.get(subject) {
            Some(level) => Ok(*level),
            None if default_to_global => Ok(self.global_level),
            None => Err(ApiError::subject_level_not_configured(subject)),
        }
    }

    /// `PUT /config/{s}`; the subject need not exist yet.
    pub(crate) fn set_subject_level(&mut self, subject: &str, level: Level) {
        self.subject_levels.insert(subject.to_owned(), level);
    }

    fn level_of(&self, subject: &str) -> Level {
        self.subject_levels
            .get(subject)
            .copied()
            .unwrap_or(self.global_level)
    }

    /// The subject's versions, oldest first, without soft-deleted ones unless asked.
    fn versions(&self, subject: &str, include_deleted: bool) -> Vec<Version> {
        self.subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|v| include_deleted || !v.deleted)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Like `versions`, but a subject without any is 40401.
    fn existing_versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<Version>, ApiError> {
        let versions = self.versions(subject, include_deleted);
        if versions.is_empty() {
            return Err(ApiError::subject_not_found(subject));
        }
        Ok(versions)
    }

    fn uses_of(&self, id: u32, include_deleted: bool) -> Vec<SubjectAndVersion> {
        self.subjects
            .iter()
            .flat_map(|(subject, vs)| {
                vs.iter()
                    .filter(move |v| v.id == id && (include_deleted || !v.deleted))
                    .map(move |v| SubjectAndVersion {
                        subject: subject.clone(),
                        version: v.number,
                    })
            })
            .collect()
    }

    fn subject_version(&self, subject: &str, version: Version, format: Format) -> SubjectVersion {
        let stored = &self.schemas[version.id as usize - 1];
        SubjectVersion {
            subject: subject.to_owned(),
            version: version.number,
            id: version.id,
            schema_type: type_field(stored.kind),
            references: stored.references.clone(),
            schema: stored.text_as(format),
        }
    }

    /// Validates a request's schema: type, references, and the schema itself (42201).
    fn candidate(&self, request: SchemaRequest) -> Result<Candidate, ApiError> {
        let text = request
            .schema
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::invalid_schema("Empty schema"))?;
        let kind = SchemaKind::from_request(request.schema_type.as_deref())
            .map_err(|e| ApiError::invalid_schema(&e))?;
        let references = request
            .references
            .unwrap_or_default()
            .into_iter()
            .map(|r| self.resolve_reference(r))
            .collect::<Result<Vec<_>, _>>()?;
        let dependencies = self.dependencies(&references);
        let invalid = |e: String| ApiError::invalid_schema(&format!("{kind} schema: {e}"));
        let text = schema::stored_text(kind, &text)
            .map_err(invalid)?
            .into_owned();
        let (parsed, canonical) = schema::parse(kind, &text, &dependencies).map_err(invalid)?;
        Ok(Candidate {
            identity: Identity {
                kind,
                canonical,
                references,
            },
            text,
            parsed,
        })
    }

    /// Pins a request's reference to an existing version number.
    fn resolve_reference(&self, reference: Reference) -> Result<Reference, ApiError> {
        let versions = self.versions(&reference.subject, true);
        let found = match reference.version {
            -1 => versions.iter().rev().find(|v| !v.deleted),
            n => versions.iter().find(|v| i64::from(v.number) == n),
        };
        match found {
            Some(v) => Ok(Reference {
                version: i64::from(v.number),
                ..reference
            }),
            None => Err(ApiError::invalid_schema(&format!(
                "reference '{}' names subject '{}' version {}, which does not exist",
                reference.name, reference.subject, reference.version
            ))),
        }
    }

    /// Every schema `references` reach, directly or through their own references, once by name.
    fn dependencies(&self, references: &[Reference]) -> Vec<Dependency> {
        let mut seen = HashSet::new();
        let mut dependencies = Vec::new();
        let mut pending: Vec<&Reference> = references.iter().collect();
        while let Some(reference) = pending.pop() {
            if !seen.insert(reference.name.as_str()) {
                continue;
            }
            let Some(stored) = self.referenced_schema(reference) else {
                continue;
            };
            pending.extend(&stored.references);
            dependencies.push(Dependency {
                name: reference.name.clone(),
                text: stored.text.clone(),
            });
        }
        dependencies
    }

    fn referenced_schema(&self, reference: &Reference) -> Option<&StoredSchema> {
        let version = self
            .subjects
            .get(&reference.subject)?
            .iter()
            .find(|v| i64::from(v.number) == reference.version)?;
        self.schemas.get(version.id as usize - 1)
    }

    /// Parses stored versions again for a compatibility check.
    fn parse_all(&self, versions: &[Version]) -> Result<Vec<(u32, Parsed)>, ApiError> {
        versions
            .iter()
            .map(|v| {
                let stored = &self.schemas[v.id as usize - 1];
                let dependencies = self.dependencies(&stored.references);
                schema::parse(stored.kind, &stored.text, &dependencies)
                    .map(|(parsed, _)| (v.number, parsed))
                    .map_err(|e| {
                        ApiError::invalid_schema(&format!(
                            "version {} no longer parses (was a reference deleted?): {e}",
                            v.number
                        ))
                    })
            })
            .collect()
    }
}

/// Confluent leaves `schemaType` out for AVRO.
fn type_field(kind: SchemaKind) -> Option<&'static str> {
    (kind != SchemaKind::Avro).then_some(kind.as_str())
}
