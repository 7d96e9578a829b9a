//! The host's jobs. Each submitted job's file is kept under the state
//! directory with its checkpoints, so a restarted host resumes every job
//! that was not stopped, from its last checkpoint.
//!
//! Layout: `STATE/tenants/T/jobs/ID/job.toml`, `.../ID/checkpoints/`,
//! and `.../ID/stopped` once stopped through the API. Plugins are in the
//! [`PluginStore`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sluice_config::{ConfigError, Job, PluginFiles, PluginSpec, SinkSpec, SourceSpec};
use sluice_job::{JobHandle, JobRunner, JobState, RunOptions};
use sluice_metrics::Metrics;
use sluice_runtime::Runtime;

use crate::admission::{Refusal, admit};
use crate::plugins::{PluginStore, PluginStoreError, is_digest};
use crate::tenants::Tenant;

/// Why a request about jobs or plugins failed.
#[derive(Debug)]
pub(crate) enum JobsError {
    /// The job file does not parse or validate.
    Invalid(ConfigError),
    /// The job asks for what the tenant may not have, or is malformed.
    Refused(Refusal),
    /// The tenant runs as many jobs as it may.
    Quota(String),
    /// No such job (or not the tenant's).
    NotFound,
    /// The job could not start (a plugin, a broker, a registry).
    Start(String),
    /// The host's own storage failed.
    Storage(std::io::Error),
    /// The plugin store failed.
    Plugins(PluginStoreError),
}

impl From<PluginStoreError> for JobsError {
    fn from(error: PluginStoreError) -> Self {
        JobsError::Plugins(error)
    }
}

impl From<std::io::Error> for JobsError {
    fn from(error: std::io::Error) -> Self {
        JobsError::Storage(error)
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub(crate) struct JobView {
    /// The host's id for the job.
    pub(crate) id: String,
    /// The name its file gave it.
    pub(crate) name: String,
    /// `starting`, `running`, `stopping`, `finished` or `failed`.
    #[schema(value_type = String)]
    pub(crate) state: &'static str,
    /// Why it failed, if it did.
    pub(crate) error: Option<String>,
    /// Batches processed.
    pub(crate) batches: u64,
    /// Source rows read.
    pub(crate) rows_in: u64,
    /// The newest committed checkpoint epoch.
    pub(crate) last_checkpoint: Option<u64>,
    /// Rows written to the main sink.
    pub(crate) rows_out: u64,
    /// The last batch.
    pub(crate) last_batch: Option<BatchView>,
    /// Where the source is: the next offset of each topic partition.
    pub(crate) offsets: Vec<OffsetView>,
    /// Records of each topic partition not read yet (Kafka sources).
    pub(crate) lag: Vec<LagView>,
    /// The aggregate's event-time watermark, ms since the epoch.
    pub(crate) watermark: Option<i64>,
    /// Bytes of state the job's operators hold.
    pub(crate) state_bytes: u64,
    /// The plugins running, with their digests.
    pub(crate) plugins: Vec<PluginView>,
    /// The plugin swaps since the host started the job, oldest first.
    pub(crate) swaps: Vec<SwapView>,
    /// The job's stages.
    pub(crate) plan: PlanView,
    /// Rows written to each named output (dead letters, late rows).
    pub(crate) outputs: BTreeMap<String, u64>,
    /// Rows that could not be decoded or that operators rejected, by kind.
    pub(crate) rejected: BTreeMap<String, u64>,
    /// Times the job went back to its last checkpoint after a failure.
    pub(crate) restarts: u32,
    /// The last checkpoints committed, oldest first.
    pub(crate) checkpoints: Vec<CheckpointView>,
}

/// A job's stages, in the order rows go through them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub(crate) struct PlanView {
    /// The source: its type, and for Kafka what it subscribes to.
    pub(crate) source: String,
    /// Whether a `[decode]` stage decodes the source's records.
    pub(crate) decode: bool,
    /// The transforms, by name.
    pub(crate) transforms: Vec<String>,
    /// The windowed aggregate, by name, if any.
    pub(crate) aggregate: Option<String>,
    /// The main sink: its type, and for Kafka its topic.
    pub(crate) sink: String,
    /// The named outputs (dead letters, late rows, routes), by name.
    pub(crate) outputs: Vec<String>,
}

impl PlanView {
    fn of(job: &Job) -> Self {
        let kafka_target = |options: &BTreeMap<String, String>, keys: &[&str]| {
            keys.iter()
                .find_map(|key| options.get(*key))
                .map_or_else(String::new, |value| format!(" {value}"))
        };
        let source = match &job.source {
            SourceSpec::Datagen(_) => "datagen".to_owned(),
            SourceSpec::File(_) => "file".to_owned(),
            SourceSpec::Directory(_) => "directory".to_owned(),
            SourceSpec::Nexmark(_) => "nexmark".to_owned(),
            SourceSpec::Kafka(kafka) => format!(
                "kafka{}",
                kafka_target(&kafka.options, &["subscribe", "subscribePattern", "assign"])
            ),
        };
        let sink = match &job.sink {
            SinkSpec::Console(_) => "console".to_owned(),
            SinkSpec::File(_) => "file".to_owned(),
            SinkSpec::Parquet(_) => "parquet".to_owned(),
            SinkSpec::Kafka(kafka) => format!("kafka{}", kafka_target(&kafka.options, &["topic"])),
        };
        PlanView {
            source,
            decode: job.decode.is_some(),
            transforms: job.transforms.iter().map(|t| t.name.clone()).collect(),
            aggregate: job.aggregate.as_ref().map(|a| a.plugin.name.clone()),
            sink,
            outputs: job.outputs.keys().cloned().collect(),
        }
    }
}

/// A committed checkpoint.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub(crate) struct CheckpointView {
    /// Its epoch.
    pub(crate) epoch: u64,
    /// When it committed, ms since the Unix epoch.
    pub(crate) committed_at_ms: i64,
    /// From its snapshot to its commit, ms.
    pub(crate) took_ms: f64,
    /// Bytes of operator state it holds.
    pub(crate) state_bytes: u64,
}

