//! Whole jobs run in process, between memory (and generated) sources and
//! memory sinks: dead letters, a stateful plugin across a restart and a
//! trap, golden window runs (straight, checkpointed, failed and
//! restored), and what a restore refuses.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use sluice_config::Job;
use sluice_job::{Connectors, JobError, JobRunner, RunOptions, RunStats};
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{Runtime, RuntimeConfig};
use sluice_sink::{MemoryRows, MemorySink, Sink};
use sluice_source::{Chunk, MemorySource, Position, Room, Source, SourceError};
use sluice_state::{CheckpointStore, StateError};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

fn job(text: &str) -> Job {
    Job::parse(Path::new("/nonexistent/job.toml"), text).unwrap()
}

/// The committed rows of each sink after a run.
struct Run {
    result: Result<RunStats, JobError>,
    sink: Vec<RecordBatch>,
    outputs: BTreeMap<String, Vec<RecordBatch>>,
}

/// Run `job` from `source` into memory sinks (`sink` and `outputs`).
fn run(job: &Job, source: Box<dyn Source>, outputs: &[&str], options: RunOptions) -> Run {
    run_with_store(job, source, outputs, options, None)
}

/// Like [`run`], checkpointing to `store` if given.
fn run_with_store(
    job: &Job,
    source: Box<dyn Source>,
    outputs: &[&str],
    options: RunOptions,
    checkpoint_store: Option<CheckpointStore>,
) -> Run {
    let sink_rows = MemoryRows::default();
    let output_rows: BTreeMap<String, MemoryRows> = outputs
        .iter()
        .map(|name| ((*name).to_owned(), MemoryRows::default()))
        .collect();
    let connectors = Connectors {
        source,
        sink: Box::new(MemorySink::new(sink_rows.clone())),
        outputs: output_rows
            .iter()
            .map(|(name, rows)| {
                let sink: Box<dyn Sink> = Box::new(MemorySink::new(rows.clone()));
                (name.clone(), sink)
            })
            .collect(),
        checkpoint_store,
    };
    let result = JobRunner::with_connectors(job, &runtime(), options, connectors)
        .and_then(|runner| runner.run(&AtomicBool::new(false)));
    Run {
        result,
        sink: sink_rows.batches(),
        outputs: output_rows
            .into_iter()
            .map(|(name, rows)| (name, rows.batches()))
            .collect(),
    }
}

fn ids_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

/// Rows `ids` at event times `times` (ms; `None` for none).
fn timed_rows(ids: Vec<i64>, times: Vec<Option<i64>>) -> RecordBatch {
    RecordBatch::try_new(
        ids_schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(TimestampMillisecondArray::from(times)),
        ],
    )
    .unwrap()
}

/// Rows `ids`, at event time `id` seconds, except where `no_time` says.
fn id_rows(ids: std::ops::Range<i64>, no_time: &[i64]) -> MemorySource {
    let times = ids
        .clone()
        .map(|id| (!no_time.contains(&id)).then_some(id * 1000))
        .collect();
    MemorySource::new(ids_schema(), vec![timed_rows(ids.collect(), times)])
}

