//! The runtime against real components built from `plugins/` and
//! `tests/guests/`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, StructArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field};
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{
    AggregatePlugin, PluginErrorKind, PluginLimits, PluginOutput, Runtime, RuntimeConfig,
    RuntimeError, TransformPlugin,
};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

fn load(
    runtime: &Runtime,
    path: &str,
    config: &[(&str, &str)],
    limits: PluginLimits,
) -> Result<TransformPlugin, RuntimeError> {
    let config = config
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TransformPlugin::load(runtime, "under-test", path.as_ref(), config, limits)
}

/// Every type the contract carries, with nulls, nesting and a timezone.
fn all_types_batch() -> RecordBatch {
    let mut list = ListBuilder::new(Int32Builder::new());
    list.append_value([Some(1), None, Some(3)]);
    list.append_null();
    list.append_value([]);
    list.append_value([Some(7)]);
    let strukt = StructArray::from(vec![
        (
            Arc::new(Field::new("a", DataType::Int64, false)),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("b", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![
                Some("x"),
                None,
                Some("z"),
                Some(""),
            ])) as ArrayRef,
        ),
    ]);
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![
                Some(-1),
                Some(i32::MAX),
                None,
                Some(0),
            ])),
        ),
        ("u32", Arc::new(UInt32Array::from(vec![0, 1, u32::MAX, 3]))),
        (
            "u64",
            Arc::new(UInt64Array::from(vec![
                Some(u64::MAX),
                None,
                Some(2),
                Some(3),
            ])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![1.5, -0.0, f32::INFINITY, 4.25])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                None,
                Some(-2.5),
                Some(1e300),
            ])),
        ),
        (
            "text",
            Arc::new(StringArray::from(vec![
                Some("héllo"),
                None,
                Some(""),
                Some("日本"),
            ])),
        ),
        (
            "bytes",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\xff"[..]),
                Some(b""),
                None,
                Some(b"abc"),
            ])),
        ),
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(1),
                    None,
                    Some(-5),
                    Some(1_700_000_000_000_000),
                ])
                .with_timezone("Europe/Paris"),
            ),
        ),
        ("list", Arc::new(list.finish())),
        ("nested", Arc::new(strukt)),
    ])
    .unwrap()
}

/// The filter plugin configured to keep every row of `all_types_batch`.
fn pass_through(runtime: &Runtime) -> TransformPlugin {
    load(
        runtime,
        artifacts::FILTER,
        &[("column", "id"), ("op", "is_not_null")],
        PluginLimits::default(),
    )
    .unwrap()
}

/// Another plugin in the same engine still works.
fn assert_engine_still_serves(runtime: &Runtime) {
    let output = pass_through(runtime).process(&all_types_batch()).unwrap();
    assert_eq!(output.batch.num_rows(), 4);
}

#[test]
fn every_column_type_round_trips_through_a_plugin() {
    let runtime = runtime();
    let plugin = pass_through(&runtime);
    let input = all_types_batch();
    let output = plugin.process(&input).unwrap();
    assert_eq!(output.batch, input);
    assert!(output.routed.is_empty());
}

#[test]
fn sliced_input_is_lent_correctly() {
    let runtime = runtime();
    let plugin = pass_through(&runtime);
    let input = all_types_batch().slice(1, 3);
    assert_eq!(plugin.process(&input).unwrap().batch, input);
}

#[test]
fn plugin_filters_rows() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        artifacts::FILTER,
        &[("column", "id"), ("op", "ge"), ("value", "3")],
        PluginLimits::default(),
    )
    .unwrap();
    let output = plugin.process(&all_types_batch()).unwrap();
    assert_eq!(output.batch, all_types_batch().slice(2, 2));
}

#[test]
fn routed_rows_reach_named_outputs() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        artifacts::ROUTE_SPLIT,
        &[
            ("column", "id"),
            ("threshold", "3"),
            ("above", "big"),
            ("below", "small"),
        ],
        PluginLimits::default(),
    )
    .unwrap();
    let output = plugin.process(&all_types_batch()).unwrap();
    assert_eq!(output.batch.num_rows(), 0);
    let names: Vec<_> = output
        .routed
        .iter()
        .map(|(name, batch)| (name.as_str(), batch.num_rows()))
        .collect();
    assert_eq!(names, vec![("big", 2), ("small", 2)]);
}

