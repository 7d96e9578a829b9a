//! A job's metrics in Prometheus' text exposition format, with the
//! prometheus-client crate. One [`Metrics`] holds every job a process runs
//! (`sluice run` has one, `sluice serve` many); each job updates its
//! series through a [`JobMetrics`], labelled with the job and its tenant.
//!
//! Updates are atomic adds and histogram observations, made once per batch
//! (per operator, per checkpoint), never per row.

mod age;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

pub use age::Age;

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How a plugin's own counters (its `counter-add` calls) are read at each
/// scrape: `(plugin, counter, value)`.
pub type PluginCounters = Arc<dyn Fn() -> Vec<(String, String, u64)> + Send + Sync>;

/// A job and the tenant it belongs to (empty for `sluice run`).
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
    tenant: String,
}

/// A stage or operator of a job: `source`, `decode`, a transform's or
/// the aggregate's name, `sink`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperatorLabels {
    job: String,
    tenant: String,
    operator: String,
}

/// A plugin version of a job.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    job: String,
    tenant: String,
    plugin: String,
    digest: String,
}

/// A source partition of a job.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    job: String,
    tenant: String,
    topic: String,
    partition: i32,
}

/// A job's series told apart by one more label: a stage, a rejection
/// kind, an output.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    job: String,
    tenant: String,
    stage: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    job: String,
    tenant: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutputLabels {
    job: String,
    tenant: String,
    output: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwapLabels {
    job: String,
    tenant: String,
    plugin: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCounterLabels {
    plugin: String,
    counter: String,
}

/// Histogram buckets for durations: 100 µs to about 13 minutes.
#[derive(Debug, Clone, Copy)]
struct DurationBuckets;

impl MetricConstructor<Histogram> for DurationBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0001, 2.0, 23))
    }
}

type Durations<L> = Family<L, Histogram, DurationBuckets>;

/// Every metric family, shared by the jobs that add series to them.
#[derive(Debug)]
struct Families {
    rows_in: Family<OperatorLabels, Counter>,
    rows_out: Family<OperatorLabels, Counter>,
    batches: Family<JobLabels, Counter>,
    batch_duration: Durations<JobLabels>,
    stage_duration: Durations<StageLabels>,
    plugin_call_duration: Durations<PluginLabels>,
    plugin_memory: Family<PluginLabels, Gauge>,
    lag: Family<PartitionLabels, Gauge>,
    watermark: Family<JobLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    watermark_delay: Family<JobLabels, Age>,
    state_bytes: Family<JobLabels, Gauge>,
    checkpoints: Family<JobLabels, Counter>,
    checkpoint_failures: Family<JobLabels, Counter>,
    checkpoint_duration: Durations<JobLabels>,
    checkpoint_size: Family<JobLabels, Gauge>,
    checkpoint_age: Family<JobLabels, Age>,
    restarts: Family<JobLabels, Counter>,
    rejected: Family<KindLabels, Counter>,
    output_rows: Family<OutputLabels, Counter>,
    late_rows: Family<JobLabels, Counter>,
    swaps: Family<SwapLabels, Counter>,
}

impl Families {
    fn new() -> Self {
        Families {
            rows_in: Family::default(),
            rows_out: Family::default(),
            batches: Family::default(),
            batch_duration: Family::new_with_constructor(DurationBuckets),
            stage_duration: Family::new_with_constructor(DurationBuckets),
            plugin_call_duration: Family::new_with_constructor(DurationBuckets),
            plugin_memory: Family::default(),
            lag: Family::default(),
            watermark: Family::default(),
            watermark_delay: Family::default(),
            state_bytes: Family::default(),
            checkpoints: Family::default(),
            checkpoint_failures: Family::default(),
            checkpoint_duration: Family::new_with_constructor(DurationBuckets),
            checkpoint_size: Family::default(),
            checkpoint_age: Family::default(),
            restarts: Family::default(),
            rejected: Family::default(),
            output_rows: Family::default(),
            late_rows: Family::default(),
            swaps: Family::default(),
        }
    }

