//! Confluent's error responses: HTTP status, `error_code` and message.

use serde::Serialize;

/// An error the way Confluent's Schema Registry reports it:
/// `{"error_code": 40401, "message": "Subject 'x' not found."}`.
#[derive(Debug, Serialize)]
pub(crate) struct ApiError {
    #[serde(skip)]
    pub(crate) status: u16,
    pub(crate) error_code: u32,
    pub(crate) message: String,
}

impl ApiError {
    fn new(status: u16, error_code: u32, message: String) -> Self {
        ApiError {
            status,
            error_code,
            message,
        }
    }

    /// 404 / 40401.
    pub(crate) fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }

    /// 404 / 40402.
    pub(crate) fn version_not_found(version: &str) -> Self {
        Self::new(404, 40402, format!("Version {version} not found."))
    }

    /// 404 / 40403, for an id.
    pub(crate) fn schema_id_not_found(id: u32) -> Self {
        Self::new(404, 40403, format!("Schema {id} not found"))
    }

    /// 404 / 40403, for a lookup by content under a subject.
    pub(crate) fn schema_not_found() -> Self {
        Self::new(404, 40403, "Schema not found".to_owned())
    }

    /// 404 / 40405: permanent delete of a subject that was not soft-deleted first.
    pub(crate) fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            404,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }

    /// 404 / 40407: permanent delete of a version that was not soft-deleted first.
    pub(crate) fn version_not_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            404,
            40407,
            format!(
                "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
            ),
        )
    }

    /// 404 / 40408: a subject without its own compatibility level.
    pub(crate) fn subject_level_not_configured(subject: &str) -> Self {
        Self::new(
            404,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }

    /// 422 / 42201.
    pub(crate) fn invalid_schema(details: &str) -> Self {
        Self::new(422, 42201, format!("Invalid schema: {details}"))
    }

    /// 422 / 42202.
    pub(crate) fn invalid_version(version: &str) -> Self {
        Self::new(
            422,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    /// 422 / 42203.
    pub(crate) fn invalid_compatibility_level(level: &str) -> Self {
        Self::new(
            422,
            42203,
            format!(
                "Invalid compatibility level '{level}'. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
            ),
        )
    }

    /// 409 / 409: the schema breaks the subject's compatibility level.
    pub(crate) fn incompatible(subject: &str, details: &[String]) -> Self {
        Self::new(
            409,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                details.join(", ")
            ),
        )
    }

    /// 400 / 400: the body is not JSON.
    pub(crate) fn malformed_json(details: &str) -> Self {
        Self::new(400, 400, format!("Unparseable JSON body: {details}"))
    }

    /// 422 / 422: the body is JSON of the wrong shape.
    pub(crate) fn unprocessable(details: &str) -> Self {
        Self::new(422, 422, format!("Unprocessable entity: {details}"))
    }

    /// 404 / 404: no such route (Jersey's answer).
    pub(crate) fn route_not_found() -> Self {
        Self::new(404, 404, "HTTP 404 Not Found".to_owned())
    }

    /// 405 / 405: a known path, another method (Jersey's answer).
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(405, 405, "HTTP 405 Method Not Allowed".to_owned())
    }

    /// 406 / 406: an `Accept` header this server cannot satisfy.
    pub(crate) fn not_acceptable() -> Self {
        Self::new(406, 406, "HTTP 406 Not Acceptable".to_owned())
    }

    /// 415 / 415: a request body in a media type other than JSON.
    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(415, 415, "HTTP 415 Unsupported Media Type".to_owned())
    }
}