#[test]
fn plugin_error_is_typed_and_names_the_plugin() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        artifacts::FILTER,
        &[("column", "missing"), ("op", "eq"), ("value", "1")],
        PluginLimits::default(),
    )
    .unwrap();
    let error = plugin.process(&all_types_batch()).unwrap_err();
    match &error {
        RuntimeError::Plugin {
            plugin,
            kind,
            message,
            ..
        } => {
            assert_eq!(
                (plugin.as_str(), *kind),
                ("under-test", PluginErrorKind::Fatal)
            );
            assert!(message.contains("no column `missing`"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline_and_the_host_carries_on() {
    let runtime = runtime();
    let limits = PluginLimits {
        deadline: Duration::from_millis(200),
        ..PluginLimits::default()
    };
    let spin = load(&runtime, artifacts::SPIN_FOREVER, &[], limits).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let error = spin.process(&all_types_batch()).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(
            matches!(&error, RuntimeError::DeadlineExceeded { plugin, function: "process", deadline_ms: 200 } if plugin == "under-test"),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("exceeded its deadline of 200 ms"),
            "{error}"
        );
    }
    assert_engine_still_serves(&runtime);
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_limit_and_the_host_carries_on() {
    let runtime = runtime();
    let limits = PluginLimits {
        memory_bytes: 32 << 20,
        ..PluginLimits::default()
    };
    let hog = load(&runtime, artifacts::ALLOC_FOREVER, &[], limits).unwrap();
    for _ in 0..2 {
        let error = hog.process(&all_types_batch()).unwrap_err();
        assert!(
            matches!(&error, RuntimeError::MemoryLimitExceeded { plugin, limit_bytes, .. } if plugin == "under-test" && *limit_bytes == 32 << 20),
            "{error:?}"
        );
    }
    assert_engine_still_serves(&runtime);
}

#[test]
fn bytes_that_are_not_a_component_are_rejected_clearly() {
    let runtime = runtime();
    let error = TransformPlugin::from_bytes(
        &runtime,
        "junk",
        b"definitely not wasm",
        Vec::new(),
        PluginLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, RuntimeError::InvalidComponent { ref plugin, .. } if plugin == "junk"),
        "{error:?}"
    );
    // A core module is Wasm but not a component.
    let error = TransformPlugin::from_bytes(
        &runtime,
        "core",
        b"\0asm\x01\0\0\0",
        Vec::new(),
        PluginLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, RuntimeError::InvalidComponent { .. }),
        "{error:?}"
    );
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let error = load(
        &runtime(),
        "/nonexistent/plugin.wasm",
        &[],
        PluginLimits::default(),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/plugin.wasm"),
        "{error}"
    );
}

/// A runtime that caches compiled components in `dir`.
fn cached_runtime(dir: &std::path::Path) -> Result<Runtime, RuntimeError> {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        ..RuntimeConfig::default()
    })
}

#[test]
fn compiled_components_are_cached_on_disk_across_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let first = cached_runtime(dir.path()).unwrap();
    let plugin = load(&first, artifacts::PII_REDACT, &[], PluginLimits::default()).unwrap();
    let artifacts_in = |dir: &std::path::Path| -> Vec<_> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .collect()
    };
    let entries = artifacts_in(dir.path());
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(plugin.digest())
    );
    let written = std::fs::metadata(&entries[0]).unwrap().modified().unwrap();

    let second = cached_runtime(dir.path()).unwrap();
    let again = load(&second, artifacts::PII_REDACT, &[], PluginLimits::default()).unwrap();
    assert_eq!(again.digest(), plugin.digest());
    assert_eq!(
        std::fs::metadata(&entries[0]).unwrap().modified().unwrap(),
        written,
        "cache entry was rewritten"
    );
    assert_eq!(artifacts_in(dir.path()).len(), 1);
}

/// The cache entry of the component at `path`, after loading it once.
fn cache_entry(runtime: &Runtime, dir: &std::path::Path, path: &str) -> std::path::PathBuf {
    let digest = load(runtime, path, &[], PluginLimits::default())
        .unwrap()
        .digest()
        .to_owned();
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|entry| {
            entry
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&digest)
        })
        .unwrap()
}

