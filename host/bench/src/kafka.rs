//! `kafka-throughput` and `kafka-latency`, against the broker at
//! `SLUICE_BENCH_KAFKA` (default 127.0.0.1:9092, noida-db from
//! `scripts/services start`). Every figure of a run uses the same broker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_config::Job;
use sluice_e2e::kafka::{Broker, create_topic, delete_topics};
use sluice_job::{JobRunner, RunOptions};
use sluice_metrics::{JobMetrics, Metrics};

use crate::median;
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{Runtime, RuntimeConfig};

/// Records per throughput run.
const RECORDS: usize = 200_000;
/// Partitions of the input topic.
const PARTITIONS: i32 = 3;

pub(crate) fn broker() -> String {
    std::env::var("SLUICE_BENCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// The benchmark's broker, for the admin helpers of the e2e tests.
fn bench_broker() -> Broker {
    Broker {
        name: "bench",
        address: broker(),
        correct_high_watermarks: true,
        sane_metadata_after_delete: true,
    }
}

/// A topic of one benchmark path, deleted when dropped: noida-db keeps
/// every record in one file that it rewrites in full, so topics left
/// behind slow the broker down for every later path and run.
pub(crate) struct BenchTopic(String);

impl std::ops::Deref for BenchTopic {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for BenchTopic {
    fn drop(&mut self) {
        delete_topics(&bench_broker(), &[&self.0]);
    }
}

/// A new topic with `PARTITIONS` partitions.
pub(crate) fn topic(name: &str) -> BenchTopic {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let topic = format!("bench-{name}-{nanos}");
    create_topic(&bench_broker(), &topic, PARTITIONS);
    BenchTopic(topic)
}

fn producer() -> anyhow::Result<BaseProducer> {
    lingering_producer(5)
}

/// An idempotent producer that waits `linger_ms` to fill a request.
fn lingering_producer(linger_ms: u32) -> anyhow::Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("enable.idempotence", "true")
        .set("linger.ms", linger_ms.to_string())
        .create()?)
}

/// Send one record, waiting while the local queue is full.
fn send(producer: &BaseProducer, mut record: BaseRecord<'_, [u8], [u8]>) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                producer.poll(Duration::from_millis(10));
                record = back;
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// A clickstream-like JSON payload of about 150 bytes.
fn payload(i: usize) -> String {
    format!(
        "{{\"user\":{},\"email\":\"user{}@example.com\",\"page\":\"/item/{}\",\"note\":\"order {} shipped\",\"n\":{i}}}",
        i % 1000,
        i % 977,
        i % 89,
        i % 13
    )
}

/// Send record number `i`: its payload, key `k{i % 97}`, partition
/// `i % PARTITIONS`.
fn send_numbered(producer: &BaseProducer, topic: &str, i: usize) -> anyhow::Result<()> {
    let value = payload(i);
    let key = format!("k{}", i % 97);
    send(
        producer,
        BaseRecord::to(topic)
            .partition((i % PARTITIONS as usize) as i32)
            .key(key.as_bytes())
            .payload(value.as_bytes()),
    )
}

pub(crate) fn fill(topic: &str, records: usize) -> anyhow::Result<()> {
    let producer = producer()?;
    for i in 0..records {
        send_numbered(&producer, topic, i)?;
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// Produce to `topic` at `rate` records per second for `duration`, in
/// slices of 10 ms, timestamped now.
pub(crate) fn produce_paced(topic: &str, rate: usize, duration: Duration) -> anyhow::Result<()> {
    const SLICE: Duration = Duration::from_millis(10);
    let producer = producer()?;
    let per_slice = (rate as f64 * SLICE.as_secs_f64()).ceil() as usize;
    let started = Instant::now();
    let mut sent = 0;
    let mut slice = 0u32;
    while started.elapsed() < duration {
        for i in sent..sent + per_slice {
            send_numbered(&producer, topic, i)?;
        }
        sent += per_slice;
        producer.poll(Duration::ZERO);
        slice += 1;
        if let Some(wait) = (SLICE * slice).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

fn consumer(topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", format!("bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    Ok(consumer)
}

/// Records/s of `f`, which handles `RECORDS` records.
fn rate(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    f()?;
    Ok(RECORDS as f64 / started.elapsed().as_secs_f64())
}

fn raw_consume(input: &str) -> anyhow::Result<()> {
    let consumer = consumer(input)?;
    let mut seen = 0;
    while seen < RECORDS {
        if let Some(message) = consumer.poll(Duration::from_secs(5)) {
            std::hint::black_box(message?.payload());
            seen += 1;
        }
    }
    Ok(())
}

fn raw_consume_produce(input: &str, output: &str) -> anyhow::Result<()> {
    let consumer = consumer(input)?;
    let producer = producer()?;
    let mut seen = 0;
    while seen < RECORDS {
        if let Some(message) = consumer.poll(Duration::from_secs(5)) {
            let message = message?;
            let mut record = BaseRecord::to(output).partition(message.partition());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(value) = message.payload() {
                record = record.payload(value);
            }
            send(&producer, record)?;
            seen += 1;
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// The TOML of a Sluice job from `input` to `output` through `transform`.
fn job_text(input: &str, output: &str, transform: &str, trigger: &str) -> String {
    format!(
        "[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {b:?}, subscribe = {input:?}, startingOffsets = \"earliest\" }}\n\n\
         [trigger]\nmax_rows = 10000\n{trigger}\n{transform}\n\
         [sink]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {b:?}, topic = {output:?} }}\n",
        b = broker()
    )
}

fn pass_through() -> String {
    format!(
        "[[transform]]\nplugin = {:?}\nconfig = {{ column = \"offset\", op = \"ge\", value = \"0\" }}\n",
        artifacts::FILTER
    )
}

fn redact() -> String {
    format!(
        "[[transform]]\nplugin = {:?}\nconfig = {{ columns = \"value\" }}\n",
        artifacts::PII_REDACT
    )
}

pub(crate) fn sluice_job(runtime: &Runtime, text: &str) -> anyhow::Result<JobRunner> {
    metered_job(runtime, text, JobMetrics::default())
}

/// A Sluice job from `text` that keeps its metrics in `metrics`.
fn metered_job(runtime: &Runtime, text: &str, metrics: JobMetrics) -> anyhow::Result<JobRunner> {
    let job = Job::parse(std::path::Path::new("bench.toml"), text)?;
    let options = RunOptions {
        metrics,
        ..RunOptions::default()
    };
    Ok(JobRunner::build(&job, runtime, options)?)
}

/// Rounds of the pass-through job with and without metrics, alternating.
const METRICS_ROUNDS: usize = 5;

/// `kafka-throughput`: (a) raw consume, (b) raw consume + produce, (c) a
/// Sluice job with a pass-through plugin, (d) with pii-redact; then the
/// cost of metrics: the pass-through job with its metrics kept and
/// scraped every second against the same job without, alternating, as
/// the medians of their rounds.
pub(crate) fn throughput() -> anyhow::Result<()> {
    let input = topic("in");
    fill(&input, RECORDS)
        .context("filling the input topic; is a broker running (scripts/services start)?")?;
    let runtime = Runtime::new(RuntimeConfig::default())?;

    let a = rate(|| raw_consume(&input))?;
    let b = rate(|| raw_consume_produce(&input, &topic("raw-out")))?;
    let run_metered = |transform: String, metrics: JobMetrics| -> anyhow::Result<f64> {
        let output = topic("sluice-out");
        let pipeline = metered_job(
            &runtime,
            &job_text(
                &input,
                &output,
                &transform,
                "max_interval = \"1s\"\navailable_now = true\n",
            ),
            metrics,
        )?;
        let mut stats = None;
        let r = rate(|| {
            stats = Some(pipeline.run(&AtomicBool::new(false))?);
            Ok(())
        })?;
        let stats = stats.context("the job ran")?;
        eprintln!(
            "kafka-throughput: time in source {:?}, plugins {:?}, sink {:?}",
            stats.source_time, stats.plugin_time, stats.sink_time
        );
        ensure!(
            stats.rows_out == RECORDS as u64,
            "job wrote {} of {RECORDS} rows",
            stats.rows_out
        );
        Ok(r)
    };
    let run = |transform: String| run_metered(transform, JobMetrics::default());
    let c = run(pass_through())?;
    let d = run(redact())?;
    let metrics = Metrics::default();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..METRICS_ROUNDS {
        without.push(run(pass_through())?);
        let scraping = AtomicBool::new(false);
        let rate = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !scraping.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::black_box(metrics.encode());
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
            let rate = run_metered(pass_through(), metrics.job("bench", ""));
            scraping.store(true, std::sync::atomic::Ordering::Relaxed);
            rate
        })?;
        with.push(rate);
    }
    let (without, with) = (median(&mut without), median(&mut with));
    println!("kafka-throughput.a_raw_consume: {a:.0} records/s");
    println!("kafka-throughput.b_raw_consume_produce: {b:.0} records/s");
    println!("kafka-throughput.c_sluice_pass_through: {c:.0} records/s");
    println!("kafka-throughput.d_sluice_pii_redact: {d:.0} records/s");
    println!("kafka-throughput.ratio_c_over_b: {:.3} x", c / b);
    println!(
        "kafka-throughput.metrics_off_pass_through: {without:.0} records/s (median of {METRICS_ROUNDS})"
    );
    println!(
        "kafka-throughput.metrics_on_pass_through: {with:.0} records/s (median of {METRICS_ROUNDS})"
    );
    println!(
        "kafka-throughput.metrics_overhead: {:.1} %",
        (1.0 - with / without) * 100.0
    );
    Ok(())
}

/// Input rate of `kafka-latency`, records per second.
const LATENCY_RATE: u64 = 50_000;
/// How long `kafka-latency` produces per round.
const LATENCY_SECONDS: u64 = 6;
/// Rounds of `kafka-latency`; the relay and Sluice alternate, so a broker
/// pause (a test broker persisting its state, say) lands on either side.
const LATENCY_ROUNDS: usize = 5;

/// `kafka-latency`: p50 and p99 from produce to arrival in the output
/// topic, at a fixed input rate, through Sluice jobs with pii-redact and,
/// as their baselines in the same run, through plain rdkafka relays
/// (consume and produce again) on the same broker. Micro-batch jobs (a
/// batch every 5 ms; librdkafka's 5 ms linger) are measured against a
/// relay with that linger; real-time jobs (`real_time = true`: a batch as
/// soon as records arrive; no linger) against a relay without linger.
/// Each round starts once probe records have come through the path, and
/// its first second is warm-up, reported apart from the percentiles. Each
/// round is printed; the headline figures are the medians over the rounds.
pub(crate) fn latency() -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    // (mode, the relay's linger in ms, the job's trigger settings).
    let modes: [(&str, u32, &str); 2] = [
        ("micro_batch", 5, "max_interval = \"5ms\"\n"),
        ("real_time", 0, "real_time = true\n"),
    ];
    // Parallelism 1 (every stage on the job's thread), then the default
    // (the cores: the plugin on tasks).
    let parallelisms = [
        ("parallelism_1", "[job]\nparallelism = 1\n"),
        ("parallelism_cores", ""),
    ];
    let mut runs: BTreeMap<String, Vec<Latencies>> = BTreeMap::new();
    for round in 1..=LATENCY_ROUNDS {
        for (mode, linger_ms, trigger) in modes {
            let relay = measure_latency(|input, output, stop| {
                let (input, output) = (input.to_owned(), output.to_owned());
                Ok(std::thread::spawn(move || {
                    relay(&input, &output, linger_ms, &stop)
                }))
            })?;
            let name = format!("{mode}.baseline_relay");
            relay.print(&format!("kafka-latency.round{round}.{name}"));
            runs.entry(name).or_default().push(relay);
            for (parallelism, job) in parallelisms {
                let sluice = measure_latency(|input, output, stop| {
                    let text = format!("{job}{}", job_text(input, output, &redact(), trigger));
                    let pipeline = sluice_job(&runtime, &text)?;
                    Ok(std::thread::spawn(move || {
                        pipeline.run(&stop)?;
                        Ok(())
                    }))
                })?;
                let name = format!("{mode}.{parallelism}");
                sluice.print(&format!("kafka-latency.round{round}.{name}"));
                runs.entry(name).or_default().push(sluice);
            }
        }
    }
    let median = |runs: &[Latencies], pick: fn(&Latencies) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    for (name, runs) in &runs {
        println!(
            "kafka-latency.{name}.p50: {:.1} ms (median of {LATENCY_ROUNDS} rounds)",
            median(runs, |l| l.p50)
        );
        println!(
            "kafka-latency.{name}.p99: {:.1} ms (median of {LATENCY_ROUNDS} rounds)",
            median(runs, |l| l.p99)
        );
    }
    for (mode, _, _) in modes {
        let relays = &runs[&format!("{mode}.baseline_relay")];
        for (parallelism, _) in parallelisms {
            let sluice = &runs[&format!("{mode}.{parallelism}")];
            println!(
                "kafka-latency.{mode}.{parallelism}.p50_minus_baseline: {:.1} ms (medians)",
                median(sluice, |l| l.p50) - median(relays, |l| l.p50)
            );
            println!(
                "kafka-latency.{mode}.{parallelism}.ratio_p99_over_baseline: {:.2} x (medians)",
                median(sluice, |l| l.p99) / median(relays, |l| l.p99)
            );
        }
    }
    Ok(())
}

/// Consume `input` from the start and produce every record again to
/// `output`, same partition, with a producer that lingers `linger_ms`,
/// until `stop`.
fn relay(input: &str, output: &str, linger_ms: u32, stop: &AtomicBool) -> anyhow::Result<()> {
    let consumer = consumer(input)?;
    let producer = lingering_producer(linger_ms)?;
    while !stop.load(Ordering::Relaxed) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let mut record = BaseRecord::to(output).partition(message.partition());
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            send(&producer, record)?;
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Marks the records `prime` sends.
const PROBE: &str = "\"probe\"";

/// Send one probe record to each partition of `input` and wait until all
/// have come through the path: connections, metadata and the producers'
/// ids are then set up, and the timed records measure the running path,
/// not its start. Returns how long that took.
fn prime(producer: &BaseProducer, input: &str, arrived: &AtomicUsize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for partition in 0..PARTITIONS {
        let value = format!("{{\"email\":\"probe@example.com\",{PROBE}:\"{partition}\"}}");
        send(
            producer,
            BaseRecord::to(input)
                .partition(partition)
                .payload(value.as_bytes()),
        )?;
    }
    producer.flush(Duration::from_secs(30))?;
    while arrived.load(Ordering::Relaxed) < PARTITIONS as usize {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the probe records did not come through within 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(started.elapsed())
}

/// Latencies of one path, ms.
#[derive(Debug)]
struct Latencies {
    start_up: Duration,
    input_rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    warm_up_max: f64,
    warm_up_records: usize,
}

impl Latencies {
    fn print(&self, name: &str) {
        println!(
            "{name}.start_up: {:.1} ms (until a record of every partition came through)",
            self.start_up.as_secs_f64() * 1000.0
        );
        println!("{name}.input_rate: {:.0} records/s", self.input_rate);
        println!("{name}.p50: {:.1} ms", self.p50);
        println!("{name}.p99: {:.1} ms", self.p99);
        println!("{name}.max: {:.1} ms", self.max);
        println!(
            "{name}.warm_up_max: {:.1} ms (first second, {} records, not in the percentiles)",
            self.warm_up_max, self.warm_up_records
        );
    }
}

/// Start a path from a new input topic to a new output topic with `start`,
/// produce `LATENCY_RATE` records/s into it for `LATENCY_SECONDS`, and
/// measure when each arrives.
fn measure_latency(
    start: impl FnOnce(
        &str,
        &str,
        Arc<AtomicBool>,
    ) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<Latencies> {
    let (input, output) = (topic("lat-in"), topic("lat-out"));
    let stop = Arc::new(AtomicBool::new(false));
    let path = start(&input, &output, stop.clone())?;

    let latencies = Arc::new(Mutex::new(Vec::new()));
    let probes_arrived = Arc::new(AtomicUsize::new(0));
    let reader_done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (latencies, probes, done, output) = (
            latencies.clone(),
            probes_arrived.clone(),
            reader_done.clone(),
            output.to_string(),
        );
        std::thread::spawn(move || -> anyhow::Result<()> {
            let consumer = consumer(&output)?;
            while !done.load(Ordering::Relaxed) {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                    let payload = message.payload().and_then(|p| std::str::from_utf8(p).ok());
                    if payload.is_some_and(|p| p.contains(PROBE)) {
                        probes.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let sent = payload
                        .and_then(|p| p.split_once("\"sent\":\"t"))
                        .and_then(|(_, rest)| rest.trim_end_matches("\"}").parse::<u128>().ok());
                    if let Some(sent) = sent {
                        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros();
                        latencies
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((sent, now.saturating_sub(sent)));
                    }
                }
            }
            Ok(())
        })
    };

    let producer = producer()?;
    let start_up = prime(&producer, &input, &probes_arrived)?;
    let started = Instant::now();
    // Records sent in the first second warm the path up (connections,
    // metadata, first fetches); they are reported apart.
    let warm_from = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() + 1_000_000;
    let total = LATENCY_RATE * LATENCY_SECONDS;
    for i in 0..total {
        let due = Duration::from_secs_f64(i as f64 / LATENCY_RATE as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let sent = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros();
        // The `t` keeps pii-redact from taking the 16 digits for a card number.
        let value = format!("{{\"email\":\"user{i}@example.com\",\"sent\":\"t{sent}\"}}");
        send(
            &producer,
            BaseRecord::to(&input)
                .partition((i % PARTITIONS as u64) as i32)
                .payload(value.as_bytes()),
        )?;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30))?;
    let input_rate = total as f64 / started.elapsed().as_secs_f64();
    // Let the last records arrive.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (latencies.lock().unwrap_or_else(|e| e.into_inner()).len() as u64) < total
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    reader_done.store(true, Ordering::Relaxed);
    path.join()
        .map_err(|_| anyhow::anyhow!("the path's thread panicked"))??;
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;

    let latencies = Arc::try_unwrap(latencies)
        .map_err(|_| anyhow::anyhow!("reader still holds latencies"))?
        .into_inner()?;
    ensure!(
        latencies.len() as u64 == total,
        "{} of {total} records arrived",
        latencies.len()
    );
    let (warm_up, mut steady): (Vec<_>, Vec<_>) = latencies
        .into_iter()
        .partition(|(sent, _)| *sent < warm_from);
    steady.sort_unstable_by_key(|(_, latency)| *latency);
    let percentile = |q: f64| steady[((steady.len() as f64 - 1.0) * q) as usize].1 as f64 / 1000.0;
    Ok(Latencies {
        start_up,
        input_rate,
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: percentile(1.0),
        warm_up_max: warm_up.iter().map(|(_, l)| *l).max().unwrap_or(0) as f64 / 1000.0,
        warm_up_records: warm_up.len(),
    })
}