/// A swap of a job's plugin.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub(crate) struct SwapView {
    /// The transform swapped.
    pub(crate) transform: String,
    /// The version replaced.
    pub(crate) from: String,
    /// The new version.
    pub(crate) to: String,
    /// Why the job went back to the old version, if it did (the new one
    /// failed its first batch).
    pub(crate) rolled_back: Option<String>,
}

/// One batch's progress (Spark's `StreamingQueryProgress`).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub(crate) struct BatchView {
    /// Source rows in the batch.
    pub(crate) rows: u64,
    /// Source rows per second since the batch before.
    pub(crate) input_rows_per_second: f64,
    /// Rows per second of the batch's own processing.
    pub(crate) processed_rows_per_second: f64,
    /// From the batch being cut to its rows written, ms.
    pub(crate) duration_ms: f64,
}

/// A source partition's next offset.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub(crate) struct OffsetView {
    /// The topic (a file name for a directory source; empty for others).
    pub(crate) topic: String,
    /// The partition.
    pub(crate) partition: i32,
    /// The next offset to read.
    pub(crate) offset: i64,
}

/// A source partition's lag.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub(crate) struct LagView {
    /// The topic.
    pub(crate) topic: String,
    /// The partition.
    pub(crate) partition: i32,
    /// Records between the job's position and the partition's end.
    pub(crate) records: i64,
}

/// A plugin of a job.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub(crate) struct PluginView {
    /// Its name in the job.
    pub(crate) name: String,
    /// `sha256:HEX`, as its upload answered.
    pub(crate) digest: String,
}

/// One submitted job.
#[derive(Debug)]
struct HostedJob {
    tenant: String,
    name: String,
    /// Its transforms as the host started them (a swap replaces one).
    transforms: Vec<PluginSpec>,
    /// Its stages, as the web page draws them.
    plan: PlanView,
    run: Run,
}

/// Whether a hosted job runs.
#[derive(Debug)]
enum Run {
    /// It runs (or ran, since the host started it).
    Running(Arc<JobHandle>),
    /// It was stopped through the API before the host last started.
    Stopped,
    /// It could not start, for this reason (after a host restart: a
    /// plugin or broker gone), or the host is shutting down.
    NotStarted(String),
}

impl HostedJob {
    /// Job `text` of `tenant`, not running.
    fn idle(tenant: &Tenant, text: &str, run: Run) -> Self {
        HostedJob {
            tenant: tenant.name().to_owned(),
            name: job_name(text),
            transforms: Vec::new(),
            plan: PlanView::default(),
            run,
        }
    }

