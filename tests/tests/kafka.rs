//! Kafka end to end: records go from real brokers through `sluice run` and
//! a Wasm plugin back to real topics. Each test runs against every broker
//! `scripts/services` starts; a broker known to lack a behaviour is named
//! with the reason, never skipped silently.

use std::path::Path;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sluice_e2e::kafka::{
    Broker, Record, brokers, brokers_with_end_offsets, create_topic, delete_topics, produce,
    produce_with_raw_header_key, read_back, unique,
};
use sluice_e2e::{iso_millis, run_aggregate_job, run_job, spawn_job};
use sluice_plugin_artifacts as artifacts;

/// A pass-through plugin: `offset >= 0` holds for every Kafka row.
fn pass_through() -> String {
    format!(
        "[[transform]]\nplugin = {:?}\nconfig = {{ column = \"offset\", op = \"ge\", value = \"0\" }}\n",
        artifacts::FILTER
    )
}

fn kafka_job(
    dir: &Path,
    broker: &Broker,
    source_options: &str,
    transforms: &str,
    sink: &str,
) -> std::path::PathBuf {
    let text = format!(
        "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, {source_options} }}\n\n[trigger]\nmax_rows = 5000\nmax_interval = \"200ms\"\navailable_now = true\n\n{transforms}\n{sink}",
        broker.address
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn kafka_sink(broker: &Broker, topic: &str) -> String {
    format!(
        "[sink]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, topic = {topic:?} }}\n",
        broker.address
    )
}

// Brokers with wrong end offsets run the same cases in
// `known_gap_wrong_high_watermarks`, which is marked ignored with the reason.

fn records(partitions: i32, count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            partition: (i % partitions as usize) as i32,
            key: Some(format!("user-{}", i % 97).into_bytes()),
            value: Some(format!("{{\"n\":{i},\"page\":\"/p/{}\"}}", i % 13).into_bytes()),
            headers: vec![
                ("trace".into(), Some(format!("t{i}").into_bytes())),
                ("empty".into(), None),
            ],
        })
        .collect()
}

fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "sluice failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn hundred_thousand_keyed_records_with_headers_arrive_exactly_and_in_order() {
    for broker in brokers_with_end_offsets() {
        hundred_thousand_keyed_records_with_headers_arrive_exactly_and_in_order_on(&broker);
    }
}

fn hundred_thousand_keyed_records_with_headers_arrive_exactly_and_in_order_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("in"), unique("out"));
    create_topic(broker, &input, 3);
    create_topic(broker, &output, 3);
    let sent = records(3, 100_000);
    produce(broker, &input, &sent);

    let job = kafka_job(
        dir.path(),
        broker,
        &format!("subscribe = {input:?}, startingOffsets = \"earliest\""),
        &pass_through(),
        &kafka_sink(broker, &output),
    );
    assert_success(&run_job(&job, &dir.path().join("cache")));

    let received = read_back(broker, &output, 3, sent.len(), Duration::from_secs(120));
    for partition in 0..3 {
        let expected: Vec<&Record> = sent.iter().filter(|r| r.partition == partition).collect();
        let got: Vec<&Record> = received
            .get(&partition)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        assert_eq!(
            got.len(),
            expected.len(),
            "{}: partition {partition} count",
            broker.name
        );
        assert!(
            got == expected,
            "{}: partition {partition} content or order differs",
            broker.name
        );
    }
}

/// Values of the records a job with these source options writes, for a
/// one-partition topic holding `n0`..`n9`.
fn values_read_with(broker: &Broker, source_options: impl Fn(&str) -> String) -> Vec<String> {
    let (output, values) = values_read_with_output(broker, source_options);
    assert_success(&output);
    values
}

/// Write ten values `n0`..`n9` to a new topic, run a pass-through job with
/// `source_options(topic)`, and return its process output and the values
/// that reached the output topic.
fn values_read_with_output(
    broker: &Broker,
    source_options: impl Fn(&str) -> String,
) -> (std::process::Output, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("offsets-in"), unique("offsets-out"));
    create_topic(broker, &input, 1);
    create_topic(broker, &output, 1);
    let sent: Vec<Record> = (0..10)
        .map(|i| Record {
            partition: 0,
            key: None,
            value: Some(format!("n{i}").into_bytes()),
            headers: vec![],
        })
        .collect();
    produce(broker, &input, &sent);
    let job = kafka_job(
        dir.path(),
        broker,
        &source_options(&input),
        &pass_through(),
        &kafka_sink(broker, &output),
    );
    let result = run_job(&job, &dir.path().join("cache"));
    // After a failure, wait for any one record: none may have been written.
    let expected = if result.status.success() { 10 } else { 1 };
    let values = read_back(broker, &output, 1, expected, Duration::from_secs(3))
        .remove(&0)
        .unwrap_or_default()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    (result, values)
}

