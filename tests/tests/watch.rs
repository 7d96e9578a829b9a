//! `sluice run --watch`: a transform's plugin file replaced while the job
//! runs is swapped in at a batch boundary, with no row lost or repeated;
//! a file that is not a component is refused and a version that fails its
//! first batch is rolled back, the job going on with the version it runs.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_e2e::{read_json_lines, sluice_binary, terminate, wait_for_exit};
use sluice_plugin_artifacts as artifacts;

/// An endless job of generated e-mail addresses through the plugin in
/// `plugin.wasm`, to a file, with `CHECKPOINT` after it. The plugins the
/// tests put there all get its config: `pii-redact` masks every utf8
/// column (and ignores the key), `enrich` adds each address's
/// `email_domain`, and `filter` fails every batch (it wants a `column`
/// and an `op`).
const JOB: &str = r#"[job]
name = "watch-e2e"

[source]
type = "datagen"
rows_per_second = 400
columns = [
    { name = "id", generator = "sequence" },
    { name = "email", generator = "email" },
]

[trigger]
max_rows = 40

[[transform]]
plugin = "plugin.wasm"
config = { email_column = "email" }

[sink]
type = "file"
path = "out.jsonl"
"#;

/// Frequent checkpoints, for the job to go back to when a version fails.
const CHECKPOINT: &str = r#"
[checkpoint]
location = "checkpoints"
interval = "200ms"
restart_backoff = "50ms"
"#;

/// How long the job has for each step (a debug build, a busy machine).
const PATIENCE: Duration = Duration::from_secs(120);

/// Which plugin wrote an output row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WrittenBy {
    /// `pii-redact`: the address masked, no domain column.
    PiiRedact,
    /// `enrich`: the address as generated, with its domain.
    Enrich,
}

/// Which plugin wrote `row`; panics on a row neither could have.
fn written_by(row: &Value) -> WrittenBy {
    let email = row["email"].as_str().expect("an email column");
    match row.get("email_domain") {
        None if email.contains("***@") => WrittenBy::PiiRedact,
        Some(domain) if !email.contains("***") => {
            let want = email.rsplit_once('@').expect("an address").1;
            assert_eq!(domain.as_str(), Some(want.to_lowercase().as_str()), "{row}");
            WrittenBy::Enrich
        }
        _ => panic!("a row neither plugin writes: {row}"),
    }
}

/// Put `component` in place of `plugin` in one step, as a build or an
/// editor does: written beside it, then renamed over it.
fn replace(plugin: &Path, component: &str) {
    let temporary = plugin.with_extension("wasm.partial");
    std::fs::copy(component, &temporary).unwrap();
    std::fs::rename(&temporary, plugin).unwrap();
}

