//! Plugins in every guest language through the `sluice` binary: `plugin
//! new` and `plugin build` give a component a job runs, and the on-disk
//! cache of compiled components serves a restart and a second job.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use sluice_e2e::{read_json_lines, run_job, sluice_binary};
use sluice_plugin_artifacts as artifacts;

fn check(output: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(sluice_binary())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running sluice")
}

/// The repository's directory (for the SDKs the native tests import).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A job of `plugin` with `config` over a JSON-lines file of `rows`.
fn run_on_file(
    dir: &Path,
    plugin: &Path,
    config: &str,
    rows: &str,
    cache: &Path,
) -> Vec<serde_json::Value> {
    std::fs::write(dir.join("in.jsonl"), rows).unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[source]\ntype = \"file\"\npath = \"in.jsonl\"\nformat = \"jsonl\"\n\n[[transform]]\nplugin = {:?}\nconfig = {config}\n\n[sink]\ntype = \"file\"\npath = \"out.jsonl\"\n",
            plugin.display().to_string()
        ),
    )
    .unwrap();
    let _ = std::fs::remove_file(dir.join("out.jsonl"));
    check(run_job(&job, cache), "the job");
    read_json_lines(&dir.join("out.jsonl"))
}

/// `sluice plugin new --lang LANG`, its own test, `sluice plugin build`,
/// then a job with the component: the scaffold upper-cases `name`.
fn scaffold_builds_and_runs(language: &str, native_test: Option<Command>) {
    let dir = tempfile::tempdir().unwrap();
    check(
        sluice(dir.path(), &["plugin", "new", "--lang", language, "shout"]),
        "plugin new",
    );
    let project = dir.path().join("shout");
    assert!(project.join("sluice.toml").exists());
    if let Some(mut test) = native_test {
        let output = test
            .current_dir(&project)
            .output()
            .expect("running the scaffold's test");
        check(output, "the scaffold's own test");
    }
    let built = check(
        sluice(dir.path(), &["plugin", "build", "shout"]),
        "plugin build",
    );
    let wasm = PathBuf::from(built.trim());
    assert_eq!(wasm, Path::new("shout/target/shout.wasm"));
    let rows = run_on_file(
        dir.path(),
        &dir.path().join(&wasm),
        "{ column = \"name\" }",
        "{\"name\":\"ada\",\"n\":1}\n{\"name\":null,\"n\":2}\n{\"name\":\"grace\",\"n\":3}\n",
        &dir.path().join("cache"),
    );
    let names: Vec<_> = rows.iter().map(|r| r["name"].clone()).collect();
    assert_eq!(
        names,
        [
            serde_json::json!("ADA"),
            serde_json::Value::Null,
            serde_json::json!("GRACE")
        ]
    );
}

/// `program args...`, as a scaffold's native test runs.
fn native(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    command
}

#[test]
fn a_new_python_plugin_passes_its_test_builds_and_runs() {
    let mut test = native("python3", &["-m", "unittest", "-v"]);
    test.env("PYTHONPATH", repo().join("guest-sdk/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    scaffold_builds_and_runs("python", Some(test));
}

#[test]
fn a_new_js_plugin_passes_its_test_builds_and_runs() {
    scaffold_builds_and_runs("js", Some(native("node", &["--test"])));
}

/// `go ARGS...` with the Go that `sluice plugin build` uses, offline.
fn go(args: &[&str]) -> Command {
    let mut command = native(
        sluice_plugin_build::toolchains_dir().join("go/bin/go"),
        args,
    );
    command
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod");
    command
}

#[test]
fn a_new_go_plugin_passes_its_test_builds_and_runs() {
    scaffold_builds_and_runs("go", Some(go(&["test", "-v", "."])));
}

#[test]
fn the_go_sdk_passes_vet_and_its_tests() {
    let sdk = repo().join("guest-sdk/go");
    for args in [&["vet", "."][..], &["test", "."]] {
        let output = go(args).current_dir(&sdk).output().expect("running go");
        check(output, &format!("go {}", args.join(" ")));
    }
}

#[test]
fn a_new_c_plugin_passes_its_test_builds_and_runs() {
    // The C scaffold's test runs the plugin in the real host: `sluice` on PATH.
    let bin = sluice_binary().parent().unwrap().to_owned();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut test = native("sh", &["test.sh"]);
    test.env("PATH", path);
    scaffold_builds_and_runs("c", Some(test));
}

#[test]
fn building_a_directory_without_a_project_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let output = sluice(dir.path(), &["plugin", "build", "."]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sluice.toml") && stderr.contains("sluice plugin new"),
        "{stderr}"
    );
    let output = sluice(dir.path(), &["plugin", "new", "--lang", "cobol", "x"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown language `cobol`"), "{stderr}");
}

#[test]
fn a_missing_toolchain_is_reported_with_the_command_that_installs_it() {
    let dir = tempfile::tempdir().unwrap();
    check(
        sluice(dir.path(), &["plugin", "new", "--lang", "python", "p"]),
        "plugin new",
    );
    let output = Command::new(sluice_binary())
        .current_dir(dir.path())
        .args(["plugin", "build", "p"])
        .env("SLUICE_TOOLCHAINS", dir.path().join("no-toolchains"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("componentize-py")
            && stderr.contains("pip install componentize-py==")
            && stderr.contains("scripts/setup"),
        "{stderr}"
    );
}

/// The compiled components in `cache` (not its key), with their times.
fn cache_entries(cache: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut entries: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .map(|path| {
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path, modified)
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn compiled_python_and_js_components_serve_a_restart_and_a_second_job() {
    let rows: String = (0..50)
        .map(|i| format!("{{\"id\":{i},\"email\":\"user{i}@example.com\",\"note\":\"card 4111 1111 1111 1111 #{i}\"}}\n"))
        .collect();
    let config = "{ columns = \"email,note\" }";
    let dir = tempfile::tempdir().unwrap();
    let reference = run_on_file(
        dir.path(),
        Path::new(artifacts::PII_REDACT),
        config,
        &rows,
        &dir.path().join("rust-cache"),
    );
    assert_eq!(reference[3]["email"], "u***@example.com");
    for plugin in [artifacts::PYTHON_PII_REDACT, artifacts::JS_PII_REDACT] {
        let cache = tempfile::tempdir().unwrap();
        let first = run_on_file(dir.path(), Path::new(plugin), config, &rows, cache.path());
        let compiled = cache_entries(cache.path());
        assert_eq!(compiled.len(), 1, "{plugin}: one compiled component");
        // A restart of the host running the same job, then a second job
        // with another configuration: both load the cached artifact.
        let restarted = run_on_file(dir.path(), Path::new(plugin), config, &rows, cache.path());
        let second = run_on_file(
            dir.path(),
            Path::new(plugin),
            "{ columns = \"note\" }",
            &rows,
            cache.path(),
        );
        assert_eq!(
            cache_entries(cache.path()),
            compiled,
            "{plugin}: the cache entry was rewritten"
        );
        assert_eq!(first, reference, "{plugin}");
        assert_eq!(restarted, reference, "{plugin}");
        assert_eq!(second[3]["email"], "user3@example.com");
        assert_eq!(second[3]["note"], "card ****-****-****-1111 #3");
    }
}
