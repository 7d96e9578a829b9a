//! `sluice run`'s progress: a live bar when stderr is a terminal, the
//! plain log when it is not or with `--quiet`. The terminal is a pseudo
//! terminal from util-linux's `script`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use sluice_e2e::sluice_binary;

/// A bounded job: 3,000 generated rows in six batches, to a file.
const JOB: &str = r#"[job]
name = "progress-e2e"

[source]
type = "datagen"
rows_per_second = 3000
rows = 3000
columns = [{ name = "id", generator = "sequence" }]

[trigger]
max_rows = 500

[sink]
type = "file"
path = "out.jsonl"
"#;

/// The job written in `dir`, and the arguments of `sluice run` on it.
fn run_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let job = dir.join("job.toml");
    std::fs::write(&job, JOB).unwrap();
    let mut args = vec![
        "run".to_owned(),
        job.display().to_string(),
        "--cache-dir".to_owned(),
        dir.join("cache").display().to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

/// `sluice run` with stderr on a 200-column pseudo terminal: what the
/// terminal was sent.
fn on_a_terminal(dir: &Path, extra: &[&str]) -> String {
    let quote = |arg: &str| format!("'{}'", arg.replace('\'', r"'\''"));
    let command = std::iter::once(sluice_binary().display().to_string())
        .chain(run_args(dir, extra))
        .map(|arg| quote(&arg))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("stty cols 200 rows 50; exec {command}"))
        .arg("/dev/null")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("running `script` (util-linux)");
    assert_success(&output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `text` without its ANSI escape sequences (colours, cursor moves).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then a final letter.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Fail with what `sluice` printed unless it exited 0.
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "sluice failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_terminal_gets_a_live_bar_that_ends_full() {
    let dir = tempfile::tempdir().unwrap();
    let shown = on_a_terminal(dir.path(), &[]);
    // Redrawn in place: the line is cleared each time.
    assert!(shown.contains("\x1b[2K"), "no line redrawn in:\n{shown:?}");
    let text = plain(&shown);
    let last = text
        .split(['\r', '\n'])
        .rfind(|line| line.contains("progress-e2e finished"))
        .unwrap_or_else(|| panic!("no final line in:\n{shown:?}"));
    assert!(
        last.contains("[==============================] 100%")
            && last.contains("in 3,000 out 3,000"),
        "final line: {last:?}"
    );
    // The log goes on after it, whole.
    assert!(
        text.contains("INFO sluice: finished job=progress-e2e") && text.contains("rows_in=3000"),
        "{text:?}"
    );
}

#[test]
fn quiet_on_a_terminal_prints_the_plain_log() {
    let dir = tempfile::tempdir().unwrap();
    let shown = on_a_terminal(dir.path(), &["--quiet"]);
    assert!(!shown.contains("\x1b[2K"), "a redrawn line in:\n{shown:?}");
    let lines: Vec<String> = plain(&shown).lines().map(str::to_owned).collect();
    assert!(
        lines.len() == 2
            && lines[0].ends_with("INFO sluice: running job=progress-e2e")
            && lines[1].contains("INFO sluice: finished job=progress-e2e")
            && lines[1].contains("rows_in=3000"),
        "{lines:?}"
    );
}

#[test]
fn a_pipe_gets_the_plain_log() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(sluice_binary())
        .args(run_args(dir.path(), &[]))
        .env("RUST_LOG", "info")
        .output()
        .expect("running sluice");
    assert_success(&output);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!log.contains('\r') && !log.contains('\x1b'), "{log:?}");
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].ends_with("INFO sluice: running job=progress-e2e")
            && lines[1].contains("INFO sluice: finished job=progress-e2e")
            && lines[1].contains("rows_in=3000"),
        "{log}"
    );
}
