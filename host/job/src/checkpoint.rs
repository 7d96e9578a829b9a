//! A running job's side of the checkpoint store: what an epoch's manifest
//! says about the job (source positions, its operators and their plugins),
//! which checkpoint a restart restores, and whether a checkpoint fits the
//! job as it is now.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_config::CheckpointConfig;
use sluice_operator::Operator;
use sluice_source::Position;
use sluice_state::{Checkpoint, CheckpointStore, StateError};

/// The job's facts an epoch's manifest carries beside its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EpochMetadata {
    /// The job's name.
    pub(crate) job: String,
    /// Where the source is at the end of the epoch.
    pub(crate) positions: Vec<SavedPosition>,
    /// The operators, in order.
    pub(crate) operators: Vec<SavedOperator>,
}

/// A source position, as a manifest holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedPosition {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// An operator, as a manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedOperator {
    /// Its name; its state is the file `operator.<name>`.
    pub(crate) name: String,
    /// The sha256 of its plugin.
    pub(crate) plugin_digest: String,
    /// What its state's meaning depends on (see
    /// [`Operator::state_definition`]).
    pub(crate) state_definition: String,
    /// Whether the epoch holds state for it.
    pub(crate) has_state: bool,
}

impl From<&Position> for SavedPosition {
    fn from(p: &Position) -> Self {
        SavedPosition {
            topic: p.topic.clone(),
            partition: p.partition,
            offset: p.offset,
        }
    }
}

impl From<&SavedPosition> for Position {
    fn from(p: &SavedPosition) -> Self {
        Position {
            topic: p.topic.clone(),
            partition: p.partition,
            offset: p.offset,
        }
    }
}

/// The checkpoint file of an operator's state.
pub(crate) fn state_file(operator: &str) -> String {
    format!("operator.{}", operator.replace('/', "_"))
}

/// The job's checkpoints: the store, the epochs, and how often.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    store: CheckpointStore,
    /// Drives the store's I/O, for the job's thread and for the threads
    /// that write epochs in the background.
    runtime: tokio::runtime::Runtime,
    pub(crate) interval: Duration,
    keep: usize,
    /// The epoch the job is writing.
    pub(crate) epoch: u64,
    /// The last epoch committed (restored or taken): where a failure goes
    /// back to.
    pub(crate) last_committed: Option<u64>,
}

impl Checkpoints {
    /// Open the store and find the first free epoch.
    pub(crate) fn open(config: &CheckpointConfig) -> Result<Self, StateError> {
        Self::with_store(
            CheckpointStore::open(&config.location, &config.options)?,
            config,
        )
    }

    /// Use `store` (instead of `config`'s location), and find the first
    /// free epoch.
    pub(crate) fn with_store(
        store: CheckpointStore,
        config: &CheckpointConfig,
    ) -> Result<Self, StateError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-checkpoint-io")
            .enable_all()
            .build()
            .map_err(|e| StateError::Location {
                location: config.location.clone(),
                reason: format!("starting the I/O runtime: {e}"),
            })?;
        let mut checkpoints = Checkpoints {
            store,
            runtime,
            interval: config.interval,
            keep: config.keep,
            epoch: 1,
            last_committed: None,
        };
        checkpoints.epoch = checkpoints.committed()?.last().map_or(1, |last| last + 1);
        Ok(checkpoints)
    }

    /// The location, for messages.
    pub(crate) fn location(&self) -> &str {
        self.store.location()
    }

    /// The committed epochs, oldest first.
    pub(crate) fn committed(&self) -> Result<Vec<u64>, StateError> {
        self.runtime.block_on(self.store.committed())
    }

    /// Read and verify an epoch.
    pub(crate) fn read(&self, epoch: u64) -> Result<Checkpoint, StateError> {
        self.runtime.block_on(self.store.read(epoch))
    }

    /// Take the current epoch's number, and what writes it from another
    /// thread; the next epoch is the one after, whether this one commits
    /// or not.
    pub(crate) fn next_epoch(&mut self) -> (u64, EpochWriter) {
        let epoch = self.epoch;
        self.epoch += 1;
        let writer = EpochWriter {
            store: self.store.clone(),
            runtime: self.runtime.handle().clone(),
            keep: self.keep,
        };
        (epoch, writer)
    }

    /// The newest committed epoch whose positions, for the partitions the
    /// group committed, are the group's offsets.
    pub(crate) fn epoch_at(&self, committed: &[Position]) -> Result<Option<u64>, StateError> {
        let wanted: BTreeMap<(&str, i32), i64> = committed
            .iter()
            .map(|p| ((p.topic.as_str(), p.partition), p.offset))
            .collect();
        for epoch in self.committed()?.into_iter().rev() {
            let checkpoint = self.read(epoch)?;
            let Ok(metadata) =
                serde_json::from_value::<EpochMetadata>(checkpoint.manifest.metadata.clone())
            else {
                continue;
            };
            let matches = wanted.iter().all(|(&(topic, partition), &offset)| {
                metadata
                    .positions
                    .iter()
                    .any(|p| p.topic == topic && p.partition == partition && p.offset == offset)
            });
            if matches {
                return Ok(Some(epoch));
            }
        }
        Ok(None)
    }
}

