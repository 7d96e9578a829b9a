//! Sinks of rows for a job: `console` (a table per batch, like Spark's
//! console sink), `file` (JSON lines, appended; exactly-once when the job
//! checkpoints), `parquet` (part files in a directory, like Spark's file
//! sink; exactly-once when the job checkpoints) and, for tests, memory.
//!
//! A sink sees the job's epochs: what it is handed between two commits
//! belongs to one epoch, which the job commits once its checkpoint is
//! durable, or aborts when it goes back to the last checkpoint. Sinks that
//! can hold an epoch back (memory, Kafka's transactions) make output
//! exactly-once; the others deliver at least once.

mod file;
mod parquet_parts;

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use sluice_config::SinkSpec;

use file::JsonLinesFile;
use parquet_parts::ParquetParts;

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink could not be opened.
    #[error("cannot open sink {what}: {message}")]
    Open {
        /// Which sink.
        what: String,
        /// Why.
        message: String,
    },
    /// Writing failed.
    #[error("writing to sink {what}: {message}")]
    Write {
        /// Which sink.
        what: String,
        /// Why.
        message: String,
    },
}

/// A destination of rows.
pub trait Sink: Send + std::fmt::Debug {
    /// Hand one batch to the sink. A sink may still be delivering it when
    /// this returns; any failure surfaces from a later call.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError>;

    /// Wait until everything written so far is durable (or shown).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// The epoch's checkpoint is durable (the job flushed every sink
    /// before taking it): make what was written since the last commit
    /// visible.
    fn commit(&mut self, _epoch: u64) -> Result<(), SinkError> {
        Ok(())
    }

    /// The job goes back to its last checkpoint: drop what was written
    /// since the last commit, where the sink can.
    fn abort(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// The job checkpoints, and has restored epoch `restored` (`None`: it
    /// starts fresh). A sink that can hold epochs back does so from now
    /// on, makes visible an epoch up to `restored` that was checkpointed
    /// but not yet made visible, and drops what it holds of later ones.
    fn recover(&mut self, _restored: Option<u64>) -> Result<(), SinkError> {
        Ok(())
    }

    /// Whether rows of the next epoch must wait until the last epoch has
    /// committed (the job holds them back meanwhile): so for a sink that
    /// makes epochs visible at their commit or writes in a transaction.
    /// A sink whose writes are visible at once and that keeps no epochs
    /// says no, and its rows go out while the checkpoint is written.
    fn waits_for_commits(&self) -> bool {
        true
    }
}

/// Rows a [`MemorySink`] committed, shared with whoever reads them.
#[derive(Debug, Clone, Default)]
pub struct MemoryRows(Arc<Mutex<Vec<RecordBatch>>>);

impl MemoryRows {
    /// The committed batches, in order.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Keeps rows in memory; an epoch's rows become visible in
/// [`MemoryRows`] only when it commits.
#[derive(Debug, Default)]
pub struct MemorySink {
    pending: Vec<RecordBatch>,
    committed: MemoryRows,
}

impl MemorySink {
    /// A sink whose committed rows `rows` shows.
    pub fn new(rows: MemoryRows) -> Self {
        MemorySink {
            pending: Vec::new(),
            committed: rows,
        }
    }
}

impl Sink for MemorySink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.pending.push(batch.clone());
        Ok(())
    }

    fn commit(&mut self, _epoch: u64) -> Result<(), SinkError> {
        let mut committed = self.committed.0.lock().unwrap_or_else(|e| e.into_inner());
        committed.append(&mut self.pending);
        Ok(())
    }

    fn abort(&mut self) -> Result<(), SinkError> {
        self.pending.clear();
        Ok(())
    }
}

/// Open the sink `spec` describes; `label` names it in output and errors.
pub fn open(spec: &SinkSpec, label: &str) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match spec {
        SinkSpec::Console(console) => Box::new(Console {
            label: label.to_owned(),
            num_rows: console.num_rows,
            batches: 0,
        }),
        SinkSpec::File(file) => Box::new(JsonLinesFile::open(&file.path, label)?),
        SinkSpec::Parquet(spec) => Box::new(ParquetParts::open(spec, label)?),
        SinkSpec::Kafka(_) => {
            return Err(SinkError::Open {
                what: label.to_owned(),
                message: "a Kafka sink is opened by sluice-kafka".into(),
            });
        }
    })
}

/// Prints each batch as a table.
#[derive(Debug)]
struct Console {
    label: String,
    num_rows: usize,
    batches: u64,
}

impl Sink for Console {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let shown = batch.slice(0, batch.num_rows().min(self.num_rows));
        let table = pretty_format_batches(&[shown]).map_err(|e| SinkError::Write {
            what: self.label.clone(),
            message: e.to_string(),
        })?;
        let rule = "-------------------------------------------";
        let mut text = format!(
            "{rule}\nBatch: {} ({})\n{rule}\n{table}\n",
            self.batches, self.label
        );
        if batch.num_rows() > self.num_rows {
            text.push_str(&format!(
                "only showing top {} of {} rows\n",
                self.num_rows,
                batch.num_rows()
            ));
        }
        self.batches += 1;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| SinkError::Write {
                what: self.label.clone(),
                message: e.to_string(),
            })
    }
}
