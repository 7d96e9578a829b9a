//! The `parquet` sink: rows written as Parquet part files in a directory,
//! like Spark's file sink.
//!
//! Every file is written under a name starting with `.` and renamed into
//! place once complete and on disk, so readers that skip such names
//! (Spark, a `directory` source) never see half a file.
//!
//! Without checkpoints, each batch becomes a file as it comes:
//! `part-run<START>-<N>.parquet`, `START` the run's start in ms.
//!
//! When the job checkpoints, an epoch's rows go to `.pending-<N>.parquet`
//! files (a new one after each flush), which the epoch's commit renames to
//! `part-<EPOCH>-<N>.parquet` and then logs in `_sluice_epochs` (the log
//! Spark keeps in `_spark_metadata`). The job flushes the sink before the
//! epoch's checkpoint and commits it after, so at a restart from epoch
//! `R`, pending files are epoch `R`'s when the log ends before `R` (the
//! process died between checkpoint and commit: the restart renames the
//! rest of them), and otherwise an epoch's that never checkpointed (they
//! are deleted). Part files of epochs after `R` are deleted too, so each
//! row is in the directory once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sluice_config::{ParquetCompression, ParquetSink};

use crate::{Sink, SinkError};

/// The log of committed epochs, one number a line.
const LOG: &str = "_sluice_epochs";
const PENDING: &str = ".pending-";

/// Writes part files; see the module docs.
pub(crate) struct ParquetParts {
    what: String,
    dir: PathBuf,
    properties: WriterProperties,
    /// Whether rows are held per epoch (the job checkpoints).
    epochs: bool,
    /// The pending file being written (number `finished`), and its rows'
    /// schema.
    writer: Option<(ArrowWriter<File>, SchemaRef)>,
    /// Pending files of the epoch that are complete.
    finished: usize,
    /// Without epochs: the run's start, and files written.
    run: u128,
    written: usize,
}

impl std::fmt::Debug for ParquetParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetParts")
            .field("dir", &self.dir)
            .field("epochs", &self.epochs)
            .finish()
    }
}