#[test]
fn starting_offsets_earliest_latest_json_and_timestamp() {
    for broker in brokers_with_end_offsets() {
        starting_offsets_earliest_latest_json_and_timestamp_on(&broker);
    }
}

fn starting_offsets_earliest_latest_json_and_timestamp_on(broker: &Broker) {
    let all: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    assert_eq!(
        values_read_with(broker, |t| format!(
            "subscribe = {t:?}, startingOffsets = \"earliest\""
        )),
        all,
        "{}",
        broker.name
    );
    assert!(
        values_read_with(broker, |t| format!(
            "subscribe = {t:?}, startingOffsets = \"latest\""
        ))
        .is_empty(),
        "{}",
        broker.name
    );
    assert_eq!(
        values_read_with(broker, |t| format!(
            "subscribe = {t:?}, startingOffsets = '{{\"{t}\":{{\"0\":7}}}}'"
        )),
        all[7..].to_vec(),
        "{}",
        broker.name
    );
    assert_eq!(
        values_read_with(broker, |t| format!(
            "assign = '{{\"{t}\":[0]}}', startingOffsets = '{{\"{t}\":{{\"0\":-2}}}}'"
        )),
        all,
        "{}",
        broker.name
    );
    // Every record was written after 2001-09-09 and before 2286.
    assert_eq!(
        values_read_with(broker, |t| format!(
            "subscribe = {t:?}, startingTimestamp = 1000000000000"
        )),
        all,
        "{}",
        broker.name
    );
    assert!(
        values_read_with(broker, |t| format!(
            "subscribe = {t:?}, startingTimestamp = 9999999999999"
        ))
        .is_empty(),
        "{}",
        broker.name
    );
}

#[test]
fn subscribe_pattern_reads_every_matching_topic() {
    for broker in brokers_with_end_offsets() {
        subscribe_pattern_reads_every_matching_topic_on(&broker);
    }
}

fn subscribe_pattern_reads_every_matching_topic_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("pattern");
    let output = unique("pattern-out");
    for suffix in ["a", "b"] {
        let topic = format!("{prefix}-{suffix}");
        create_topic(broker, &topic, 1);
        produce(broker, &topic, &records(1, 50));
    }
    create_topic(broker, &unique("unrelated"), 1);
    create_topic(broker, &output, 1);
    let job = kafka_job(
        dir.path(),
        broker,
        &format!("subscribePattern = \"^{prefix}-.*\", startingOffsets = \"earliest\""),
        &pass_through(),
        &format!(
            "[sink]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, topic = {output:?} }}\n",
            broker.address
        ),
    );
    assert_success(&run_job(&job, &dir.path().join("cache")));
    let received: usize = read_back(broker, &output, 1, 100, Duration::from_secs(10))
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(received, 100, "{}", broker.name);
}

#[test]
fn subscribed_topics_created_after_the_start_are_read_from_their_beginning() {
    for broker in brokers() {
        subscribed_topics_created_after_the_start_are_read_on(&broker);
    }
}