    /// Register every family (they share their series with `self`).
    fn register(&self, registry: &mut Registry) {
        let f = self;
        registry.register(
            "sluice_operator_rows_in",
            "Rows into each stage or operator of a job",
            f.rows_in.clone(),
        );
        registry.register(
            "sluice_operator_rows_out",
            "Rows out of each stage or operator of a job",
            f.rows_out.clone(),
        );
        registry.register(
            "sluice_batches",
            "Micro-batches processed",
            f.batches.clone(),
        );
        registry.register_with_unit(
            "sluice_batch_duration",
            "From a batch being cut to its rows written",
            Unit::Seconds,
            f.batch_duration.clone(),
        );
        registry.register_with_unit(
            "sluice_stage_duration",
            "Time a batch spent in each stage: source, process (decode and operators), sink; and the end of an epoch (checkpoint)",
            Unit::Seconds,
            f.stage_duration.clone(),
        );
        registry.register_with_unit(
            "sluice_plugin_call_duration",
            "Time of each batch's call into a plugin, by plugin version",
            Unit::Seconds,
            f.plugin_call_duration.clone(),
        );
        registry.register_with_unit(
            "sluice_plugin_memory",
            "Linear memory of a plugin's instance after its last call",
            Unit::Bytes,
            f.plugin_memory.clone(),
        );
        registry.register_with_unit(
            "sluice_source_lag",
            "Records in each source partition not yet read: its end, as the consumer last heard, less the job's position",
            Unit::Other("records".into()),
            f.lag.clone(),
        );
        registry.register_with_unit(
            "sluice_watermark_timestamp",
            "The aggregate's event-time watermark, as a Unix time",
            Unit::Seconds,
            f.watermark.clone(),
        );
        registry.register_with_unit(
            "sluice_watermark_delay",
            "How far the watermark is behind the wall clock",
            Unit::Seconds,
            f.watermark_delay.clone(),
        );
        registry.register_with_unit(
            "sluice_state",
            "State the job's operators hold",
            Unit::Bytes,
            f.state_bytes.clone(),
        );
        registry.register(
            "sluice_checkpoints",
            "Checkpoints committed",
            f.checkpoints.clone(),
        );
        registry.register(
            "sluice_checkpoint_failures",
            "Checkpoints that failed to commit",
            f.checkpoint_failures.clone(),
        );
        registry.register_with_unit(
            "sluice_checkpoint_duration",
            "From a checkpoint's snapshot to its commit",
            Unit::Seconds,
            f.checkpoint_duration.clone(),
        );
        registry.register_with_unit(
            "sluice_checkpoint_size",
            "State bytes in the last committed checkpoint",
            Unit::Bytes,
            f.checkpoint_size.clone(),
        );
        registry.register_with_unit(
            "sluice_checkpoint_age",
            "Time since the last checkpoint committed",
            Unit::Seconds,
            f.checkpoint_age.clone(),
        );
        registry.register(
            "sluice_job_restarts",
            "Times the job went back to its last checkpoint after a failure",
            f.restarts.clone(),
        );
        registry.register(
            "sluice_rejected_rows",
            "Rows that could not be decoded or that operators rejected, by kind, whatever the job's policy did with them",
            f.rejected.clone(),
        );
        registry.register(
            "sluice_output_rows",
            "Rows written to each named output (dead letters and late rows included)",
            f.output_rows.clone(),
        );
        registry.register(
            "sluice_late_rows",
            "Rows later than the aggregate's allowed lateness",
            f.late_rows.clone(),
        );
        registry.register(
            "sluice_plugin_swaps",
            "Plugin swaps, by outcome: swapped, refused, rolled_back",
            f.swaps.clone(),
        );
    }
}

/// The metrics of every job in a process, and their exposition.
#[derive(Debug, Clone)]
pub struct Metrics {
    families: Arc<Families>,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// An empty set of metrics; `plugin_counters`, if given, is read at
    /// each scrape into `sluice_plugin_counter_total`.
    pub fn new(plugin_counters: Option<PluginCounters>) -> Self {
        let families = Families::new();
        let mut registry = Registry::default();
        families.register(&mut registry);
        if let Some(read) = plugin_counters {
            registry.register_collector(Box::new(PluginCounterCollector(read)));
        }
        Metrics {
            families: Arc::new(families),
            registry: Arc::new(registry),
        }
    }

    /// The series of job `job` of `tenant` (empty outside `sluice serve`).
    /// A job started again under the same labels goes on from the values
    /// its last run left.
    pub fn job(&self, job: &str, tenant: &str) -> JobMetrics {
        JobMetrics {
            families: Some(Arc::clone(&self.families)),
            labels: JobLabels {
                job: job.to_owned(),
                tenant: tenant.to_owned(),
            },
        }
    }

