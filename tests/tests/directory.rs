//! The directory source and the Parquet sink through the `sluice` binary:
//! files added while the job runs are read once each, in order, and a
//! restart from the checkpoint (after SIGTERM, or SIGKILL half-way through
//! a file) reads no file twice and skips none. Parquet files, written here
//! with the parquet crate, are read with the schema of the oldest, and
//! `available_now` reads what is there and ends. The Parquet sink's part
//! files, read back with the parquet crate, hold each row once after the
//! job is killed twice.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_e2e::{read_json_lines, run_job, sluice_binary, terminate, wait_for_exit};

/// Rows of each small file.
const ROWS: i64 = 7;

/// An hour ago plus `index` seconds: the files' modification times rise
/// with their index, whenever they are written.
fn modified(index: i64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(3600) + Duration::from_secs(index as u64)
}

/// Write file `index` of `rows` rows (ids `index * 1_000_000 + row`) into
/// `dir` as a writer should: under a temporary name, then renamed.
fn add_jsonl(dir: &Path, index: i64, rows: i64) -> Vec<i64> {
    let ids: Vec<i64> = (0..rows).map(|row| index * 1_000_000 + row).collect();
    let text: String = ids
        .iter()
        .map(|id| format!("{{\"id\":{id},\"file\":\"f{index:03}\"}}\n"))
        .collect();
    let temporary = dir.join(format!("f{index:03}.jsonl.tmp"));
    std::fs::write(&temporary, text).unwrap();
    File::options()
        .write(true)
        .open(&temporary)
        .unwrap()
        .set_modified(modified(index))
        .unwrap();
    std::fs::rename(&temporary, dir.join(format!("f{index:03}.jsonl"))).unwrap();
    ids
}

/// The ids in a JSON-lines output, complete lines only (the sink may be
/// appending).
fn output_ids(path: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    complete
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            row["id"].as_i64().expect("an id")
        })
        .collect()
}

/// Start `sluice run JOB`, logging to `DIR/run-RUN.log`.
fn spawn(job: &Path, dir: &Path, run: usize) -> Child {
    let log = File::create(dir.join(format!("run-{run}.log"))).unwrap();
    Command::new(sluice_binary())
        .arg("run")
        .arg(job)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting sluice")
}

