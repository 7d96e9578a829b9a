//! The `file` sink: rows appended to a file as JSON lines.
//!
//! Without checkpoints, each batch is appended as it comes. When the job
//! checkpoints, an epoch's rows go to `PATH.pending` first and are appended
//! to `PATH` only when the epoch commits, and each commit is logged in
//! `PATH.epochs` with the file's length after it (like Spark's file sink
//! log). A restart truncates `PATH` to the length the restored epoch left
//! (dropping a half-done append) and, if the restored epoch was
//! checkpointed but never appended, appends it from `PATH.pending`: each
//! row is in `PATH` once.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::json::LineDelimitedWriter;
use arrow::record_batch::RecordBatch;

use crate::{Sink, SinkError};

/// Appends rows as JSON lines; see the module docs for epochs.
pub(crate) struct JsonLinesFile {
    what: String,
    path: PathBuf,
    writer: LineDelimitedWriter<BufWriter<File>>,
    /// Whether rows are held per epoch (the job checkpoints).
    epochs: bool,
}

impl std::fmt::Debug for JsonLinesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesFile")
            .field("file", &self.what)
            .field("epochs", &self.epochs)
            .finish()
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl JsonLinesFile {
    /// Open `path` for appending.
    pub(crate) fn open(path: &Path, label: &str) -> Result<Self, SinkError> {
        let what = format!("{label} ({})", path.display());
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| SinkError::Open {
                what: what.clone(),
                message: e.to_string(),
            })?;
        Ok(JsonLinesFile {
            what,
            path: path.to_owned(),
            writer: LineDelimitedWriter::new(BufWriter::new(file)),
            epochs: false,
        })
    }

    fn error(&self, message: impl std::fmt::Display) -> SinkError {
        SinkError::Write {
            what: self.what.clone(),
            message: message.to_string(),
        }
    }

    fn pending_path(&self) -> PathBuf {
        with_suffix(&self.path, ".pending")
    }

    fn log_path(&self) -> PathBuf {
        with_suffix(&self.path, ".epochs")
    }

    /// Start writing to an empty pending file. Rows of the old one still
    /// buffered (an aborted epoch's) are dropped: letting the old writer
    /// flush them as it drops would write them into the new file.
    fn fresh_pending(&mut self) -> Result<(), SinkError> {
        let pending = File::create(self.pending_path()).map_err(|e| self.error(e))?;
        let old = std::mem::replace(
            &mut self.writer,
            LineDelimitedWriter::new(BufWriter::new(pending)),
        );
        let (_file, _unwritten) = old.into_inner().into_parts();
        Ok(())
    }

    /// The log: (epoch, length of the file after it), oldest first.
    fn read_log(&self) -> Result<Vec<(u64, u64)>, SinkError> {
        let text = match std::fs::read_to_string(self.log_path()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut parts = line.split_whitespace();
                let epoch = parts.next().and_then(|p| p.parse().ok());
                let length = parts.next().and_then(|p| p.parse().ok());
                epoch
                    .zip(length)
                    .ok_or_else(|| self.error(format!("unreadable epoch log line {line:?}")))
            })
            .collect()
    }

    /// Append the pending rows to the file as `epoch`, and log it.
    fn publish(&mut self, epoch: u64) -> Result<(), SinkError> {
        let mut pending = File::open(self.pending_path()).map_err(|e| self.error(e))?;
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        std::io::copy(&mut pending, &mut file).map_err(|e| self.error(e))?;
        file.sync_all().map_err(|e| self.error(e))?;
        let length = file.metadata().map_err(|e| self.error(e))?.len();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| self.error(e))?;
        writeln!(log, "{epoch} {length}")
            .and_then(|()| log.sync_all())
            .map_err(|e| self.error(e))
    }

    /// Append `batch` straight to the file (no epochs). If that fails
    /// part way (a full disk), the file is cut back to where the batch
    /// began, so it never ends in half a line.
    fn append(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let file = self.writer.get_ref().get_ref();
        let before = file.metadata().map_err(|e| self.error(e))?.len();
        let written = self
            .writer
            .write(batch)
            .and_then(|()| Ok(self.writer.get_mut().flush()?));
        let Err(error) = written else {
            return Ok(());
        };
        // Start a new buffer, dropping what the failed write left in it
        // (dropping the old one would try to write it out).
        let file = self.writer.get_ref().get_ref();
        let reopened = file.try_clone().map_err(|e| self.error(e))?;
        let failed = std::mem::replace(
            &mut self.writer,
            LineDelimitedWriter::new(BufWriter::new(reopened)),
        );
        let (file, _unwritten) = failed.into_inner().into_parts();
        Err(match file.set_len(before) {
            Ok(()) => self.error(error),
            Err(cut) => self.error(format!(
                "{error}; the file now ends in a partly written batch, which could not be removed: {cut}"
            )),
        })
    }
}

