//! Committing an epoch off the job's thread. Once an epoch's snapshot is
//! taken at a batch boundary, a thread of its own writes the checkpoint
//! (files, then manifest) and then, exactly-once into Kafka, commits the
//! epoch's transaction with its offsets. The job meanwhile runs the next
//! epoch's batches; what they write to a sink that waits for commits is
//! held back ([`Deferred`]) until the commit is done, since nothing of the
//! next epoch may reach such a sink before the last one commits (a Kafka
//! producer has one transaction at a time, and the file sink makes visible
//! what it holds at a commit). A sink whose rows are visible at once (an
//! idempotent Kafka producer) gets them at once.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use sluice_kafka::Transactions;
use sluice_source::Position;

use crate::JobError;
use crate::checkpoint::{EpochMetadata, EpochWriter};

/// How many bytes of the next epoch's output may wait for a commit before
/// the job waits for it too.
pub(crate) const MAX_DEFERRED_BYTES: usize = 256 << 20;

/// An epoch being committed on a thread of its own.
#[derive(Debug)]
pub(crate) struct InFlight {
    epoch: u64,
    thread: JoinHandle<Committed>,
}

/// How an epoch's commit ended.
#[derive(Debug)]
pub(crate) struct Committed {
    /// The epoch.
    pub(crate) epoch: u64,
    /// The job's transactions, back from the commit.
    pub(crate) transactions: Option<Transactions>,
    /// Whether the checkpoint and the transaction committed.
    pub(crate) result: Result<(), JobError>,
    /// From the snapshot to the end of the commit.
    pub(crate) took: Duration,
}

/// What the commit needs of the epoch.
#[derive(Debug)]
pub(crate) struct Epoch {
    /// Its number.
    pub(crate) number: u64,
    /// The operators' state files.
    pub(crate) files: Vec<(String, Bytes)>,
    /// Its manifest's metadata.
    pub(crate) metadata: EpochMetadata,
    /// The source positions it ends at.
    pub(crate) positions: Vec<Position>,
}

impl InFlight {
    /// Start committing `epoch`: write its checkpoint with `writer`, then
    /// commit `transactions` (if the job has them) with its positions, then
    /// drop old checkpoints.
    pub(crate) fn start(
        writer: EpochWriter,
        epoch: Epoch,
        mut transactions: Option<Transactions>,
    ) -> Result<Self, JobError> {
        let number = epoch.number;
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name(format!("sluice-commit-{number}"))
            .spawn(move || {
                let result = commit(&writer, epoch, transactions.as_mut());
                if result.is_ok()
                    && let Err(error) = writer.retain()
                {
                    tracing::warn!("deleting old checkpoints: {error}");
                }
                Committed {
                    epoch: number,
                    transactions,
                    result,
                    took: started.elapsed(),
                }
            })
            .map_err(|e| JobError::Setup(format!("starting a commit thread: {e}")))?;
        Ok(InFlight {
            epoch: number,
            thread,
        })
    }

    /// Whether the commit has ended.
    pub(crate) fn is_done(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the commit to end.
    pub(crate) fn wait(self) -> Committed {
        let epoch = self.epoch;
        self.thread.join().unwrap_or_else(|_| Committed {
            epoch,
            // The transactional producer went down with the thread; the
            // job cannot go on writing.
            transactions: None,
            result: Err(JobError::Setup(format!(
                "the thread committing epoch {epoch} panicked"
            ))),
            took: Duration::ZERO,
        })
    }
}

/// The commit point: the checkpoint is durable before the output commits.
fn commit(
    writer: &EpochWriter,
    epoch: Epoch,
    transactions: Option<&mut Transactions>,
) -> Result<(), JobError> {
    writer.write(epoch.number, epoch.files, &epoch.metadata)?;
    if let Some(transactions) = transactions {
        transactions.commit(epoch.number, &epoch.positions)?;
    }
    Ok(())
}

/// Where a held-back write goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// The main sink.
    Sink,
    /// A named output.
    Output(String),
}

/// The next epoch's writes, held back while the last epoch commits.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    writes: Vec<(Destination, RecordBatch)>,
    bytes: usize,
}

impl Deferred {
    /// Hold `batch` back.
    pub(crate) fn push(&mut self, to: Destination, batch: RecordBatch) {
        self.bytes += batch.get_array_memory_size();
        self.writes.push((to, batch));
    }

    /// Whether the job should wait for the commit rather than hold more.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= MAX_DEFERRED_BYTES
    }

    /// The writes, in the order they were made.
    pub(crate) fn take(&mut self) -> Vec<(Destination, RecordBatch)> {
        self.bytes = 0;
        std::mem::take(&mut self.writes)
    }
}