fn logs(dir: &Path) -> String {
    (0..5)
        .filter_map(|run| std::fs::read_to_string(dir.join(format!("run-{run}.log"))).ok())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Wait until run `run` says it is running (its signal handlers are in).
fn wait_until_running(dir: &Path, run: usize) {
    let log = dir.join(format!("run-{run}.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).is_ok_and(|text| text.contains("running")) {
        assert!(
            Instant::now() < deadline,
            "run {run} did not start\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until the output holds `count` rows.
fn wait_for_rows(dir: &Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while output_ids(&dir.join("out.jsonl")).len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} rows after 5 minutes\n{}",
            output_ids(&dir.join("out.jsonl")).len(),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(child: &mut Child, dir: &Path) {
    terminate(child);
    let status = wait_for_exit(child, Duration::from_secs(60)).expect("sluice stops on SIGTERM");
    assert!(status.success(), "{status}\n{}", logs(dir));
}

/// The source positions of the newest committed checkpoint under
/// `checkpoints`, as (file, partition, offset).
fn newest_positions(checkpoints: &Path) -> Option<Vec<(String, i64, i64)>> {
    let mut epochs: Vec<PathBuf> = std::fs::read_dir(checkpoints)
        .ok()?
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("MANIFEST").exists())
        .collect();
    epochs.sort();
    let manifest = std::fs::read(epochs.last()?.join("MANIFEST")).ok()?;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).ok()?;
    Some(
        manifest["metadata"]["positions"]
            .as_array()?
            .iter()
            .map(|p| {
                (
                    p["topic"].as_str().unwrap().to_owned(),
                    p["partition"].as_i64().unwrap(),
                    p["offset"].as_i64().unwrap(),
                )
            })
            .collect(),
    )
}

/// Rows of `file` handed out at the newest checkpoint, if it was half read.
fn rows_read_of(checkpoints: &Path, file: &str) -> Option<i64> {
    newest_positions(checkpoints)?
        .into_iter()
        .find(|(topic, partition, _)| topic == file && *partition == 2)
        .map(|(_, _, offset)| offset)
}

#[test]
fn files_added_while_the_job_runs_are_read_once_each_in_order_and_a_restart_reads_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let input = dir.join("in");
    std::fs::create_dir(&input).unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        r#"[source]
type = "directory"
path = "in"
format = "jsonl"
schema = [{ name = "id", type = "int64" }, { name = "file", type = "utf8" }]
poll_interval = "20ms"

[trigger]
max_rows = 4
max_interval = "20ms"

[sink]
type = "file"
path = "out.jsonl"

[checkpoint]
location = "checkpoints"
interval = "50ms"
"#,
    )
    .unwrap();
    let mut expected = Vec::new();

    // Files there before the job starts, then files added one at a time
    // while it runs: each is read as it arrives.
    for index in 0..3 {
        expected.extend(add_jsonl(&input, index, ROWS));
    }
    let mut child = spawn(&job, dir, 0);
    wait_for_rows(dir, expected.len());
    for index in 3..6 {
        expected.extend(add_jsonl(&input, index, ROWS));
        wait_for_rows(dir, expected.len());
        assert_eq!(
            output_ids(&dir.join("out.jsonl")),
            expected,
            "after file {index}"
        );
    }
    stop(&mut child, dir);

    // Files added while it is stopped are read after the restart, and the
    // files read before are not read again.
    for index in 6..8 {
        expected.extend(add_jsonl(&input, index, ROWS));
    }
    let mut child = spawn(&job, dir, 1);
    wait_for_rows(dir, expected.len());
    assert_eq!(output_ids(&dir.join("out.jsonl")), expected);

    // A large file, killed half-way through: the checkpoint holds the
    // row it had reached, and the restart goes on from there.
    expected.extend(add_jsonl(&input, 8, 50_000));
    let checkpoints = dir.join("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(300);
    while rows_read_of(&checkpoints, "f008.jsonl").is_none_or(|rows| rows < 1000) {
        assert!(
            Instant::now() < deadline,
            "no checkpoint inside f008\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at = rows_read_of(&checkpoints, "f008.jsonl")
        .expect("the newest checkpoint is inside f008.jsonl");
    assert!(at < 50_000, "the kill came after f008 was read");
    let mut child = spawn(&job, dir, 2);
    wait_for_rows(dir, expected.len());
    expected.extend(add_jsonl(&input, 9, ROWS));
    wait_for_rows(dir, expected.len());
    stop(&mut child, dir);
    let got = output_ids(&dir.join("out.jsonl"));
    assert_eq!(got.len(), expected.len(), "rows read twice or skipped");
    assert!(
        got == expected,
        "the output is not the files' rows in order"
    );
}

/// Write `ids` as a Parquet file `name` whose `id` column is `id_type`
/// (Int64 or Utf8), modified at `modified(index)`.
fn add_parquet(dir: &Path, name: &str, index: i64, ids: &[i64], id_type: DataType) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", id_type.clone(), false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let id: Arc<dyn arrow::array::Array> = match id_type {
        DataType::Int64 => Arc::new(Int64Array::from(ids.to_vec())),
        _ => Arc::new(StringArray::from_iter_values(
            ids.iter().map(i64::to_string),
        )),
    };
    let names = StringArray::from_iter_values(ids.iter().map(|id| format!("n{id}")));
    let batch = RecordBatch::try_new(schema.clone(), vec![id, Arc::new(names)]).unwrap();
    let path = dir.join(name);
    let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified(index))
        .unwrap();
}

#[test]
fn parquet_files_are_read_with_the_oldest_files_schema_and_available_now_ends() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let input = dir.join("in");
    std::fs::create_dir(&input).unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        r#"[source]
type = "directory"
path = "in"
format = "parquet"
max_files_per_trigger = 1

[trigger]
max_rows = 3
available_now = true

[sink]
type = "file"
path = "out.jsonl"

[checkpoint]
location = "checkpoints"
interval = "10ms"
"#,
    )
    .unwrap();
    add_parquet(&input, "b.parquet", 2, &[3, 4, 5, 6], DataType::Int64);
    add_parquet(&input, "a.parquet", 1, &[1, 2], DataType::Int64);
    let output = run_job(&job, &dir.join("cache"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output_ids(&dir.join("out.jsonl")), [1, 2, 3, 4, 5, 6]);
    let first = &read_json_lines(&dir.join("out.jsonl"))[0];
    assert_eq!(first, &serde_json::json!({ "id": 1, "name": "n1" }));

    // The next run reads only the file added since.
    add_parquet(&input, "c.parquet", 3, &[7], DataType::Int64);
    let output = run_job(&job, &dir.join("cache"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output_ids(&dir.join("out.jsonl")), [1, 2, 3, 4, 5, 6, 7]);

    // A file whose columns do not fit stops the job, and says which.
    add_parquet(&input, "d.parquet", 4, &[8], DataType::Utf8);
    let output = run_job(&job, &dir.join("cache"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("d.parquet") && stderr.contains("column `id` is Utf8"),
        "{stderr}"
    );
    assert_eq!(output_ids(&dir.join("out.jsonl")), [1, 2, 3, 4, 5, 6, 7]);
}

/// The ids in the Parquet part files of `dir`, read with the parquet
/// crate, in the files' order (epoch, then number); hidden and `_` files
/// are not output.
fn parquet_ids(dir: &Path) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with(['.', '_']))
        .collect();
    names.sort();
    let mut ids = Vec::new();
    for name in names {
        let file = File::open(dir.join(&name)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap_or_else(|e| panic!("{name} is not a whole Parquet file: {e}"))
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let column = batch.column_by_name("id").unwrap();
            ids.extend(column.as_primitive::<Int64Type>().values().iter().copied());
        }
    }
    ids
}

