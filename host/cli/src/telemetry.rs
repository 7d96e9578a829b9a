//! Where the process's log and trace spans go: the log to stderr (through
//! `sluice run`'s progress bar while it draws one), and, when an OTLP
//! endpoint is configured, the jobs' spans (one per batch, one per
//! operator call inside it) to that endpoint over OTLP/HTTP.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::progress::Logs;

/// The service name spans carry unless `OTEL_SERVICE_NAME` says
/// otherwise.
const SERVICE_NAME: &str = "sluice";

/// The span exporter while the process runs: dropping it sends the
/// spans still queued.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// The provider, when spans are exported.
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Log to `logs` (at `RUST_LOG`'s levels, `info` by default) and, with
    /// an `otlp_endpoint` (the collector's base URL, as in
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`), export the jobs' spans to it.
    pub(crate) fn init(logs: Logs, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
        let log = fmt::layer()
            .with_writer(logs)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(log_filter());
        let provider = otlp_endpoint.map(provider).transpose()?;
        let spans = provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(SERVICE_NAME))
                .with_filter(
                    Targets::new().with_target(sluice_job::TRACE_TARGET, LevelFilter::INFO),
                )
        });
        tracing_subscriber::registry()
            .with(log)
            .with(spans)
            .try_init()
            .context("setting up the log")?;
        Ok(Telemetry { provider })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: sending the last trace spans: {error}");
        }
    }
}

/// The log's levels: `RUST_LOG`'s, else `info`; the trace spans are never
/// logged unless `RUST_LOG` names them.
fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{}=off", sluice_job::TRACE_TARGET)))
}

/// A provider that batches spans and sends them over OTLP/HTTP (protobuf)
/// to `endpoint`'s `/v1/traces`, as the OpenTelemetry specification
/// builds the URL from `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(&traces)
        .build()
        .with_context(|| format!("exporting trace spans to {traces}"))?;
    let resource = Resource::builder()
        .with_service_name(
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| SERVICE_NAME.to_owned()),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