    fn handle(&self) -> Option<&Arc<JobHandle>> {
        match &self.run {
            Run::Running(handle) => Some(handle),
            Run::Stopped | Run::NotStarted(_) => None,
        }
    }

    fn view(&self, id: &str) -> JobView {
        let status = self.handle().map(|h| h.status());
        let (state, error) = match (status.as_ref().map(|s| &s.state), &self.run) {
            (None, Run::NotStarted(why)) => ("failed", Some(why.clone())),
            (None, _) => ("finished", None),
            (Some(JobState::Starting), _) => ("starting", None),
            (Some(JobState::Running), _) => ("running", None),
            (Some(JobState::Stopping), _) => ("stopping", None),
            (Some(JobState::Finished), _) => ("finished", None),
            (Some(JobState::Failed(why)), _) => ("failed", Some(why.clone())),
        };
        let status = status.unwrap_or_default();
        JobView {
            id: id.to_owned(),
            name: self.name.clone(),
            state,
            error,
            batches: status.batches,
            rows_in: status.rows_in,
            last_checkpoint: status.last_checkpoint,
            rows_out: status.rows_out,
            last_batch: status.last_batch.map(|b| BatchView {
                rows: b.rows,
                input_rows_per_second: b.input_rows_per_second,
                processed_rows_per_second: b.processed_rows_per_second,
                duration_ms: b.duration_ms,
            }),
            offsets: status
                .positions
                .into_iter()
                .map(|p| OffsetView {
                    topic: p.topic,
                    partition: p.partition,
                    offset: p.offset,
                })
                .collect(),
            lag: status
                .lag
                .into_iter()
                .map(|l| LagView {
                    topic: l.topic,
                    partition: l.partition,
                    records: l.records,
                })
                .collect(),
            watermark: status.watermark,
            state_bytes: status.state_bytes,
            plugins: status
                .plugins
                .into_iter()
                .map(|(name, digest)| PluginView {
                    name,
                    digest: format!("sha256:{digest}"),
                })
                .collect(),
            swaps: status
                .swaps
                .into_iter()
                .map(|swap| SwapView {
                    transform: swap.transform,
                    from: format!("sha256:{}", swap.from),
                    to: format!("sha256:{}", swap.to),
                    rolled_back: swap.rolled_back,
                })
                .collect(),
            plan: self.plan.clone(),
            outputs: status.outputs,
            rejected: status.rejected,
            restarts: status.restarts,
            checkpoints: status
                .checkpoints
                .into_iter()
                .map(|c| CheckpointView {
                    epoch: c.epoch,
                    committed_at_ms: c.committed_at_ms,
                    took_ms: c.took_ms,
                    state_bytes: c.state_bytes,
                })
                .collect(),
        }
    }

    fn is_active(&self) -> bool {
        matches!(
            self.handle().map(|h| h.status().state),
            Some(JobState::Starting | JobState::Running | JobState::Stopping)
        )
    }
}

/// A submit's place under its tenant's max_jobs while the job starts;
/// dropping it gives the place back (the job, if kept, counts instead).
struct StartingJob<'a> {
    starting: &'a Mutex<BTreeMap<String, usize>>,
    tenant: String,
}

impl Drop for StartingJob<'_> {
    fn drop(&mut self) {
        let mut starting = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = starting.get_mut(&self.tenant) {
            *count -= 1;
            if *count == 0 {
                starting.remove(&self.tenant);
            }
        }
    }
}

/// Every job of the host, by id.
#[derive(Debug)]
pub(crate) struct Jobs {
    state: PathBuf,
    plugins: PluginStore,
    runtime: Runtime,
    metrics: Metrics,
    jobs: Mutex<BTreeMap<String, HostedJob>>,
    /// Per tenant, submits past the max_jobs check whose jobs are still
    /// starting: they count against the quota until kept or refused.
    starting: Mutex<BTreeMap<String, usize>>,
}

impl Jobs {
    /// The jobs kept under `state`, whose plugins are in `plugins` (none
    /// are started yet).
    pub(crate) fn new(
        state: &Path,
        plugins: PluginStore,
        runtime: Runtime,
        metrics: Metrics,
    ) -> Self {
        Jobs {
            state: state.to_owned(),
            plugins,
            runtime,
            metrics,
            jobs: Mutex::new(BTreeMap::new()),
            starting: Mutex::new(BTreeMap::new()),
        }
    }

    fn tenant_dir(&self, tenant: &str) -> PathBuf {
        self.state.join("tenants").join(tenant)
    }