#[test]
fn a_parquet_sink_behind_a_killed_job_holds_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let input = dir.join("in");
    std::fs::create_dir(&input).unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        r#"[source]
type = "directory"
path = "in"
format = "jsonl"
schema = [{ name = "id", type = "int64" }, { name = "file", type = "utf8" }]
poll_interval = "20ms"

[trigger]
max_rows = 4
max_interval = "20ms"

[sink]
type = "parquet"
path = "out"

[checkpoint]
location = "checkpoints"
interval = "50ms"
"#,
    )
    .unwrap();
    let mut expected = Vec::new();
    for index in 0..3 {
        expected.extend(add_jsonl(&input, index, 20_000 / (index + 1)));
    }
    let out = dir.join("out");
    let deadline = Instant::now() + Duration::from_secs(300);
    for run in 0..2 {
        // Killed once some epochs are out, and again after a restart.
        let mut child = spawn(&job, dir, run);
        // The job may have finished the input while the output was read.
        let wanted = (parquet_ids(&out).len() + 1000).min(expected.len());
        while parquet_ids(&out).len() < wanted {
            assert!(
                Instant::now() < deadline,
                "{} of {wanted} rows in run {run}\n{}",
                parquet_ids(&out).len(),
                logs(dir)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut child = spawn(&job, dir, 2);
    while parquet_ids(&out).len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} rows\n{}",
            parquet_ids(&out).len(),
            expected.len(),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The rows may all be out before this run started: SIGTERM only once
    // it handles the signal.
    wait_until_running(dir, 2);
    stop(&mut child, dir);
    let got = parquet_ids(&out);
    assert_eq!(got.len(), expected.len(), "rows written twice or lost");
    assert!(
        got == expected,
        "the part files do not hold the rows in order"
    );
}