fn subscribed_topics_created_after_the_start_are_read_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let (present, late, output) = (unique("present"), unique("late"), unique("late-out"));
    create_topic(broker, &present, 1);
    create_topic(broker, &output, 2);
    produce(broker, &present, &records(1, 10));
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, subscribe = \"{present},{late}\", startingOffsets = \"earliest\", partitionRefreshMs = 300 }}\n\n\
             [trigger]\nmax_interval = \"50ms\"\n\n{}\n{}",
            broker.address,
            pass_through(),
            kafka_sink(broker, &output)
        ),
    )
    .unwrap();
    let mut sluice = spawn_job(&job, &dir.path().join("cache"));
    let before = read_back(broker, &output, 2, 10, Duration::from_secs(30));
    create_topic(broker, &late, 2);
    let late_records: Vec<Record> = records(2, 20)
        .into_iter()
        .map(|r| Record {
            value: r.value.map(|v| [b"late ".as_slice(), &v].concat()),
            ..r
        })
        .collect();
    produce(broker, &late, &late_records);
    let received = read_back(broker, &output, 2, 30, Duration::from_secs(30));
    sluice.kill().unwrap();
    let stderr = String::from_utf8_lossy(&sluice.wait_with_output().unwrap().stderr).into_owned();
    assert_eq!(
        before.values().map(Vec::len).sum::<usize>(),
        10,
        "{}: {stderr}",
        broker.name
    );
    assert!(
        stderr.contains("does not exist (yet)"),
        "{}: {stderr}",
        broker.name
    );
    let values: std::collections::BTreeSet<Vec<u8>> = received
        .values()
        .flatten()
        .filter_map(|r| r.value.clone())
        .collect();
    let expected: std::collections::BTreeSet<Vec<u8>> = records(1, 10)
        .into_iter()
        .chain(late_records)
        .filter_map(|r| r.value)
        .collect();
    assert_eq!(values, expected, "{}: {stderr}", broker.name);
}

#[test]
fn max_offsets_per_trigger_caps_every_batch() {
    for broker in brokers_with_end_offsets() {
        max_offsets_per_trigger_caps_every_batch_on(&broker);
    }
}

fn max_offsets_per_trigger_caps_every_batch_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let input = unique("capped");
    create_topic(broker, &input, 1);
    produce(broker, &input, &records(1, 2_500));
    let out = dir.path().join("out.jsonl");
    let job = kafka_job(
        dir.path(),
        broker,
        &format!(
            "subscribe = {input:?}, startingOffsets = \"earliest\", maxOffsetsPerTrigger = 600"
        ),
        &pass_through(),
        &format!(
            "[sink]\ntype = \"console\"\nnum_rows = 0\n\n[outputs.unused]\ntype = \"file\"\npath = {out:?}\n"
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert_success(&output);
    let sizes = console_batch_sizes(&output);
    assert_eq!(sizes.iter().sum::<usize>(), 2_500, "{}", broker.name);
    assert!(
        sizes.iter().all(|&n| n <= 600),
        "{}: {sizes:?}",
        broker.name
    );
    assert!(sizes.len() >= 5, "{}: {sizes:?}", broker.name);
}

/// The batch sizes a job with a console sink (`num_rows = 0`) printed.
fn console_batch_sizes(output: &std::process::Output) -> Vec<usize> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("only showing top 0 of ")?
                .strip_suffix(" rows")?
                .parse()
                .ok()
        })
        .collect()
}

/// `trigger.max_bytes` holds inside one poll of the consumer too: the
/// source stops a chunk before the record that would pass the room left,
/// so a batch passes the limit by one record at most.
#[test]
fn max_bytes_caps_every_batch_even_within_one_fetch() {
    for broker in brokers_with_end_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let input = unique("big-values");
        create_topic(&broker, &input, 1);
        let sent: Vec<Record> = (0..40)
            .map(|i| Record {
                partition: 0,
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![b'a' + (i % 26) as u8; 100 << 10]),
                headers: vec![],
            })
            .collect();
        produce(&broker, &input, &sent);
        let text = format!(
            "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, subscribe = {input:?}, startingOffsets = \"earliest\" }}\n\n[trigger]\nmax_rows = 5000\nmax_bytes = \"256 KiB\"\nmax_interval = \"5s\"\navailable_now = true\n\n{}\n[sink]\ntype = \"console\"\nnum_rows = 0\n",
            broker.address,
            pass_through()
        );
        let job = dir.path().join("job.toml");
        std::fs::write(&job, text).unwrap();
        let output = run_job(&job, &dir.path().join("cache"));
        assert_success(&output);
        let sizes = console_batch_sizes(&output);
        assert_eq!(
            sizes.iter().sum::<usize>(),
            40,
            "{}: {sizes:?}",
            broker.name
        );
        // 256 KiB holds two 100 KiB records; one more may pass it.
        assert!(sizes.iter().all(|&n| n <= 3), "{}: {sizes:?}", broker.name);
    }
}

/// A topic deleted under a running job is a permanent error: with
/// `failOnDataLoss` (the default) the job stops and says which partitions
/// are gone, rather than retrying forever.
#[test]
fn a_topic_deleted_under_a_running_job_stops_it_with_a_clear_error() {
    for broker in brokers()
        .into_iter()
        .filter(|b| b.sane_metadata_after_delete)
    {
        a_topic_deleted_under_a_running_job_stops_it_on(&broker);
    }
}

