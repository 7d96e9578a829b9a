//! `tenants`: many tenants' jobs in one `sluice serve` host, started in
//! process and driven through its admin API, as tenants drive it.
//!
//! 1. Memory: 100 idle jobs (10 tenants × 10, each 10 generated rows/s
//!    through the filter plugin, parallelism 1); the process's resident
//!    memory before and once every job has run and committed a
//!    checkpoint, per job (target ≤ 10 MB).
//! 2. Throughput: 100 such jobs unpaced; their rows read per second,
//!    summed, over a window; in turn with the same on a host that bounds
//!    plugin calls to one per core (`max_concurrent_calls`).
//! 3. Noisy neighbour: 20 unpaced jobs (2 of each tenant); their summed
//!    rows/s beside another tenant's unpaced job whose plugin spins to
//!    its 100 ms deadline, and beside one whose plugin allocates up to
//!    its 64 MiB limit. Both noisy jobs restart at once, without end, so
//!    the noise lasts the whole window (the host lets that tenant set no
//!    restart backoff: the worst a host's operators can allow). Each noisy window lies between
//!    two windows alone; its drop from their mean, in %, is printed as
//!    the median over the rounds (target ≤ 10 %). The machine is
//!    shared: the host's share of its CPU time over these windows is
//!    printed too.
//!
//! Every job writes to a console sink showing no rows, which still prints
//! a header per batch: the bench points the process's stdout at
//! /dev/null while it runs and prints its figures to a copy of the real
//! one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{Runtime, RuntimeConfig};
use sluice_server::{HostConfig, Server, new_token};

use crate::median;

/// Tenants whose jobs are measured.
const TENANTS: usize = 10;
/// Jobs of each tenant in the memory and throughput runs.
const JOBS_PER_TENANT: usize = 10;
/// Rows per second of an idle job.
const IDLE_RATE: u64 = 10;
/// A datagen rate no job reaches: the job reads as fast as it can.
const UNPACED_RATE: u64 = 1_000_000_000;
/// How long the aggregate throughput is measured.
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(5);
/// Windows of aggregate throughput on each host, taken in turn.
const THROUGHPUT_ROUNDS: usize = 3;
/// The noisy neighbour's victims: jobs of each tenant.
const NEIGHBOURS_PER_TENANT: usize = 2;
/// How long each noisy-neighbour window lasts.
const NOISY_WINDOW: Duration = Duration::from_secs(3);
/// Rounds of (spinning neighbour, alone, hoarding neighbour, alone),
/// after a first window alone.
const ROUNDS: usize = 5;
/// Time given to freshly started unpaced jobs before they are measured.
const WARM_UP: Duration = Duration::from_secs(2);
/// How long the bench waits for jobs to reach a state before giving up.
const WAIT_LIMIT: Duration = Duration::from_secs(60);
/// Bytes per MB, as the targets count them.
const MB: f64 = 1e6;
/// The noisy tenant's index: after the ordinary ones.
const NOISY_TENANT: usize = TENANTS;
/// The spinning plugin's limits: its calls are cut at 100 ms.
const SPIN_LIMITS: &str = "memory_limit = \"64 MiB\"\ndeadline = \"100ms\"";
/// The hoarding plugin's limits: its calls stop at 64 MiB, well before
/// their deadline.
const HOARD_LIMITS: &str = "memory_limit = \"64 MiB\"\ndeadline = \"1s\"";

