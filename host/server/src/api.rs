//! The admin API: JSON over HTTP, every request authenticated by a
//! tenant's bearer token, and every answer about the tenant's own jobs
//! and plugins only. Another tenant's job is answered as one that does
//! not exist (404).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use sluice_config::ConfigError;

use crate::jobs::{Jobs, JobsError, describe};
use crate::tenants::{Tenant, Tenants};

/// The largest plugin upload (Python and JavaScript components bundle
/// their interpreter: tens of MiB).
const MAX_UPLOAD_BYTES: usize = 256 << 20;

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) tenants: Tenants,
    pub(crate) jobs: Jobs,
}

/// The API's routes.
pub(crate) fn router(host: Arc<Host>) -> Router {
    Router::new()
        .route("/v1/plugins", post(upload_plugin).get(list_plugins))
        .route("/v1/jobs", post(submit_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/stop", post(stop_job))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .with_state(host)
}

/// The tenant a request's bearer token names.
struct Authenticated(Arc<Tenant>);

impl FromRequestParts<Arc<Host>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Arc<Host>) -> Result<Self, ApiError> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        host.tenants
            .authenticate(authorization)
            .map(Authenticated)
            .ok_or(ApiError::Unauthorized)
    }
}

/// A failed request, answered as JSON: `{"error": ..., "field": ...,
/// "line": ...}` (field and line where one is at fault).
#[derive(Debug)]
pub(crate) enum ApiError {
    /// No token, or one no tenant has.
    Unauthorized,
    /// What the jobs said.
    Jobs(JobsError),
    /// Work on a blocking thread did not finish.
    Internal(String),
}

impl From<JobsError> for ApiError {
    fn from(error: JobsError) -> Self {
        ApiError::Jobs(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "a tenant's API token is required: Authorization: Bearer TOKEN" }),
            ),
            ApiError::Internal(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": message }),
            ),
            ApiError::Jobs(error) => {
                let status = match error {
                    JobsError::Invalid(_) | JobsError::Start(_) => StatusCode::BAD_REQUEST,
                    JobsError::Refused(refusal) if refusal.forbidden => StatusCode::FORBIDDEN,
                    JobsError::Refused(_) => StatusCode::BAD_REQUEST,
                    JobsError::Quota(_) => StatusCode::TOO_MANY_REQUESTS,
                    JobsError::NotFound => StatusCode::NOT_FOUND,
                    JobsError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let body = match error {
                    JobsError::Invalid(ConfigError::Invalid {
                        line,
                        field,
                        message,
                        ..
                    }) => json!({ "error": message, "field": field, "line": line }),
                    JobsError::Refused(refusal) => {
                        json!({ "error": refusal.message, "field": refusal.field })
                    }
                    JobsError::Quota(_) => json!({ "error": describe(error), "field": "max_jobs" }),
                    other => json!({ "error": describe(other) }),
                };
                (status, body)
            }
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Run `work` on a blocking thread: storage, building and stopping jobs.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, JobsError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Jobs)
}

/// `POST /v1/plugins`: the body is a Wasm component; answers its digest.
async fn upload_plugin(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let digest = blocking(move || host.jobs.upload_plugin(&tenant, &body)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "digest": digest }))))
}

/// `GET /v1/plugins`: the tenant's plugin digests.
async fn list_plugins(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    let digests = blocking(move || host.jobs.plugins(&tenant)).await?;
    Ok(Json(json!({ "plugins": digests })))
}

/// `POST /v1/jobs`: the body is a job file (TOML); the job starts.
async fn submit_job(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    body: String,
) -> Result<impl IntoResponse, ApiError> {
    let view = blocking(move || host.jobs.submit(&tenant, &body)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/jobs`: the tenant's jobs.
async fn list_jobs(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
) -> impl IntoResponse {
    Json(json!({ "jobs": host.jobs.list(&tenant) }))
}

/// `GET /v1/jobs/{id}`: one job's status.
async fn get_job(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(host.jobs.get(&tenant, &id)?))
}

/// `POST /v1/jobs/{id}/stop`: stop the job at its next batch boundary.
async fn stop_job(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let view = blocking(move || host.jobs.stop(&tenant, &id)).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}