    fn job_dir(&self, tenant: &str, id: &str) -> PathBuf {
        self.tenant_dir(tenant).join("jobs").join(id)
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, HostedJob>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep `bytes` as a plugin of `tenant`; returns its digest,
    /// `sha256:HEX`.
    pub(crate) fn upload_plugin(&self, tenant: &Tenant, bytes: &[u8]) -> Result<String, JobsError> {
        let hex = self.plugins.put(tenant.name(), bytes)?;
        Ok(format!("sha256:{hex}"))
    }

    /// The digests of `tenant`'s plugins.
    pub(crate) fn plugins(&self, tenant: &Tenant) -> Result<Vec<String>, JobsError> {
        let owned = self.plugins.owned(tenant.name())?;
        Ok(owned.iter().map(|hex| format!("sha256:{hex}")).collect())
    }

    /// The component file of plugin `named` (`sha256:HEX`), if `tenant`
    /// uploaded it.
    fn find_plugin(&self, tenant: &str, named: &str) -> Result<PathBuf, String> {
        let hex = named
            .strip_prefix("sha256:")
            .filter(|hex| is_digest(hex))
            .ok_or_else(|| {
                format!("{named:?}: a hosted job names a plugin by the digest its upload returned, sha256:HEX")
            })?
            .to_ascii_lowercase();
        self.plugins
            .file(tenant, &hex)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no plugin {named} was uploaded"))
    }

    /// Check, build and start `text` as a job of `tenant`, and keep it so
    /// that a restarted host resumes it. Blocks while the job connects to
    /// its services and loads its plugins.
    pub(crate) fn submit(&self, tenant: &Tenant, text: &str) -> Result<JobView, JobsError> {
        let _place = self.reserve(tenant)?;
        let id = new_id()?;
        let job = self.start(tenant, &id, text)?;
        write_atomically(
            &self.job_dir(tenant.name(), &id).join("job.toml"),
            text.as_bytes(),
        )?;
        let view = job.view(&id);
        self.locked().insert(id, job);
        Ok(view)
    }

    /// A place for one more job of `tenant`, if its running and starting
    /// jobs leave one under its max_jobs; held while the job starts, so
    /// that submits at the same time cannot together pass the quota.
    fn reserve(&self, tenant: &Tenant) -> Result<StartingJob<'_>, JobsError> {
        let jobs = self.locked();
        let mut starting = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        let running = jobs
            .values()
            .filter(|job| job.tenant == tenant.name() && job.is_active())
            .count();
        let started = starting.entry(tenant.name().to_owned()).or_default();
        let active = running + *started;
        if active >= tenant.config.max_jobs {
            return Err(JobsError::Quota(format!(
                "the tenant runs {active} jobs, its max_jobs"
            )));
        }
        *started += 1;
        Ok(StartingJob {
            starting: &self.starting,
            tenant: tenant.name().to_owned(),
        })
    }

    /// Parse, admit, build and start job `id` of `tenant`.
    fn start(&self, tenant: &Tenant, id: &str, text: &str) -> Result<HostedJob, JobsError> {
        let dir = self.job_dir(tenant.name(), id);
        let find = |named: &str| self.find_plugin(tenant.name(), named);
        let mut job = Job::parse_with(&dir.join("job.toml"), text, PluginFiles::Lookup(&find))
            .map_err(JobsError::Invalid)?;
        let name = job.name.clone();
        admit(tenant, &mut job, id, &dir.join("checkpoints")).map_err(JobsError::Refused)?;
        let options = RunOptions {
            from_scratch: false,
            stop: Arc::new(AtomicBool::new(false)),
            allowed_topics: Some(tenant.config.topics.clone()),
            max_rows_per_second: tenant.config.max_records_per_second,
            metrics: self.metrics.job(id, tenant.name()),
        };
        // The job's plugin calls take their fair share of the call gate.
        let runner = JobRunner::build(&job, &self.runtime.own_turns(), options)
            .map_err(|e| JobsError::Start(e.to_string()))?;
        let handle = JobHandle::start(runner)?;
        tracing::info!(tenant = tenant.name(), job = %name, id, "started");
        Ok(HostedJob {
            tenant: tenant.name().to_owned(),
            name,
            plan: PlanView::of(&job),
            transforms: job.transforms,
            run: Run::Running(Arc::new(handle)),
        })
    }