#[test]
#[ignore = "known gap of tansu: once a topic is deleted, the metadata it sends crashes librdkafka (SIGSEGV in rd_kafka_metadata_cache_find); run with --ignored to see it"]
fn known_gap_metadata_after_a_topic_deletion() {
    for broker in brokers()
        .into_iter()
        .filter(|b| !b.sane_metadata_after_delete)
    {
        a_topic_deleted_under_a_running_job_stops_it_on(&broker);
    }
}

fn a_topic_deleted_under_a_running_job_stops_it_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let input = unique("deleted");
    create_topic(broker, &input, 2);
    produce(broker, &input, &records(2, 100));
    let out = dir.path().join("out.jsonl");
    let text = format!(
        "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, subscribe = {input:?}, startingOffsets = \"earliest\" }}\n\n[trigger]\nmax_interval = \"100ms\"\n\n{}\n[sink]\ntype = \"file\"\npath = {out:?}\n",
        broker.address,
        pass_through()
    );
    let job = dir.path().join("job.toml");
    std::fs::write(&job, text).unwrap();
    let mut child = spawn_job(&job, &dir.path().join("cache"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sluice_e2e::read_json_lines(&out).len() < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}: nothing read",
            broker.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    delete_topics(broker, &[&input]);
    let status = sluice_e2e::wait_for_exit(&mut child, Duration::from_secs(90));
    if status.is_none() {
        child.kill().unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let status = status.unwrap_or_else(|| {
        panic!(
            "{}: the job went on after its topic was deleted:\n{stderr}",
            broker.name
        )
    });
    assert!(!status.success(), "{}: {stderr}", broker.name);
    assert!(
        stderr.contains(&format!("{input}-0")) && stderr.contains("no longer exists"),
        "{}: {status}: {stderr}",
        broker.name
    );
}

#[test]
fn routed_rows_go_to_two_topics() {
    for broker in brokers_with_end_offsets() {
        routed_rows_go_to_two_topics_on(&broker);
    }
}

fn routed_rows_go_to_two_topics_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let (input, high, low) = (
        unique("route-in"),
        unique("route-high"),
        unique("route-low"),
    );
    for topic in [&input, &high, &low] {
        create_topic(broker, topic, 1);
    }
    produce(broker, &input, &records(1, 300));
    let sink = |topic: &str| {
        format!(
            "type = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, topic = {topic:?} }}\n",
            broker.address
        )
    };
    let job = kafka_job(
        dir.path(),
        broker,
        &format!("subscribe = {input:?}, startingOffsets = \"earliest\""),
        &format!(
            "[[transform]]\nplugin = {:?}\nconfig = {{ column = \"offset\", threshold = 100, above = \"high\", below = \"low\" }}\n",
            artifacts::ROUTE_SPLIT
        ),
        &format!(
            "[sink]\ntype = \"console\"\n\n[outputs.high]\n{}\n[outputs.low]\n{}",
            sink(&high),
            sink(&low)
        ),
    );
    assert_success(&run_job(&job, &dir.path().join("cache")));
    let count = |topic: &str, n| {
        read_back(broker, topic, 1, n, Duration::from_secs(10))
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    assert_eq!(
        (count(&high, 200), count(&low, 100)),
        (200, 100),
        "{}",
        broker.name
    );
}

#[test]
fn fail_on_data_loss_fails_clearly_or_continues_from_the_earliest_offset() {
    for broker in brokers_with_end_offsets() {
        fail_on_data_loss_on(&broker);
    }
}

/// Offset 50 of a 10-record partition is not in the log: the offsets the
/// job asks for are gone, as after retention or a recreated topic.
fn fail_on_data_loss_on(broker: &Broker) {
    let gone = |topic: &str| {
        format!("subscribe = {topic:?}, startingOffsets = '{{\"{topic}\":{{\"0\":50}}}}'")
    };
    let output = values_read_with_output(broker, |t| format!("{}, failOnDataLoss = true", gone(t)));
    assert!(!output.0.status.success(), "the job ignored lost offsets");
    let stderr = String::from_utf8_lossy(&output.0.stderr);
    assert!(
        stderr.contains("data loss")
            && stderr.contains("offset 50")
            && stderr.contains("failOnDataLoss=false"),
        "{stderr}"
    );
    assert!(output.1.is_empty(), "a failed job wrote {:?}", output.1);
    let (output, values) =
        values_read_with_output(broker, |t| format!("{}, failOnDataLoss = false", gone(t)));
    assert_success(&output);
    let expected: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    assert_eq!(values, expected, "on {}", broker.name);
}

#[test]
fn kafka_timestamps_drive_windows_and_every_partition_holds_the_watermark() {
    for broker in brokers_with_end_offsets() {
        kafka_timestamps_drive_windows_on(&broker);
    }
}

/// Three partitions each hold three seconds of records, 100 per second,
/// with Kafka timestamps. A batch holds only 50 rows, so one partition's
/// rows are read well before another's: were the watermark taken from the
/// partitions seen so far, the later ones would be side-output as late.
fn kafka_timestamps_drive_windows_on(broker: &Broker) {
    // Recent times, on a second: brokers apply retention to record timestamps.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = now_ms - now_ms % 1000 - 10_000;
    let input = unique("windows-in");
    create_topic(broker, &input, 3);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    for partition in 0..3 {
        for i in 0..300i64 {
            let value = format!("p{partition}-{i}");
            producer
                .send(
                    BaseRecord::<(), _>::to(&input)
                        .partition(partition)
                        .timestamp(base + i * 10)
                        .payload(value.as_bytes()),
                )
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = format!(
        "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, subscribe = {input:?}, startingOffsets = \"earliest\" }}\n\n[trigger]\nmax_rows = 50\navailable_now = true\n",
        broker.address
    );
    let run = run_aggregate_job(
        dir.path(),
        &source,
        artifacts::STATS,
        "event_time = \"timestamp\"\npartition_column = \"partition\"\nwindow = { type = \"tumbling\", size = \"1s\" }",
    );
    assert!(
        run.late.is_empty(),
        "{} rows side-output as late on {}",
        run.late.len(),
        broker.name
    );
    let counts: Vec<(String, i64)> = run
        .results
        .iter()
        .map(|row| {
            (
                row["window_start"].as_str().unwrap().to_owned(),
                row["count"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, i64)> = (0..3)
        .map(|second| (iso_millis(base + second * 1000), 300))
        .collect();
    assert_eq!(counts, expected, "on {}", broker.name);
}

#[test]
fn unreachable_broker_at_start_is_reported_and_retried_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[source]\ntype = \"kafka\"\noptions = { \"kafka.bootstrap.servers\" = \"127.0.0.1:1\", subscribe = \"t\" }\n\n[sink]\ntype = \"console\"\n").unwrap();
    let mut child = spawn_job(&job, &dir.path().join("cache"));
    std::thread::sleep(Duration::from_secs(9));
    // A stop is not held up by the retries: it ends the wait and the job.
    sluice_e2e::terminate(&child);
    let status = sluice_e2e::wait_for_exit(&mut child, Duration::from_secs(3));
    if status.is_none() {
        child.kill().unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let attempts = stderr.matches("cannot reach Kafka").count();
    assert!(
        attempts >= 2,
        "expected repeated, logged retries:\n{stderr}"
    );
    assert!(
        stderr.contains("127.0.0.1:1"),
        "the error names the brokers:\n{stderr}"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM while waiting for the brokers did not end the job within 3 s:\n{stderr}"
    );
}

#[test]
#[ignore = "known gap of tansu: its high watermarks are wrong (an available-now job read 1 of 10 records), so available-now jobs cannot find the end; run with --ignored to see it"]
fn known_gap_wrong_high_watermarks() {
    for broker in brokers().into_iter().filter(|b| !b.correct_high_watermarks) {
        hundred_thousand_keyed_records_with_headers_arrive_exactly_and_in_order_on(&broker);
        starting_offsets_earliest_latest_json_and_timestamp_on(&broker);
        subscribe_pattern_reads_every_matching_topic_on(&broker);
        max_offsets_per_trigger_caps_every_batch_on(&broker);
        routed_rows_go_to_two_topics_on(&broker);
        a_header_key_that_is_not_utf8_neither_crashes_nor_stops_the_job_on(&broker);
    }
}

#[test]
fn a_header_key_that_is_not_utf8_neither_crashes_nor_stops_the_job() {
    for broker in brokers_with_end_offsets() {
        a_header_key_that_is_not_utf8_neither_crashes_nor_stops_the_job_on(&broker);
    }
}

fn a_header_key_that_is_not_utf8_neither_crashes_nor_stops_the_job_on(broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("raw-header-in"), unique("raw-header-out"));
    create_topic(broker, &input, 1);
    create_topic(broker, &output, 1);
    produce(broker, &input, &records(1, 2));
    produce_with_raw_header_key(broker, &input, b"\xff\xfek", b"odd");
    produce(broker, &input, &records(1, 2));
    let job = kafka_job(
        dir.path(),
        broker,
        &format!("subscribe = {input:?}, startingOffsets = \"earliest\""),
        &pass_through(),
        &kafka_sink(broker, &output),
    );
    assert_success(&run_job(&job, &dir.path().join("cache")));
    let out = read_back(broker, &output, 1, 5, Duration::from_secs(30));
    let values: Vec<&[u8]> = out[&0].iter().filter_map(|r| r.value.as_deref()).collect();
    assert_eq!(values.len(), 5, "{}: {values:?}", broker.name);
    let odd = out[&0]
        .iter()
        .find(|r| r.value.as_deref() == Some(b"odd"))
        .unwrap();
    assert_eq!(
        odd.headers,
        [("\u{fffd}\u{fffd}k".to_owned(), Some(b"v".to_vec()))],
        "{}",
        broker.name
    );
}

/// `valueFormat = "string"` reads values as UTF-8 text: one that is not
/// goes to the dead-letter output byte for byte, named `invalid-utf8`,
/// instead of reaching the sink altered; without a dead-letter output the
/// job stops at it.
#[test]
fn string_values_that_are_not_utf8_are_dead_lettered_not_altered() {
    for broker in brokers_with_end_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (unique("string-in"), unique("string-out"));
        create_topic(&broker, &input, 1);
        create_topic(&broker, &output, 1);
        let sent: Vec<Record> = (0..20)
            .map(|i| Record {
                partition: 0,
                key: Some(format!("k{i}").into_bytes()),
                value: Some(if i % 4 == 3 {
                    vec![b'n', 0xff, 0xfe, b'0' + i as u8 % 10]
                } else {
                    format!("n{i} ünïcode").into_bytes()
                }),
                headers: vec![],
            })
            .collect();
        produce(&broker, &input, &sent);
        let dead_letter = dir.path().join("dead.jsonl");
        let source = format!(
            "subscribe = {input:?}, startingOffsets = \"earliest\", valueFormat = \"string\""
        );
        let job = kafka_job(
            dir.path(),
            &broker,
            &source,
            &pass_through(),
            &format!(
                "{}\n[outputs.dead-letter]\ntype = \"file\"\npath = {dead_letter:?}\n",
                kafka_sink(&broker, &output)
            ),
        );
        assert_success(&run_job(&job, &dir.path().join("cache")));
        let good: Vec<Vec<u8>> = read_back(&broker, &output, 1, 15, Duration::from_secs(30))
            .remove(&0)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.value.unwrap())
            .collect();
        let want: Vec<Vec<u8>> = sent
            .iter()
            .filter(|r| std::str::from_utf8(r.value.as_deref().unwrap()).is_ok())
            .map(|r| r.value.clone().unwrap())
            .collect();
        assert_eq!(good, want, "{}: the valid values, unchanged", broker.name);
        let dead = sluice_e2e::read_json_lines(&dead_letter);
        assert_eq!(dead.len(), 5, "{}: {dead:?}", broker.name);
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let bad = sent
            .iter()
            .filter(|r| std::str::from_utf8(r.value.as_deref().unwrap()).is_err());
        for (row, sent) in dead.iter().zip(bad) {
            assert_eq!(
                row["value"],
                hex(sent.value.as_deref().unwrap()),
                "byte for byte: {row}"
            );
            let kind = row["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["key"] == "__sluice.errors.kind")
                .unwrap();
            assert_eq!(kind["value"], hex(b"invalid-utf8"), "{row}");
        }
        // Without a dead-letter output, the first invalid value stops the job.
        let job = kafka_job(
            dir.path(),
            &broker,
            &source,
            &pass_through(),
            &kafka_sink(&broker, &unique("string-unused")),
        );
        let run = run_job(&job, &dir.path().join("cache"));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{stderr}");
        assert!(
            stderr.contains("invalid-utf8") || stderr.contains("UTF-8"),
            "{stderr}"
        );
    }
}
