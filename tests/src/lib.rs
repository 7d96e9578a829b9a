//! Helpers for the end-to-end tests: find and run the `sluice` binary,
//! and talk to the test brokers.

pub mod kafka;

use nexmark::EventGenerator;
use nexmark::config::NexmarkConfig;
use nexmark::event::{Bid, Event};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The `sluice` binary cargo built beside this test executable.
pub fn sluice_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = dir.join("sluice");
    assert!(
        binary.exists(),
        "{} not built; run `cargo test --workspace`",
        binary.display()
    );
    binary
}

/// A local TCP port no one listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .expect("the bound address")
        .port()
}

/// Run `sluice run JOB` with a private compile cache.
pub fn run_job(job: &Path, cache: &Path) -> Output {
    Command::new(sluice_binary())
        .arg("run")
        .arg(job)
        .arg("--cache-dir")
        .arg(cache)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running sluice")
}

/// Start `sluice run JOB` with a private compile cache and leave it
/// running (a job without `available_now`); its stderr is piped, for the
/// test to read after killing it.
pub fn spawn_job(job: &Path, cache: &Path) -> Child {
    Command::new(sluice_binary())
        .arg("run")
        .arg(job)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting sluice")
}

/// Send SIGTERM to `child`, as an operator stopping it would.
pub fn terminate(child: &Child) {
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
}

/// Wait up to `limit` for `child` to exit.
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The JSON objects of a JSON-lines file.
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// What an `[aggregate]` job wrote: its results and its late side output.
#[derive(Debug)]
pub struct AggregateRun {
    /// Rows of the main sink.
    pub results: Vec<serde_json::Value>,
    /// Rows of the `late` output.
    pub late: Vec<serde_json::Value>,
}

/// Run a job of `source` (its `[source]` and `[trigger]` sections, with
/// paths relative to `dir`) through an `[aggregate]` of `plugin` with the
/// settings `aggregate`, into JSON-lines files; panics if the job fails.
pub fn run_aggregate_job(dir: &Path, source: &str, plugin: &str, aggregate: &str) -> AggregateRun {
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            "{source}\n[aggregate]\nplugin = {plugin:?}\n{aggregate}\n\n[sink]\ntype = \"file\"\npath = \"out.jsonl\"\n\n[outputs.late]\ntype = \"file\"\npath = \"late.jsonl\"\n"
        ),
    )
    .expect("writing the job file");
    let output = run_job(&job, &dir.join("cache"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    AggregateRun {
        results: read_json_lines(&dir.join("out.jsonl")),
        late: read_json_lines(&dir.join("late.jsonl")),
    }
}

/// A zone-less millisecond timestamp as the JSON sink writes it:
/// `YYYY-MM-DDTHH:MM:SS`, then `.mmm` unless the milliseconds are 0.
pub fn iso_millis(ms: i64) -> String {
    let ms = u64::try_from(ms).expect("a time after 1970");
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let seconds = ms_of_day / 1000;
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if ms % 1000 != 0 {
        text.push_str(&format!(".{:03}", ms % 1000));
    }
    text
}

/// Compare output rows with expected rows, naming the first that differs.
pub fn assert_rows_equal(got: &[serde_json::Value], want: &[serde_json::Value]) {
    for (i, (got, want)) in got.iter().zip(want).enumerate() {
        assert_eq!(got, want, "row {i} differs");
    }
    assert_eq!(got.len(), want.len(), "row counts differ");
}

/// The bids among the first `events` events the Nexmark generator makes
/// with `config`: what the `nexmark` source emits with `table = "bid"`.
pub fn nexmark_bids(config: NexmarkConfig, events: usize) -> Vec<Bid> {
    EventGenerator::new(config)
        .take(events)
        .filter_map(|event| match event {
            Event::Bid(bid) => Some(bid),
            _ => None,
        })
        .collect()
}
