//! The `directory` source: the files of a directory, each read once, in
//! order, picked up as they arrive (Spark's file stream source).
//!
//! Each listing of the directory takes the new files (not hidden, not
//! temporary, not taken before, not older than `max_file_age` behind the
//! newest taken), in the order of their modification time then name,
//! oldest first (`latest_first`: newest first), at most
//! `max_files_per_trigger` of them. They are read one after another; the
//! next listing comes once they are all read, or every `poll_interval`
//! while there is nothing to read. With `available_now`, the source takes
//! the files there at its first listing, reads them, and ends.
//!
//! Its positions, which checkpoints keep, are its whole state: see
//! [`DirectoryReader`].

mod files;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_config::{DirectoryFormat, DirectorySource};

use self::files::{FileFormat, SchemaOrigin, infer_csv, infer_jsonl, parquet_schema};
use crate::file::declared_schema;
use crate::{Chunk, Position, Room, Source, SourceError, chunk_bytes};

/// Rows read to infer a schema when none is declared.
const INFER_ROWS: usize = 1_000;

/// Position partitions: see [`DirectoryReader`].
const DONE: i32 = 0;
const TAKEN: i32 = 1;
const ROWS: i32 = 2;
const HORIZON: i32 = 3;

/// Reads the files of a directory as they arrive, each once, in order.
///
/// Its positions, which checkpoints keep, are its whole state, as
/// [`Position`]s whose topic is a file name:
///
/// | partition | offset | meaning |
/// |---|---|---|
/// | 0 | modification time, ms | the file was read to its end |
/// | 1 | modification time, ms | the file was taken by a listing, and is not yet read to its end |
/// | 2 | rows | rows of this (taken) file already handed out |
/// | 3 (topic `""`) | time, ms | files modified before this are ignored |
///
/// So a restart reads the file it was in from the next row, then the
/// files its last listing took, then lists again: no file is read twice
/// and none is skipped. What the positions hold does not grow without
/// bound: a read file is forgotten once it is `max_file_age` older than
/// the newest taken, as files that old are ignored anyway. (Only files
/// taken in (time, name) order would allow a single watermark instead,
/// and then a file that arrives late, with an older time — copied with
/// its time kept, or renamed into place after a newer one — would be
/// lost.)
#[derive(Debug)]
pub struct DirectoryReader {
    dir: PathBuf,
    format: FileFormat,
    max_files_per_trigger: Option<usize>,
    latest_first: bool,
    /// `max_file_age` in ms, unless it does not apply.
    max_file_age: Option<i64>,
    poll_interval: Duration,
    available_now: bool,
    /// Whether the directory was listed since the source started or
    /// last went to a position.
    listed: bool,
    last_listing: Option<Instant>,
    /// Whether the last listing left new files for the next.
    more_waiting: bool,
    /// Files taken by a listing, by name.
    taken: BTreeMap<String, Taken>,
    /// Files modified before this (ms) are ignored.
    horizon: Option<i64>,
    /// Taken files not yet opened, in reading order, with the row to
    /// start at.
    queue: VecDeque<(String, u64)>,
    /// The file being read.
    reading: Option<Reading>,
    /// Names that are not UTF-8, warned about once.
    unreadable_names: BTreeSet<OsString>,
}

#[derive(Debug, Clone, Copy)]
struct Taken {
    /// Modification time, ms since the Unix epoch.
    mtime: i64,
    /// Read to its end.
    done: bool,
}

/// A file being read.
struct Reading {
    name: String,
    path: PathBuf,
    /// Rows handed out.
    rows: u64,
    /// The file's batches, decoded ahead on threads of their own.
    batches: Box<dyn Iterator<Item = Result<RecordBatch, String>> + Send>,
    /// The rest of a batch that did not fit in a chunk.
    pending: Option<RecordBatch>,
}