fn int64s(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap_or_else(|| panic!("no column {column} in {:?}", b.schema()))
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name(column).unwrap().as_string::<i32>().clone();
            (0..column.len())
                .map(|i| column.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Job `name`: batches of at most `max_rows`, `transforms`, then the
/// `stats` aggregate over 10 s tumbling windows of `t`, with `dead-letter`
/// and `late` outputs.
fn stats_job(name: &str, max_rows: usize, transforms: &str) -> Job {
    job(&format!(
        r#"
[job]
name = "{name}"
[source]
type = "datagen"
columns = [{{ name = "x", generator = "int" }}]
[trigger]
max_rows = {max_rows}
{transforms}
[aggregate]
plugin = "{stats}"
event_time = "t"
window = {{ type = "tumbling", size = "10s" }}
[sink]
type = "console"
[outputs.dead-letter]
type = "console"
[outputs.late]
type = "console"
"#,
        stats = artifacts::STATS,
    ))
}

#[test]
fn plugin_rejections_and_rows_without_event_time_dead_letter_in_one_schema() {
    let job = stats_job(
        "dead-letters",
        100,
        &format!(
            "[[transform]]\nplugin = {:?}\nconfig = {{ column = \"id\", op = \"lt\", value = \"5\", on_mismatch = \"reject\" }}\n",
            artifacts::FILTER
        ),
    );
    let run = run(
        &job,
        Box::new(id_rows(0..8, &[2])),
        &["dead-letter", "late"],
        RunOptions::default(),
    );
    run.result.unwrap();
    let dead = &run.outputs["dead-letter"];
    assert_eq!(dead.len(), 2, "one batch per cause: {dead:?}");
    assert_eq!(
        dead[0].schema(),
        dead[1].schema(),
        "every cause has the same dead-letter schema"
    );
    assert_eq!(int64s(dead, "id"), vec![5, 6, 7, 2]);
    assert_eq!(
        strings(dead, "__sluice.errors.kind"),
        [
            "invalid-input",
            "invalid-input",
            "invalid-input",
            "missing-event-time"
        ]
    );
    assert_eq!(
        strings(dead, "__sluice.errors.operator"),
        ["filter", "filter", "filter", "stats"]
    );
    assert!(
        strings(dead, "__sluice.errors.job")
            .iter()
            .all(|j| j == "dead-letters")
    );
    // The other rows were counted: ids 0, 1, 3, 4 in window [0, 10s).
    assert_eq!(int64s(&run.sink, "count"), vec![4]);
}

#[test]
fn event_times_at_the_ends_of_time_are_dead_lettered_and_the_job_goes_on() {
    let job = stats_job("extreme-times", 3, "");
    // The second batch comes after the extreme times: they must not have
    // moved the watermark past it.
    let batches = vec![
        timed_rows(
            vec![0, 1, 2],
            vec![Some(1_000), Some(i64::MAX), Some(i64::MIN)],
        ),
        timed_rows(vec![3], vec![Some(2_000)]),
    ];
    let run = run(
        &job,
        Box::new(MemorySource::new(ids_schema(), batches)),
        &["dead-letter", "late"],
        RunOptions::default(),
    );
    run.result.unwrap();
    let dead = &run.outputs["dead-letter"];
    assert_eq!(int64s(dead, "id"), vec![1, 2]);
    assert_eq!(
        strings(dead, "__sluice.errors.kind"),
        ["invalid-event-time", "invalid-event-time"]
    );
    // The two ordinary rows were counted in window [0, 10s), none late.
    assert_eq!(int64s(&run.sink, "count"), vec![2]);
    assert!(run.outputs["late"].iter().all(|b| b.num_rows() == 0));
}

fn counter_job(location: &Path, trap_on_id: Option<i64>) -> Job {
    let trap = trap_on_id.map_or(String::new(), |id| format!("trap_on_id = \"{id}\""));
    job(&format!(
        r#"
[job]
name = "counter"
[source]
type = "datagen"
columns = [{{ name = "x", generator = "int" }}]
[trigger]
max_rows = 10
[[transform]]
plugin = "{plugin}"
config = {{ {trap} }}
[sink]
type = "console"
[checkpoint]
location = "{location}"
interval = "0s"
restart_backoff = "10ms"
"#,
        plugin = artifacts::ROW_COUNTER,
        location = location.display(),
    ))
}

#[test]
fn a_stateful_plugin_keeps_its_count_across_a_trap_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The first run reads ids 0..30; its instance traps on id 25, the job
    // goes back to the checkpoint after id 19 and the rebuilt instance
    // starts from that count.
    let first = run(
        &counter_job(dir.path(), Some(25)),
        Box::new(id_rows(0..30, &[])),
        &[],
        RunOptions::default(),
    );
    let stats = first.result.unwrap();
    assert_eq!(stats.restarts, 1, "the trap sent the job back once");
    // The second run resumes at id 30 with the count of 30.
    let second = run(
        &counter_job(dir.path(), None),
        Box::new(id_rows(0..50, &[])),
        &[],
        RunOptions::default(),
    );
    second.result.unwrap();
    let mut output = first.sink.clone();
    output.extend(second.sink.clone());
    assert_eq!(int64s(&output, "id"), (0..50).collect::<Vec<_>>());
    assert_eq!(int64s(&output, "seen"), (1..=50).collect::<Vec<_>>());
}

/// A source that runs a step before each read of `inner`: a pause, like
/// a topic that receives rows over time, or a failure, like a broker
/// dropping a connection or a process being killed.
struct BeforeEachRead {
    inner: Box<dyn Source>,
    step: Box<dyn FnMut() -> Result<(), SourceError> + Send>,
}

impl BeforeEachRead {
    /// `inner`, waiting `pause` before each chunk.
    fn paced(inner: impl Source + 'static, pause: Duration) -> Self {
        BeforeEachRead {
            inner: Box::new(inner),
            step: Box::new(move || {
                std::thread::sleep(pause);
                Ok(())
            }),
        }
    }

    /// `inner`, whose every `every`-th read fails once.
    fn hiccups(inner: impl Source + 'static, every: usize) -> Self {
        let mut reads = 0usize;
        BeforeEachRead {
            inner: Box::new(inner),
            step: Box::new(move || {
                reads += 1;
                if reads.is_multiple_of(every) {
                    return Err(SourceError::Read {
                        what: "the test source".into(),
                        message: "connection reset".into(),
                    });
                }
                Ok(())
            }),
        }
    }

    /// `inner`, failing for good after handing out `chunks` chunks.
    fn fails_after(inner: Box<dyn Source>, mut chunks: usize) -> Self {
        BeforeEachRead {
            inner,
            step: Box::new(move || {
                if chunks == 0 {
                    return Err(SourceError::Config("killed".into()));
                }
                chunks -= 1;
                Ok(())
            }),
        }
    }
}

impl std::fmt::Debug for BeforeEachRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeforeEachRead")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Source for BeforeEachRead {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn next_chunk(&mut self, room: Room, max_wait: Duration) -> Result<Chunk, SourceError> {
        (self.step)()?;
        self.inner.next_chunk(room, max_wait)
    }

    fn positions(&self) -> Vec<Position> {
        self.inner.positions()
    }

    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError> {
        self.inner.seek(positions)
    }
}