    /// Start again every job of these tenants that was not stopped: after
    /// a host restart, each goes on from its last checkpoint. A job that
    /// cannot start is listed as failed, with why.
    pub(crate) fn resume<'a>(
        &self,
        tenants: impl Iterator<Item = &'a Arc<Tenant>>,
    ) -> Result<(), JobsError> {
        for tenant in tenants {
            let jobs = self.tenant_dir(tenant.name()).join("jobs");
            let entries = match std::fs::read_dir(&jobs) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let dir = entry?.path();
                let id = dir
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let Ok(text) = std::fs::read_to_string(dir.join("job.toml")) else {
                    continue;
                };
                let job = if dir.join("stopped").exists() {
                    HostedJob::idle(tenant, &text, Run::Stopped)
                } else {
                    self.start(tenant, &id, &text).unwrap_or_else(|error| {
                        let why = describe(&error);
                        tracing::warn!(tenant = tenant.name(), id, "could not resume: {why}");
                        HostedJob::idle(tenant, &text, Run::NotStarted(why))
                    })
                };
                self.locked().insert(id, job);
            }
        }
        Ok(())
    }

    /// Swap the plugin of transform `transform` of job `id` for the one
    /// `tenant` uploaded as `plugin` (with `config`, else the running
    /// one's), at the job's next batch boundary. The job's file is
    /// rewritten first, so a host restarted from then on resumes the job
    /// on the new version (and put back if the job refuses the swap).
    pub(crate) fn swap(
        &self,
        tenant: &Tenant,
        id: &str,
        transform: &str,
        plugin: &str,
        config: Option<Vec<(String, String)>>,
    ) -> Result<JobView, JobsError> {
        let (handle, spec, index) = {
            let jobs = self.locked();
            let job = jobs
                .get(id)
                .filter(|job| job.tenant == tenant.name())
                .ok_or(JobsError::NotFound)?;
            let handle = job.handle().cloned().ok_or_else(|| {
                JobsError::Refused(Refusal::invalid("id", "the job is not running"))
            })?;
            let index = job
                .transforms
                .iter()
                .position(|t| t.name == transform)
                .ok_or_else(|| {
                    let names: Vec<&str> = job.transforms.iter().map(|t| t.name.as_str()).collect();
                    JobsError::Refused(Refusal::invalid(
                        "transform",
                        format!("the job has no transform {transform:?}; it has {names:?}"),
                    ))
                })?;
            (handle, job.transforms[index].clone(), index)
        };
        let file = self
            .find_plugin(tenant.name(), plugin)
            .map_err(|why| JobsError::Refused(Refusal::invalid("plugin", why)))?;
        let spec = PluginSpec {
            plugin: file,
            config: config.unwrap_or(spec.config),
            ..spec
        };
        let dir = self.job_dir(tenant.name(), id);
        let old = std::fs::read_to_string(dir.join("job.toml"))?;
        let rewritten = with_transform(&old, index, plugin, &spec.config)
            .map_err(|why| JobsError::Refused(Refusal::invalid("transform", why)))?;
        write_atomically(&dir.join("job.toml"), rewritten.as_bytes())?;
        let record = handle.status().swaps.len();
        if let Err(error) = handle.swap(transform, &spec) {
            write_atomically(&dir.join("job.toml"), old.as_bytes())?;
            return Err(JobsError::Refused(Refusal::invalid(
                "plugin",
                error.to_string(),
            )));
        }
        if let Some(why) = first_batch_failure(&handle, record) {
            write_atomically(&dir.join("job.toml"), old.as_bytes())?;
            return Err(JobsError::Refused(Refusal::invalid(
                "plugin",
                format!(
                    "the new version failed its first batch, so the job went back to the old one: {why}"
                ),
            )));
        }
        let mut jobs = self.locked();
        let job = jobs.get_mut(id).ok_or(JobsError::NotFound)?;
        job.transforms[index] = spec;
        Ok(job.view(id))
    }

    /// `tenant`'s jobs.
    pub(crate) fn list(&self, tenant: &Tenant) -> Vec<JobView> {
        self.locked()
            .iter()
            .filter(|(_, job)| job.tenant == tenant.name())
            .map(|(id, job)| job.view(id))
            .collect()
    }

    /// Job `id`, if it is `tenant`'s.
    pub(crate) fn get(&self, tenant: &Tenant, id: &str) -> Result<JobView, JobsError> {
        self.locked()
            .get(id)
            .filter(|job| job.tenant == tenant.name())
            .map(|job| job.view(id))
            .ok_or(JobsError::NotFound)
    }

    /// Stop job `id` of `tenant` at its next batch boundary (it
    /// checkpoints first); a restarted host leaves it stopped.
    pub(crate) fn stop(&self, tenant: &Tenant, id: &str) -> Result<JobView, JobsError> {
        let jobs = self.locked();
        let job = jobs
            .get(id)
            .filter(|job| job.tenant == tenant.name())
            .ok_or(JobsError::NotFound)?;
        write_atomically(&self.job_dir(tenant.name(), id).join("stopped"), b"")?;
        if let Some(handle) = job.handle() {
            handle.stop();
        }
        Ok(job.view(id))
    }

    /// Stop every job at its next batch boundary and wait for each: a
    /// host shutting down. The jobs stay on record, so the next start of
    /// the host resumes them.
    pub(crate) fn shut_down(&self) {
        let handles: Vec<(String, Arc<JobHandle>)> = self
            .locked()
            .iter_mut()
            .filter_map(|(id, job)| {
                let run = std::mem::replace(
                    &mut job.run,
                    Run::NotStarted("the host is shutting down".into()),
                );
                match run {
                    Run::Running(handle) => Some((id.clone(), handle)),
                    Run::Stopped | Run::NotStarted(_) => None,
                }
            })
            .collect();
        for (_, handle) in &handles {
            handle.stop();
        }
        for (id, handle) in handles {
            // Only a swap under way shares the handle; its job stops all
            // the same.
            if let Ok(handle) = Arc::try_unwrap(handle)
                && let Err(error) = handle.wait()
            {
                tracing::warn!(id, "stopped with an error: {error}");
            }
        }
    }
}

