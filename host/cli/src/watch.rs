//! `sluice run --watch`: a transform's plugin is reloaded when its `.wasm`
//! file changes, for development. Each change is given time to settle
//! (a build or an editor writes a file in several steps, or replaces it
//! by a rename), the file is read and hashed, and a version the job does
//! not already run is swapped in at the job's next batch boundary with
//! its state carried across. A file that is missing, or not a component
//! the job can take, is reported and the job goes on with the version it
//! runs until the file changes again.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use sluice_config::PluginSpec;
use sluice_job::{JobControl, JobState};

/// How long a plugin file must go unchanged before it is read: long
/// enough for a build or an editor to finish writing it.
const SETTLE: Duration = Duration::from_millis(250);

/// How often a reloaded version on trial (not yet through its first
/// batch) is looked at.
const TRIAL_POLL: Duration = Duration::from_millis(100);

/// What the reloading thread is told.
#[derive(Debug)]
enum Message {
    /// The file system reported a change in a watched directory.
    Changed(notify::Result<notify::Event>),
    /// The job has ended: stop watching.
    Stop,
}

/// A plugin file watched, and the transforms that run it.
#[derive(Debug)]
struct PluginFile {
    /// The file, as the job names it.
    path: PathBuf,
    /// The directory watched for it, canonical: the file itself cannot be
    /// watched, as a rename puts another file in its place.
    directory: PathBuf,
    /// The file's name in `directory`.
    file_name: OsString,
    /// The transforms that run it, each with its own settings.
    transforms: Vec<PluginSpec>,
    /// The SHA-256 of the content last read, in hex (the form of a
    /// plugin's digest).
    last_read: Option<String>,
}

/// The plugin files of a job's transforms, watched from before the job
/// starts; [`PluginWatch::start`] reloads them once it runs.
#[derive(Debug)]
pub(crate) struct PluginWatch {
    /// Reports changes into `changes` while it lives.
    watcher: RecommendedWatcher,
    /// The reloading thread's end of the changes, and the end that
    /// stops it.
    changes: (Sender<Message>, Receiver<Message>),
    /// The files.
    files: Vec<PluginFile>,
}

impl PluginWatch {
    /// Watch the plugin file of each of `transforms` that is a file on
    /// disk.
    pub(crate) fn new(transforms: &[PluginSpec]) -> anyhow::Result<PluginWatch> {
        let (sender, receiver) = channel();
        let reports = sender.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            // Nothing listens once the thread has stopped.
            let _ = reports.send(Message::Changed(event));
        })
        .context("watching plugin files")?;
        let mut files: Vec<PluginFile> = Vec::new();
        for spec in transforms.iter().filter(|spec| spec.plugin.is_file()) {
            if let Some(file) = files.iter_mut().find(|file| file.path == spec.plugin) {
                file.transforms.push(spec.clone());
                continue;
            }
            let (directory, file_name) = locate(&spec.plugin)?;
            if !files.iter().any(|file| file.directory == directory) {
                watcher
                    .watch(&directory, RecursiveMode::NonRecursive)
                    .with_context(|| format!("watching {}", directory.display()))?;
            }
            files.push(PluginFile {
                path: spec.plugin.clone(),
                directory,
                file_name,
                transforms: vec![spec.clone()],
                last_read: None,
            });
        }
        Ok(PluginWatch {
            watcher,
            changes: (sender, receiver),
            files,
        })
    }

    /// Reload the plugins of the job `control` controls as their files
    /// change, on a thread of its own. Each file is looked at once first,
    /// for a change made while the job was loading.
    pub(crate) fn start(self, control: JobControl) -> std::io::Result<Reloader> {
        let (stop, changes) = self.changes;
        let now = Instant::now();
        let mut reloading = Reloading {
            settled_at: (0..self.files.len()).map(|index| (index, now)).collect(),
            files: self.files,
            control,
            trials: Vec::new(),
        };
        let watcher = self.watcher;
        let thread = std::thread::Builder::new()
            .name("sluice-watch".into())
            .spawn(move || {
                // Watching ends with the thread.
                let _watcher = watcher;
                reloading.run(&changes);
            })?;
        Ok(Reloader { stop, thread })
    }
}

/// The directory to watch for `plugin` (canonical), and the file's name
/// in it.
fn locate(plugin: &Path) -> anyhow::Result<(PathBuf, OsString)> {
    let file_name = plugin
        .file_name()
        .with_context(|| format!("{} names no file", plugin.display()))?;
    let directory = match plugin.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let directory = directory
        .canonicalize()
        .with_context(|| format!("finding the directory of {}", plugin.display()))?;
    Ok((directory, file_name.to_owned()))
}

/// The thread reloading plugins, until [`Reloader::stop`].
#[derive(Debug)]
pub(crate) struct Reloader {
    /// Tells the thread to stop.
    stop: Sender<Message>,
    /// The thread.
    thread: JoinHandle<()>,
}

impl Reloader {
    /// Stop watching, once a reload under way has finished.
    pub(crate) fn stop(self) {
        // A thread that has ended has dropped its end: nothing to tell.
        let _ = self.stop.send(Message::Stop);
        if self.thread.join().is_err() {
            tracing::warn!("the plugin watcher panicked; plugins were not reloaded since");
        }
    }
}

