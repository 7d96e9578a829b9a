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
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use sluice_config::ConfigError;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::admission::Refusal;
use crate::jobs::{
    BatchView, CheckpointView, JobView, Jobs, JobsError, LagView, OffsetView, PlanView, PluginView,
    SwapView, describe,
};
use crate::tenants::{Tenant, TenantError, TenantSpec, Tenants};

/// The largest plugin upload (Python and JavaScript components bundle
/// their interpreter: tens of MiB).
const MAX_UPLOAD_BYTES: usize = 256 << 20;

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) tenants: Tenants,
    pub(crate) jobs: Jobs,
}

/// The API's OpenAPI document, generated from the handlers and types
/// below.
#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice host admin API", description = "Tenants' jobs and plugins on a `sluice serve` host. Every request but this document's bears a tenant's token: `Authorization: Bearer TOKEN`."),
    paths(upload_plugin, list_plugins, submit_job, list_jobs, get_job, stop_job, swap_plugin, job_events, own_tenant, list_tenants, put_tenant, new_tenant_token, revoke_tenant_tokens),
    components(schemas(JobView, BatchView, OffsetView, LagView, PlanView, CheckpointView, PluginView, SwapView, SwapBody, ErrorBody, PluginDigest, PluginList, JobList, TenantView, TenantList, TenantSpec, NewToken)),
    modifiers(&BearerToken),
    security(("token" = []))
)]
pub(crate) struct ApiDoc;

/// The tenant's token, as a bearer token.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme =
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("token", scheme);
    }
}

/// An uploaded plugin's digest.
#[derive(Debug, Serialize, ToSchema)]
struct PluginDigest {
    /// `sha256:HEX`: what a hosted job's `plugin` field names.
    digest: String,
}

/// A tenant's plugins.
#[derive(Debug, Serialize, ToSchema)]
struct PluginList {
    /// Their digests.
    plugins: Vec<String>,
}

/// A tenant's jobs.
#[derive(Debug, Serialize, ToSchema)]
struct JobList {
    /// Each job, as `GET /v1/jobs/{id}` shows it.
    jobs: Vec<JobView>,
}

/// Why a request failed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What is wrong.
    error: String,
    /// The field at fault (`source.options.subscribe`, `max_jobs`), if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// The job file's line at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
}

impl ErrorBody {
    fn new(error: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            field: None,
            line: None,
        }
    }

    fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// The API's routes.
pub(crate) fn router(host: Arc<Host>) -> Router {
    Router::new()
        .route(
            "/v1/openapi.json",
            get(|| async { Json(ApiDoc::openapi()) }),
        )
        .route("/v1/plugins", post(upload_plugin).get(list_plugins))
        .route("/v1/jobs", post(submit_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/stop", post(stop_job))
        .route("/v1/jobs/{id}/swap", post(swap_plugin))
        .route("/v1/events", get(job_events))
        .route("/v1/tenant", get(own_tenant))
        .route("/v1/tenants", get(list_tenants))
        .route("/v1/tenants/{name}", put(put_tenant))
        .route(
            "/v1/tenants/{name}/tokens",
            post(new_tenant_token).delete(revoke_tenant_tokens),
        )
        .merge(crate::ui::router())
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .with_state(host)
}

/// A request's `Authorization` header, if it has one in ASCII.
fn authorization(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
}

/// The tenant a request's bearer token names.
struct Authenticated(Arc<Tenant>);

impl FromRequestParts<Arc<Host>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Arc<Host>) -> Result<Self, ApiError> {
        host.tenants
            .authenticate(authorization(parts))
            .map(Authenticated)
            .ok_or(ApiError::Unauthorized)
    }
}

/// A request by one of the host's operators (`admin_token_sha256`).
struct Operator;

impl FromRequestParts<Arc<Host>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Arc<Host>) -> Result<Self, ApiError> {
        if host.tenants.is_operator(authorization(parts)) {
            Ok(Operator)
        } else {
            Err(ApiError::NotOperator)
        }
    }
}