impl DirectoryReader {
    /// Open the directory and settle the schema: declared, or from its
    /// oldest files. `chunk_rows` bounds a chunk; with `available_now`,
    /// the source ends once the files its first listing finds are read.
    /// JSON lines are decoded on `decoders` threads.
    pub fn open(
        spec: &DirectorySource,
        chunk_rows: usize,
        available_now: bool,
        decoders: usize,
    ) -> Result<Self, SourceError> {
        let dir = spec.path.clone();
        if !dir.is_dir() {
            return Err(SourceError::Config(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let mut unreadable_names = BTreeSet::new();
        let (schema, origin) = match &spec.schema {
            Some(columns) => (Arc::new(declared_schema(columns)), SchemaOrigin::Declared),
            None => {
                let files = list(&dir, &mut unreadable_names)?;
                infer(&dir, &files, spec)?
            }
        };
        let max_file_age = match (spec.latest_first, spec.max_files_per_trigger) {
            (true, Some(_)) => None,
            _ => Some(i64::try_from(spec.max_file_age.as_millis()).unwrap_or(i64::MAX)),
        };
        Ok(DirectoryReader {
            dir,
            format: FileFormat {
                format: spec.format,
                schema,
                origin,
                header: spec.header,
                batch_rows: chunk_rows.max(1),
                decoders,
            },
            max_files_per_trigger: spec.max_files_per_trigger,
            latest_first: spec.latest_first,
            max_file_age,
            poll_interval: spec.poll_interval,
            available_now,
            listed: false,
            last_listing: None,
            more_waiting: false,
            taken: BTreeMap::new(),
            horizon: None,
            queue: VecDeque::new(),
            reading: None,
            unreadable_names,
        })
    }

    fn listing_due(&self) -> bool {
        if self.available_now {
            return !self.listed;
        }
        self.more_waiting
            || self
                .last_listing
                .is_none_or(|at| at.elapsed() >= self.poll_interval)
    }

    /// List the directory and take its new files.
    fn take_new_files(&mut self) -> Result<(), SourceError> {
        self.listed = true;
        self.last_listing = Some(Instant::now());
        let horizon = self.horizon.unwrap_or(i64::MIN);
        let mut new: Vec<(i64, String)> = list(&self.dir, &mut self.unreadable_names)?
            .into_iter()
            .filter(|(mtime, name)| *mtime >= horizon && !self.taken.contains_key(name))
            .collect();
        if self.latest_first {
            new.reverse();
        }
        // Under `available_now` every file there now is read before the
        // end: the cap would only split them, in the same order.
        let cap = self.max_files_per_trigger.filter(|_| !self.available_now);
        self.more_waiting = cap.is_some_and(|cap| new.len() > cap);
        if let Some(cap) = cap {
            new.truncate(cap);
        }
        for (mtime, name) in new {
            self.taken
                .insert(name.clone(), Taken { mtime, done: false });
            self.queue.push_back((name, 0));
        }
        self.forget_old_files();
        Ok(())
    }

    /// Move the horizon to `max_file_age` behind the newest file taken,
    /// and forget the read files behind it: files that old are ignored.
    fn forget_old_files(&mut self) {
        let (Some(age), Some(newest)) = (
            self.max_file_age,
            self.taken.values().map(|t| t.mtime).max(),
        ) else {
            return;
        };
        let horizon = newest
            .saturating_sub(age)
            .max(self.horizon.unwrap_or(i64::MIN));
        self.horizon = Some(horizon);
        self.taken.retain(|_, t| !t.done || t.mtime >= horizon);
    }

    /// Open the next file of the queue.
    fn open_next(&mut self) -> Result<(), SourceError> {
        let Some((name, start)) = self.queue.pop_front() else {
            return Ok(());
        };
        let path = self.dir.join(&name);
        let opened = self
            .format
            .open(&path, start)
            .and_then(files::Cursor::into_batches);
        match opened {
            Ok(batches) => {
                self.reading = Some(Reading {
                    name,
                    path,
                    rows: start,
                    batches,
                    pending: None,
                });
                Ok(())
            }
            Err(message) => {
                let message = if path.exists() {
                    message
                } else if start > 0 {
                    format!("it was read up to row {start} and is gone")
                } else {
                    "it was taken by a listing and is gone".into()
                };
                self.queue.push_front((name, start));
                Err(SourceError::Unreadable {
                    file: path.display().to_string(),
                    message,
                })
            }
        }
    }

    /// How long to sleep before the next listing is due, at most `max_wait`.
    fn wait_for_listing(&self, max_wait: Duration) -> Duration {
        let since = self.last_listing.map_or(Duration::MAX, |at| at.elapsed());
        self.poll_interval.saturating_sub(since).min(max_wait)
    }
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading")
            .field("name", &self.name)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl Reading {
    /// The next rows of the file that fit in `room`; `None` at its end.
    fn next(&mut self, room: Room) -> Result<Option<RecordBatch>, String> {
        loop {
            let batch = match self.pending.take() {
                Some(rest) => rest,
                None => match self.batches.next().transpose()? {
                    Some(batch) => batch,
                    None => return Ok(None),
                },
            };
            let rows = batch.num_rows();
            if rows == 0 {
                continue;
            }
            let fit = rows_that_fit(&batch, room);
            // A slice shares its batch's buffers, which the next chunk
            // (the rest) holds on to; the job copies both into its batch.
            let chunk = if fit < rows {
                self.pending = Some(batch.slice(fit, rows - fit));
                batch.slice(0, fit)
            } else {
                batch
            };
            self.rows += chunk.num_rows() as u64;
            return Ok(Some(chunk));
        }
    }
}

/// How many of `batch`'s rows fit in `room`: at least one.
fn rows_that_fit(batch: &RecordBatch, room: Room) -> usize {
    let rows = batch.num_rows();
    let per_row = (chunk_bytes(batch) / rows.max(1) as u64).max(1);
    let by_bytes = usize::try_from(room.bytes / per_row).unwrap_or(usize::MAX);
    rows.min(room.rows).min(by_bytes).max(1)
}

impl Source for DirectoryReader {
    fn schema(&self) -> SchemaRef {
        self.format.schema.clone()
    }

    fn next_chunk(&mut self, room: Room, max_wait: Duration) -> Result<Chunk, SourceError> {
        loop {
            if let Some(reading) = &mut self.reading {
                let next = reading
                    .next(room)
                    .map_err(|message| SourceError::Unreadable {
                        file: reading.path.display().to_string(),
                        message,
                    })?;
                if let Some(rows) = next {
                    return Ok(Chunk::Rows(rows));
                }
                if let Some(taken) = self.taken.get_mut(&reading.name) {
                    taken.done = true;
                }
                self.reading = None;
            } else if !self.queue.is_empty() {
                self.open_next()?;
            } else if self.listing_due() {
                self.take_new_files()?;
                if self.queue.is_empty() && !self.available_now {
                    std::thread::sleep(self.wait_for_listing(max_wait));
                    return Ok(Chunk::Idle);
                }
            } else if self.available_now {
                return Ok(Chunk::End);
            } else {
                std::thread::sleep(self.wait_for_listing(max_wait));
                return Ok(Chunk::Idle);
            }
        }
    }

    fn positions(&self) -> Vec<Position> {
        let position = |topic: &str, partition, offset| Position {
            topic: topic.to_owned(),
            partition,
            offset,
        };
        let mut positions: Vec<Position> = self
            .taken
            .iter()
            .map(|(name, t)| position(name, if t.done { DONE } else { TAKEN }, t.mtime))
            .collect();
        let started = self
            .reading
            .iter()
            .map(|r| (r.name.as_str(), r.rows))
            .chain(
                self.queue
                    .iter()
                    .map(|(name, start)| (name.as_str(), *start)),
            );
        for (name, rows) in started.filter(|(_, rows)| *rows > 0) {
            positions.push(position(
                name,
                ROWS,
                i64::try_from(rows).unwrap_or(i64::MAX),
            ));
        }
        if let Some(horizon) = self.horizon {
            positions.push(position("", HORIZON, horizon));
        }
        positions
    }

    /// Go to the state `positions` describe, forward or back: what was
    /// read and taken, and where in its file the source was.
    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError> {
        let mut taken = BTreeMap::new();
        let mut started = BTreeMap::new();
        let mut horizon = None;
        for p in positions {
            match (p.partition, p.topic.is_empty()) {
                (DONE | TAKEN, false) => {
                    let done = p.partition == DONE;
                    taken.insert(
                        p.topic.clone(),
                        Taken {
                            mtime: p.offset,
                            done,
                        },
                    );
                }
                (ROWS, false) => {
                    let rows = u64::try_from(p.offset).map_err(|_| {
                        SourceError::Config(format!("a negative row, {}, of {}", p.offset, p.topic))
                    })?;
                    started.insert(p.topic.clone(), rows);
                }
                (HORIZON, true) => horizon = Some(p.offset),
                _ => {
                    return Err(SourceError::Config(format!(
                        "position {}/{}/{} is not a directory source's: the checkpoint is another source's",
                        p.topic, p.partition, p.offset
                    )));
                }
            }
        }
        if let Some(name) = started
            .keys()
            .find(|name| !taken.get(*name).is_some_and(|t: &Taken| !t.done))
        {
            return Err(SourceError::Config(format!(
                "the positions have rows of {name} without it being a file taken and not yet read"
            )));
        }
        let mut queue: Vec<(i64, String)> = taken
            .iter()
            .filter(|(_, t)| !t.done)
            .map(|(name, t)| (t.mtime, name.clone()))
            .collect();
        queue.sort();
        if self.latest_first {
            queue.reverse();
        }
        // The file that was being read goes first.
        queue.sort_by_key(|(_, name)| !started.contains_key(name));
        self.queue = queue
            .into_iter()
            .map(|(_, name)| {
                let start = started.get(&name).copied().unwrap_or(0);
                (name, start)
            })
            .collect();
        self.taken = taken;
        self.horizon = horizon;
        self.reading = None;
        self.listed = false;
        self.last_listing = None;
        self.more_waiting = false;
        Ok(())
    }
}

/// The readable files of `dir` as (modification time in ms, name),
/// oldest first, then by name. Skipped, as by Spark: directories, and
/// names starting with `.` or `_` or ending in `._COPYING_`; also names
/// ending in `.tmp`, and names that are not UTF-8 (with a warning).
fn list(
    dir: &Path,
    unreadable: &mut BTreeSet<OsString>,
) -> Result<Vec<(i64, String)>, SourceError> {
    let read_error = |e: std::io::Error| SourceError::Read {
        what: dir.display().to_string(),
        message: format!("listing: {e}"),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            if unreadable.insert(entry.file_name()) {
                tracing::warn!(
                    directory = %dir.display(),
                    file = ?entry.file_name(),
                    "a file name that is not UTF-8 is skipped"
                );
            }
            continue;
        };
        if name.starts_with(['.', '_']) || name.ends_with("._COPYING_") || name.ends_with(".tmp") {
            continue;
        }
        // Following links; a file gone since the listing is skipped.
        let metadata = match std::fs::metadata(entry.path()) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(read_error(e)),
        };
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata.modified().map_err(read_error)?;
        files.push((millis_since_epoch(modified), name));
    }
    files.sort();
    Ok(files)
}

fn millis_since_epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The schema of a source that declares none, from its oldest files.
fn infer(
    dir: &Path,
    files: &[(i64, String)],
    spec: &DirectorySource,
) -> Result<(SchemaRef, SchemaOrigin), SourceError> {
    let Some((_, first)) = files.first() else {
        return Err(SourceError::Config(format!(
            "{} has no files to take the schema from; declare the columns in `schema`",
            dir.display()
        )));
    };
    let first = dir.join(first);
    let malformed = |file: &Path, message: String| SourceError::Unreadable {
        file: file.display().to_string(),
        message: format!("taking the schema from it: {message}"),
    };
    let (schema, from) = match spec.format {
        DirectoryFormat::Parquet => (
            parquet_schema(&first).map_err(|m| malformed(&first, m))?,
            first.display().to_string(),
        ),
        DirectoryFormat::Csv => (
            infer_csv(&first, spec.header, INFER_ROWS).map_err(|m| malformed(&first, m))?,
            first.display().to_string(),
        ),
        DirectoryFormat::Jsonl => {
            let paths: Vec<PathBuf> = files.iter().map(|(_, name)| dir.join(name)).collect();
            let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            let (schema, used) = infer_jsonl(&paths, INFER_ROWS).map_err(|m| malformed(dir, m))?;
            let from = match used {
                1 => first.display().to_string(),
                n => format!("{} and the {} files after it", first.display(), n - 1),
            };
            (schema, from)
        }
    };
    Ok((Arc::new(schema), SchemaOrigin::Inferred(from)))
}
