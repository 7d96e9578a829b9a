//! `sluice run` end to end: datagen or file → Wasm plugins → sinks.

use std::path::Path;

use sluice_e2e::{read_json_lines, run_job};
use sluice_plugin_artifacts as artifacts;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const DATAGEN: &str = r#"
[source]
type = "datagen"
rows_per_second = 1000000
rows = 5000
seed = 3
columns = [
  { name = "id", generator = "sequence" },
  { name = "email", generator = "email" },
  { name = "amount", generator = "int", min = 0, max = 1000 },
]

[trigger]
max_rows = 700
"#;

#[test]
fn datagen_through_redact_to_file_keeps_every_row_and_masks_every_email() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "{DATAGEN}\n[[transform]]\nplugin = {:?}\nconfig = {{ columns = \"email\" }}\n\n[sink]\ntype = \"file\"\npath = \"out.jsonl\"\n",
            artifacts::PII_REDACT
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = read_json_lines(&dir.path().join("out.jsonl"));
    assert_eq!(rows.len(), 5000);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], i as i64, "rows out of order");
        let email = row["email"].as_str().unwrap();
        let (local, domain) = email.split_once('@').unwrap();
        assert!(
            local.ends_with("***") && local.len() == 4 && domain.contains('.'),
            "{email}"
        );
    }
}

#[test]
fn routing_plugin_splits_rows_between_two_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "{DATAGEN}\n[[transform]]\nplugin = {:?}\nconfig = {{ column = \"amount\", threshold = 500, above = \"large\", below = \"small\" }}\n\n[sink]\ntype = \"file\"\npath = \"main.jsonl\"\n\n[outputs.large]\ntype = \"file\"\npath = \"large.jsonl\"\n\n[outputs.small]\ntype = \"file\"\npath = \"small.jsonl\"\n",
            artifacts::ROUTE_SPLIT
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(output.status.success(), "{}", stderr(&output));
    let large = read_json_lines(&dir.path().join("large.jsonl"));
    let small = read_json_lines(&dir.path().join("small.jsonl"));
    assert!(read_json_lines(&dir.path().join("main.jsonl")).is_empty());
    assert_eq!(large.len() + small.len(), 5000);
    assert!(large.iter().all(|r| r["amount"].as_i64().unwrap() >= 500));
    assert!(small.iter().all(|r| r["amount"].as_i64().unwrap() < 500));
    assert!(!large.is_empty() && !small.is_empty());
}

#[test]
fn routing_to_an_undefined_output_stops_the_job_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "{DATAGEN}\n[[transform]]\nplugin = {:?}\nconfig = {{ column = \"amount\", threshold = 500 }}\n\n[sink]\ntype = \"console\"\n",
            artifacts::ROUTE_SPLIT
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("output `above`, which the job does not define"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn file_source_through_filter_and_enrich() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "in.jsonl",
        concat!(
            "{\"user\":\"a@x.org\",\"ts\":\"2026-11-21T13:05:00Z\",\"n\":5}\n",
            "{\"user\":\"b@y.org\",\"ts\":\"2026-11-23T00:30:00Z\",\"n\":50}\n",
            "{\"user\":\"c@z.org\",\"ts\":\"2026-11-23T10:00:00Z\",\"n\":500}\n",
        ),
    );
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            r#"
[source]
type = "file"
path = "in.jsonl"
format = "jsonl"
schema = [
  {{ name = "user", type = "utf8" }},
  {{ name = "ts", type = "timestamp_ms" }},
  {{ name = "n", type = "int64" }},
]

[[transform]]
plugin = {:?}
config = {{ column = "n", op = "ge", value = "50" }}

[[transform]]
plugin = {:?}
config = {{ email_column = "user", timestamp_column = "ts" }}

[sink]
type = "file"
path = "out.jsonl"
"#,
            artifacts::FILTER,
            artifacts::ENRICH
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = read_json_lines(&dir.path().join("out.jsonl"));
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["email_domain"].as_str().unwrap().to_owned(),
                r["hour_of_day"].as_i64().unwrap(),
                r["is_weekend"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![("y.org".into(), 0, false), ("z.org".into(), 10, false)]
    );
}

