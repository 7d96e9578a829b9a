//! `sluice serve` as an operator runs it: the binary, a tenant's token
//! from `sluice token`, a job submitted with `sluice job submit` (which
//! uploads its plugin), and the host killed (SIGKILL) while the job runs
//! exactly-once from Kafka to Kafka, then started again: the job resumes
//! from its checkpoint, and `read_committed` readers see every input
//! record once.
//!
//! On noida-db, the broker here whose `read_committed` is right
//! (TOOLCHAIN.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice_e2e::kafka::{Record, create_topic, noida, produce, read_back, unique};
use sluice_e2e::{free_port, sluice_binary};
use sluice_plugin_artifacts as artifacts;

const PARTITIONS: i32 = 3;

/// `sluice ARGS` with the tenant's server and token; its output.
fn sluice(args: &[&str], server: &str, token: &str) -> Output {
    Command::new(sluice_binary())
        .args(args)
        .env("SLUICE_SERVER", server)
        .env("SLUICE_TOKEN", token)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running sluice")
}

/// `sluice ARGS` as the tenant, which must succeed; its JSON answer.
fn sluice_json(args: &[&str], server: &str, token: &str) -> serde_json::Value {
    let output = sluice(args, server, token);
    assert!(
        output.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Start `sluice serve`, and wait until its API answers.
fn serve(host_file: &Path, cache: &Path, log: &Path, server: &str, token: &str) -> Child {
    let child = Command::new(sluice_binary())
        .args(["serve", "--config"])
        .arg(host_file)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("starting sluice serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sluice(&["job", "list"], server, token).status.success() {
        assert!(
            Instant::now() < deadline,
            "the host did not answer: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

#[test]
fn a_killed_host_resumes_its_job_and_the_output_holds_every_record_once() {
    let broker = noida();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let token = sluice(&["token"], "", "");
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap();
    let field = |name: &str| {
        token
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (token, hash) = (field("token:"), field("token_sha256:"));
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let host_file = dir.join("host.toml");
    std::fs::write(
        &host_file,
        format!(
            "listen = \"127.0.0.1:{port}\"\nstate = \"state\"\n[[tenant]]\nname = \"t\"\ntoken_sha256 = [\"{hash}\"]\ntopics = [\"t.\"]\n"
        ),
    )
    .unwrap();
    let (input, output) = (unique("t.serve-in"), unique("t.serve-out"));
    create_topic(&broker, &input, PARTITIONS);
    create_topic(&broker, &output, PARTITIONS);
    std::fs::write(
        dir.join("job.toml"),
        format!(
            r#"
[job]
name = "relay"
[source]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = "{b}", subscribe = "{input}", startingOffsets = "earliest" }}
[trigger]
max_interval = "50ms"
[[transform]]
plugin = "{plugin}"
config = {{ columns = "value" }}
[sink]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = "{b}", topic = "{output}" }}
[checkpoint]
location = "chosen by the host"
interval = "200ms"
delivery = "exactly-once"
"#,
            b = broker.address,
            plugin = artifacts::PII_REDACT,
        ),
    )
    .unwrap();

    let cache = dir.join("cache");
    let mut host = serve(
        &host_file,
        &cache,
        &dir.join("serve-1.log"),
        &server,
        &token,
    );
    let job = sluice_json(
        &["job", "submit", dir.join("job.toml").to_str().unwrap()],
        &server,
        &token,
    );
    let id = job["id"].as_str().unwrap().to_owned();

    // Records arrive while the host is killed and started again.
    let records: Vec<Record> = (0..30_000)
        .map(|i| Record {
            partition: i % PARTITIONS,
            key: None,
            value: Some(format!("record {i}").into_bytes()),
            headers: Vec::new(),
        })
        .collect();
    let (first, second) = records.split_at(15_000);
    produce(&broker, &input, first);
    std::thread::sleep(Duration::from_millis(1500));
    host.kill().unwrap();
    host.wait().unwrap();
    produce(&broker, &input, second);
    let mut host = serve(
        &host_file,
        &cache,
        &dir.join("serve-2.log"),
        &server,
        &token,
    );
    let status = sluice_json(&["job", "status", &id], &server, &token);
    assert_eq!(status["name"], "relay", "{status}");
    assert!(
        status["last_checkpoint"].as_u64().is_some(),
        "the job did not resume from a checkpoint: {status}"
    );

    let got = read_back(
        &broker,
        &output,
        PARTITIONS,
        records.len(),
        Duration::from_secs(90),
    );
    let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for record in got.values().flatten() {
        *counts
            .entry(record.value.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let lost = records
        .iter()
        .filter(|r| !counts.contains_key(r.value.as_ref().unwrap()))
        .count();
    let duplicated: usize = counts.values().map(|n| n - 1).sum();
    assert_eq!(
        (lost, duplicated, counts.len()),
        (0, 0, records.len()),
        "lost, duplicated, distinct; host log: {}",
        std::fs::read_to_string(dir.join("serve-2.log")).unwrap_or_default()
    );
    // The job's progress says where it is: at the end of every partition.
    let status = sluice_json(&["job", "status", &id], &server, &token);
    let read: i64 = status["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["topic"] == input.as_str())
        .map(|o| o["offset"].as_i64().unwrap())
        .sum();
    assert_eq!(read, records.len() as i64, "{status}");
    // The running job's plugin is swapped from the command line: here to
    // the same component with another config.
    let swapped = sluice_json(
        &[
            "job",
            "swap",
            &id,
            "--transform",
            "transform-0",
            "--plugin",
            artifacts::PII_REDACT,
            "--config",
            "columns=value",
        ],
        &server,
        &token,
    );
    assert_eq!(swapped["swaps"][0]["transform"], "transform-0", "{swapped}");
    assert!(swapped["swaps"][0]["rolled_back"].is_null(), "{swapped}");
    let stopped = sluice(&["job", "stop", &id], &server, &token);
    assert!(stopped.status.success());
    Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    host.wait().unwrap();
}