#[test]
fn a_tampered_cached_artifact_is_not_executed() {
    let dir = tempfile::tempdir().unwrap();
    let first = cached_runtime(dir.path()).unwrap();
    let redact = cache_entry(&first, dir.path(), artifacts::PII_REDACT);
    let pass_through = cache_entry(&first, dir.path(), artifacts::NEXMARK_Q0);
    // A valid artifact of another plugin, copied over pii-redact's: native
    // code the engine would accept, and the wrong code to run.
    std::fs::copy(&pass_through, &redact).unwrap();

    let second = cached_runtime(dir.path()).unwrap();
    let plugin = load(
        &second,
        artifacts::PII_REDACT,
        &[("columns", "text")],
        PluginLimits::default(),
    )
    .unwrap();
    let batch = RecordBatch::try_from_iter(vec![(
        "text",
        Arc::new(StringArray::from(vec!["mail bob@corp.io"])) as ArrayRef,
    )])
    .unwrap();
    let output = plugin.process(&batch).unwrap().batch;
    let text = output
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(
        text.value(0),
        "mail b***@corp.io",
        "the planted artifact ran"
    );
    assert_ne!(
        std::fs::read(&redact).unwrap(),
        std::fs::read(&pass_through).unwrap(),
        "the planted artifact was not replaced by a fresh compilation"
    );

    // A flipped byte is caught the same way, before wasmtime reads it.
    let mut bytes = std::fs::read(&redact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&redact, &bytes).unwrap();
    let third = cached_runtime(dir.path()).unwrap();
    load(&third, artifacts::PII_REDACT, &[], PluginLimits::default()).unwrap();
    assert_ne!(std::fs::read(&redact).unwrap(), bytes);
}

#[test]
fn the_compiled_plugin_cache_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new").join("cache");
    let runtime = cached_runtime(&dir).unwrap();
    let entry = cache_entry(&runtime, &dir, artifacts::PII_REDACT);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&entry), 0o600);
    assert_eq!(mode(&dir.join("key")), 0o600);

    // A cache directory others can write to is made private on open.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    cached_runtime(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);

    // A key others can read is refused: it no longer proves anything.
    std::fs::set_permissions(dir.join("key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = cached_runtime(&dir).unwrap_err();
    assert!(
        error.to_string().contains("readable by other users"),
        "{error}"
    );
}

/// Rows with ids `ids`, for the row-counter guest.
fn id_batch(ids: &[i64]) -> RecordBatch {
    RecordBatch::try_from_iter(vec![(
        "id",
        Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
    )])
    .unwrap()
}

/// The `seen` column the row-counter guest adds.
fn seen(output: &PluginOutput) -> Vec<i64> {
    output
        .batch
        .column_by_name("seen")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn a_stateful_plugin_that_lost_its_state_in_a_trap_runs_again_only_once_restored() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        artifacts::ROW_COUNTER,
        &[("trap_on_id", "3")],
        PluginLimits::default(),
    )
    .unwrap();
    assert_eq!(
        seen(&plugin.process(&id_batch(&[0, 1, 2])).unwrap()),
        [1, 2, 3]
    );
    let trap = plugin.process(&id_batch(&[3])).unwrap_err();
    assert!(matches!(trap, RuntimeError::Trap { .. }), "{trap}");
    // A fresh instance would count from 0 again: the three rows it saw
    // would be gone from its state without a word.
    let refused = plugin.process(&id_batch(&[4])).unwrap_err();
    assert!(
        matches!(refused, RuntimeError::StateLost { .. }),
        "{refused}"
    );
    assert!(refused.is_recoverable());
    assert!(matches!(
        plugin.snapshot(),
        Err(RuntimeError::StateLost { .. })
    ));

    plugin.restore(Some(&3i64.to_le_bytes())).unwrap();
    assert_eq!(seen(&plugin.process(&id_batch(&[3, 4])).unwrap()), [4, 5]);

    // A stateless plugin is not held up by a failed call.
    let stateless = load(
        &runtime,
        artifacts::SPIN_FOREVER,
        &[],
        PluginLimits {
            deadline: Duration::from_millis(50),
            ..PluginLimits::default()
        },
    )
    .unwrap();
    let batch = id_batch(&[1]);
    assert!(stateless.process(&batch).is_err());
    assert!(!matches!(
        stateless.process(&batch),
        Err(RuntimeError::StateLost { .. })
    ));
}