#[test]
fn restart_attempts_count_failures_in_a_row_not_over_the_job_s_life() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = counter_job(dir.path(), None);
    job.checkpoint.as_mut().unwrap().restart_attempts = 1;
    // Checkpoints commit between the hiccups: each restart works, so one
    // attempt is enough for each of them.
    let source = BeforeEachRead::hiccups(id_rows(0..100, &[]), 3);
    let run = run(&job, Box::new(source), &[], RunOptions::default());
    let stats = run.result.unwrap();
    assert!(stats.restarts >= 3, "{} restarts", stats.restarts);
    assert_eq!(int64s(&run.sink, "id"), (0..100).collect::<Vec<_>>());
    assert_eq!(int64s(&run.sink, "seen"), (1..=100).collect::<Vec<_>>());
}

/// A checkpoint store in memory whose every write takes `delay`, like a
/// slow object store's.
fn slow_store(delay: Duration) -> CheckpointStore {
    let config = ThrottleConfig {
        wait_put_per_call: delay,
        ..ThrottleConfig::default()
    };
    let store = ThrottledStore::new(InMemory::new(), config);
    CheckpointStore::from_store(
        Arc::new(store),
        object_store::path::Path::default(),
        "memory://slow",
    )
}

#[test]
fn batches_run_while_a_slow_store_writes_the_last_epoch_and_nothing_is_lost_or_repeated() {
    let store = slow_store(Duration::from_millis(40));
    let counter = |trap_on_id| {
        let mut job = counter_job(Path::new("/unused"), trap_on_id);
        job.checkpoint.as_mut().unwrap().interval = Duration::from_millis(50);
        job
    };
    let paced = |ids| {
        Box::new(BeforeEachRead::paced(
            id_rows(ids, &[]),
            Duration::from_millis(15),
        ))
    };
    // A batch every 15 ms, an epoch every 50 ms, and each takes some 80 ms
    // to commit: the instance traps on id 55 while an epoch commits and the
    // next has written rows. The job drops what it held back and goes back
    // to the last commit.
    let first = run_with_store(
        &counter(Some(55)),
        paced(0..100),
        &[],
        RunOptions::default(),
        Some(store.clone()),
    );
    let stats = first.result.unwrap();
    assert!(
        stats.batches_during_commits > 0,
        "no batch ran during a commit: {stats:?}"
    );
    assert!(stats.checkpoints >= 2, "{stats:?}");
    assert_eq!(stats.restarts, 1, "the trap sent the job back once");
    let second = run_with_store(
        &counter(None),
        paced(0..120),
        &[],
        RunOptions::default(),
        Some(store),
    );
    second.result.unwrap();
    let mut output = first.sink.clone();
    output.extend(second.sink.clone());
    assert_eq!(int64s(&output, "id"), (0..120).collect::<Vec<_>>());
    assert_eq!(int64s(&output, "seen"), (1..=120).collect::<Vec<_>>());
}

