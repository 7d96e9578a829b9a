//! The live web page: three files built into the binary (no CDN, nothing
//! fetched at run time). The page holds no data of its own: it reads the
//! tenant's jobs from `GET /v1/events` with the tenant's token, under the
//! API's rules.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// Scripts and styles from this host only; the page's own inline styles
/// (the SVG plan) allowed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/// `/`, `/ui/app.js` and `/ui/style.css`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| file("text/html; charset=utf-8", include_str!("ui/index.html"))),
        )
        .route(
            "/ui/app.js",
            get(|| file("text/javascript; charset=utf-8", include_str!("ui/app.js"))),
        )
        .route(
            "/ui/style.css",
            get(|| file("text/css; charset=utf-8", include_str!("ui/style.css"))),
        )
}

async fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