impl Sink for JsonLinesFile {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        if self.epochs {
            self.writer.write(batch).map_err(|e| self.error(e))
        } else {
            self.append(batch)
        }
    }

    /// Everything written is on disk (fsync) when this returns. A path
    /// that is not a regular file (`/dev/null`, a pipe) has nothing to
    /// sync, and cannot be.
    fn flush(&mut self) -> Result<(), SinkError> {
        let flushed = self.writer.get_mut().flush();
        flushed.map_err(|e| self.error(e))?;
        let file = self.writer.get_ref().get_ref();
        let regular = file.metadata().map_err(|e| self.error(e))?.is_file();
        if regular {
            file.sync_all().map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    fn commit(&mut self, epoch: u64) -> Result<(), SinkError> {
        if !self.epochs {
            return Ok(());
        }
        self.flush()?;
        self.publish(epoch)?;
        self.fresh_pending()
    }

    fn abort(&mut self) -> Result<(), SinkError> {
        if self.epochs {
            self.fresh_pending()
        } else {
            Ok(())
        }
    }

    fn recover(&mut self, restored: Option<u64>) -> Result<(), SinkError> {
        self.epochs = true;
        let log = self.read_log()?;
        let visible_length = match (restored, log.last()) {
            // No checkpoint restored: keep every published epoch.
            (None, Some((_, length))) => *length,
            (Some(restored), Some(_)) => log
                .iter()
                .rev()
                .find(|(e, _)| *e <= restored)
                .map_or(log[0].1, |(_, length)| *length),
            // No epoch of this job is in the file yet: keep what it held
            // before, and log that as the start.
            (_, None) => {
                let length = std::fs::metadata(&self.path)
                    .map_err(|e| self.error(e))?
                    .len();
                let mut file = File::create(self.log_path()).map_err(|e| self.error(e))?;
                writeln!(file, "0 {length}").map_err(|e| self.error(e))?;
                length
            }
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        file.set_len(visible_length).map_err(|e| self.error(e))?;
        let last_logged = log.last().map(|(e, _)| *e);
        if let (Some(restored), Some(last)) = (restored, last_logged)
            && last < restored
            && self.pending_path().exists()
        {
            // Checkpointed, never appended: its rows are all in pending.
            self.publish(restored)?;
        }
        self.fresh_pending()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rows(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
    }

    fn ids(path: &Path) -> Vec<i64> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                l.trim_start_matches("{\"id\":")
                    .trim_end_matches('}')
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn every_checkpointed_epoch_lands_once_whatever_step_a_crash_interrupts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"id\":0}\n").unwrap();

        let mut sink = JsonLinesFile::open(&path, "test").unwrap();
        sink.recover(None).unwrap();
        sink.write(&rows(&[1, 2])).unwrap();
        sink.flush().unwrap();
        sink.commit(1).unwrap();
        assert_eq!(ids(&path), [0, 1, 2]);

        // Epoch 2 is flushed and checkpointed, then the process dies
        // before its commit: a restart rolls it forward.
        sink.write(&rows(&[3])).unwrap();
        sink.flush().unwrap();
        drop(sink);
        let mut sink = JsonLinesFile::open(&path, "test").unwrap();
        sink.recover(Some(2)).unwrap();
        assert_eq!(ids(&path), [0, 1, 2, 3]);

        // Epoch 3 dies before its checkpoint, mid-append of a broken line:
        // the restart goes back to epoch 2 and drops both.
        sink.write(&rows(&[4])).unwrap();
        sink.flush().unwrap();
        drop(sink);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"id\":4").unwrap();
        drop(file);
        let mut sink = JsonLinesFile::open(&path, "test").unwrap();
        sink.recover(Some(2)).unwrap();
        assert_eq!(ids(&path), [0, 1, 2, 3]);

        // Aborted rows never land, even still buffered and longer than
        // the rows written after them.
        sink.write(&rows(&[99999, 99998])).unwrap();
        sink.abort().unwrap();
        sink.write(&rows(&[4])).unwrap();
        sink.flush().unwrap();
        sink.commit(3).unwrap();
        assert_eq!(ids(&path), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn without_checkpoints_rows_are_appended_as_they_come() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut sink = JsonLinesFile::open(&path, "test").unwrap();
        sink.write(&rows(&[1])).unwrap();
        assert_eq!(ids(&path), [1]);
        assert!(!with_suffix(&path, ".pending").exists());
    }
}