impl ParquetParts {
    /// Create the directory if it is missing.
    pub(crate) fn open(spec: &ParquetSink, label: &str) -> Result<Self, SinkError> {
        let what = format!("{label} ({})", spec.path.display());
        std::fs::create_dir_all(&spec.path).map_err(|e| SinkError::Open {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let compression = match spec.compression {
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Lz4 => Compression::LZ4_RAW,
            ParquetCompression::Gzip => Compression::GZIP(GzipLevel::default()),
            ParquetCompression::Uncompressed => Compression::UNCOMPRESSED,
        };
        Ok(ParquetParts {
            what,
            dir: spec.path.clone(),
            properties: WriterProperties::builder()
                .set_compression(compression)
                .build(),
            epochs: false,
            writer: None,
            finished: 0,
            run: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            written: 0,
        })
    }

    fn error(&self, message: impl std::fmt::Display) -> SinkError {
        SinkError::Write {
            what: self.what.clone(),
            message: message.to_string(),
        }
    }

    fn pending(&self, number: usize) -> PathBuf {
        self.dir.join(format!("{PENDING}{number:05}.parquet"))
    }

    fn part(&self, epoch: u64, number: usize) -> PathBuf {
        self.dir
            .join(format!("part-{epoch:012}-{number:05}.parquet"))
    }

    /// A new file at `path` for rows of `schema`.
    fn create(&self, path: &Path, schema: SchemaRef) -> Result<ArrowWriter<File>, SinkError> {
        let file = File::create(path).map_err(|e| self.error(e))?;
        ArrowWriter::try_new(file, schema, Some(self.properties.clone())).map_err(|e| self.error(e))
    }

    /// Write the file's footer and put it on disk.
    fn finish(&self, writer: ArrowWriter<File>) -> Result<(), SinkError> {
        let file = writer.into_inner().map_err(|e| self.error(e))?;
        file.sync_all().map_err(|e| self.error(e))
    }

    /// Close the pending file being written, if any.
    fn finish_pending(&mut self) -> Result<(), SinkError> {
        if let Some((writer, _)) = self.writer.take() {
            self.finish(writer)?;
            self.finished += 1;
        }
        Ok(())
    }

    /// Rename a complete file into place, and put the rename on disk.
    fn publish(&self, from: &Path, to: &Path) -> Result<(), SinkError> {
        std::fs::rename(from, to).map_err(|e| self.error(e))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| self.error(e))
    }

    /// The numbers of the pending files there are, in order.
    fn pending_files(&self) -> Result<Vec<usize>, SinkError> {
        let mut numbers: Vec<usize> = self
            .names()?
            .iter()
            .filter_map(|name| name.strip_prefix(PENDING)?.strip_suffix(".parquet"))
            .filter_map(|number| number.parse().ok())
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn names(&self) -> Result<Vec<String>, SinkError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| self.error(e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.error(e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// Rename the epoch's pending files to its part files, then log it.
    fn commit_pending(&mut self, epoch: u64) -> Result<(), SinkError> {
        for number in self.pending_files()? {
            let part = self.part(epoch, number);
            if part.exists() {
                return Err(self.error(format!(
                    "{} exists already: the directory holds output of epochs the job's checkpoints do not know (were they deleted?)",
                    part.display()
                )));
            }
            self.publish(&self.pending(number), &part)?;
        }
        self.finished = 0;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG))
            .map_err(|e| self.error(e))?;
        writeln!(log, "{epoch}")
            .and_then(|()| log.sync_all())
            .map_err(|e| self.error(e))
    }

    /// The last epoch logged.
    fn last_logged(&self) -> Result<Option<u64>, SinkError> {
        let text = match std::fs::read_to_string(self.dir.join(LOG)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        // A line cut short by a crash was never a commit.
        Ok(text
            .lines()
            .filter_map(|line| line.trim().parse::<u64>().ok())
            .next_back())
    }

    fn drop_pending(&mut self) -> Result<(), SinkError> {
        self.writer = None;
        self.finished = 0;
        for number in self.pending_files()? {
            std::fs::remove_file(self.pending(number)).map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

impl Sink for ParquetParts {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if !self.epochs {
            let name = format!("part-run{}-{:05}.parquet", self.run, self.written);
            let temporary = self.dir.join(format!(".{name}.tmp"));
            let mut writer = self.create(&temporary, batch.schema())?;
            writer.write(batch).map_err(|e| self.error(e))?;
            self.finish(writer)?;
            self.publish(&temporary, &self.dir.join(name))?;
            self.written += 1;
            return Ok(());
        }
        if self
            .writer
            .as_ref()
            .is_some_and(|(_, schema)| schema != &batch.schema())
        {
            self.finish_pending()?;
        }
        if self.writer.is_none() {
            let writer = self.create(&self.pending(self.finished), batch.schema())?;
            self.writer = Some((writer, batch.schema()));
        }
        let (writer, _) = self.writer.as_mut().expect("opened above");
        let written = writer.write(batch);
        written.map_err(|e| self.error(e))
    }

    /// The epoch's rows so far are in complete pending files on disk.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.finish_pending()
    }

    fn commit(&mut self, epoch: u64) -> Result<(), SinkError> {
        if !self.epochs {
            return Ok(());
        }
        self.finish_pending()?;
        self.commit_pending(epoch)
    }

    fn abort(&mut self) -> Result<(), SinkError> {
        if self.epochs {
            self.drop_pending()
        } else {
            Ok(())
        }
    }

    fn recover(&mut self, restored: Option<u64>) -> Result<(), SinkError> {
        self.epochs = true;
        let last = self.last_logged()?;
        match restored {
            Some(restored) if last.is_none_or(|last| last < restored) => {
                // Checkpointed, not (or not wholly) renamed: finish it.
                self.commit_pending(restored)?;
            }
            _ => self.drop_pending()?,
        }
        let Some(restored) = restored else {
            return Ok(());
        };
        for name in self.names()? {
            let epoch = name
                .strip_prefix("part-")
                .and_then(|rest| rest.split('-').next())
                .filter(|digits| digits.len() == 12)
                .and_then(|digits| digits.parse::<u64>().ok());
            if epoch.is_some_and(|epoch| epoch > restored) {
                std::fs::remove_file(self.dir.join(name)).map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn rows(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
    }

    fn sink(dir: &Path) -> ParquetParts {
        let spec = ParquetSink {
            path: dir.to_owned(),
            compression: ParquetCompression::Zstd,
        };
        ParquetParts::open(&spec, "test").unwrap()
    }

    /// The part files, by name, and the ids in each, read back with the
    /// parquet crate; files starting with `.` or `_` are not output.
    fn parts(dir: &Path) -> Vec<(String, Vec<i64>)> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.starts_with(['.', '_']))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let file = File::open(dir.join(&name)).unwrap();
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
                let ids = reader
                    .flat_map(|batch| {
                        batch
                            .unwrap()
                            .column(0)
                            .as_primitive::<Int64Type>()
                            .values()
                            .to_vec()
                    })
                    .collect();
                (name, ids)
            })
            .collect()
    }

    fn part(epoch: u64, number: usize, ids: &[i64]) -> (String, Vec<i64>) {
        (
            format!("part-{epoch:012}-{number:05}.parquet"),
            ids.to_vec(),
        )
    }

    #[test]
    fn every_checkpointed_epoch_lands_once_whatever_step_a_crash_interrupts() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        sink.recover(None).unwrap();
        sink.write(&rows(&[1, 2])).unwrap();
        sink.write(&rows(&[3])).unwrap();
        sink.flush().unwrap();
        sink.commit(1).unwrap();
        assert_eq!(parts(dir.path()), [part(1, 0, &[1, 2, 3])]);

        // Epoch 2 is flushed and checkpointed, then the process dies
        // before its commit: a restart renames it into place.
        sink.write(&rows(&[4])).unwrap();
        sink.flush().unwrap();
        drop(sink);
        assert_eq!(parts(dir.path()).len(), 1);
        let mut sink = self::sink(dir.path());
        sink.recover(Some(2)).unwrap();
        assert_eq!(
            parts(dir.path()),
            [part(1, 0, &[1, 2, 3]), part(2, 0, &[4])]
        );

        // Epoch 3 dies before its checkpoint, half-written: the restart
        // goes back to epoch 2 and drops it.
        sink.write(&rows(&[5])).unwrap();
        sink.flush().unwrap();
        sink.write(&rows(&[6])).unwrap();
        drop(sink);
        let mut sink = self::sink(dir.path());
        sink.recover(Some(2)).unwrap();
        assert_eq!(parts(dir.path()).len(), 2);
        assert!(sink.pending_files().unwrap().is_empty());

        // Aborted rows never land; the next epoch does.
        sink.write(&rows(&[9])).unwrap();
        sink.abort().unwrap();
        sink.write(&rows(&[5])).unwrap();
        sink.flush().unwrap();
        sink.commit(3).unwrap();
        assert_eq!(parts(dir.path())[2], part(3, 0, &[5]));

        // A restart from an older checkpoint drops the later epochs'
        // files: the job writes them again.
        let mut sink = self::sink(dir.path());
        sink.recover(Some(1)).unwrap();
        assert_eq!(parts(dir.path()), [part(1, 0, &[1, 2, 3])]);
    }

    #[test]
    fn an_epoch_flushed_twice_is_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        sink.recover(None).unwrap();
        sink.write(&rows(&[1])).unwrap();
        sink.flush().unwrap();
        sink.write(&rows(&[2])).unwrap();
        sink.commit(7).unwrap();
        assert_eq!(parts(dir.path()), [part(7, 0, &[1]), part(7, 1, &[2])]);
    }

    #[test]
    fn without_checkpoints_each_batch_is_a_file_as_it_comes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        sink.write(&rows(&[1])).unwrap();
        sink.write(&rows(&[])).unwrap();
        sink.write(&rows(&[2, 3])).unwrap();
        let written = parts(dir.path());
        assert_eq!(
            written
                .iter()
                .map(|(_, ids)| ids.clone())
                .collect::<Vec<_>>(),
            [vec![1], vec![2, 3]]
        );
        assert!(written[0].0.starts_with("part-run"), "{written:?}");
        let hidden = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(hidden, 2, "temporary files were left");
    }
}