#[test]
fn without_a_checkpoint_a_trap_stops_the_job_with_the_plugin_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = counter_job(dir.path(), Some(3));
    job.checkpoint = None;
    let run = run(
        &job,
        Box::new(id_rows(0..10, &[])),
        &[],
        RunOptions::default(),
    );
    let error = run.result.unwrap_err().to_string();
    assert!(
        error.contains("row-counter") || error.contains("row_counter"),
        "{error}"
    );
    assert!(
        run.sink.is_empty(),
        "nothing of the failed batch was committed"
    );
}

#[test]
fn a_torn_checkpoint_is_skipped_and_a_corrupt_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(
        &counter_job(dir.path(), None),
        Box::new(id_rows(0..30, &[])),
        &[],
        RunOptions::default(),
    );
    first.result.unwrap();
    let mut epochs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    epochs.sort();
    assert!(epochs.len() >= 2, "{epochs:?}");
    // Tear the newest epoch: its manifest is gone, one file is left.
    let newest = epochs.last().unwrap();
    std::fs::remove_file(newest.join("MANIFEST")).unwrap();
    let second = run(
        &counter_job(dir.path(), None),
        Box::new(id_rows(0..40, &[])),
        &[],
        RunOptions::default(),
    );
    second.result.unwrap();
    // The epoch before the torn one ended at id 19: the job resumes there.
    assert_eq!(int64s(&second.sink, "id"), (20..40).collect::<Vec<_>>());
    assert_eq!(int64s(&second.sink, "seen"), (21..=40).collect::<Vec<_>>());

    // Corrupt the newest committed epoch's state file.
    let mut epochs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("MANIFEST").exists())
        .collect();
    epochs.sort();
    let state = std::fs::read_dir(epochs.last().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("operator."))
        .unwrap();
    std::fs::write(&state, b"\x01\x00\x00\x00\x00\x00\x00\x00").unwrap();
    let third = run(
        &counter_job(dir.path(), None),
        Box::new(id_rows(0..50, &[])),
        &[],
        RunOptions::default(),
    );
    match third.result {
        Err(JobError::Checkpoint(StateError::Corrupt { .. })) => {}
        other => panic!("a corrupt checkpoint must be reported, got {other:?}"),
    }
    assert!(third.sink.is_empty());
}

/// Rows as sorted JSON lines, to compare outputs as multisets.
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut lines = lines_in_order(batches);
    lines.sort();
    lines
}

fn nexmark_job(plugin: &str, aggregate: &str, checkpoint: Option<&Path>) -> Job {
    let checkpoint = checkpoint.map_or(String::new(), |dir| {
        format!(
            "[checkpoint]\nlocation = \"{}\"\ninterval = \"0s\"\nrestart_attempts = 0\n",
            dir.display()
        )
    });
    job(&format!(
        r#"
[job]
name = "golden"
[source]
type = "nexmark"
events = 20000
base_time = 1700000000000
event_rate = 10000
[trigger]
max_rows = 1000
[aggregate]
plugin = "{plugin}"
event_time = "date_time"
{aggregate}
[sink]
type = "console"
[outputs.late]
type = "console"
{checkpoint}
"#
    ))
}

fn nexmark_source(job: &Job) -> Box<dyn Source> {
    sluice_source::open(&job.source, &job.trigger, job.parallelism).unwrap()
}

/// Run the job `job_at` makes three ways: straight through, with a
/// checkpoint after every batch, and failed part-way and restored; the
/// three outputs must be the same rows.
fn three_ways(case: &str, job_at: impl Fn(Option<&Path>) -> Job) {
    let straight_job = job_at(None);
    let straight = run(
        &straight_job,
        nexmark_source(&straight_job),
        &["late"],
        RunOptions::default(),
    );
    straight.result.unwrap();
    let want = lines(&straight.sink);
    assert!(!want.is_empty(), "{case}: no results to compare");

    let dir = tempfile::tempdir().unwrap();
    let job = job_at(Some(dir.path()));
    let checkpointed = run(&job, nexmark_source(&job), &["late"], RunOptions::default());
    assert!(checkpointed.result.unwrap().checkpoints > 5);
    assert_eq!(lines(&checkpointed.sink), want, "{case}: checkpointed");

    let dir = tempfile::tempdir().unwrap();
    let job = job_at(Some(dir.path()));
    let failing = BeforeEachRead::fails_after(nexmark_source(&job), 7);
    let killed = run(&job, Box::new(failing), &["late"], RunOptions::default());
    assert!(killed.result.is_err(), "{case}: the first run fails");
    let resumed = run(&job, nexmark_source(&job), &["late"], RunOptions::default());
    resumed.result.unwrap();
    let mut got = killed.sink;
    got.extend(resumed.sink);
    assert_eq!(lines(&got), want, "{case}: failed and restored");
}

