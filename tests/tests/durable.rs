//! Durable jobs against a real broker: a windowed job over a million Kafka
//! records is SIGKILLed at random moments and restarted, and what
//! `read_committed` readers see equals an uninterrupted run's output
//! exactly; SIGTERM exits 0 within a batch interval and a restart goes on
//! without loss or duplicates.
//!
//! These run on noida-db, the broker here that implements transactions and
//! `read_committed` correctly. tansu's `read_committed` consumers still
//! see aborted records (TOOLCHAIN.md), so on it any killed transaction
//! would look like a duplicate: the tests do not run there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_e2e::kafka::{Broker, create_topic, noida, send_waiting, unique};
use sluice_e2e::sluice_binary;
use sluice_plugin_artifacts as artifacts;

const PARTITIONS: i32 = 3;
const KEYS: usize = 100;

/// `count` records round-robin over the partitions, keyed `k0`..`k99`,
/// one millisecond of event time apart from an hour ago: each partition's
/// times rise, so no row is ever late and every run closes the same
/// windows. (Times far in the past would fall to the broker's retention.)
fn produce_events(broker: &Broker, topic: &str, count: usize, over: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base_time = now - 3_600_000;
    let started = Instant::now();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap();
    for i in 0..count {
        // Spread the records over `over`, as a live topic receives them.
        if i % 1000 == 0 {
            let due = over.mul_f64(i as f64 / count as f64);
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
        let key = format!("k{}", i % KEYS);
        let value = i.to_string();
        let record: BaseRecord<'_, str, str> = BaseRecord::to(topic)
            .partition((i % PARTITIONS as usize) as i32)
            .key(key.as_str())
            .payload(value.as_str())
            .timestamp(base_time + i as i64);
        send_waiting(&producer, record);
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// A job counting records per key in 10-second windows, from `input` to
/// `output`, checkpointing every second at `location`.
fn write_job(
    dir: &Path,
    name: &str,
    broker: &Broker,
    topics: (&str, &str),
    store: &Store,
    available_now: bool,
) -> PathBuf {
    let (input, output) = topics;
    let (location, options) = match store {
        Store::Local => (dir.join("checkpoints").display().to_string(), String::new()),
        Store::S3 { endpoint } => (
            format!("s3://sluice-test/{name}"),
            format!(
                "options = {{ aws_endpoint = \"{endpoint}\", aws_region = \"us-east-1\", aws_access_key_id = \"test\", aws_secret_access_key = \"test\", aws_allow_http = \"true\" }}"
            ),
        ),
    };
    let text = format!(
        r#"[job]
name = "{name}"

[source]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = "{servers}", subscribe = "{input}", startingOffsets = "earliest" }}

[trigger]
max_rows = 20000
max_interval = "200ms"
available_now = {available_now}

[aggregate]
plugin = "{stats}"
key = ["key"]
columns = []
event_time = "timestamp"
partition_column = "partition"
window = {{ type = "tumbling", size = "10s" }}

[sink]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = "{servers}", topic = "{output}", valueFormat = "json" }}

[outputs.late]
type = "kafka"
options = {{ "kafka.bootstrap.servers" = "{servers}", topic = "{output}-late", valueFormat = "json" }}

[checkpoint]
location = "{location}"
interval = "1s"
{options}
"#,
        servers = broker.address,
        stats = artifacts::STATS,
    );
    let path = dir.join(format!("{name}-{available_now}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Start `sluice run JOB`, logging to `DIR/run-RUN.log`; every run shares
/// one compile cache, so a restart does not recompile the plugin.
fn spawn(job: &Path, dir: &Path, run: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("run-{run}.log"))).unwrap();
    Command::new(sluice_binary())
        .arg("run")
        .arg(job)
        .arg("--cache-dir")
        .arg(std::env::temp_dir().join("sluice-durable-test-cache"))
        .env("RUST_LOG", "info,sluice_job=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting sluice")
}

fn finish(mut child: Child, dir: &Path, run: usize) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.join(format!("run-{run}.log"))).unwrap();
            panic!("run {run} did not finish:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The records of `topic`, as `read_committed` readers see them, as a
/// multiset of (key, value): read until nothing new came for 3 s.
fn committed_output(broker: &Broker, topic: &str) -> BTreeMap<(Vec<u8>, Vec<u8>), usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&list).unwrap();
    let mut multiset = BTreeMap::new();
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let key = message.key().unwrap_or_default().to_vec();
            let value = message.payload().unwrap_or_default().to_vec();
            *multiset.entry((key, value)).or_default() += 1;
            last = Instant::now();
        }
    }
    multiset
}

fn log_of(dir: &Path, run: usize) -> String {
    std::fs::read_to_string(dir.join(format!("run-{run}.log"))).unwrap_or_default()
}

/// Where the checkpoints go.
enum Store {
    /// A directory beside the job file.
    Local,
    /// The test S3 server (moto).
    S3 { endpoint: String },
}