/// Runs the three measurements and prints their figures.
pub(crate) fn run() -> anyhow::Result<()> {
    let mut figures = Figures::with_console_sinks_silenced()?;
    let state = tempfile::tempdir()?;
    let host = TestHost::start(state.path(), None)?;
    let client = &host.client;

    let filter: Vec<String> = (0..TENANTS)
        .map(|tenant| client.upload(tenant, artifacts::FILTER))
        .collect::<anyhow::Result<_>>()?;
    let spin = client.upload(NOISY_TENANT, artifacts::SPIN_FOREVER)?;
    let hoard = client.upload(NOISY_TENANT, artifacts::ALLOC_FOREVER)?;

    // 1. Memory of idle jobs.
    let before = resident_bytes()?;
    let submitting = Instant::now();
    let idle = client.submit_filter_jobs(&filter, JOBS_PER_TENANT, IDLE_RATE)?;
    let submit_time = submitting.elapsed() / idle.len() as u32;
    client.wait_for(&idle, "a committed checkpoint", |job| {
        job["last_checkpoint"].is_u64()
    })?;
    let after = resident_bytes()?;
    let jobs = idle.len() as f64;
    writeln!(
        figures.stdout,
        "tenants.idle_jobs: {} ({TENANTS} tenants × {JOBS_PER_TENANT}, {IDLE_RATE} rows/s each through the filter plugin, parallelism 1, each run and checkpointed)",
        idle.len()
    )?;
    writeln!(
        figures.stdout,
        "tenants.submit_mean: {:.1} ms per job (API call to job started)",
        submit_time.as_secs_f64() * 1000.0
    )?;
    writeln!(
        figures.stdout,
        "tenants.rss: {:.1} MB before the jobs, {:.1} MB with them",
        before / MB,
        after / MB
    )?;
    writeln!(
        figures.stdout,
        "tenants.memory_per_idle_job: {:.2} MB (target ≤ 10 MB)",
        (after - before) / jobs / MB
    )?;
    client.stop_all(&idle)?;

    // 2. Aggregate throughput of as many jobs unpaced; beside it, in
    // turn, a second host whose plugin calls are bounded to one per core
    // (`max_concurrent_calls`).
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let gated_state = tempfile::tempdir()?;
    let gated = TestHost::start(gated_state.path(), Some(cores))?;
    let gated_filter: Vec<String> = (0..TENANTS)
        .map(|tenant| gated.client.upload(tenant, artifacts::FILTER))
        .collect::<anyhow::Result<_>>()?;
    let (mut free_rates, mut gated_rates) = (Vec::new(), Vec::new());
    for _ in 0..THROUGHPUT_ROUNDS {
        free_rates.push(client.unpaced_throughput(&filter)?);
        gated_rates.push(gated.client.unpaced_throughput(&gated_filter)?);
    }
    gated.server.shut_down()?;
    let (free, gated) = (median(&mut free_rates), median(&mut gated_rates));
    writeln!(
        figures.stdout,
        "tenants.aggregate_throughput: {free:.0} rows/s ({} unpaced jobs, median of {THROUGHPUT_ROUNDS} windows of {} s, {cores} cores)",
        TENANTS * JOBS_PER_TENANT,
        THROUGHPUT_WINDOW.as_secs()
    )?;
    writeln!(
        figures.stdout,
        "tenants.aggregate_throughput_gated: {gated:.0} rows/s (the same jobs on a host with max_concurrent_calls = {cores}, in turn; gated/ungated {:.2})",
        gated / free
    )?;

    // 3. The noisy neighbour.
    let neighbours = client.submit_filter_jobs(&filter, NEIGHBOURS_PER_TENANT, UNPACED_RATE)?;
    client.wait_for(&neighbours, "a batch", |job| {
        job["batches"].as_u64() > Some(0)
    })?;
    std::thread::sleep(WARM_UP);
    let cpu_before = CpuTicks::now()?;
    // Each noisy window lies between two windows alone, and counts
    // against their mean: a drift of the machine's load cancels out.
    let mut alone = vec![client.throughput(&neighbours, NOISY_WINDOW)?];
    let (mut spinning, mut hoarding) = (Noise::default(), Noise::default());
    for _ in 0..ROUNDS {
        for (noise, plugin, limits) in [
            (&mut spinning, &spin, SPIN_LIMITS),
            (&mut hoarding, &hoard, HOARD_LIMITS),
        ] {
            let window = client.beside_noisy_job(plugin, limits, &neighbours)?;
            let before = alone[alone.len() - 1];
            let after = client.throughput(&neighbours, NOISY_WINDOW)?;
            alone.push(after);
            noise.record(window, (before + after) / 2.0);
        }
    }
    let cpu = CpuTicks::now()?.since(&cpu_before);
    writeln!(
        figures.stdout,
        "tenants.host_cpu_share: {:.0} % of the machine's CPU time during the noisy-neighbour windows (the machine was {:.0} % busy; other processes had the rest)",
        cpu.process as f64 / cpu.machine_total as f64 * 100.0,
        cpu.machine_busy as f64 / cpu.machine_total as f64 * 100.0
    )?;
    let (lowest, highest) = range(&alone);
    writeln!(
        figures.stdout,
        "tenants.neighbours_alone: {:.0} rows/s ({} unpaced jobs of {TENANTS} tenants; median of {} windows of {} s, {lowest:.0} to {highest:.0})",
        median(&mut alone),
        neighbours.len(),
        alone.len(),
        NOISY_WINDOW.as_secs()
    )?;
    for (name, what, mut noise) in [
        ("spin", "spinning to its 100 ms deadline", spinning),
        ("hoard", "allocating up to its 64 MiB limit", hoarding),
    ] {
        let (least, most) = range(&noise.drops);
        writeln!(
            figures.stdout,
            "tenants.neighbours_beside_{name}: {:.0} rows/s (beside another tenant's job {what}, restarting at once: {:.1} restarts/s, each ending {:?})",
            median(&mut noise.rates),
            noise.restarts as f64 / (noise.rates.len() as f64 * NOISY_WINDOW.as_secs_f64()),
            noise.error.unwrap_or_default()
        )?;
        writeln!(
            figures.stdout,
            "tenants.{name}_drop: {:.1} % (median of {ROUNDS} windows, {least:.1} to {most:.1}; target ≤ 10 %)",
            median(&mut noise.drops)
        )?;
    }
    host.server.shut_down()?;
    Ok(())
}