/// Every window case: the windowed Nexmark queries, as (aggregate
/// plugin, the rest of its `[aggregate]` section).
const WINDOW_CASES: [(&str, &str); 3] = [
    (
        artifacts::NEXMARK_Q5,
        "columns = [\"auction\"]\nwindow = { type = \"hopping\", size = \"2s\", slide = \"500ms\" }",
    ),
    (
        artifacts::NEXMARK_Q7,
        "window = { type = \"tumbling\", size = \"1s\" }",
    ),
    (
        artifacts::NEXMARK_Q11,
        "key = [\"bidder\"]\ncolumns = []\nwindow = { type = \"session\", gap = \"100ms\" }",
    ),
];

/// The stateless Nexmark queries (q0 pass-through, q1 currency, q2
/// selection).
const STATELESS_QUERIES: [&str; 3] = [
    artifacts::NEXMARK_Q0,
    artifacts::NEXMARK_Q1,
    artifacts::NEXMARK_Q2,
];

/// The Nexmark job with the stateless query `plugin` as its one
/// transform and no aggregate.
fn stateless_job(plugin: &str, checkpoint: Option<&Path>) -> Job {
    let (aggregate, window) = WINDOW_CASES[1];
    let mut job = nexmark_job(aggregate, window, checkpoint);
    job.aggregate = None;
    job.transforms = vec![transform(plugin)];
    job
}

#[test]
fn window_queries_give_the_same_rows_straight_checkpointed_and_restored() {
    for (plugin, aggregate) in WINDOW_CASES {
        three_ways(aggregate, |dir| nexmark_job(plugin, aggregate, dir));
    }
}

/// The stateless queries, as transforms.
#[test]
fn stateless_nexmark_queries_give_the_same_rows_straight_checkpointed_and_restored() {
    for plugin in STATELESS_QUERIES {
        three_ways(plugin, |dir| stateless_job(plugin, dir));
    }
}

/// A `[[transform]]` of `plugin` named `query`, with no config.
fn transform(plugin: &str) -> sluice_config::PluginSpec {
    sluice_config::PluginSpec {
        name: "query".into(),
        plugin: plugin.into(),
        field: "transform[0].plugin".into(),
        line: 1,
        config: Vec::new(),
        memory_limit: 64 << 20,
        deadline: Duration::from_secs(10),
    }
}

