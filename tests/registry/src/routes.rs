//! Maps HTTP requests onto registry operations, and results onto Confluent's responses.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::compatibility::Level;
use crate::error::ApiError;
use crate::model::{CompatibilityAnswer, ConfigRequest};
use crate::registry::{Format, Registry, VersionSelector};

/// The media type of every response.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request body media types Confluent accepts.
const BODY_TYPES: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// `Accept` values this server can answer.
const ACCEPTABLE: [&str; 5] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/*",
    "*/*",
];

/// The parts of an HTTP request the registry looks at.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// Path and query, still percent-encoded.
    pub(crate) url: &'a str,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) accept: Option<&'a str>,
    pub(crate) body: &'a str,
}

/// Status and JSON body of a response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Answers one request.
pub(crate) fn handle(registry: &mut Registry, request: &Request<'_>) -> Response {
    route(registry, request).unwrap_or_else(|e| Response {
        status: e.status,
        body: serde_json::to_string(&e).expect("an error serialises"),
    })
}

fn route(registry: &mut Registry, request: &Request<'_>) -> Result<Response, ApiError> {
    check_media_types(request)?;
    let (path, query) = request.url.split_once('?').unwrap_or((request.url, ""));
    let flag = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case(&format!("{name}=true")))
    };
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method;
    let deleted = flag("deleted");
    let format = Format::parse(
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("format=")),
    );
    match (segments.as_slice(), method) {
        ([], "GET") => ok(&json!({})),
        (["schemas", "types"], "GET") => ok(&["JSON", "PROTOBUF", "AVRO"]),
        (["schemas", "ids", id], "GET") => ok(&registry.schema_by_id(parse_id(id)?, format)?),
        (["schemas", "ids", id, "versions"], "GET") => {
            ok(&registry.versions_of_id(parse_id(id)?, deleted)?)
        }
        (["schemas", "ids", id, "subjects"], "GET") => {
            let mut subjects: Vec<String> = registry
                .versions_of_id(parse_id(id)?, deleted)?
                .into_iter()
                .map(|sv| sv.subject)
                .collect();
            subjects.dedup();
            ok(&subjects)
        }
        (["subjects"], "GET") => ok(&registry.subject_names(deleted)),
        (["subjects", subject], "POST") => {
            ok(&registry.lookup(subject, body(request)?, deleted)?)
        }
        (["subjects", subject], "DELETE") => {
            ok(&registry.delete_subject(subject, flag("permanent"))?)
        }
        (["subjects", subject, "versions"], "GET") => {
            ok(&registry.version_numbers(subject, deleted)?)
        }
        (["subjects", subject, "versions"], "POST") => {
            ok(&json!({ "id": registry.register(subject, body(request)?)? }))
        }
        (["subjects", subject, "versions", version], "GET") => {
            let selector = VersionSelector::parse(version)?;
            ok(&registry.version(subject, selector, deleted, format)?)
        }
        (["subjects", subject, "versions", version], "DELETE") => {
            let selector = VersionSelector::parse(version)?;
            ok(&registry.delete_version(subject, selector, flag("permanent"))?)
        }
        (["subjects", subject, "versions", version, "schema"], "GET") => {
            let selector = VersionSelector::parse(version)?;
            Ok(Response {
                status: 200,
                body: registry.version(subject, selector, deleted, format)?.schema,
            })
        }
        (["compatibility", "subjects", subject, "versions", rest @ ..], "POST")
            if rest.len() <= 1 =>
        {
            let selector = rest
                .first()
                .map(|v| VersionSelector::parse(v))
                .transpose()?;
            let problems = registry.compatibility(subject, selector, body(request)?)?;
            ok(&CompatibilityAnswer {
                is_compatible: problems.is_empty(),
                messages: flag("verbose").then_some(problems),
            })
        }
        (["config"], "GET") => {
            ok(&json!({ "compatibilityLevel": registry.global_level().as_str() }))
        }
        (["config"], "PUT") => {
            let level = config_level(body(request)?)?;
            registry.set_global_level(level);
            ok(&json!({ "compatibility": level.as_str() }))
        }
        (["config", subject], "GET") => {
            let level = registry.subject_level(subject, flag("defaultToGlobal"))?;
            ok(&json!({ "compatibilityLevel": level.as_str() }))
        }
        (["config", subject], "PUT") => {
            let level = config_level(body(request)?)?;
            registry.set_subject_level(subject, level);
            ok(&json!({ "compatibility": level.as_str() }))
        }
        (path, _) if is_known_path(path) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::route_not_found()),
    }
}

fn is_known_path(path: &[&str]) -> bool {
    matches!(
        path,
        [] | ["schemas", "types"]
            | ["schemas", "ids", _]
            | ["schemas", "ids", _, "versions" | "subjects"]
            | ["subjects"]
            | ["subjects", _]
            | ["subjects", _, "versions"]
            | ["subjects", _, "versions", _]
            | ["subjects", _, "versions", _, "schema"]
            | ["compatibility", "subjects", _, "versions"]
            | ["compatibility", "subjects", _, "versions", _]
            | ["config"]
            | ["config", _]
    )
}

fn ok(value: &impl Serialize) -> Result<Response, ApiError> {
    Ok(Response {
        status: 200,
        body: serde_json::to_string(value).expect("a response serialises"),
    })
}

/// A schema id in a path; like Jersey, a non-number matches no route.
fn parse_id(text: &str) -> Result<u32, ApiError> {
    text.parse().map_err(|_| ApiError::route_not_found())
}

fn body<T: DeserializeOwned>(request: &Request<'_>) -> Result<T, ApiError> {
    serde_json::from_str(request.body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::malformed_json(&e.to_string())
        } else {
            ApiError::unprocessable(&e.to_string())
        }
    })
}

fn config_level(request: ConfigRequest) -> Result<Level, ApiError> {
    let name = request.compatibility.unwrap_or_default();
    Level::parse(&name).ok_or_else(|| ApiError::invalid_compatibility_level(&name))
}

/// 415 for a body that is not JSON, 406 for an `Accept` without any JSON type.
fn check_media_types(request: &Request<'_>) -> Result<(), ApiError> {
    let media_type = |value: &str| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    if let Some(content_type) = request.content_type
        && !request.body.is_empty()
        && !BODY_TYPES.contains(&media_type(content_type).as_str())
    {
        return Err(ApiError::unsupported_media_type());
    }
    if let Some(accept) = request.accept
        && !accept
            .split(',')
            .any(|a| ACCEPTABLE.contains(&media_type(a).as_str()))
    {
        return Err(ApiError::not_acceptable());
    }
    Ok(())
}