/// What one kind of noisy neighbour did to the neighbours.
#[derive(Debug, Default)]
struct Noise {
    /// The neighbours' rows/s beside it, each window.
    rates: Vec<f64>,
    /// How far below their rate alone around it each window was, in %.
    drops: Vec<f64>,
    /// The noisy job's restarts within the windows.
    restarts: u64,
    /// Why its last attempt failed, as the last noisy job ended.
    error: Option<String>,
}

impl Noise {
    /// Count `window`, beside the neighbours' rate alone around it.
    fn record(&mut self, window: NoisyWindow, alone: f64) {
        self.rates.push(window.neighbours_rate);
        self.drops
            .push((1.0 - window.neighbours_rate / alone) * 100.0);
        self.restarts += window.restarts;
        self.error = window.error.or(self.error.take());
    }
}

/// The smallest and largest of `values`.
fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &value| {
            (low.min(value), high.max(value))
        })
}

/// Where the figures go: a copy of the process's stdout, taken before
/// stdout itself (where every console sink writes) is pointed at
/// /dev/null. Dropping it points stdout back.
#[derive(Debug)]
struct Figures {
    /// The real stdout.
    stdout: File,
}

impl Figures {
    /// Copy stdout, then point it at /dev/null.
    fn with_console_sinks_silenced() -> anyhow::Result<Self> {
        let stdout = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
        let null = File::options().write(true).open("/dev/null")?;
        redirect_stdout(&null)?;
        Ok(Figures { stdout })
    }
}

impl Drop for Figures {
    fn drop(&mut self) {
        // Every figure has gone to the copy; a stdout left at /dev/null
        // hides nothing.
        let _ = redirect_stdout(&self.stdout);
    }
}

