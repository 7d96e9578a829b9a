//! A broker that restarts mid-run: the job resumes and loses no record
//! (at-least-once; exactly-once belongs to checkpoints).
//!
//! Runs against a private noida-db broker the test stops and restarts on
//! the same port and data directory. tansu is not used here: its test
//! storage is in memory, so a restart loses the topics themselves.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sluice_e2e::kafka::{Broker, Record, create_topic, produce, read_back, unique};
use sluice_e2e::{free_port, spawn_job};
use sluice_plugin_artifacts as artifacts;

fn start_broker(data: &std::path::Path, port: u16) -> Child {
    let binary = std::env::var("SLUICE_TEST_NOIDA_BIN")
        .expect("SLUICE_TEST_NOIDA_BIN is not set; run `eval $(scripts/services env)`");
    let mut child = Command::new(binary)
        .args([
            "start",
            "--only",
            "kafka",
            "--kafka-port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting noida-db");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("noida-db did not listen on {port}");
}

/// Stop the broker as an operator would (SIGTERM) and wait for it to exit.
/// A SIGKILLed noida-db loses its idempotent-producer state and its last
/// acknowledged writes (the sink then fails loudly with
/// OutOfOrderSequenceNumber), which Apache Kafka does not.
fn stop_broker(broker: &mut Child) {
    let status = Command::new("kill")
        .arg(broker.id().to_string())
        .status()
        .expect("running kill");
    assert!(status.success());
    broker.wait().unwrap();
}

fn batch(range: std::ops::Range<usize>) -> Vec<Record> {
    range
        .map(|i| Record {
            partition: 0,
            key: None,
            value: Some(format!("r{i}").into_bytes()),
            headers: vec![],
        })
        .collect()
}

#[test]
fn job_resumes_after_the_broker_restarts_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("broker-data");
    let mut broker_process = start_broker(&data, port);
    let broker = Broker {
        name: "noida-db (private)",
        address: format!("127.0.0.1:{port}"),
        correct_high_watermarks: true,
        sane_metadata_after_delete: true,
    };
    let (input, output) = (unique("restart-in"), unique("restart-out"));
    create_topic(&broker, &input, 1);
    create_topic(&broker, &output, 1);

    let job = dir.path().join("job.toml");
    std::fs::write(&job, format!(
        "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {addr:?}, subscribe = {input:?}, startingOffsets = \"earliest\" }}\n\n\
         [trigger]\nmax_rows = 500\nmax_interval = \"100ms\"\n\n\
         [[transform]]\nplugin = {plugin:?}\nconfig = {{ column = \"offset\", op = \"ge\", value = \"0\" }}\n\n\
         [sink]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {addr:?}, topic = {output:?} }}\n",
        addr = broker.address,
        plugin = artifacts::FILTER,
    )).unwrap();
    let mut sluice = spawn_job(&job, &dir.path().join("cache"));

    produce(&broker, &input, &batch(0..5_000));
    let first = read_back(&broker, &output, 1, 5_000, Duration::from_secs(60));
    assert_eq!(
        first.values().map(Vec::len).sum::<usize>(),
        5_000,
        "before the restart"
    );

    stop_broker(&mut broker_process);
    std::thread::sleep(Duration::from_secs(2));
    let mut broker_process = start_broker(&data, port);
    produce(&broker, &input, &batch(5_000..10_000));
    let received = read_back(&broker, &output, 1, 10_000, Duration::from_secs(90));

    sluice.kill().unwrap();
    let sluice_output = sluice.wait_with_output().unwrap();
    broker_process.kill().unwrap();
    broker_process.wait().unwrap();

    let values: BTreeSet<String> = received
        .values()
        .flatten()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let missing: Vec<String> = (0..10_000)
        .map(|i| format!("r{i}"))
        .filter(|v| !values.contains(v))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records lost, first {:?}; sluice said:\n{}",
        missing.len(),
        missing.first(),
        String::from_utf8_lossy(&sluice_output.stderr)
    );
}