#[test]
fn plugins_count_into_host_metrics() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        artifacts::PII_REDACT,
        &[("columns", "text")],
        PluginLimits::default(),
    )
    .unwrap();
    let batch = RecordBatch::try_from_iter(vec![(
        "text",
        Arc::new(StringArray::from(vec![
            "mail bob@corp.io",
            "card 4111 1111 1111 1111 and ann@x.org",
        ])) as ArrayRef,
    )])
    .unwrap();
    let output = plugin.process(&batch).unwrap();
    let text = output
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(text.value(0), "mail b***@corp.io");
    assert_eq!(text.value(1), "card ****-****-****-1111 and a***@x.org");
    assert_eq!(runtime.metrics().get("under-test", "redactions"), 3);
}

#[test]
fn plugins_reach_no_filesystem_environment_network_or_clock() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        artifacts::SANDBOX_PROBE,
        &[],
        PluginLimits::default(),
    )
    .unwrap();
    let output = plugin.process(&all_types_batch()).unwrap().batch;
    let probes = output
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let outcomes = output
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let seen: Vec<(&str, &str)> = probes
        .iter()
        .flatten()
        .zip(outcomes.iter().flatten())
        .collect();
    for (probe, outcome) in &seen {
        match *probe {
            "env vars" => assert_eq!(*outcome, "0 variables"),
            "wall clock" => assert_eq!(*outcome, "0 s since epoch", "the clock is not granted"),
            _ => assert!(outcome.starts_with("denied"), "{probe}: {outcome}"),
        }
    }
    assert_eq!(seen.len(), 5);
}

fn load_stats(runtime: &Runtime) -> AggregatePlugin {
    AggregatePlugin::load(
        runtime,
        "stats",
        artifacts::STATS.as_ref(),
        vec![("column".to_owned(), "x".to_owned())],
        PluginLimits::default(),
    )
    .unwrap()
}

/// Column `x` of a batch, as float64 values of output column `name`.
fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .iter()
        .collect()
}

#[test]
fn an_aggregate_plugin_folds_rows_into_host_owned_states_and_finishes_them() {
    let runtime = runtime();
    let stats = load_stats(&runtime);
    let batch = RecordBatch::try_from_iter(vec![(
        "x",
        Arc::new(Int64Array::from(vec![Some(4), Some(10), None, Some(-2)])) as ArrayRef,
    )])
    .unwrap();
    // Two new groups (empty states): rows 0 and 3 in group 0, 1 and 2 in 1.
    let states = stats
        .update(&[Vec::new(), Vec::new()], &batch, &[0, 1, 1, 0])
        .unwrap();
    assert_eq!(states.len(), 2);
    // The states are the host's: fold the batch in again from them.
    let states = stats.update(&states, &batch, &[0, 1, 1, 0]).unwrap();
    let merged = stats.merge(&states[..1], &states[1..]).unwrap();
    let finished = stats
        .finish(&[states[0].clone(), states[1].clone(), merged[0].clone()])
        .unwrap();
    assert!(finished.groups.is_empty());
    assert_eq!(
        floats(&finished.batch, "sum"),
        [Some(4.0), Some(20.0), Some(24.0)]
    );
    assert_eq!(
        floats(&finished.batch, "min"),
        [Some(-2.0), Some(10.0), Some(-2.0)]
    );
}

