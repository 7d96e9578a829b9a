//! Conformance with Confluent's own client: orders written by confluent-kafka's Python
//! serializers (Avro, JSON Schema, Protobuf; with an enum, a map, a date, a decimal and a nested
//! record) go through a `sluice run` job that decodes them, passes them through a plugin of every
//! SDK language, and encodes them again; confluent-kafka's deserializers read the output back
//! with the client's own reader schemas and must see what was written.
//!
//! The client lives in a virtualenv `scripts/setup` creates; `scripts/services env` names its
//! interpreter. The registry is the stand-in, the broker a real Kafka-protocol one.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sluice_e2e::kafka::{Broker, brokers_with_end_offsets, create_topic, unique};
use sluice_e2e::run_job;
use sluice_plugin_artifacts as artifacts;
use sluice_registry_stand_in::StandIn;

/// The pass-through plugin of each SDK language: a filter that keeps every order.
const PASS_THROUGH: &[&str] = &[
    artifacts::FILTER,
    artifacts::PYTHON_FILTER,
    artifacts::JS_FILTER,
    artifacts::C_FILTER,
    artifacts::GO_FILTER,
];

const ORDERS: usize = 200;

/// Runs `tests/conformance/confluent_client.py` with `args`; its JSON lines.
fn client(args: &[&str]) -> Vec<Value> {
    let python = std::env::var("SLUICE_TEST_CONFLUENT_PYTHON").unwrap_or_else(|_| {
        panic!("SLUICE_TEST_CONFLUENT_PYTHON is not set; run `scripts/setup clients` and `eval $(scripts/services env)`")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/confluent_client.py");
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("running the Confluent client");
    assert!(
        output.status.success(),
        "confluent_client.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The job: the input decoded with `format`, every language's pass-through plugin in turn,
/// the output encoded with `format` under `{output}-value`.
fn write_job(
    dir: &Path,
    broker: &Broker,
    url: &str,
    format: &str,
    topics: (&str, &str),
) -> PathBuf {
    let (input, output) = topics;
    let transforms: String = PASS_THROUGH
        .iter()
        .map(|plugin| {
            format!("[[transform]]\nplugin = {plugin:?}\nconfig = {{ column = \"id\", op = \"is_not_null\" }}\n\n")
        })
        .collect();
    // A Protobuf schema cannot be derived from rows: the output subject's schema is the one the
    // client registered. Avro and JSON Schema register what the rows carry.
    let auto_register = format != "protobuf";
    let text = format!(
        r#"[job]
name = "conformance-{format}"

[source]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = {address:?}, subscribe = {input:?}, startingOffsets = "earliest" }}

[trigger]
max_rows = 64
available_now = true

[decode]
format = {format:?}
registry = {{ url = {url:?} }}
on_error = "fail"

{transforms}[encode]
format = {format:?}
registry = {{ url = {url:?} }}
subject = "{output}-value"
"auto.register.schemas" = {auto_register}

[sink]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = {address:?}, topic = {output:?} }}
"#,
        address = broker.address,
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Orders by id, for comparing what was written with what was read.
fn by_id(mut orders: Vec<Value>) -> Vec<Value> {
    orders.sort_by_key(|order| order["id"].to_string());
    orders
}

fn round_trip(broker: &Broker, url: &str, format: &str, output_preregistered: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (
        unique(&format!("conf-{format}-in")),
        unique(&format!("conf-{format}-out")),
    );
    create_topic(broker, &input, 2);
    create_topic(broker, &output, 1);
    let count = ORDERS.to_string();
    let written = client(&["produce", format, &broker.address, url, &input, &count]);
    if output_preregistered {
        client(&["register", format, url, &format!("{output}-value")]);
    }
    let job = write_job(dir.path(), broker, url, format, (&input, &output));
    let run = run_job(&job, &dir.path().join("cache"));
    assert!(
        run.status.success(),
        "{format}: sluice failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read = client(&["consume", format, &broker.address, url, &output, &count]);
    assert_eq!(read.len(), ORDERS, "{format}: every order, once");
    for (read, written) in by_id(read).iter().zip(by_id(written).iter()) {
        assert_eq!(read, written, "{format}: read back as written");
    }
}

/// A broker whose end offsets an available-now job can trust.
fn test_broker() -> Broker {
    brokers_with_end_offsets()
        .into_iter()
        .next()
        .expect("a broker with correct end offsets")
}

#[test]
fn avro_written_by_confluents_serializer_reads_back_through_every_language() {
    let registry = StandIn::start().unwrap();
    // The output subject already holds the client's `hc.Order`: what Sluice registers must be
    // the same schema, name and all.
    round_trip(&test_broker(), &registry.url(), "avro", true);
}

#[test]
fn json_schema_written_by_confluents_serializer_reads_back_through_every_language() {
    let registry = StandIn::start().unwrap();
    round_trip(&test_broker(), &registry.url(), "json-schema", false);
}

#[test]
fn protobuf_written_by_confluents_serializer_reads_back_through_every_language() {
    let registry = StandIn::start().unwrap();
    round_trip(&test_broker(), &registry.url(), "protobuf", true);
}