/// What went wrong, in a line.
pub(crate) fn describe(error: &JobsError) -> String {
    match error {
        JobsError::Invalid(e) => e.to_string(),
        JobsError::Refused(r) => format!("{}: {}", r.field, r.message),
        JobsError::Quota(m) | JobsError::Start(m) => m.clone(),
        JobsError::NotFound => "no such job".into(),
        JobsError::Storage(e) => format!("the host's storage: {e}"),
        JobsError::Plugins(e) => e.to_string(),
    }
}

/// How long a swap waits for the new version's first batch.
const FIRST_BATCH_WAIT: Duration = Duration::from_secs(10);

/// Wait for the first batch after swap number `record` of the job: why
/// the new version failed it, if it did. A job that sees no batch within
/// [`FIRST_BATCH_WAIT`] keeps the new version on trial.
fn first_batch_failure(handle: &JobHandle, record: usize) -> Option<String> {
    let switched_at = handle.status().batches;
    let deadline = Instant::now() + FIRST_BATCH_WAIT;
    loop {
        let status = handle.status();
        if let Some(why) = status.swaps.get(record).and_then(|s| s.rolled_back.clone()) {
            return Some(why);
        }
        let running = matches!(status.state, JobState::Starting | JobState::Running);
        if status.batches > switched_at || !running || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The job file `text` with its `index`th transform's plugin named
/// `plugin` and its config `config`.
fn with_transform(
    text: &str,
    index: usize,
    plugin: &str,
    config: &[(String, String)],
) -> Result<String, String> {
    let mut job: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let transform = job
        .get_mut("transform")
        .and_then(|t| t.as_array_mut())
        .and_then(|t| t.get_mut(index))
        .and_then(|t| t.as_table_mut())
        .ok_or("the job file has no such transform")?;
    transform.insert("plugin".into(), toml::Value::String(plugin.to_owned()));
    let config: toml::Table = config
        .iter()
        .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
        .collect();
    transform.insert("config".into(), toml::Value::Table(config));
    toml::to_string(&job).map_err(|e| e.to_string())
}

/// The `[job] name` of a job file, for listing a job that is not running.
fn job_name(text: &str) -> String {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("job")?.get("name")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "job".into())
}

/// A new job id: 12 random hex digits.
fn new_id() -> Result<String, JobsError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| JobsError::Storage(std::io::Error::other(e)))?;
    Ok(hex::encode(bytes))
}

/// Write `file` whole or not at all: a temporary file beside it, renamed.
pub(crate) fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temporary, bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(file).map_err(|e| e.error)?;
    Ok(())
}