/// Point fd 1 at `file`.
fn redirect_stdout(file: &File) -> std::io::Result<()> {
    // SAFETY: dup2 touches no memory of the process; fd 1 stays open
    // (only what it refers to changes), so no owner of it is left with a
    // closed descriptor.
    if unsafe { libc::dup2(file.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// CPU time, in clock ticks: this process's, and the whole machine's
/// (every core) busy and in all.
#[derive(Debug)]
struct CpuTicks {
    /// This process's, user and system.
    process: u64,
    /// The machine's, not idle.
    machine_busy: u64,
    /// The machine's, idle or not.
    machine_total: u64,
}

impl CpuTicks {
    /// The counts so far, from /proc.
    fn now() -> anyhow::Result<Self> {
        let own = std::fs::read_to_string("/proc/self/stat")?;
        // Fields after the command name: state is the 3rd field of the
        // line, utime the 14th and stime the 15th.
        let after_name = own.rsplit_once(')').context("no ) in /proc/self/stat")?.1;
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        ensure!(fields.len() == 2, "no utime and stime in /proc/self/stat");
        let process = fields[0] + fields[1];
        let machine = std::fs::read_to_string("/proc/stat")?;
        let ticks: Vec<u64> = machine
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .context("no cpu line in /proc/stat")?
            .split_whitespace()
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        ensure!(ticks.len() == 8, "fewer than 8 counts in /proc/stat");
        // user nice system idle iowait irq softirq steal
        let machine_total = ticks.iter().sum::<u64>();
        Ok(CpuTicks {
            process,
            machine_busy: machine_total - ticks[3] - ticks[4],
            machine_total,
        })
    }

    /// The ticks from `earlier` to these.
    fn since(&self, earlier: &CpuTicks) -> CpuTicks {
        CpuTicks {
            process: self.process.saturating_sub(earlier.process),
            machine_busy: self.machine_busy.saturating_sub(earlier.machine_busy),
            machine_total: self.machine_total.saturating_sub(earlier.machine_total),
        }
    }
}

/// The process's resident memory, in bytes.
fn resident_bytes() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .context("no VmRSS in /proc/self/status")?
        .trim()
        .parse::<f64>()?;
    Ok(kib * 1024.0)
}

/// The host under test and a client of its API.
#[derive(Debug)]
struct TestHost {
    /// The host, serving.
    server: Server,
    /// Calls its API as any of its tenants.
    client: Client,
}

impl TestHost {
    /// A host keeping its state in `state`, with [`TENANTS`] ordinary
    /// tenants and, last, a noisy one whose plugins may spin for 1 s per
    /// call and hold 64 MiB; `max_concurrent_calls` as its host file
    /// gives it.
    fn start(state: &std::path::Path, max_concurrent_calls: Option<usize>) -> anyhow::Result<Self> {
        let mut text = format!("listen = \"127.0.0.1:0\"\nstate = {:?}\n", state.display());
        if let Some(slots) = max_concurrent_calls {
            text.push_str(&format!("max_concurrent_calls = {slots}\n"));
        }
        let mut tokens = Vec::new();
        for tenant in 0..=TENANTS {
            let (token, hash) = new_token()?;
            tokens.push(token);
            let quota = if tenant == TENANTS {
                "name = \"noisy\"\nmax_jobs = 1\nmemory_limit = \"64 MiB\"\ndeadline = \"1s\"\nmin_restart_backoff = \"0s\""
                    .to_owned()
            } else {
                format!("name = \"tenant-{tenant}\"\nmax_jobs = {JOBS_PER_TENANT}")
            };
            text.push_str(&format!(
                "[[tenant]]\n{quota}\ntoken_sha256 = [\"{hash}\"]\ntopics = []\n"
            ));
        }
        let config = HostConfig::parse(&state.join("host.toml"), &text)?;
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_calls: config.max_concurrent_calls,
            ..RuntimeConfig::default()
        })?;
        let server = Server::start(&config, runtime)?;
        let client = Client {
            base: format!("http://{}", server.address()),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            tokens,
        };
        Ok(TestHost { server, client })
    }
}

/// A job the bench submitted: its tenant (an index) and its id.
#[derive(Debug, Clone)]
struct Submitted {
    /// The tenant's index among the host's tenants.
    tenant: usize,
    /// The host's id for the job.
    id: String,
}

/// Calls the host's API, as any of its tenants.
#[derive(Debug)]
struct Client {
    /// `http://ADDRESS`.
    base: String,
    /// The HTTP client; error statuses are answers, not errors.
    agent: ureq::Agent,
    /// Each tenant's API token, by index.
    tokens: Vec<String>,
}