/// A `sluice run` process, killed if the test ends while it runs (on a
/// failed assertion).
struct RunningJob {
    /// The process.
    process: Child,
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        // Nothing to do if it has exited.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Wait until `done` holds of the job's output rows, or fail with `what`
/// and the job's log.
fn wait_for_rows(
    job: &mut RunningJob,
    dir: &Path,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_until(job, dir, what, || {
        let rows = output_rows(dir);
        done(&rows).then_some(rows)
    })
}

/// Wait until `check` gives something, or fail with `what` and the log
/// if the job ends first or [`PATIENCE`] runs out.
fn wait_until<T>(job: &mut RunningJob, dir: &Path, what: &str, check: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check() {
            return found;
        }
        if let Some(status) = job.process.try_wait().unwrap() {
            panic!("the job ended ({status}) before {what}:\n{}", log(dir));
        }
        assert!(
            Instant::now() < deadline,
            "no {what} after {PATIENCE:?}:\n{}",
            log(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rows the job has written so far, but for a last one partly
/// written.
fn output_rows(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("out.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// What the job has logged so far.
fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sluice.log")).unwrap_or_default()
}

/// Wait until the job has logged a line holding each of `parts`, or fail
/// with `what` and the log.
fn wait_for_log(job: &mut RunningJob, dir: &Path, what: &str, parts: &[&str]) {
    wait_until(job, dir, what, || {
        log(dir)
            .lines()
            .any(|line| parts.iter().all(|part| line.contains(part)))
            .then_some(())
    });
}

/// Start `sluice run --watch` on `job` (the job file's text) in `dir`,
/// with `component` as its `plugin.wasm`, logging to `sluice.log`.
fn start_watching(dir: &Path, job: &str, component: &str) -> RunningJob {
    std::fs::copy(component, dir.join("plugin.wasm")).unwrap();
    std::fs::write(dir.join("job.toml"), job).unwrap();
    let process = Command::new(sluice_binary())
        .arg("run")
        .arg(dir.join("job.toml"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--watch")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("sluice.log")).unwrap())
        .spawn()
        .expect("starting sluice");
    RunningJob { process }
}

/// Stop `job` as an operator would; fail unless it exits 0.
fn stop(mut job: RunningJob, dir: &Path) {
    terminate(&job.process);
    let status = wait_for_exit(&mut job.process, PATIENCE).expect("the job to stop");
    assert!(status.success(), "{status}:\n{}", log(dir));
}

/// Whether `rows` hold at least `count` written by `plugin`.
fn has_rows_by(rows: &[Value], plugin: WrittenBy, count: usize) -> bool {
    rows.iter().filter(|row| written_by(row) == plugin).count() >= count
}

#[test]
fn a_replaced_plugin_file_is_swapped_in_and_a_broken_one_is_refused() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    let plugin = dir.join("plugin.wasm");
    let mut job = start_watching(dir, JOB, artifacts::PII_REDACT);
    wait_for_rows(&mut job, dir, "rows from the first plugin", |rows| {
        rows.len() >= 80
    });

    std::fs::write(&plugin, b"not a Wasm component").unwrap();
    wait_for_log(
        &mut job,
        dir,
        "warning about the broken file",
        &["WARN sluice::watch", "not a valid Wasm component"],
    );
    let before = output_rows(dir).len();
    wait_for_rows(&mut job, dir, "rows after the broken file", |rows| {
        rows.len() >= before + 80
    });

    replace(&plugin, artifacts::ENRICH);
    wait_for_rows(&mut job, dir, "rows from the replacement", |rows| {
        has_rows_by(rows, WrittenBy::Enrich, 80)
    });
    stop(job, dir);

    let rows = read_json_lines(&dir.join("out.jsonl"));
    let ids: Vec<i64> = rows.iter().map(|row| row["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        (0..rows.len() as i64).collect::<Vec<_>>(),
        "every row once, in order"
    );
    let writers: Vec<WrittenBy> = rows.iter().map(written_by).collect();
    let switch = writers
        .iter()
        .position(|writer| *writer == WrittenBy::Enrich)
        .expect("rows from the replacement");
    assert!(
        switch >= before + 80,
        "the first plugin wrote every row until the replacement"
    );
    assert!(
        writers[switch..].iter().all(|w| *w == WrittenBy::Enrich),
        "one switch to the replacement: {writers:?}"
    );
    let log = log(dir);
    assert_eq!(
        log.matches("reloaded the plugin file").count(),
        1,
        "one reload:\n{log}"
    );
}

#[test]
fn a_reloaded_version_that_fails_its_first_batch_is_rolled_back_and_the_job_goes_on() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    let plugin = dir.join("plugin.wasm");
    let job_file = format!("{JOB}{CHECKPOINT}");
    let mut job = start_watching(dir, &job_file, artifacts::PII_REDACT);
    wait_for_rows(&mut job, dir, "rows from the first plugin", |rows| {
        rows.len() >= 80
    });

    replace(&plugin, artifacts::FILTER);
    wait_for_log(
        &mut job,
        dir,
        "warning about the failing version",
        &["WARN sluice::watch", "failed its first batch"],
    );
    // Back on the first version, the job takes the next one.
    replace(&plugin, artifacts::ENRICH);
    wait_for_rows(&mut job, dir, "rows from the replacement", |rows| {
        has_rows_by(rows, WrittenBy::Enrich, 80)
    });
    stop(job, dir);

    // Which rows were written, once each, is the first test's concern;
    // this one's is the watcher's after a rollback.
    let log = log(dir);
    assert_eq!(
        log.matches("reloaded the plugin file").count(),
        2,
        "the failing version and the replacement were swapped in:\n{log}"
    );
    assert!(
        log.contains("restarts=1"),
        "one restart, from the checkpoint before the failing version:\n{log}"
    );
}