/// A reloaded version that has not yet passed its first batch.
#[derive(Debug)]
struct Trial {
    /// The transform.
    transform: String,
    /// The file it came from.
    path: PathBuf,
    /// Its place in the job status's swaps.
    record: usize,
    /// The job status's batches once the swap was made: one more passed
    /// it (a new version on trial is kept before its batch is counted).
    batches: u64,
}

/// The reloading thread's state.
#[derive(Debug)]
struct Reloading {
    /// The files watched.
    files: Vec<PluginFile>,
    /// When each changed file (by index) will have gone unchanged for
    /// [`SETTLE`].
    settled_at: HashMap<usize, Instant>,
    /// Swaps the job with.
    control: JobControl,
    /// Reloaded versions not yet through their first batch.
    trials: Vec<Trial>,
}

impl Reloading {
    /// Follow `changes` until told to stop.
    fn run(&mut self, changes: &Receiver<Message>) {
        loop {
            let message = match self.next_wake() {
                Some(at) => changes.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => changes.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match message {
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    // A version that failed its first batch may have ended the job.
                    self.judge_trials();
                    return;
                }
                Ok(Message::Changed(Ok(event))) => self.note(&event),
                Ok(Message::Changed(Err(error))) => {
                    tracing::warn!("watching plugin files: {error}");
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.judge_trials();
            self.reload_settled();
        }
    }

    /// When something is next due: a file settled or a trial to look at.
    fn next_wake(&self) -> Option<Instant> {
        let trial = (!self.trials.is_empty()).then(|| Instant::now() + TRIAL_POLL);
        self.settled_at.values().copied().chain(trial).min()
    }

    /// Note the changes of `event` to watched files: each is read once it
    /// has settled.
    fn note(&mut self, event: &notify::Event) {
        let changes_content = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            // Opened or read, by this watcher too.
            EventKind::Access(_) => false,
            _ => true,
        };
        if !changes_content {
            return;
        }
        let settled_at = Instant::now() + SETTLE;
        for path in &event.paths {
            let changed = self.files.iter().position(|file| {
                path.file_name() == Some(file.file_name.as_os_str())
                    && path.parent() == Some(file.directory.as_path())
            });
            if let Some(index) = changed {
                self.settled_at.insert(index, settled_at);
            }
        }
    }

    /// Reload every file that has settled, but for one whose transform
    /// still has a new version on trial (the job takes no other swap
    /// meanwhile): it waits for the verdict.
    fn reload_settled(&mut self) {
        let now = Instant::now();
        let settled: Vec<usize> = self
            .settled_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(index, _)| *index)
            .collect();
        for index in settled {
            let on_trial = self.files[index]
                .transforms
                .iter()
                .any(|spec| self.trials.iter().any(|t| t.transform == spec.name));
            if on_trial {
                self.settled_at.insert(index, now + TRIAL_POLL);
            } else {
                self.settled_at.remove(&index);
                self.reload(index);
            }
        }
    }

    /// Swap in the content of file `index` for each transform that runs
    /// it, unless it is what was read last or what the transform runs.
    fn reload(&mut self, index: usize) {
        let file = &mut self.files[index];
        let shown = file.path.display().to_string();
        let content = match std::fs::read(&file.path) {
            Ok(content) => content,
            Err(error) => {
                tracing::warn!(
                    file = %shown,
                    "cannot read the plugin file ({error}); the job goes on with the version it runs until the file changes again"
                );
                return;
            }
        };
        let digest = hex::encode(Sha256::digest(&content));
        if file.last_read.as_deref() == Some(digest.as_str()) {
            return;
        }
        file.last_read = Some(digest.clone());
        let running = self.control.status().plugins;
        for spec in &file.transforms {
            let runs_it = running
                .iter()
                .any(|(name, running)| *name == spec.name && *running == digest);
            if runs_it {
                continue;
            }
            match self.control.swap(&spec.name, spec) {
                Ok(swapped) => {
                    tracing::info!(
                        transform = %spec.name,
                        file = %shown,
                        from = %swapped.from,
                        to = %swapped.to,
                        pause = ?swapped.pause,
                        "reloaded the plugin file"
                    );
                    let status = self.control.status();
                    let record = status.swaps.iter().rposition(|record| {
                        record.transform == spec.name && record.to == swapped.to
                    });
                    if let Some(record) = record {
                        self.trials.push(Trial {
                            transform: spec.name.clone(),
                            path: file.path.clone(),
                            record,
                            batches: status.batches,
                        });
                    }
                }
                Err(error) => tracing::warn!(
                    transform = %spec.name,
                    file = %shown,
                    "the job goes on with the version it runs: {error}"
                ),
            }
        }
    }

    /// Report each reloaded version that the job went back from, and
    /// forget those it kept (or that it ended with).
    fn judge_trials(&mut self) {
        if self.trials.is_empty() {
            return;
        }
        let status = self.control.status();
        let job_ended = matches!(status.state, JobState::Finished | JobState::Failed(_));
        self.trials.retain(|trial| {
            let rolled_back = status
                .swaps
                .get(trial.record)
                .and_then(|record| record.rolled_back.as_deref());
            if let Some(cause) = rolled_back {
                tracing::warn!(
                    transform = %trial.transform,
                    file = %trial.path.display(),
                    "the reloaded version failed its first batch, so the job went back to the version it ran: {cause}"
                );
                return false;
            }
            status.batches <= trial.batches && !job_ended
        });
    }
}