/// A failed request, answered as JSON: `{"error": ..., "field": ...,
/// "line": ...}` (field and line where one is at fault).
#[derive(Debug)]
pub(crate) enum ApiError {
    /// No token, or one no tenant has.
    Unauthorized,
    /// No operator's token.
    NotOperator,
    /// What the tenants said.
    Tenants(TenantError),
    /// What the jobs said.
    Jobs(JobsError),
    /// Work on a blocking thread did not finish.
    Internal(String),
}

impl From<TenantError> for ApiError {
    fn from(error: TenantError) -> Self {
        ApiError::Tenants(error)
    }
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
                ErrorBody::new("a tenant's API token is required: Authorization: Bearer TOKEN"),
            ),
            ApiError::NotOperator => (
                StatusCode::UNAUTHORIZED,
                ErrorBody::new(
                    "an operator's token is required (admin_token_sha256 in the host file): Authorization: Bearer TOKEN",
                ),
            ),
            ApiError::Tenants(error) => {
                let status = match error {
                    TenantError::Invalid(..) => StatusCode::BAD_REQUEST,
                    TenantError::InHostFile(_) => StatusCode::CONFLICT,
                    TenantError::NotFound(_) => StatusCode::NOT_FOUND,
                    TenantError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let body = match error {
                    TenantError::Invalid(field, message) => ErrorBody::new(message).at(field),
                    other => ErrorBody::new(other.to_string()),
                };
                (status, body)
            }
            ApiError::Internal(message) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorBody::new(message))
            }
            ApiError::Jobs(error) => {
                let status = match error {
                    JobsError::Invalid(_) | JobsError::Start(_) => StatusCode::BAD_REQUEST,
                    JobsError::Refused(refusal) if refusal.forbidden => StatusCode::FORBIDDEN,
                    JobsError::Refused(_) => StatusCode::BAD_REQUEST,
                    JobsError::Quota(_) => StatusCode::TOO_MANY_REQUESTS,
                    JobsError::NotFound => StatusCode::NOT_FOUND,
                    JobsError::Storage(_) | JobsError::Plugins(_) => {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                };
                let body = match error {
                    JobsError::Invalid(ConfigError::Invalid {
                        line,
                        field,
                        message,
                        ..
                    }) => ErrorBody {
                        line: Some(*line),
                        ..ErrorBody::new(message).at(field)
                    },
                    JobsError::Refused(refusal) => {
                        ErrorBody::new(&refusal.message).at(&refusal.field)
                    }
                    JobsError::Quota(_) => ErrorBody::new(describe(error)).at("max_jobs"),
                    other => ErrorBody::new(describe(other)),
                };
                (status, body)
            }
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized | ApiError::NotOperator) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Run `work` on a blocking thread: storage, building and stopping jobs.
async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(Into::into)
}

/// Upload a plugin: the body is a Wasm component; answers its digest.
#[utoipa::path(post, path = "/v1/plugins",
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = PluginDigest), (status = 401, body = ErrorBody)))]
async fn upload_plugin(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let digest = blocking(move || host.jobs.upload_plugin(&tenant, &body)).await?;
    Ok((StatusCode::CREATED, Json(PluginDigest { digest })))
}

/// The tenant's plugins.
#[utoipa::path(get, path = "/v1/plugins",
    responses((status = 200, body = PluginList), (status = 401, body = ErrorBody)))]
async fn list_plugins(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    let plugins = blocking(move || host.jobs.plugins(&tenant)).await?;
    Ok(Json(PluginList { plugins }))
}

/// Submit a job: the body is a job file (TOML) whose plugins are named by
/// digest. The job is checked against the tenant's topics and quotas,
/// started, and kept: a restarted host resumes it.
#[utoipa::path(post, path = "/v1/jobs",
    request_body(content = String, content_type = "application/toml"),
    responses(
        (status = 201, body = JobView),
        (status = 400, description = "the job file is wrong, or the job could not start", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "the job asks for what the tenant may not have", body = ErrorBody),
        (status = 429, description = "the tenant runs max_jobs jobs", body = ErrorBody)))]