/// Rows as JSON lines, in the order the sink got them.
fn lines_in_order(batches: &[RecordBatch]) -> Vec<String> {
    let mut buffer = Vec::new();
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut buffer);
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.finish().unwrap();
    drop(writer);
    String::from_utf8(buffer)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Golden runs: every window case (behind a stateless transform, which
/// the tasks run) and every stateless Nexmark query give the same rows in
/// the same order at parallelism 1, 2 and 3, late rows included.
#[test]
fn every_window_and_nexmark_case_gives_identical_output_at_any_parallelism() {
    let mut cases: Vec<(String, Job)> = WINDOW_CASES
        .iter()
        .map(|(plugin, aggregate)| {
            let mut job = nexmark_job(plugin, aggregate, None);
            job.transforms = vec![transform(artifacts::NEXMARK_Q0)];
            (format!("{plugin} {aggregate}"), job)
        })
        .collect();
    cases.extend(
        STATELESS_QUERIES
            .iter()
            .map(|plugin| ((*plugin).to_owned(), stateless_job(plugin, None))),
    );
    for (case, mut job) in cases {
        let mut outputs = Vec::new();
        for parallelism in [1, 2, 3] {
            job.parallelism = parallelism;
            let run = run(&job, nexmark_source(&job), &["late"], RunOptions::default());
            let batches = run.result.unwrap().batches;
            outputs.push((
                parallelism,
                batches,
                lines_in_order(&run.sink),
                lines_in_order(&run.outputs["late"]),
            ));
        }
        let (_, batches, sink, late) = &outputs[0];
        assert!(*batches > 10, "{case}: too few batches to overlap");
        assert!(!sink.is_empty(), "{case}: no results to compare");
        for (parallelism, other_batches, other_sink, other_late) in &outputs[1..] {
            assert_eq!(
                other_batches, batches,
                "{case} at parallelism {parallelism}"
            );
            assert!(
                other_sink == sink,
                "{case}: the sink differs at parallelism {parallelism}"
            );
            assert!(
                other_late == late,
                "{case}: late rows differ at parallelism {parallelism}"
            );
        }
    }
}

#[test]
fn a_changed_window_is_refused_by_name_unless_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let window = |size: &str| format!("window = {{ type = \"tumbling\", size = \"{size}\" }}");
    let job = nexmark_job(artifacts::NEXMARK_Q7, &window("1s"), Some(dir.path()));
    run(&job, nexmark_source(&job), &["late"], RunOptions::default())
        .result
        .unwrap();
    let changed = nexmark_job(artifacts::NEXMARK_Q7, &window("2s"), Some(dir.path()));
    let refused = run(
        &changed,
        nexmark_source(&changed),
        &["late"],
        RunOptions::default(),
    );
    let error = refused.result.unwrap_err();
    assert!(
        matches!(error, JobError::Incompatible { .. }) && error.to_string().contains("size: 1000"),
        "{error}"
    );
    let fresh = run(
        &changed,
        nexmark_source(&changed),
        &["late"],
        RunOptions {
            from_scratch: true,
            ..RunOptions::default()
        },
    );
    assert!(fresh.result.unwrap().rows_out > 0);
}

/// A job that passes every row to the sink as it is, with `trigger`
/// settings and, if given, checkpoints every `interval`.
fn pass_job(trigger: &str, interval: Option<&str>) -> Job {
    let checkpoint = interval.map_or(String::new(), |interval| {
        format!("[checkpoint]\nlocation = \"/unused\"\ninterval = \"{interval}\"\ndelivery = \"at-least-once\"\n")
    });
    job(&format!(
        "[source]\ntype = \"datagen\"\ncolumns = [{{ name = \"x\", generator = \"int\" }}]\n\
         [trigger]\n{trigger}\n[sink]\ntype = \"console\"\n{checkpoint}"
    ))
}

/// `n` memory batches of 3 rows each, ids in order.
fn id_batches(n: i64) -> MemorySource {
    let batches = (0..n)
        .map(|b| {
            let ids: Vec<i64> = (b * 3..b * 3 + 3).collect();
            timed_rows(ids, vec![None; 3])
        })
        .collect();
    MemorySource::new(ids_schema(), batches)
}

#[test]
fn a_real_time_job_runs_each_chunk_as_it_comes_and_a_micro_batch_job_gathers_them() {
    let micro = run(
        &pass_job("max_interval = \"1h\"", None),
        Box::new(id_batches(5)),
        &[],
        RunOptions::default(),
    );
    let real_time = run(
        &pass_job("real_time = true", None),
        Box::new(id_batches(5)),
        &[],
        RunOptions::default(),
    );
    let (micro_stats, real_time_stats) = (micro.result.unwrap(), real_time.result.unwrap());
    assert_eq!(micro_stats.batches, 1, "{micro_stats:?}");
    assert_eq!(real_time_stats.batches, 5, "{real_time_stats:?}");
    assert_eq!(int64s(&micro.sink, "id"), (0..15).collect::<Vec<_>>());
    assert_eq!(int64s(&real_time.sink, "id"), (0..15).collect::<Vec<_>>());
}

/// What a sink was asked to do, in order.
#[derive(Debug, Clone, PartialEq)]
enum SinkEvent {
    Write(usize),
    Flush,
    Commit,
}

/// A sink whose rows are visible at once (it keeps no epochs), that logs
/// what it is asked to do.
#[derive(Debug)]
struct VisibleAtOnce(Arc<std::sync::Mutex<Vec<SinkEvent>>>);