#[test]
fn a_plugin_of_the_other_world_is_rejected_with_what_it_exports() {
    let runtime = runtime();
    let error = AggregatePlugin::load(
        &runtime,
        "filter-as-aggregate",
        artifacts::FILTER.as_ref(),
        Vec::new(),
        PluginLimits::default(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error,
            RuntimeError::WrongWorld {
                world: "aggregate",
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("sluice:plugin/transformer@0.2.0"),
        "{message}"
    );
    let error = load(&runtime, artifacts::STATS, &[], PluginLimits::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error,
            RuntimeError::WrongWorld {
                world: "transform",
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("sluice:plugin/aggregator@0.2.0"),
        "{message}"
    );
}

#[test]
fn an_aggregate_plugin_error_names_the_plugin_and_the_host_carries_on() {
    let runtime = runtime();
    let stats = AggregatePlugin::load(
        &runtime,
        "stats-on-missing-column",
        artifacts::STATS.as_ref(),
        vec![("column".to_owned(), "nope".to_owned())],
        PluginLimits::default(),
    )
    .unwrap();
    let batch =
        RecordBatch::try_from_iter(vec![("x", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
            .unwrap();
    let error = stats.update(&[Vec::new()], &batch, &[0]).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("stats-on-missing-column") && message.contains("nope"),
        "{message}"
    );
    // Group ids past the states are refused by the SDK, not trusted.
    assert!(stats.update(&[Vec::new()], &batch, &[3]).is_err());
    assert_engine_still_serves(&runtime);
}

fn hostile(runtime: &Runtime, mode: &str) -> TransformPlugin {
    load(
        runtime,
        artifacts::HOSTILE_OUTPUTS,
        &[("mode", mode)],
        PluginLimits::default(),
    )
    .unwrap()
}

fn three_rows() -> RecordBatch {
    RecordBatch::try_from_iter(vec![(
        "id",
        Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
    )])
    .unwrap()
}

#[test]
fn rejected_rows_named_many_times_are_rejected_once() {
    let runtime = runtime();
    match hostile(&runtime, "duplicate-rejects").process(&three_rows()) {
        Err(RuntimeError::Plugin {
            kind: PluginErrorKind::InvalidInput,
            rows,
            ..
        }) => assert_eq!(rows, [0], "a million copies of row 0 are row 0"),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn a_rejected_row_the_batch_does_not_have_is_invalid_output_naming_the_plugin() {
    let runtime = runtime();
    match hostile(&runtime, "rejects-past-the-end").process(&three_rows()) {
        Err(error @ RuntimeError::InvalidOutput { .. }) => {
            let message = error.to_string();
            assert!(message.contains("under-test"), "{message}");
            assert!(message.contains("row 3 of a batch of 3 rows"), "{message}");
        }
        other => panic!("expected invalid output, got {other:?}"),
    }
}

#[test]
fn a_batch_of_no_columns_cannot_claim_more_rows_than_it_was_given() {
    let runtime = runtime();
    match hostile(&runtime, "rows-without-columns").process(&three_rows()) {
        Err(error @ RuntimeError::InvalidOutput { .. }) => {
            let message = error.to_string();
            assert!(message.contains("under-test"), "{message}");
            assert!(message.contains("4000000000 rows"), "{message}");
        }
        other => panic!("expected invalid output, got {other:?}"),
    }
}

#[test]
fn a_plugin_cannot_create_counters_without_bound() {
    let runtime = runtime();
    hostile(&runtime, "counter-flood")
        .process(&three_rows())
        .unwrap();
    let counters = runtime
        .metrics()
        .snapshot()
        .into_iter()
        .filter(|(plugin, _, _)| plugin == "under-test")
        .count();
    assert_eq!(counters, sluice_runtime::MAX_COUNTERS_PER_PLUGIN);
    // Counters it already has still count.
    assert_eq!(runtime.metrics().get("under-test", "counter-0"), 1);
}

/// A writer that keeps what tracing writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_plugin_that_floods_the_log_is_cut_off_per_call_with_short_records() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "log-flood");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        plugin.process(&three_rows()).unwrap();
        plugin.process(&three_rows()).unwrap();
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let records: Vec<&str> = text.lines().filter(|l| l.contains("xxxx")).collect();
    assert_eq!(
        records.len(),
        2 * sluice_runtime::MAX_LOGS_PER_CALL,
        "each call keeps its first records"
    );
    assert!(
        records
            .iter()
            .all(|r| r.len() < sluice_runtime::MAX_LOG_MESSAGE_BYTES + 200),
        "messages are cut"
    );
    assert_eq!(
        text.matches("the rest of this call's are dropped").count(),
        2,
        "one warning per call"
    );
}

#[test]
fn a_deadline_of_centuries_is_no_deadline_not_an_overflow() {
    let runtime = runtime();
    let limits = PluginLimits {
        deadline: Duration::MAX,
        ..PluginLimits::default()
    };
    // Let the epoch move first, so that deadline arithmetic starts past zero.
    std::thread::sleep(Duration::from_millis(50));
    let plugin = load(
        &runtime,
        artifacts::FILTER,
        &[("column", "id"), ("op", "is_not_null")],
        limits,
    )
    .unwrap();
    for _ in 0..3 {
        let output = plugin.process(&three_rows()).unwrap();
        assert_eq!(output.batch.num_rows(), 3);
    }
}

#[test]
fn a_plugin_cannot_sleep_past_its_deadline() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        artifacts::HOSTILE_OUTPUTS,
        &[("mode", "sleep")],
        PluginLimits {
            deadline: Duration::from_secs(2),
            ..PluginLimits::default()
        },
    )
    .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(plugin.process(&three_rows()).map(|o| o.batch.num_rows()));
    });
    let outcome = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("a sleeping plugin must not hold its thread past the deadline");
    // No time passes for a plugin (its clock is frozen): the sleep ends at once.
    assert_eq!(outcome.unwrap(), 3);
}

/// Bids with a column no plugin contract version can carry (`note`, of
/// Arrow's null type).
fn bids_with_a_column_that_cannot_cross() -> RecordBatch {
    let prices = [100, 1_000, 12_345, 1, 0, 24_600];
    RecordBatch::try_from_iter(vec![
        (
            "auction",
            Arc::new(Int64Array::from(vec![0, 123, 5, 246, 7, 369])) as ArrayRef,
        ),
        ("bidder", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6]))),
        ("price", Arc::new(Int64Array::from(prices.to_vec()))),
        ("note", Arc::new(arrow_array::NullArray::new(prices.len()))),
        (
            "date_time",
            Arc::new(TimestampMicrosecondArray::from(vec![
                10, 20, 30, 40, 50, 60,
            ])),
        ),
    ])
    .unwrap()
}

