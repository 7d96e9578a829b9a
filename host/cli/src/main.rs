//! `sluice`: run stream-processing jobs whose logic is Wasm plugins.

mod client;
mod progress;
mod telemetry;
mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use client::Connection;
use sluice_config::Job;
use sluice_job::{JobError, JobHandle, JobRunner, Plan, RunOptions};
use sluice_kafka::KafkaError;
use sluice_metrics::Metrics;
use sluice_plugin_build::Language;
use sluice_runtime::{Runtime, RuntimeConfig, WASMTIME_VERSION, WIT_VERSION};
use sluice_server::{HostConfig, MetricsEndpoint, Server, new_token};

/// `sluice --version`: the release, the plugin contract it speaks and the
/// wasmtime that runs plugins.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (plugin contract sluice:plugin@{WIT_VERSION}, wasmtime {WASMTIME_VERSION})",
        env!("CARGO_PKG_VERSION")
    )
});

#[derive(Parser)]
#[command(
    name = "sluice",
    version = VERSION.as_str(),
    about = "A stream processor whose transformations are Wasm plugins"
)]
struct Cli {
    /// Send the jobs' trace spans (one per batch, one per operator or
    /// plugin call inside it) to this OpenTelemetry collector over
    /// OTLP/HTTP, e.g. http://localhost:4318 (its /v1/traces).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the job a TOML job file describes.
    Run {
        /// The job file.
        job: PathBuf,
        /// Private directory of compiled plugins, so a restart does not
        /// recompile [default: the user's cache directory, e.g.
        /// ~/.cache/sluice/plugins].
        #[arg(long, env = "SLUICE_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Start over from the source's starting offsets instead of the
        /// job's last checkpoint (which is kept; new epochs follow it).
        #[arg(long)]
        from_scratch: bool,
        /// Serve the job's metrics for Prometheus at
        /// `http://ADDRESS/metrics`, e.g. 127.0.0.1:9464.
        #[arg(long, value_name = "ADDRESS")]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Print the plain log only, with no live progress line (there is
        /// none either when stderr is not a terminal).
        #[arg(long, short)]
        quiet: bool,
        /// Reload a transform's plugin when its `.wasm` file changes (is
        /// written, or replaced by a build or an editor), for development:
        /// the job switches at a batch boundary, keeping the plugin's
        /// state. A file that is not a component the job can take is
        /// reported, and the job goes on with the version it runs.
        #[arg(long)]
        watch: bool,
    },
    /// Validate a job file, load its plugins and print its plan, without
    /// connecting to any broker or registry.
    Check {
        /// The job file.
        job: PathBuf,
        /// Private directory of compiled plugins, so a restart does not
        /// recompile [default: the user's cache directory, e.g.
        /// ~/.cache/sluice/plugins].
        #[arg(long, env = "SLUICE_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Make and build plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run many tenants' jobs in one process, behind an admin HTTP API.
    Serve {
        /// The host file: where the API listens, the host's state
        /// directory, and the tenants.
        #[arg(long)]
        config: PathBuf,
        /// Private directory of compiled plugins, so a restart does not
        /// recompile [default: the user's cache directory, e.g.
        /// ~/.cache/sluice/plugins].
        #[arg(long, env = "SLUICE_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Print a new API token for a tenant, and the SHA-256 that the host
    /// file lists for it.
    Token,
    /// Jobs on a host (`sluice serve`).
    #[command(subcommand)]
    Job(JobCommand),
}

#[derive(Subcommand)]
enum JobCommand {
    /// Submit a job file; plugins it names by path are uploaded first.
    Submit {
        /// The job file.
        job: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the tenant's jobs.
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one job's status.
    Status {
        /// The job's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Swap a running job's transform plugin for another version, at its
    /// next batch boundary, carrying the plugin's state across.
    Swap {
        /// The job's id.
        id: String,
        /// The transform, by name (`transform-0` when the job file gave
        /// it none).
        #[arg(long)]
        transform: String,
        /// The new version: a `.wasm` file (uploaded first) or the
        /// `sha256:HEX` digest of one uploaded.
        #[arg(long)]
        plugin: String,
        /// The new version's config, as KEY=VALUE (repeat it); the running
        /// version's config if none is given.
        #[arg(long = "config", value_parser = key_value)]
        config: Vec<(String, String)>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Stop a job at its next batch boundary.
    Stop {
        /// The job's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Scaffold a plugin project (a transform and its test) in directory NAME.
    New {
        /// The plugin's language.
        #[arg(long, value_parser = str::parse::<Language>)]
        lang: Language,
        /// The project directory; its last component names the plugin.
        name: PathBuf,
    },
    /// Build the plugin project at PATH into a Wasm component.
    Build {
        /// The project directory (holding its `sluice.toml`).
        path: PathBuf,
        /// Where to write `<name>.wasm` (default: PATH/target).
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Upload a plugin to a host (`sluice serve`); prints its digest,
    /// which hosted jobs name it by.
    Push {
        /// The `.wasm` component.
        file: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // To stderr, through `sluice run`'s progress bar while it draws one.
    let logs = progress::Logs::default();
    let telemetry = match telemetry::Telemetry::init(
        logs.clone(),
        cli.otlp_endpoint.as_deref().filter(|url| !url.is_empty()),
    ) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(cli, &logs);
    // The last spans are sent before the process ends.
    drop(telemetry);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Carry out `cli`'s command; `logs` is where the log goes.
fn run(cli: Cli, logs: &progress::Logs) -> anyhow::Result<()> {
    match cli.command {
        Command::Plugin(PluginCommand::New { lang, name }) => {
            sluice_plugin_build::scaffold(lang, &name)?;
            println!(
                "created the {lang} plugin {}; build it with `sluice plugin build {}`",
                name.display(),
                name.display()
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::Build { path, out_dir }) => {
            let out_dir = out_dir.unwrap_or_else(|| path.join("target"));
            let wasm = sluice_plugin_build::build(&path, &out_dir)?;
            println!("{}", wasm.display());
            Ok(())
        }
        Command::Serve { config, cache_dir } => {
            let stop = stop_on_signals()?;
            let config = HostConfig::load(&config)?;
            let runtime = runtime_with(cache_dir, config.max_concurrent_calls)?;
            let server = Server::start(&config, runtime)?;
            println!("serving the admin API on http://{}", server.address());
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
            tracing::info!("stopping every job at a batch boundary");
            Ok(server.shut_down()?)
        }
        Command::Plugin(PluginCommand::Push { file, connection }) => {
            println!("{}", connection.push_plugin(&file)?);
            Ok(())
        }
        Command::Job(command) => {
            let answer = match command {
                JobCommand::Submit { job, connection } => connection.submit(&job)?,
                JobCommand::List { connection } => connection.list()?,
                JobCommand::Status { id, connection } => connection.status(&id)?,
                JobCommand::Stop { id, connection } => connection.stop(&id)?,
                JobCommand::Swap {
                    id,
                    transform,
                    plugin,
                    config,
                    connection,
                } => connection.swap(&id, &transform, &plugin, &config)?,
            };
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Token => {
            let (token, hash) = new_token()?;
            println!("token:        {token}");
            println!("token_sha256: {hash}");
            Ok(())
        }
        Command::Check { job, cache_dir } => {
            let job = Job::load(&job)?;
            let plan = Plan::of(&job, &runtime(cache_dir)?)
                .with_context(|| format!("job `{}`", job.name))?;
            print!("{plan}");
            Ok(())
        }
        Command::Run {
            job,
            cache_dir,
            from_scratch,
            metrics_addr,
            quiet,
            watch,
        } => {
            // Handlers first: a signal during setup ends a wait for the
            // brokers, or stops the job at its first batch boundary,
            // cleanly, rather than killing it.
            let stop = stop_on_signals()?;
            let draw_progress = !quiet && std::io::stderr().is_terminal();
            let job = Job::load(&job)?;
            // Watched from before the plugins load, so no change is missed.
            let watch = watch
                .then(|| watch::PluginWatch::new(&job.transforms))
                .transpose()?;
            let runtime = runtime(cache_dir)?;
            let counters = runtime.metrics().clone();
            let metrics = Metrics::new(Some(Arc::new(move || counters.snapshot())));
            let endpoint = metrics_addr
                .map(|address| MetricsEndpoint::start(address, metrics.clone()))
                .transpose()?;
            let options = RunOptions {
                from_scratch,
                stop: Arc::clone(&stop),
                allowed_topics: None,
                max_rows_per_second: None,
                // Kept only for a scraper.
                metrics: match &endpoint {
                    Some(_) => metrics.job(&job.name, ""),
                    None => Default::default(),
                },
            };
            let runner = match JobRunner::build(&job, &runtime, options) {
                Ok(runner) => runner,
                Err(JobError::Kafka(KafkaError::Stopped)) => {
                    tracing::info!(job = %job.name, "stopped before it started: no broker answered");
                    return Ok(());
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("job `{}`", job.name));
                }
            };
            tracing::info!(job = %job.name, "running");
            let handle = JobHandle::start(runner)?;
            let reloader = match watch.map(|watch| watch.start(handle.control())) {
                None => None,
                Some(Ok(reloader)) => Some(reloader),
                Some(Err(error)) => {
                    handle.stop();
                    let _ = handle.wait();
                    return Err(error).context("starting the plugin watcher");
                }
            };
            let result = if draw_progress {
                progress::wait(&job, handle, logs, &stop)
            } else {
                handle.wait()
            };
            if let Some(reloader) = reloader {
                reloader.stop();
            }
            let stats = result.with_context(|| format!("job `{}` stopped", job.name))?;
            tracing::info!(
                job = %job.name,
                batches = stats.batches,
                rows_in = stats.rows_in,
                rows_out = stats.rows_out,
                routed = ?stats.rows_routed,
                poison = ?stats.poison,
                checkpoints = stats.checkpoints,
                restarts = stats.restarts,
                "finished"
            );
            for (plugin, counter, value) in runtime.metrics().snapshot() {
                tracing::info!(plugin, counter, value, "plugin counter");
            }
            Ok(())
        }
    }
}

/// `KEY=VALUE`, as a pair.
fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// The Wasm runtime, with compiled plugins cached in `cache_dir`, or in
/// the user's own cache directory (never one relative to where the host
/// happens to start: the cache holds native code).
fn runtime(cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
    runtime_with(cache_dir, None)
}

/// [`runtime`], with at most `max_concurrent_calls` plugin calls at once.
fn runtime_with(
    cache_dir: Option<PathBuf>,
    max_concurrent_calls: Option<usize>,
) -> anyhow::Result<Runtime> {
    let cache_dir = match cache_dir {
        Some(dir) => dir,
        None => dirs::cache_dir()
            .context("this user has no cache directory (no $XDG_CACHE_HOME or $HOME): name one with --cache-dir or SLUICE_CACHE_DIR")?
            .join("sluice")
            .join("plugins"),
    };
    Ok(Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir),
        max_concurrent_calls,
        ..RuntimeConfig::default()
    })?)
}

/// A flag that SIGTERM and SIGINT set, so the job finishes the batch in
/// flight, checkpoints, commits and exits 0. A second signal, once a stop is
/// under way, ends the process at once (status 128 + the signal).
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&stop))
            .context("installing a signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing a signal handler")?;
    }
    Ok(stop)
}