    /// Every series, in Prometheus' text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

/// Reads a runtime's plugin counters at each scrape.
struct PluginCounterCollector(PluginCounters);

impl std::fmt::Debug for PluginCounterCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginCounterCollector")
    }
}

impl prometheus_client::collector::Collector for PluginCounterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = (self.0)();
        if counters.is_empty() {
            return Ok(());
        }
        let family = Family::<PluginCounterLabels, Counter>::default();
        for (plugin, counter, value) in counters {
            family
                .get_or_create(&PluginCounterLabels { plugin, counter })
                .inc_by(value);
        }
        let metric = encoder.encode_descriptor(
            "sluice_plugin_counter",
            "Counters plugins keep through the host's counter-add (at most 64 per plugin)",
            None,
            family.metric_type(),
        )?;
        family.encode(metric)
    }
}

/// The stages of a batch that [`JobMetrics::stage`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading from the source and cutting the batch.
    Source,
    /// Decoding and passing through the operators.
    Process,
    /// Handing rows to the sinks.
    Sink,
    /// Ending an epoch: flushing the sinks and taking the snapshot.
    Checkpoint,
}

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Process => "process",
            Stage::Sink => "sink",
            Stage::Checkpoint => "checkpoint",
        }
    }
}

/// How a plugin swap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapOutcome {
    /// The new version runs.
    Swapped,
    /// The new version was refused before it ran (it could not restore the
    /// state).
    Refused,
    /// The new version failed its first batch and the old one came back.
    RolledBack,
}

/// One job's series. Cloning shares them. The default keeps none, and
/// its updates cost nothing: a job whose metrics nobody scrapes.
#[derive(Debug, Clone, Default)]
pub struct JobMetrics {
    families: Option<Arc<Families>>,
    labels: JobLabels,
}

impl JobMetrics {
    fn operator(&self, operator: &str) -> OperatorLabels {
        OperatorLabels {
            job: self.labels.job.clone(),
            tenant: self.labels.tenant.clone(),
            operator: operator.to_owned(),
        }
    }

    fn with<L>(&self, make: impl FnOnce(String, String) -> L) -> L {
        make(self.labels.job.clone(), self.labels.tenant.clone())
    }

    /// `rows_in` rows went into `operator` and `rows_out` came out.
    pub fn rows(&self, operator: &str, rows_in: u64, rows_out: u64) {
        let Some(f) = &self.families else { return };
        let labels = self.operator(operator);
        f.rows_in.get_or_create(&labels).inc_by(rows_in);
        f.rows_out.get_or_create(&labels).inc_by(rows_out);
    }

    /// A call into plugin `plugin` (version `digest`) took `took`, and its
    /// instance holds `memory_bytes` of linear memory after it.
    pub fn plugin_call(&self, plugin: &str, digest: &str, took: Duration, memory_bytes: u64) {
        let Some(f) = &self.families else { return };
        let labels = self.with(|job, tenant| PluginLabels {
            job,
            tenant,
            plugin: plugin.to_owned(),
            digest: digest.to_owned(),
        });
        f.plugin_call_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        f.plugin_memory
            .get_or_create(&labels)
            .set(i64::try_from(memory_bytes).unwrap_or(i64::MAX));
    }

    /// A batch was written, `took` after it was cut.
    pub fn batch(&self, took: Duration) {
        let Some(f) = &self.families else { return };
        f.batches.get_or_create(&self.labels).inc();
        f.batch_duration
            .get_or_create(&self.labels)
            .observe(took.as_secs_f64());
    }

