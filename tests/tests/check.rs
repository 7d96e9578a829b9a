//! `sluice check`: a job's plan, and errors that name the field and line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sluice_e2e::sluice_binary;
use sluice_plugin_artifacts as artifacts;

/// Write `text` as `job.toml` in `dir` and run `sluice check` on it.
fn check(dir: &Path, text: &str) -> Output {
    let job = dir.join("job.toml");
    std::fs::write(&job, text).unwrap();
    Command::new(sluice_binary())
        .arg("check")
        .arg(&job)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .output()
        .expect("running sluice check")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A windowed job over Kafka with a transform, an aggregate and every kind
/// of output; `{redact}`-style placeholders are filled by [`job`].
fn job(transform: &str, aggregate: &str, window: &str) -> String {
    format!(
        r#"[job]
name = "orders-by-user"
parallelism = 3

[source]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = "127.0.0.1:1", subscribe = "orders", "kafka.sasl.password" = "hunter2" }}

[decode]
format = "json"
schema = [{{ name = "user", type = "utf8" }}, {{ name = "amount", type = "int64" }}, {{ name = "ts", type = "timestamp_ms" }}]
dead_letter = "dlq"

[[transform]]
name = "redact"
plugin = {transform:?}
config = {{ columns = "user" }}

[aggregate]
plugin = {aggregate:?}
config = {{ column = "amount" }}
key = ["user"]
event_time = "ts"
window = {window}
watermark_delay = "5s"

[sink]
type = "file"
path = "out.jsonl"

[outputs.dlq]
type = "file"
path = "dlq.jsonl"

[outputs.late]
type = "console"
"#
    )
}

const TUMBLING: &str = r#"{ type = "tumbling", size = "10s" }"#;

#[test]
fn a_good_job_prints_its_plan_from_source_to_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let output = check(
        dir.path(),
        &job(artifacts::PII_REDACT, artifacts::STATS, TUMBLING),
    );
    let plan = text(&output.stdout);
    assert!(output.status.success(), "{plan}{}", text(&output.stderr));
    let stages: Vec<&str> = plan
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "source",
            "trigger",
            "decode",
            "transform",
            "rejected",
            "aggregate",
            "windows",
            "tasks",
            "sink",
            "output",
            "output",
            "checkpoint"
        ],
        "{plan}"
    );
    assert!(plan.contains("checkpoint off"), "{plan}");
    for expected in [
        "job `orders-by-user`",
        "subscribe=orders",
        "kafka.sasl.password=****",
        "`value` as json",
        "poison → output `dlq`",
        "1. redact",
        "rows a plugin rejects → output `dlq`",
        "tumbling 10s on `ts`, key [user]; watermark delay 5s",
        "late rows → output `late`",
        "`dlq` → file",
        "3: decode, `redact` on each",
        "from the aggregate on (it keeps state)",
    ] {
        assert!(plan.contains(expected), "no {expected:?} in\n{plan}");
    }
    assert!(!plan.contains("hunter2"), "a secret in the plan:\n{plan}");
    // The plugins were loaded: their digests are in the plan.
    assert_eq!(plan.matches("sha256:").count(), 2, "{plan}");
}

/// The line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// `sluice check` fails, and its error names `field` and `line`.
fn assert_fails_naming(dir: &Path, job: &str, field: &str, line: usize) -> String {
    let output = check(dir, job);
    let message = text(&output.stderr);
    assert!(
        !output.status.success(),
        "check passed:\n{}",
        text(&output.stdout)
    );
    assert!(message.contains(field), "no `{field}` in: {message}");
    assert!(
        message.contains(&format!("line {line}")),
        "no line {line} in: {message}"
    );
    message
}

#[test]
fn a_misspelt_field_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = job(artifacts::PII_REDACT, artifacts::STATS, TUMBLING);
    let bad = good.replace("watermark_delay", "watermark_dealy");
    assert_fails_naming(
        dir.path(),
        &bad,
        "watermark_dealy",
        line_of(&bad, "watermark_dealy"),
    );
}

#[test]
fn an_unknown_format_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = job(artifacts::PII_REDACT, artifacts::STATS, TUMBLING);
    let bad = good.replace("format = \"json\"", "format = \"jsn\"");
    let message = assert_fails_naming(dir.path(), &bad, "jsn", line_of(&bad, "jsn"));
    assert!(
        message.contains("json-schema"),
        "the formats are not listed: {message}"
    );
}

#[test]
fn a_transform_given_as_the_aggregate_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = job(artifacts::PII_REDACT, artifacts::FILTER, TUMBLING);
    let line = line_of(&bad, artifacts::FILTER);
    let message = assert_fails_naming(dir.path(), &bad, "aggregate.plugin", line);
    assert!(message.contains("the `aggregate` world"), "{message}");
}

#[test]
fn a_plugin_that_is_not_a_component_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken: PathBuf = dir.path().join("broken.wasm");
    std::fs::write(&broken, "not wasm").unwrap();
    let bad = job(broken.to_str().unwrap(), artifacts::STATS, TUMBLING);
    assert_fails_naming(
        dir.path(),
        &bad,
        "transform[0].plugin",
        line_of(&bad, "broken.wasm"),
    );
}

#[test]
fn an_impossible_window_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let window = r#"{ type = "hopping", size = "10s", slide = "0s" }"#;
    let bad = job(artifacts::PII_REDACT, artifacts::STATS, window);
    assert_fails_naming(
        dir.path(),
        &bad,
        "aggregate.window",
        line_of(&bad, "hopping"),
    );
}

#[test]
fn version_names_the_plugin_contract_and_wasmtime() {
    let output = Command::new(sluice_binary())
        .arg("--version")
        .output()
        .unwrap();
    let version = text(&output.stdout);
    assert!(output.status.success());
    assert!(version.contains("sluice:plugin@0.2.0"), "{version}");
    let wasmtime = version.split("wasmtime ").nth(1).unwrap_or_default();
    assert!(
        wasmtime.starts_with(|c: char| c.is_ascii_digit()),
        "no wasmtime version in {version}"
    );
}
