//! `sluice run --metrics-addr`: Prometheus scrapes a running Kafka job,
//! and what it reads is what the job did. The rows in and out, the
//! dead-lettered rows by kind, a lag that is seen above 0 while the job
//! catches up and falls to 0 once it has, and a checkpoint counter that
//! goes on advancing; every scrape parses as Prometheus' text format.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_e2e::kafka::{Broker, Record, brokers_with_end_offsets, create_topic, produce, unique};
use sluice_e2e::{free_port, sluice_binary, terminate, wait_for_exit};
use sluice_plugin_artifacts as artifacts;

const PARTITIONS: i32 = 2;

/// `count` records from `first` on, spread over the partitions; every
/// tenth value is not UTF-8, so a `string` source dead-letters it.
fn records(first: usize, count: usize) -> Vec<Record> {
    (first..first + count)
        .map(|i| Record {
            partition: (i % PARTITIONS as usize) as i32,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(if i % 10 == 9 {
                vec![b'x', 0xff, 0xfe]
            } else {
                format!("value {i}").into_bytes()
            }),
            headers: vec![],
        })
        .collect()
}

fn job_file(dir: &Path, broker: &Broker, input: &str, output: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[job]
name = "metered"

[source]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = {address:?}, subscribe = {input:?}, startingOffsets = "earliest", valueFormat = "string", maxOffsetsPerTrigger = "500" }}

[trigger]
max_interval = "50ms"

[[transform]]
plugin = {filter:?}
config = {{ column = "offset", op = "ge", value = "0" }}

[sink]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = {address:?}, topic = {output:?} }}

[outputs.dead-letter]
type = "file"
path = {dead:?}

[checkpoint]
location = {checkpoints:?}
interval = "300ms"
"#,
        address = broker.address,
        filter = artifacts::FILTER,
        dead = dir.join("dead.jsonl"),
        checkpoints = dir.join("checkpoints"),
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One scrape: each sample's value by its name and sorted labels.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn take(port: u16) -> Option<Scrape> {
        let mut response = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
            .call()
            .ok()?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.body_mut().read_to_string().unwrap();
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("not Prometheus' text format: {e}\n{text}"));
        let mut samples = BTreeMap::new();
        for sample in parsed.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            let mut labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
        }
        Some(Scrape(samples))
    }

    /// The sum of `name`'s samples whose labels include every one of
    /// `labels` (`key=value`).
    fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(key, _)| {
                key.starts_with(&format!("{name}{{")) && labels.iter().all(|l| key.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|key| key.starts_with(&format!("{name}{{")))
    }
}

/// Scrape until `done` holds (failing after a minute), and return that
/// scrape; `seen` sees every scrape on the way.
fn scrape_until(
    port: u16,
    child: &mut Child,
    log: &Path,
    mut seen: impl FnMut(&Scrape),
    done: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the job exited ({status}) before the metrics showed what was awaited:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Some(scrape) = Scrape::take(port) {
            seen(&scrape);
            if done(&scrape) {
                return scrape;
            }
            last = Some(scrape);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "the metrics never showed what was awaited; last scrape: {last:#?}\nthe job's log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn a_scrape_shows_what_a_kafka_job_did() {
    for broker in brokers_with_end_offsets() {
        a_scrape_shows_what_a_kafka_job_did_on(&broker);
    }
}

fn a_scrape_shows_what_a_kafka_job_did_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("metrics-in"), unique("metrics-out"));
    create_topic(broker, &input, PARTITIONS);
    create_topic(broker, &output, PARTITIONS);
    let first = 30_000;
    produce(broker, &input, &records(0, first));
    let job = job_file(dir.path(), broker, &input, &output);
    let port = free_port();
    let log = dir.path().join("sluice.log");
    let mut child = Command::new(sluice_binary())
        .arg("run")
        .arg(&job)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("starting sluice");
    let labels = ["job=metered"];
    let dead_of = |n: usize| (0..n).filter(|i| i % 10 == 9).count() as f64;
    let mut most_lag = 0.0f64;
    let caught_up = |total: usize| {
        move |s: &Scrape| {
            s.sum("sluice_operator_rows_in_total", &["operator=source"]) == total as f64
                && s.has("sluice_source_lag_records")
                && s.sum("sluice_source_lag_records", &labels) == 0.0
                && s.sum("sluice_checkpoints_total", &labels) >= 1.0
        }
    };
    let scrape = scrape_until(
        port,
        &mut child,
        &log,
        |s| most_lag = most_lag.max(s.sum("sluice_source_lag_records", &labels)),
        caught_up(first),
    );
    assert!(
        most_lag > 0.0,
        "{}: the lag was never seen above 0 while the job read {first} records",
        broker.name
    );
    let dead = dead_of(first);
    let good = first as f64 - dead;
    for (name, labels, want) in [
        (
            "sluice_operator_rows_out_total",
            vec!["operator=decode"],
            good,
        ),
        (
            "sluice_operator_rows_in_total",
            vec!["operator=filter"],
            good,
        ),
        (
            "sluice_operator_rows_out_total",
            vec!["operator=sink"],
            good,
        ),
        (
            "sluice_rejected_rows_total",
            vec!["kind=invalid-utf8"],
            dead,
        ),
        ("sluice_output_rows_total", vec!["output=dead-letter"], dead),
    ] {
        assert_eq!(
            scrape.sum(name, &labels),
            want,
            "{}: {name} {labels:?}",
            broker.name
        );
    }
    assert!(scrape.sum("sluice_batches_total", &labels) >= (first / 500) as f64);
    assert!(scrape.has("sluice_plugin_call_duration_seconds_count"));

    // More records: the job reads them, and checkpoints go on.
    let checkpoints = scrape.sum("sluice_checkpoints_total", &labels);
    let more = 1_000;
    produce(broker, &input, &records(first, more));
    let scrape = scrape_until(
        port,
        &mut child,
        &log,
        |_| {},
        move |s| {
            caught_up(first + more)(s) && s.sum("sluice_checkpoints_total", &labels) > checkpoints
        },
    );
    assert_eq!(
        scrape.sum("sluice_rejected_rows_total", &["kind=invalid-utf8"]),
        dead_of(first + more),
        "{}",
        broker.name
    );
    terminate(&child);
    let status = wait_for_exit(&mut child, Duration::from_secs(30)).expect("the job stops");
    assert!(status.success(), "{}: {status}", broker.name);
}