    /// A batch spent `took` in `stage`.
    pub fn stage(&self, stage: Stage, took: Duration) {
        let Some(f) = &self.families else { return };
        let labels = self.with(|job, tenant| StageLabels {
            job,
            tenant,
            stage: stage.label().to_owned(),
        });
        f.stage_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// `records` of `topic`'s `partition` are not read yet.
    pub fn lag(&self, topic: &str, partition: i32, records: i64) {
        let Some(f) = &self.families else { return };
        let labels = self.with(|job, tenant| PartitionLabels {
            job,
            tenant,
            topic: topic.to_owned(),
            partition,
        });
        f.lag.get_or_create(&labels).set(records);
    }

    /// The event-time watermark is `millis` (since the Unix epoch).
    pub fn watermark(&self, millis: i64) {
        let Some(f) = &self.families else { return };
        f.watermark
            .get_or_create(&self.labels)
            .set(millis as f64 / 1000.0);
        f.watermark_delay
            .get_or_create(&self.labels)
            .set_millis(millis);
    }

    /// The operators hold `bytes` of state.
    pub fn state(&self, bytes: u64) {
        let Some(f) = &self.families else { return };
        f.state_bytes
            .get_or_create(&self.labels)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A checkpoint of `size_bytes` of state committed, `took` after its
    /// snapshot.
    pub fn checkpoint_committed(&self, took: Duration, size_bytes: u64) {
        let Some(f) = &self.families else { return };
        f.checkpoints.get_or_create(&self.labels).inc();
        f.checkpoint_duration
            .get_or_create(&self.labels)
            .observe(took.as_secs_f64());
        f.checkpoint_size
            .get_or_create(&self.labels)
            .set(i64::try_from(size_bytes).unwrap_or(i64::MAX));
        f.checkpoint_age.get_or_create(&self.labels).set_now();
    }

    /// A checkpoint failed to commit.
    pub fn checkpoint_failed(&self) {
        let Some(f) = &self.families else { return };
        f.checkpoint_failures.get_or_create(&self.labels).inc();
    }

    /// The job went back to its last checkpoint after a failure.
    pub fn restarted(&self) {
        let Some(f) = &self.families else { return };
        f.restarts.get_or_create(&self.labels).inc();
    }

    /// `rows` were rejected as `kind` (a decode failure or an operator's
    /// rejection).
    pub fn rejected(&self, kind: &str, rows: u64) {
        let Some(f) = &self.families else { return };
        let labels = self.with(|job, tenant| KindLabels {
            job,
            tenant,
            kind: kind.to_owned(),
        });
        f.rejected.get_or_create(&labels).inc_by(rows);
    }

    /// `rows` were written to the named output `output`.
    pub fn output(&self, output: &str, rows: u64) {
        let Some(f) = &self.families else { return };
        let labels = self.with(|job, tenant| OutputLabels {
            job,
            tenant,
            output: output.to_owned(),
        });
        f.output_rows.get_or_create(&labels).inc_by(rows);
    }

    /// `rows` came later than the allowed lateness.
    pub fn late(&self, rows: u64) {
        let Some(f) = &self.families else { return };
        f.late_rows.get_or_create(&self.labels).inc_by(rows);
    }

    /// A swap of `plugin` ended with `outcome`.
    pub fn swap(&self, plugin: &str, outcome: SwapOutcome) {
        let Some(f) = &self.families else { return };
        let labels = self.with(|job, tenant| SwapLabels {
            job,
            tenant,
            plugin: plugin.to_owned(),
            outcome: match outcome {
                SwapOutcome::Swapped => "swapped",
                SwapOutcome::Refused => "refused",
                SwapOutcome::RolledBack => "rolled_back",
            }
            .to_owned(),
        });
        f.swaps.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(metrics: &Metrics) -> prometheus_parse::Scrape {
        let text = metrics.encode();
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?}"));
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn jobs_add_to_their_own_series_and_the_text_parses() {
        let metrics = Metrics::new(Some(Arc::new(|| {
            vec![("enrich".to_owned(), "misses".to_owned(), 7)]
        })));
        let a = metrics.job("a", "acme");
        let b = metrics.job("b", "globex");
        a.rows("source", 10, 10);
        a.rows("source", 5, 5);
        a.rows("pii-redact", 15, 12);
        b.rows("source", 3, 3);
        a.rejected("invalid-input", 3);
        a.lag("orders", 0, 42);
        a.lag("orders", 0, 0);
        a.checkpoint_committed(Duration::from_millis(20), 1024);
        a.checkpoint_committed(Duration::from_millis(30), 2048);
        a.swap("pii-redact", SwapOutcome::RolledBack);

        let scrape = parsed(&metrics);
        let rows_in = "sluice_operator_rows_in_total";
        assert_eq!(
            value(&scrape, rows_in, &[("job", "a"), ("operator", "source")]),
            15.0
        );
        assert_eq!(
            value(&scrape, rows_in, &[("job", "b"), ("tenant", "globex")]),
            3.0
        );
        assert_eq!(
            value(
                &scrape,
                "sluice_operator_rows_out_total",
                &[("operator", "pii-redact")]
            ),
            12.0
        );
        assert_eq!(
            value(
                &scrape,
                "sluice_rejected_rows_total",
                &[("kind", "invalid-input")]
            ),
            3.0
        );
        assert_eq!(
            value(&scrape, "sluice_source_lag_records", &[("topic", "orders")]),
            0.0
        );
        assert_eq!(
            value(&scrape, "sluice_checkpoints_total", &[("job", "a")]),
            2.0
        );
        assert_eq!(
            value(&scrape, "sluice_checkpoint_size_bytes", &[("job", "a")]),
            2048.0
        );
        assert!(value(&scrape, "sluice_checkpoint_age_seconds", &[("job", "a")]) < 60.0);
        assert_eq!(
            value(
                &scrape,
                "sluice_plugin_swaps_total",
                &[("outcome", "rolled_back")]
            ),
            1.0
        );
        assert_eq!(
            value(
                &scrape,
                "sluice_plugin_counter_total",
                &[("counter", "misses")]
            ),
            7.0
        );
    }

    #[test]
    fn a_job_started_again_goes_on_from_its_counts() {
        let metrics = Metrics::default();
        metrics.job("a", "").rows("sink", 4, 4);
        metrics.job("a", "").rows("sink", 6, 6);
        let scrape = parsed(&metrics);
        assert_eq!(
            value(&scrape, "sluice_operator_rows_out_total", &[("job", "a")]),
            10.0
        );
    }

    #[test]
    fn the_watermark_delay_is_measured_at_the_scrape() {
        let metrics = Metrics::default();
        let job = metrics.job("a", "");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        job.watermark(now.as_millis() as i64 - 90_000);
        let scrape = parsed(&metrics);
        let delay = value(&scrape, "sluice_watermark_delay_seconds", &[("job", "a")]);
        assert!((90.0..100.0).contains(&delay), "{delay}");
    }

    /// The names of `sluice_` metrics in `text`: every identifier that
    /// starts `sluice_` and goes on in lower-case letters and underscores.
    fn sluice_names(text: &str) -> Vec<&str> {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        let mut names = Vec::new();
        for (at, _) in text.match_indices("sluice_") {
            if text[..at].chars().next_back().is_some_and(ident) {
                continue;
            }
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            names.push(&rest[..end]);
        }
        names
    }

    /// Every string under an `expr` key, anywhere in `value`.
    fn exprs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", serde_json::Value::String(expr)) => out.push(expr),
                        _ => exprs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_grafana_dashboard_queries_only_metrics_sluice_exports() {
        let metrics = Metrics::new(Some(Arc::new(|| {
            vec![("enrich".to_owned(), "misses".to_owned(), 1)]
        })));
        let job = metrics.job("a", "t");
        job.rows("source", 1, 1);
        job.plugin_call("enrich", "sha256:0", Duration::from_millis(1), 65536);
        job.batch(Duration::from_millis(2));
        job.stage(Stage::Process, Duration::from_millis(1));
        job.lag("orders", 0, 3);
        job.watermark(0);
        job.state(10);
        job.checkpoint_committed(Duration::from_millis(5), 10);
        job.checkpoint_failed();
        job.restarted();
        job.rejected("invalid-input", 1);
        job.output("main", 1);
        job.late(1);
        job.swap("enrich", SwapOutcome::Swapped);

        let text = metrics.encode();
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| line.split(['{', ' ']).next().unwrap_or(line))
            .collect();

        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/grafana/sluice.json"
        );
        let json = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let dashboard: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut queries = Vec::new();
        exprs(&dashboard["panels"], &mut queries);
        assert!(!queries.is_empty(), "{path} has no panel queries");
        // The variables' queries name metrics too.
        for variable in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            match &variable["query"] {
                serde_json::Value::String(query) => queries.push(query),
                query => queries.extend(query["query"].as_str()),
            }
        }

        for query in queries {
            for name in sluice_names(query) {
                assert!(
                    exported.contains(name),
                    "{path} queries {name}, which Sluice does not export (it exports {exported:?}); in: {query}"
                );
            }
        }
    }
}
