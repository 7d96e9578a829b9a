//! `sluice serve`: one process runs many tenants' jobs, behind an admin
//! HTTP API (tokio and axum). Tenants, their tokens, topic allow-lists and
//! quotas come from the host file; jobs and plugins are kept under the
//! host's state directory, so a restarted host resumes its jobs from
//! their checkpoints.

mod admission;
mod api;
mod config;
mod jobs;
mod metrics_endpoint;
mod plugins;
mod tenants;
mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::{HostConfig, TenantConfig};
pub use metrics_endpoint::MetricsEndpoint;
use sluice_metrics::Metrics;
use sluice_runtime::Runtime;
pub use tenants::new_token;

use crate::api::Host;
use crate::jobs::{Jobs, describe};
use crate::plugins::PluginStore;
use crate::tenants::Tenants;

/// Why the host could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The host file is unreadable or wrong.
    #[error("host file {path}: {message}")]
    Config {
        /// The host file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Listening, or the host's storage, failed.
    #[error("{what}: {source}")]
    Io {
        /// What the host was doing.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The plugin store cannot be opened.
    #[error("plugin_store: {0}")]
    PluginStore(String),
    /// The jobs kept from the last run could not be read.
    #[error("resuming the host's jobs: {0}")]
    Resume(String),
}

/// The admin API's OpenAPI document (JSON), as `GET /v1/openapi.json`
/// serves it.
pub fn openapi() -> String {
    use utoipa::OpenApi;
    api::ApiDoc::openapi()
        .to_pretty_json()
        .expect("the API document serializes")
}

/// A running host: its API served on a thread of its own.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    host: Arc<Host>,
    metrics: Option<MetricsEndpoint>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Resume the jobs kept under the host's state directory, then serve
    /// the API on `config.listen` (port 0: any free port; see
    /// [`Server::address`]) and, with `config.metrics_listen`, every job's
    /// metrics there.
    pub fn start(config: &HostConfig, runtime: Runtime) -> Result<Self, ServerError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| ServerError::Io { what, source }
        };
        std::fs::create_dir_all(&config.state)
            .map_err(io(&format!("creating {}", config.state.display())))?;
        let counters = runtime.metrics().clone();
        let metrics = Metrics::new(Some(Arc::new(move || counters.snapshot())));
        let endpoint = config
            .metrics_listen
            .map(|address| MetricsEndpoint::start(address, metrics.clone()))
            .transpose()?;
        let plugins = PluginStore::open(
            config.plugin_store.as_deref(),
            &config.plugin_store_options,
            &config.state.join("plugins"),
        )
        .map_err(ServerError::PluginStore)?;
        let adopted = plugins
            .adopt_old_layout(&config.state)
            .map_err(|e| ServerError::PluginStore(e.to_string()))?;
        if adopted > 0 {
            tracing::info!(
                adopted,
                "took the plugins of the old state layout into the plugin store"
            );
        }
        let host = Arc::new(Host {
            tenants: Tenants::load(config).map_err(io(&format!(
                "reading the tenants under {}",
                config.state.display()
            )))?,
            jobs: Jobs::new(&config.state, plugins, runtime, metrics),
        });
        host.jobs
            .resume(host.tenants.all().iter())
            .map_err(|e| ServerError::Resume(describe(&e)))?;
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(io(&format!("listening on {}", config.listen)))?;
        listener
            .set_nonblocking(true)
            .map_err(io("setting up the listener"))?;
        let address = listener
            .local_addr()
            .map_err(io("setting up the listener"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-api")
            .enable_all()
            .build()
            .map_err(io("starting the API's threads"))?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = api::router(Arc::clone(&host));
        let thread = std::thread::Builder::new()
            .name("sluice-serve".into())
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
            .map_err(io("starting the API's thread"))?;
        tracing::info!(%address, "serving the admin API");
        Ok(Server {
            address,
            host,
            metrics: endpoint,
            shutdown,
            thread,
        })
    }

    /// Where the API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `/metrics` is served, if the host file asks for it.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::address)
    }

    /// Stop serving, then stop every job at its next batch boundary (each
    /// checkpoints) and wait for them. The jobs stay on record: the next
    /// start of the host resumes them.
    pub fn shut_down(self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(());
        let served = self
            .thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.host.jobs.shut_down();
        served.map_err(|source| ServerError::Io {
            what: "serving the API".into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_committed_openapi_document_matches_the_api() {
        let generated = openapi() + "\n";
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        if std::env::var_os("SLUICE_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is not what the API's handlers generate. Regenerate it with \
             `SLUICE_BLESS=1 cargo test -p sluice-server` and commit the result."
        );
        for path in [
            "/v1/plugins",
            "/v1/jobs",
            "/v1/jobs/{id}",
            "/v1/jobs/{id}/stop",
        ] {
            assert!(
                generated.contains(&format!("\"{path}\"")),
                "{path} is not documented"
            );
        }
    }
}