impl Sink for VisibleAtOnce {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), sluice_sink::SinkError> {
        self.0
            .lock()
            .unwrap()
            .push(SinkEvent::Write(batch.num_rows()));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), sluice_sink::SinkError> {
        self.0.lock().unwrap().push(SinkEvent::Flush);
        Ok(())
    }

    fn commit(&mut self, _epoch: u64) -> Result<(), sluice_sink::SinkError> {
        self.0.lock().unwrap().push(SinkEvent::Commit);
        Ok(())
    }

    fn waits_for_commits(&self) -> bool {
        false
    }
}

#[test]
fn rows_for_a_sink_that_keeps_no_epochs_go_out_while_the_checkpoint_is_written() {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let connectors = Connectors {
        source: Box::new(BeforeEachRead::paced(
            id_batches(40),
            Duration::from_millis(10),
        )),
        sink: Box::new(VisibleAtOnce(events.clone())),
        outputs: BTreeMap::new(),
        checkpoint_store: Some(slow_store(Duration::from_millis(40))),
    };
    let stats = JobRunner::with_connectors(
        &pass_job("real_time = true", Some("30ms")),
        &runtime(),
        RunOptions::default(),
        connectors,
    )
    .and_then(|runner| runner.run(&AtomicBool::new(false)))
    .unwrap();
    let events = events.lock().unwrap().clone();
    let written: usize = events
        .iter()
        .map(|e| match e {
            SinkEvent::Write(rows) => *rows,
            _ => 0,
        })
        .sum();
    assert_eq!(written, 120, "every row once");
    assert!(stats.batches_during_commits > 0, "{stats:?}");
    // Between an epoch's flush and its commit, the next epoch's rows went
    // out: they were not held back for the slow checkpoint.
    let mut committing = false;
    let mut written_while_committing = 0;
    for event in &events {
        match event {
            SinkEvent::Flush => committing = true,
            SinkEvent::Commit => committing = false,
            SinkEvent::Write(_) if committing => written_while_committing += 1,
            SinkEvent::Write(_) => {}
        }
    }
    assert!(
        written_while_committing > 0,
        "every write waited for a commit: {events:?}"
    );
}

#[test]
fn a_rate_limited_job_reads_no_faster_than_its_limit_and_loses_nothing() {
    let started = std::time::Instant::now();
    let limited = run(
        &pass_job("max_rows = 3\nmax_interval = \"1ms\"", None),
        Box::new(id_batches(200)),
        &[],
        RunOptions {
            max_rows_per_second: Some(1000),
            ..RunOptions::default()
        },
    );
    let took = started.elapsed();
    limited.result.unwrap();
    assert_eq!(int64s(&limited.sink, "id"), (0..600).collect::<Vec<_>>());
    // 600 rows at 1000 a second: at least 0.6 s, whatever the machine.
    assert!(took >= Duration::from_millis(600), "took {took:?}");
}

/// A transform spec of `plugin` with `config`, as a swap's new version.
fn version(plugin: &str, config: &[(&str, &str)]) -> sluice_config::PluginSpec {
    sluice_config::PluginSpec {
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..transform(plugin)
    }
}

/// Run `job` over `batches` batches of 3 ids, one every 3 ms, checkpointing
/// to memory, while `swaps` is called with its handle; the committed rows.
fn run_swapping(
    job: &Job,
    batches: i64,
    swaps: impl FnOnce(&sluice_job::JobHandle),
) -> (Vec<RecordBatch>, sluice_job::JobStatus) {
    let rows = MemoryRows::default();
    let connectors = Connectors {
        source: Box::new(BeforeEachRead::paced(
            id_batches(batches),
            Duration::from_millis(3),
        )),
        sink: Box::new(MemorySink::new(rows.clone())),
        outputs: BTreeMap::new(),
        checkpoint_store: Some(slow_store(Duration::ZERO)),
    };
    let runner =
        JobRunner::with_connectors(job, &runtime(), RunOptions::default(), connectors).unwrap();
    let handle = sluice_job::JobHandle::start(runner).unwrap();
    swaps(&handle);
    let status = handle.status();
    handle.wait().unwrap();
    (rows.batches(), status)
}

