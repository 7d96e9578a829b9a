//! `GET /metrics`: a process's metrics for Prometheus to scrape, on an
//! address of its own (for the host's operators: tenants see their jobs
//! through the admin API).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use sluice_metrics::{CONTENT_TYPE, Metrics};

use crate::ServerError;

/// `/metrics` served on a thread of its own until dropped.
#[derive(Debug)]
pub struct MetricsEndpoint {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl MetricsEndpoint {
    /// Serve `metrics` at `http://{address}/metrics` (port 0: any free
    /// port; see [`MetricsEndpoint::address`]).
    pub fn start(address: SocketAddr, metrics: Metrics) -> Result<Self, ServerError> {
        let io = |what: String| move |source| ServerError::Io { what, source };
        let listener = std::net::TcpListener::bind(address)
            .map_err(io(format!("listening for scrapes on {address}")))?;
        listener
            .set_nonblocking(true)
            .map_err(io("setting up the metrics listener".into()))?;
        let address = listener
            .local_addr()
            .map_err(io("setting up the metrics listener".into()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io("starting the metrics thread".into()))?;
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(Arc::new(metrics));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sluice-metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await
                })
            })
            .map_err(io("starting the metrics thread".into()))?;
        tracing::info!(%address, "serving metrics at /metrics");
        Ok(MetricsEndpoint {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Where `/metrics` is served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take()
            && let Ok(Err(error)) = thread.join()
        {
            tracing::warn!("serving metrics: {error}");
        }
    }
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode())
}