#[test]
fn a_plugin_that_reads_no_column_passes_every_one_without_it_crossing() {
    let runtime = runtime();
    let input = bids_with_a_column_that_cannot_cross();
    // A plugin that reads every column cannot be given `note`...
    let error = pass_through(&runtime).process(&input).unwrap_err();
    assert!(
        matches!(&error, RuntimeError::UnsupportedType { column, .. } if column == "note"),
        "{error}"
    );
    // ...and one that reads none hands back every column, `note` included.
    let q0 = load(
        &runtime,
        artifacts::NEXMARK_Q0,
        &[],
        PluginLimits::default(),
    )
    .unwrap();
    assert_eq!(q0.process(&input).unwrap().batch, input);
}

#[test]
fn a_plugin_that_reads_one_column_makes_it_and_names_the_others() {
    let runtime = runtime();
    let input = bids_with_a_column_that_cannot_cross();
    let q1 = load(
        &runtime,
        artifacts::NEXMARK_Q1,
        &[],
        PluginLimits::default(),
    )
    .unwrap();
    let output = q1.process(&input).unwrap().batch;
    let names: Vec<&str> = output
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["auction", "bidder", "price", "date_time"]);
    assert_eq!(
        output.column(2).as_ref(),
        &Int64Array::from(vec![90, 908, 11_209, 0, 0, 22_336]) as &dyn arrow_array::Array
    );
    for (out, of_input) in [(0, 0), (1, 1), (3, 4)] {
        assert_eq!(output.column(out), input.column(of_input));
        assert_eq!(output.schema().field(out), input.schema().field(of_input));
    }
}

#[test]
fn a_plugin_that_selects_rows_gets_them_taken_from_columns_it_never_saw() {
    let runtime = runtime();
    let input = bids_with_a_column_that_cannot_cross();
    let q2 = load(
        &runtime,
        artifacts::NEXMARK_Q2,
        &[],
        PluginLimits::default(),
    )
    .unwrap();
    let output = q2.process(&input).unwrap().batch;
    let expected = RecordBatch::try_from_iter(vec![
        (
            "auction",
            Arc::new(Int64Array::from(vec![0, 123, 246, 369])) as ArrayRef,
        ),
        (
            "price",
            Arc::new(Int64Array::from(vec![100, 1_000, 1, 24_600])),
        ),
    ])
    .unwrap();
    assert_eq!(output, expected);
}

#[test]
fn a_selection_or_column_the_input_does_not_have_is_invalid_output() {
    let runtime = runtime();
    let input = bids_with_a_column_that_cannot_cross()
        .project(&[0, 1, 2, 4])
        .unwrap();
    for (mode, expected) in [
        (
            "selects-past-the-end",
            "rows names row 6 of a batch of 6 rows",
        ),
        (
            "names-a-missing-column",
            "input(`no-such-column`) names no column",
        ),
        (
            "made-of-another-length",
            "the batch of made columns has 7 rows, the output 6",
        ),
    ] {
        let plugin = load(
            &runtime,
            artifacts::HOSTILE_OUTPUTS,
            &[("mode", mode)],
            PluginLimits::default(),
        )
        .unwrap();
        let error = plugin.process(&input).unwrap_err();
        assert!(
            matches!(&error, RuntimeError::InvalidOutput { reason, .. } if reason.contains(expected)),
            "{mode}: {error}"
        );
    }
}