#[test]
fn malformed_job_file_names_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!("{DATAGEN}\n[sink]\ntype = \"console\"\nnum_rowz = 3\n"),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("num_rowz") && message.contains("line 16"),
        "{message}"
    );
}

#[test]
fn missing_wasm_names_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "{DATAGEN}\n[[transform]]\nplugin = \"nope.wasm\"\n\n[sink]\ntype = \"console\"\n"
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("line 17")
            && message.contains("transform[0].plugin")
            && message.contains("nope.wasm"),
        "{message}"
    );
}

#[test]
fn invalid_wasm_is_rejected_with_the_plugin_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "broken.wasm", "this is not a component");
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "{DATAGEN}\n[[transform]]\nname = \"broken\"\nplugin = \"broken.wasm\"\n\n[sink]\ntype = \"console\"\n"
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("`transform[0].plugin` (job file line 18): plugin `broken`")
            && message.contains("not a valid Wasm component"),
        "{message}"
    );
}

#[test]
fn runaway_plugin_stops_the_job_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!(
            "{DATAGEN}\n[[transform]]\nname = \"spinner\"\nplugin = {:?}\ndeadline = \"300ms\"\n\n[sink]\ntype = \"console\"\n",
            artifacts::SPIN_FOREVER
        ),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("plugin `spinner` exceeded its deadline of 300 ms"),
        "{message}"
    );
}

/// A file sink that cannot write a batch to the end (here a file-size
/// limit, as a full disk would) fails the job and leaves the file ending
/// in a whole line: the batch's partial write is cut off.
#[test]
fn a_file_sink_that_runs_out_of_space_leaves_no_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!("{DATAGEN}\n[sink]\ntype = \"file\"\npath = \"out.jsonl\"\n"),
    );
    // bash's `ulimit -f` counts KiB; with SIGXFSZ ignored, a write past
    // the limit fails with EFBIG instead of killing the process.
    let output = std::process::Command::new("bash")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 100; exec \"$0\" run \"$1\" --cache-dir \"$2\"",
        ])
        .arg(sluice_e2e::sluice_binary())
        .arg(&job)
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("out.jsonl"), "{}", stderr(&output));
    let written = std::fs::read(dir.path().join("out.jsonl")).unwrap();
    assert!(written.len() > 50_000, "{} bytes", written.len());
    assert_eq!(written.last(), Some(&b'\n'), "the file ends in half a line");
    let rows = read_json_lines(&dir.path().join("out.jsonl"));
    let ids: Vec<i64> = rows.iter().map(|row| row["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (0..ids.len() as i64).collect::<Vec<_>>());
}

/// A file sink may write to a path that is not a regular file: it is
/// flushed, but there is nothing to fsync (`/dev/null` refuses it).
#[test]
fn a_file_sink_can_write_to_dev_null() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        &format!("{DATAGEN}\n[sink]\ntype = \"file\"\npath = \"/dev/null\"\n"),
    );
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn sigterm_finishes_the_batch_in_flight_flushes_the_sinks_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.toml",
        r#"
[source]
type = "datagen"
rows_per_second = 2000
columns = [{ name = "id", generator = "sequence" }]

[trigger]
max_rows = 200
max_interval = "200ms"

[sink]
type = "file"
path = "out.jsonl"
"#,
    );
    let out = dir.path().join("out.jsonl");
    let mut child = sluice_e2e::spawn_job(&job, &dir.path().join("cache"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while read_json_lines(&out).len() < 400 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    sluice_e2e::terminate(&child);
    // One batch interval, plus the time to notice and flush.
    let status = sluice_e2e::wait_for_exit(&mut child, std::time::Duration::from_secs(5));
    let Some(status) = status else {
        child.kill().unwrap();
        panic!("the job did not stop within 5 s of SIGTERM");
    };
    assert_eq!(status.code(), Some(0), "{status}");
    let ids: Vec<i64> = read_json_lines(&out)
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect();
    assert!(ids.len() >= 400);
    assert!(
        ids.iter().copied().eq(0..ids.len() as i64),
        "rows lost or repeated before the stop: {} rows, last {:?}",
        ids.len(),
        ids.last()
    );
}