async fn submit_job(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    body: String,
) -> Result<impl IntoResponse, ApiError> {
    let view = blocking(move || host.jobs.submit(&tenant, &body)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The tenant's jobs.
#[utoipa::path(get, path = "/v1/jobs",
    responses((status = 200, body = JobList), (status = 401, body = ErrorBody)))]
async fn list_jobs(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
) -> impl IntoResponse {
    Json(JobList {
        jobs: host.jobs.list(&tenant),
    })
}

/// How often `GET /v1/events` sends the tenant's jobs.
const EVENT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The tenant's jobs as they run: server-sent events, one `jobs` event
/// (the body of `GET /v1/jobs`) at once and then every second. The web
/// page draws from it.
#[utoipa::path(get, path = "/v1/events",
    responses(
        (status = 200, description = "`text/event-stream`: an event `jobs` with data as `GET /v1/jobs` answers, every second", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody)))]
async fn job_events(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let events = futures::stream::unfold(true, move |first| {
        let (host, tenant) = (Arc::clone(&host), Arc::clone(&tenant));
        async move {
            if !first {
                tokio::time::sleep(EVENT_INTERVAL).await;
            }
            let jobs = JobList {
                jobs: host.jobs.list(&tenant),
            };
            let event = Event::default()
                .event("jobs")
                .json_data(&jobs)
                .unwrap_or_else(|error| Event::default().event("error").data(error.to_string()));
            Some((Ok(event), false))
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// One job's status.
#[utoipa::path(get, path = "/v1/jobs/{id}",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, body = JobView), (status = 401, body = ErrorBody),
        (status = 404, description = "no such job of this tenant", body = ErrorBody)))]
async fn get_job(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(host.jobs.get(&tenant, &id)?))
}

/// Stop a job at its next batch boundary (it checkpoints first); a
/// restarted host leaves it stopped.
#[utoipa::path(post, path = "/v1/jobs/{id}/stop",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 202, body = JobView), (status = 401, body = ErrorBody),
        (status = 404, description = "no such job of this tenant", body = ErrorBody)))]
async fn stop_job(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let view = blocking(move || host.jobs.stop(&tenant, &id)).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// A swap of a running job's plugin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SwapBody {
    /// The transform to swap, by name (`transform-0` when the job file
    /// gave it none).
    transform: String,
    /// The new version: `sha256:HEX`, as its upload answered.
    plugin: String,
    /// The new version's config; the running one's if left out.
    config: Option<std::collections::BTreeMap<String, String>>,
}