/// Wait until the job has committed another checkpoint.
fn next_checkpoint(handle: &sluice_job::JobHandle) {
    let before = handle.status().last_checkpoint;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while handle.status().last_checkpoint == before {
        assert!(std::time::Instant::now() < deadline, "no checkpoint came");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wait until the job has processed another batch.
fn next_batch(handle: &sluice_job::JobHandle) {
    let before = handle.status().batches;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while handle.status().batches == before {
        assert!(std::time::Instant::now() < deadline, "no batch came");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn swapping_a_stateful_plugin_twenty_times_carries_its_state_and_loses_or_repeats_no_row() {
    let mut job = pass_job("max_rows = 3\nmax_interval = \"1ms\"", Some("20ms"));
    let v1 = [("label", "v1")];
    let v2 = [("label", "v2")];
    job.transforms = vec![version(artifacts::ROW_COUNTER, &v1)];
    let name = job.transforms[0].name.clone();
    let (rows, status) = run_swapping(&job, 400, |handle| {
        next_batch(handle);
        for swap in 0..20 {
            let config = if swap % 2 == 0 { &v2 } else { &v1 };
            let swapped = handle
                .swap(&name, &version(artifacts::ROW_COUNTER, config))
                .unwrap();
            assert_eq!(
                swapped.from, swapped.to,
                "the same component, another config"
            );
            next_batch(handle);
        }
        // A rollback replays from the last checkpoint with the version
        // that runs then: let one cover the twenty swaps.
        next_checkpoint(handle);
        // A version that cannot read the state is refused; the job goes on.
        let refused = handle
            .swap(
                &name,
                &version(
                    artifacts::ROW_COUNTER,
                    &[("label", "v3"), ("refuse_state", "true")],
                ),
            )
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("cannot restore the running state"),
            "{refused}"
        );
        next_batch(handle);
        // A version that fails its first batch is rolled back, and the job
        // replays from its last checkpoint with the old one.
        handle
            .swap(
                &name,
                &version(artifacts::ROW_COUNTER, &[("label", "v4"), ("fail", "true")]),
            )
            .unwrap();
        next_batch(handle);
        next_batch(handle);
    });
    let ids = int64s(&rows, "id");
    assert_eq!(
        ids,
        (0..1200).collect::<Vec<_>>(),
        "every row once, in order"
    );
    assert_eq!(
        int64s(&rows, "seen"),
        (1..=1200).collect::<Vec<_>>(),
        "the count went on across every swap"
    );
    let labels = strings(&rows, "version");
    let changes = labels.windows(2).filter(|pair| pair[0] != pair[1]).count();
    assert_eq!(changes, 20, "v1 before each swap, v2 after: {labels:?}");
    assert!(
        !labels.iter().any(|l| l == "v3" || l == "v4"),
        "refused and failed versions wrote nothing"
    );
    let last = status.swaps.last().unwrap();
    assert!(
        last.rolled_back
            .as_deref()
            .is_some_and(|why| why.contains("trapped in `process`")),
        "{:?}",
        status.swaps
    );
    assert_eq!(status.swaps.len(), 21, "{:?}", status.swaps);
}

#[test]
fn swapping_a_transform_that_runs_on_tasks_switches_every_task_and_rolls_back_a_failing_version() {
    let mut job = pass_job("max_rows = 3\nmax_interval = \"1ms\"", Some("20ms"));
    job.parallelism = 2;
    let keep_all = [("column", "id"), ("op", "ge"), ("value", "0")];
    job.transforms = vec![version(artifacts::FILTER, &keep_all)];
    let name = job.transforms[0].name.clone();
    // Enough batches (6 s at the source's pace) to outlast eleven swaps
    // on a loaded machine: a swap after the end would find no job.
    let (rows, status) = run_swapping(&job, 2000, |handle| {
        next_batch(handle);
        for _ in 0..10 {
            handle
                .swap(&name, &version(artifacts::FILTER, &keep_all))
                .unwrap();
            next_batch(handle);
        }
        let spin = sluice_config::PluginSpec {
            deadline: Duration::from_millis(300),
            ..version(artifacts::SPIN_FOREVER, &[])
        };
        let swapped = handle.swap(&name, &spin).unwrap();
        assert_ne!(swapped.from, swapped.to);
        next_batch(handle);
        next_batch(handle);
    });
    assert_eq!(
        int64s(&rows, "id"),
        (0..6000).collect::<Vec<_>>(),
        "every row once, in order"
    );
    let last = status.swaps.last().unwrap();
    assert!(
        last.rolled_back
            .as_deref()
            .is_some_and(|why| why.contains("deadline")),
        "{:?}",
        status.swaps
    );
    assert_eq!(status.plugins[0].1, last.from, "the old version runs again");
}