/// How a run is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// SIGKILL: nothing is flushed or committed.
    Kill,
    /// SIGTERM: the batch in flight is finished, checkpointed and
    /// committed, and the job exits 0.
    Terminate,
}

/// A pseudo-random number of milliseconds in `range`, different per call.
fn random_ms(range: std::ops::Range<u64>) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    range.start + (nanos.wrapping_mul(6364136223846793005) >> 33) % (range.end - range.start)
}

/// Produce `records` over `over`, like a live topic, while a job reading
/// it is interrupted `times` times at random moments and restarted; then
/// let it finish what the topic holds. Its committed output must equal an
/// uninterrupted run's, as multisets with counts.
fn interrupted_runs_equal_an_uninterrupted_one(
    records: usize,
    over: Duration,
    times: usize,
    interruption: Interruption,
    store: &Store,
) {
    let broker = noida();
    let input = unique("durable-in");
    create_topic(&broker, &input, PARTITIONS);
    let producer = {
        let (broker, input) = (broker.clone(), input.clone());
        std::thread::spawn(move || produce_events(&broker, &input, records, over))
    };

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let output = unique("durable-interrupted");
    create_topic(&broker, &output, 1);
    let name = unique("interrupted");
    let live = write_job(dir, &name, &broker, (&input, &output), store, false);
    let mut interrupted = 0;
    let mut run = 0;
    while interrupted < times {
        run += 1;
        let mut child = spawn(&live, dir, run);
        std::thread::sleep(Duration::from_millis(random_ms(500..2500)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "run {run} ended by itself: {}",
            log_of(dir, run)
        );
        match interruption {
            Interruption::Kill => {
                child.kill().unwrap();
                child.wait().unwrap();
            }
            Interruption::Terminate => {
                let sent = Instant::now();
                let status = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
                let status = finish(child, dir, run);
                eprintln!("run {run}: SIGTERM to exit 0 took {:?}", sent.elapsed());
                assert!(
                    status.success(),
                    "SIGTERM must exit 0: {}",
                    log_of(dir, run)
                );
            }
        }
        interrupted += 1;
    }
    producer.join().unwrap();
    // The same job, told to finish what the topic holds now.
    let last = write_job(dir, &name, &broker, (&input, &output), store, true);
    run += 1;
    let status = finish(spawn(&last, dir, run), dir, run);
    assert!(status.success(), "{}", log_of(dir, run));
    let got = committed_output(&broker, &output);

    let straight_dir = tempfile::tempdir().unwrap();
    let straight_out = unique("durable-straight");
    create_topic(&broker, &straight_out, 1);
    let job = write_job(
        straight_dir.path(),
        &unique("straight"),
        &broker,
        (&input, &straight_out),
        store,
        true,
    );
    let status = finish(spawn(&job, straight_dir.path(), 0), straight_dir.path(), 0);
    assert!(status.success(), "{}", log_of(straight_dir.path(), 0));
    let want = committed_output(&broker, &straight_out);
    let rows: usize = want.values().sum();
    assert!(
        rows >= records / 10_000 * KEYS / 2,
        "too few windows: {rows}"
    );

    let lost: usize = want
        .iter()
        .map(|(k, n)| n.saturating_sub(got.get(k).copied().unwrap_or(0)))
        .sum();
    let duplicated: usize = got
        .iter()
        .map(|(k, n)| n.saturating_sub(want.get(k).copied().unwrap_or(0)))
        .sum();
    eprintln!(
        "{interruption:?} x{interrupted}: {rows} rows wanted, {lost} lost, {duplicated} duplicated"
    );
    assert_eq!(
        (lost, duplicated),
        (0, 0),
        "after {interrupted} interruptions ({interruption:?})"
    );
}

fn s3() -> Store {
    let endpoint = std::env::var("SLUICE_TEST_S3_ENDPOINT").expect(
        "SLUICE_TEST_S3_ENDPOINT is not set; run `eval $(scripts/services env)` after `scripts/services start`",
    );
    Store::S3 { endpoint }
}

#[test]
fn a_windowed_job_killed_ten_times_commits_exactly_the_uninterrupted_output() {
    interrupted_runs_equal_an_uninterrupted_one(
        1_000_000,
        Duration::from_secs(30),
        10,
        Interruption::Kill,
        &Store::Local,
    );
}

#[test]
fn the_same_with_checkpoints_on_s3() {
    interrupted_runs_equal_an_uninterrupted_one(
        1_000_000,
        Duration::from_secs(30),
        10,
        Interruption::Kill,
        &s3(),
    );
}

#[test]
fn sigterm_exits_zero_and_a_restart_goes_on_without_loss_or_duplicates() {
    interrupted_runs_equal_an_uninterrupted_one(
        300_000,
        Duration::from_secs(10),
        3,
        Interruption::Terminate,
        &Store::Local,
    );
}
