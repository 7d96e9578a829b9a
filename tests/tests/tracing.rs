//! `sluice run --otlp-endpoint`: the job's trace spans reach an
//! OpenTelemetry collector over OTLP/HTTP. The collector here is an HTTP
//! endpoint that decodes what it is sent with the protocol's own
//! protobuf definitions (opentelemetry-proto), as a collector would.
//! Every batch is a root span carrying its row count, and every plugin
//! call a span inside it, with the plugin's digest and the rows it took.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use sluice_e2e::sluice_binary;
use sluice_plugin_artifacts as artifacts;

const ROWS: i64 = 3000;

/// The requests an OTLP/HTTP trace endpoint on `listener` receives
/// (`POST /v1/traces`, protobuf), as they arrive.
fn collect(listener: TcpListener) -> Arc<Mutex<Vec<ExportTraceServiceRequest>>> {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
            sink.lock().unwrap().push(request);
            (
                [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }),
    );
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    received
}

/// A bounded job: `ROWS` generated rows in batches of at most 500,
/// through the filter plugin (which keeps them all), to a file.
fn write_job(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"[job]
name = "traced"

[source]
type = "datagen"
rows_per_second = 6000
rows = {ROWS}
columns = [{{ name = "id", generator = "sequence" }}]

[trigger]
max_rows = 500

[[transform]]
plugin = {filter:?}
config = {{ column = "id", op = "ge", value = "0" }}

[sink]
type = "file"
path = {out:?}
"#,
        filter = artifacts::FILTER,
        out = dir.join("out.jsonl"),
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `span`'s attribute `key`.
fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|AnyValue { value }| value.as_ref())
}

/// `span`'s integer attribute `key`.
fn int(span: &Span, key: &str) -> i64 {
    match attribute(&span.attributes, key) {
        Some(Value::IntValue(n)) => *n,
        other => panic!("span {} has {key} = {other:?}", span.name),
    }
}

/// `span`'s string attribute `key`.
fn string<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(&span.attributes, key) {
        Some(Value::StringValue(s)) => s,
        other => panic!("span {} has {key} = {other:?}", span.name),
    }
}

#[test]
fn every_batch_and_plugin_call_is_a_span_sent_over_otlp() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received = collect(listener);

    let output = Command::new(sluice_binary())
        .arg("run")
        .arg(write_job(dir.path()))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["--otlp-endpoint", &endpoint, "--quiet"])
        .env("RUST_LOG", "warn")
        .env_remove("OTEL_SERVICE_NAME")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The process sends what it has queued before it exits.
    let requests = received.lock().unwrap();
    assert!(!requests.is_empty(), "no spans were exported");
    let mut spans = Vec::new();
    for resource_spans in requests.iter().flat_map(|r| &r.resource_spans) {
        let resource = resource_spans.resource.as_ref().expect("a resource");
        assert!(
            matches!(attribute(&resource.attributes, "service.name"), Some(Value::StringValue(s)) if s == "sluice"),
            "{:?}",
            resource.attributes
        );
        spans.extend(
            resource_spans
                .scope_spans
                .iter()
                .flat_map(|s| s.spans.iter().cloned()),
        );
    }
    let batches: HashMap<&[u8], &Span> = spans
        .iter()
        .filter(|s| s.name == "batch")
        .map(|s| (s.span_id.as_slice(), s))
        .collect();
    let calls: Vec<&Span> = spans.iter().filter(|s| s.name == "operator").collect();

    // Every row is in exactly one batch; each batch is a trace of its own.
    assert_eq!(batches.values().map(|b| int(b, "rows")).sum::<i64>(), ROWS);
    for batch in batches.values() {
        assert!(batch.parent_span_id.is_empty(), "a batch is a root span");
        assert_eq!(string(batch, "job"), "traced");
        assert!(batch.end_time_unix_nano >= batch.start_time_unix_nano);
    }
    assert!(
        batches.len() >= (ROWS / 500) as usize,
        "{} batches",
        batches.len()
    );

    // Each batch called the plugin once, inside the batch's span, with
    // the batch's rows; the filter kept them all.
    assert_eq!(calls.len(), batches.len());
    for call in &calls {
        let batch = batches
            .get(call.parent_span_id.as_slice())
            .expect("a plugin call inside a batch");
        assert_eq!(call.trace_id, batch.trace_id);
        assert_eq!(int(call, "rows_in"), int(batch, "rows"));
        assert_eq!(int(call, "rows_out"), int(call, "rows_in"));
        let digest = string(call, "plugin.digest");
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "plugin.digest = {digest:?}"
        );
        assert!(call.start_time_unix_nano >= batch.start_time_unix_nano);
        assert!(call.end_time_unix_nano <= batch.end_time_unix_nano);
    }
}