/// Writes an epoch's checkpoint from any thread.
#[derive(Debug)]
pub(crate) struct EpochWriter {
    store: CheckpointStore,
    runtime: tokio::runtime::Handle,
    keep: usize,
}

impl EpochWriter {
    /// Write `epoch`: its files, then its manifest.
    pub(crate) fn write(
        &self,
        epoch: u64,
        files: Vec<(String, Bytes)>,
        metadata: &EpochMetadata,
    ) -> Result<(), StateError> {
        let metadata = serde_json::to_value(metadata).expect("epoch metadata serialises");
        self.runtime
            .block_on(self.store.commit(epoch, files, metadata))
            .map(drop)
    }

    /// Delete committed epochs beyond the newest `keep`.
    pub(crate) fn retain(&self) -> Result<(), StateError> {
        self.runtime
            .block_on(self.store.retain(self.keep))
            .map(drop)
    }
}

/// How the job's operators look now, for a manifest.
pub(crate) fn describe(operators: &[Box<dyn Operator>], states: &[bool]) -> Vec<SavedOperator> {
    operators
        .iter()
        .zip(states)
        .map(|(operator, has_state)| SavedOperator {
            name: operator.name().to_owned(),
            plugin_digest: operator.plugin_digest().to_owned(),
            state_definition: operator.state_definition(),
            has_state: *has_state,
        })
        .collect()
}

/// Whether state saved by `saved` operators can be restored into `now`
/// (the operators that may keep state; `stateless` are the job's others):
/// every operator that had state must still exist and keep state, with
/// the same state definition (window and key). A plugin of another
/// version is accepted here; its own `restore` decides.
pub(crate) fn check_compatible(
    saved: &[SavedOperator],
    stateless: &[SavedOperator],
    now: &[Box<dyn Operator>],
) -> Result<(), String> {
    for old in saved.iter().filter(|o| o.has_state) {
        if let Some(current) = stateless.iter().find(|o| o.name == old.name) {
            return Err(format!(
                "operator `{}` had state, and its plugin (now {}) keeps none",
                old.name, current.plugin_digest
            ));
        }
        let Some(current) = now.iter().find(|o| o.name() == old.name) else {
            return Err(format!(
                "operator `{}` had state, and the job no longer has an operator of that name",
                old.name
            ));
        };
        let definition = current.state_definition();
        if definition != old.state_definition {
            return Err(format!(
                "the state of `{}` was kept for {}, and the job now has {}",
                old.name, old.state_definition, definition
            ));
        }
        if current.plugin_digest() != old.plugin_digest {
            tracing::info!(
                operator = old.name,
                from = old.plugin_digest,
                to = current.plugin_digest(),
                "the plugin changed; restoring its state into the new version"
            );
        }
    }
    Ok(())
}