impl Client {
    /// `method path` with `body`, as `tenant`: the answer's JSON, which
    /// must come with `expected` status.
    fn call(
        &self,
        method: &str,
        path: &str,
        tenant: usize,
        body: &[u8],
        expected: u16,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let bearer = format!("Bearer {}", self.tokens[tenant]);
        let mut response = if method == "GET" {
            self.agent
                .get(&url)
                .header("Authorization", &bearer)
                .call()?
        } else {
            self.agent
                .post(&url)
                .header("Authorization", &bearer)
                .send(body)?
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        ensure!(
            status == expected,
            "{method} {path}: {status} (expected {expected}): {text}"
        );
        Ok(serde_json::from_str(&text)?)
    }

    /// Upload the component at `path` as `tenant`; its digest.
    fn upload(&self, tenant: usize, path: &str) -> anyhow::Result<String> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        let answer = self.call("POST", "/v1/plugins", tenant, &bytes, 201)?;
        answer["digest"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no digest in {answer}"))
    }

    /// Submit `job` as `tenant`.
    fn submit(&self, tenant: usize, job: &str) -> anyhow::Result<Submitted> {
        let answer = self.call("POST", "/v1/jobs", tenant, job.as_bytes(), 201)?;
        let id = answer["id"]
            .as_str()
            .with_context(|| format!("no id in {answer}"))?;
        Ok(Submitted {
            tenant,
            id: id.to_owned(),
        })
    }

    /// Submit `per_tenant` jobs of each ordinary tenant, each reading
    /// `rate` generated rows/s through the filter plugin (uploaded by
    /// each tenant as `filter[tenant]`), keeping every row.
    fn submit_filter_jobs(
        &self,
        filter: &[String],
        per_tenant: usize,
        rate: u64,
    ) -> anyhow::Result<Vec<Submitted>> {
        let mut jobs = Vec::new();
        for (tenant, digest) in filter.iter().enumerate() {
            for _ in 0..per_tenant {
                let job = job_file(
                    digest,
                    rate,
                    "config = { column = \"id\", op = \"ge\", value = \"0\" }",
                    "",
                );
                jobs.push(self.submit(tenant, &job)?);
            }
        }
        Ok(jobs)
    }

    /// Every job of `jobs` as the API shows it, by id.
    fn views(&self, jobs: &[Submitted]) -> anyhow::Result<BTreeMap<String, Value>> {
        let mut tenants: Vec<usize> = jobs.iter().map(|job| job.tenant).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let mut views = BTreeMap::new();
        for tenant in tenants {
            let answer = self.call("GET", "/v1/jobs", tenant, b"", 200)?;
            for job in answer["jobs"].as_array().into_iter().flatten() {
                if let Some(id) = job["id"].as_str() {
                    views.insert(id.to_owned(), job.clone());
                }
            }
        }
        jobs.iter()
            .map(|job| {
                let view = views
                    .remove(&job.id)
                    .with_context(|| format!("job {} is not listed", job.id))?;
                Ok((job.id.clone(), view))
            })
            .collect()
    }

    /// Wait until every job of `jobs` shows `what` (`reached`); a job
    /// that fails first is an error.
    fn wait_for(
        &self,
        jobs: &[Submitted],
        what: &str,
        reached: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let views = self.views(jobs)?;
            if let Some(failed) = views.values().find(|job| job["state"] == "failed") {
                bail!("a job failed: {failed}");
            }
            let Some(waiting) = views.values().find(|job| !reached(job)) else {
                return Ok(());
            };
            ensure!(
                Instant::now() < deadline,
                "no {what} within {} s: {waiting}",
                WAIT_LIMIT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stop `jobs` and wait until each has ended.
    fn stop_all(&self, jobs: &[Submitted]) -> anyhow::Result<()> {
        for job in jobs {
            self.call(
                "POST",
                &format!("/v1/jobs/{}/stop", job.id),
                job.tenant,
                b"",
                202,
            )?;
        }
        let deadline = Instant::now() + WAIT_LIMIT;
        while !self.views(jobs)?.values().all(has_ended) {
            ensure!(Instant::now() < deadline, "the jobs did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Source rows read by `jobs` since they started, summed, and when
    /// (the middle of the calls that read it).
    fn rows_read(&self, jobs: &[Submitted]) -> anyhow::Result<(u64, Instant)> {
        let asked = Instant::now();
        let views = self.views(jobs)?;
        let when = asked + asked.elapsed() / 2;
        let mut rows = 0;
        for (id, job) in &views {
            ensure!(job["state"] == "running", "job {id} stopped running: {job}");
            rows += job["rows_in"].as_u64().unwrap_or_default();
        }
        Ok((rows, when))
    }

    /// The rows per second of [`TENANTS`] × [`JOBS_PER_TENANT`] unpaced
    /// jobs through `filter` (each tenant's digest), read together over
    /// [`THROUGHPUT_WINDOW`] once they have warmed up; then they stop.
    fn unpaced_throughput(&self, filter: &[String]) -> anyhow::Result<f64> {
        let busy = self.submit_filter_jobs(filter, JOBS_PER_TENANT, UNPACED_RATE)?;
        self.wait_for(&busy, "a batch", |job| job["batches"].as_u64() > Some(0))?;
        std::thread::sleep(WARM_UP);
        let rate = self.throughput(&busy, THROUGHPUT_WINDOW)?;
        self.stop_all(&busy)?;
        Ok(rate)
    }

    /// The rows per second `jobs` read together over `window`.
    fn throughput(&self, jobs: &[Submitted], window: Duration) -> anyhow::Result<f64> {
        let (first, start) = self.rows_read(jobs)?;
        std::thread::sleep(window);
        let (last, end) = self.rows_read(jobs)?;
        Ok((last - first) as f64 / (end - start).as_secs_f64())
    }

    /// Run a job of the noisy tenant through `plugin` with `limits`,
    /// restarting at once after each failure, and measure `neighbours`'
    /// rows/s beside it once it has failed a first time; then stop it.
    fn beside_noisy_job(
        &self,
        plugin: &str,
        limits: &str,
        neighbours: &[Submitted],
    ) -> anyhow::Result<NoisyWindow> {
        let job = job_file(
            plugin,
            UNPACED_RATE,
            limits,
            "restart_attempts = 4000000000\nrestart_backoff = \"0s\"",
        );
        let noisy = [self.submit(NOISY_TENANT, &job)?];
        self.wait_for(&noisy, "restart", |job| job["restarts"].as_u64() > Some(0))?;
        let restarts = |view: &Value| view["restarts"].as_u64().unwrap_or_default();
        let before = restarts(&self.views(&noisy)?[&noisy[0].id]);
        let neighbours_rate = self.throughput(neighbours, NOISY_WINDOW)?;
        let after = restarts(&self.views(&noisy)?[&noisy[0].id]);
        self.stop_all(&noisy)?;
        let ended = &self.views(&noisy)?[&noisy[0].id];
        Ok(NoisyWindow {
            neighbours_rate,
            restarts: after - before,
            error: ended["error"].as_str().map(str::to_owned),
        })
    }
}

/// A window of the neighbours beside a noisy job.
#[derive(Debug)]
struct NoisyWindow {
    /// The neighbours' rows/s, summed.
    neighbours_rate: f64,
    /// The noisy job's restarts within the window.
    restarts: u64,
    /// Why the noisy job's last attempt failed, as it ended.
    error: Option<String>,
}

/// Whether a job, as the API shows it, has ended.
fn has_ended(job: &Value) -> bool {
    job["state"] == "finished" || job["state"] == "failed"
}

/// A hosted job: `rate` generated rows/s of a sequence `id` through
/// `plugin` (with `transform` lines added to its section) to a console
/// sink showing no rows, checkpointing where the host says (with
/// `checkpoint` lines added).
fn job_file(plugin: &str, rate: u64, transform: &str, checkpoint: &str) -> String {
    format!(
        r#"
[job]
parallelism = 1
[source]
type = "datagen"
rows_per_second = {rate}
columns = [{{ name = "id", generator = "sequence" }}]
[[transform]]
plugin = "{plugin}"
{transform}
[sink]
type = "console"
num_rows = 0
[checkpoint]
location = "chosen by the host"
{checkpoint}
"#
    )
}