/// Swap a transform's plugin in a running job: the new version is loaded
/// off the job's thread, and the job switches at its next batch boundary,
/// carrying the plugin's state across. A version that cannot restore the
/// state is refused; one that fails its first batch is rolled back, which
/// the job's `swaps` show. The job's file names the new version from now
/// on, so a restarted host resumes on it.
#[utoipa::path(post, path = "/v1/jobs/{id}/swap",
    params(("id" = String, Path, description = "the job's id")),
    request_body = SwapBody,
    responses((status = 200, description = "switched", body = JobView),
        (status = 400, description = "the swap was refused; the job goes on with the old version", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such job of this tenant", body = ErrorBody)))]
async fn swap_plugin(
    State(host): State<Arc<Host>>,
    Authenticated(tenant): Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let swap: SwapBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Jobs(JobsError::Refused(Refusal::invalid("body", e.to_string()))))?;
    let view = blocking(move || {
        let config = swap.config.map(|c| c.into_iter().collect());
        host.jobs
            .swap(&tenant, &id, &swap.transform, &swap.plugin, config)
    })
    .await?;
    Ok(Json(view))
}

/// A tenant: what its jobs may use, and how many tokens name it.
#[derive(Debug, Serialize, ToSchema)]
struct TenantView {
    /// Its name.
    name: String,
    /// Prefixes of the topics its jobs may read and write.
    topics: Vec<String>,
    /// Jobs running at once.
    max_jobs: usize,
    /// The largest memory of a plugin instance, bytes.
    memory_limit_bytes: u64,
    /// The longest deadline of a plugin call, ms.
    deadline_ms: u64,
    /// The largest window state of a job, bytes.
    max_state_bytes: u64,
    /// The most source records per second each of its jobs reads.
    max_records_per_second: Option<u64>,
    /// The shortest restart backoff its jobs may set, ms.
    min_restart_backoff_ms: u64,
    /// How many tokens name it.
    tokens: usize,
    /// `host-file` (changed only there) or `api`.
    #[schema(value_type = String)]
    defined_in: &'static str,
}

impl TenantView {
    fn of(tenant: &Tenant) -> Self {
        let config = &tenant.config;
        TenantView {
            name: config.name.clone(),
            topics: config.topics.clone(),
            max_jobs: config.max_jobs,
            memory_limit_bytes: config.memory_limit.as_u64(),
            deadline_ms: u64::try_from(config.deadline.as_millis()).unwrap_or(u64::MAX),
            max_state_bytes: config.max_state_bytes.as_u64(),
            max_records_per_second: config.max_records_per_second,
            min_restart_backoff_ms: u64::try_from(config.min_restart_backoff.as_millis())
                .unwrap_or(u64::MAX),
            tokens: config.token_sha256.len(),
            defined_in: if tenant.in_host_file {
                "host-file"
            } else {
                "api"
            },
        }
    }
}

/// The host's tenants.
#[derive(Debug, Serialize, ToSchema)]
struct TenantList {
    /// Each tenant, by name.
    tenants: Vec<TenantView>,
}

/// A tenant's new API token, shown once: the host keeps only its SHA-256.
#[derive(Debug, Serialize, ToSchema)]
struct NewToken {
    /// The token, for `Authorization: Bearer TOKEN`.
    token: String,
}

/// The calling tenant: its topics and quotas.
#[utoipa::path(get, path = "/v1/tenant",
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody)))]
async fn own_tenant(Authenticated(tenant): Authenticated) -> impl IntoResponse {
    Json(TenantView::of(&tenant))
}

/// Every tenant of the host (operators only).
#[utoipa::path(get, path = "/v1/tenants",
    responses((status = 200, body = TenantList), (status = 401, body = ErrorBody)))]
async fn list_tenants(State(host): State<Arc<Host>>, _: Operator) -> impl IntoResponse {
    let tenants = host.tenants.all();
    Json(TenantList {
        tenants: tenants.iter().map(|t| TenantView::of(t)).collect(),
    })
}

/// Make a tenant, or change one the API made (operators only): its
/// topics and quotas, with the host file's defaults. Its tokens stay;
/// its running jobs keep the quotas they started with.
#[utoipa::path(put, path = "/v1/tenants/{name}",
    params(("name" = String, Path, description = "lowercase letters, digits, `-` and `_`")),
    request_body = TenantSpec,
    responses((status = 201, description = "made", body = TenantView),
        (status = 200, description = "changed", body = TenantView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "the host file defines it", body = ErrorBody)))]
async fn put_tenant(
    State(host): State<Arc<Host>>,
    _: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let spec: TenantSpec = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Tenants(TenantError::Invalid("body".into(), e.to_string())))?;
    let (tenant, new) = blocking(move || host.tenants.put(&name, &spec)).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(TenantView::of(&tenant))))
}

/// A new API token for a tenant the API made (operators only), shown
/// once.
#[utoipa::path(post, path = "/v1/tenants/{name}/tokens",
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 201, body = NewToken), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the host file defines it", body = ErrorBody)))]
async fn new_tenant_token(
    State(host): State<Arc<Host>>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let token = blocking(move || host.tenants.new_token(&name)).await?;
    Ok((StatusCode::CREATED, Json(NewToken { token })))
}

/// Revoke every token of a tenant the API made (operators only); its
/// jobs run on.
#[utoipa::path(delete, path = "/v1/tenants/{name}/tokens",
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the host file defines it", body = ErrorBody)))]
async fn revoke_tenant_tokens(
    State(host): State<Arc<Host>>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    blocking(move || host.tenants.revoke_tokens(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
