//! One file of a directory source, read in batches from a given row:
//! JSON lines, CSV or Parquet, conformed to the source's schema. Errors
//! are messages for the caller to put the file's name on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use arrow::array::ArrayRef;
use arrow::compute::{can_cast_types, cast};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use sluice_config::DirectoryFormat;
use sluice_format::is_blank;

use crate::json_lines::{ParallelJsonLines, READ_BUFFER};
use crate::read_ahead::ReadAhead;

/// Where the source's schema comes from, for messages about files that do
/// not fit it.
#[derive(Debug, Clone)]
pub(super) enum SchemaOrigin {
    /// The job file declares it: files are cast to it where they can be.
    Declared,
    /// Read or inferred from these files: a later file must match it.
    Inferred(String),
}

/// How to open the files of one source.
#[derive(Debug, Clone)]
pub(super) struct FileFormat {
    pub(super) format: DirectoryFormat,
    pub(super) schema: SchemaRef,
    pub(super) origin: SchemaOrigin,
    /// CSV: whether each file starts with a header line.
    pub(super) header: bool,
    /// Rows per decoded batch.
    pub(super) batch_rows: usize,
    /// Threads a JSON-lines file is decoded on.
    pub(super) decoders: usize,
}

/// An open file, positioned at a row.
pub(super) enum Cursor {
    /// Decoded on threads of its own.
    Jsonl(ParallelJsonLines),
    Csv(Box<arrow::csv::reader::BufReader<BufReader<File>>>),
    Parquet(ParquetFile),
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cursor::Jsonl(_) => "Cursor::Jsonl",
            Cursor::Csv(_) => "Cursor::Csv",
            Cursor::Parquet(_) => "Cursor::Parquet",
        })
    }
}

impl FileFormat {
    /// Open `path` and skip its first `skip` rows.
    pub(super) fn open(&self, path: &Path, skip: u64) -> Result<Cursor, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let skip_rows = usize::try_from(skip).map_err(|_| format!("row {skip} is out of range"))?;
        Ok(match self.format {
            DirectoryFormat::Jsonl => {
                let mut reader = BufReader::with_capacity(READ_BUFFER, file);
                let skipped_lines = skip_json_rows(&mut reader, skip)?;
                Cursor::Jsonl(ParallelJsonLines::start(
                    "sluice-dir",
                    reader,
                    skipped_lines + 1,
                    &self.schema,
                    self.batch_rows,
                    self.decoders,
                )?)
            }
            DirectoryFormat::Csv => Cursor::Csv(Box::new(
                arrow::csv::ReaderBuilder::new(self.schema.clone())
                    .with_header(self.header)
                    .with_batch_size(self.batch_rows)
                    // The end is a bound the reader adds the header line to.
                    .with_bounds(skip_rows, usize::MAX - 1)
                    .build_buffered(BufReader::new(file))
                    .map_err(|e| e.to_string())?,
            )),
            DirectoryFormat::Parquet => Cursor::Parquet(ParquetFile::open(file, self, skip_rows)?),
        })
    }
}

impl Cursor {
    /// The file's batches from here on, decoded ahead of the reader on
    /// threads of their own, ending after the first error.
    pub(super) fn into_batches(
        self,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordBatch, String>> + Send>, String> {
        let sequential: Box<dyn Iterator<Item = _> + Send> = match self {
            Cursor::Jsonl(jsonl) => return Ok(Box::new(jsonl)),
            Cursor::Csv(csv) => Box::new(csv.map(|batch| batch.map_err(|e| e.to_string()))),
            Cursor::Parquet(mut parquet) => {
                Box::new(std::iter::from_fn(move || parquet.next_batch().transpose()))
            }
        };
        let mut failed = false;
        let until_error = sequential.take_while(move |next| {
            let go_on = !failed;
            failed = next.is_err();
            go_on
        });
        let ahead = ReadAhead::start("sluice-dir", 1, until_error)
            .map_err(|e| format!("starting its reader thread: {e}"))?
            .reads();
        Ok(Box::new(ahead))
    }
}

/// Skip the first `rows` rows of a JSON-lines reader, one to each line that
/// is not blank; returns the lines skipped. Rows handed out before decoded,
/// so skipping them needs no decoding.
fn skip_json_rows(reader: &mut impl BufRead, rows: u64) -> Result<u64, String> {
    let (mut skipped, mut lines) = (0, 0);
    let mut line = Vec::new();
    while skipped < rows {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("line {}: {e}", lines + 1))?;
        if read == 0 {
            return Err(format!(
                "it has {skipped} rows, fewer than the {rows} read from it before"
            ));
        }
        lines += 1;
        if !is_blank(&line) {
            skipped += 1;
        }
    }
    Ok(lines)
}

/// A Parquet file's columns, by name, cast to the source's schema.
pub(super) struct ParquetFile {
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
    /// Per column of the source's schema: its name in the batches read,
    /// and whether it needs a cast.
    columns: Vec<(String, bool)>,
}

impl ParquetFile {
    fn open(file: File, format: &FileFormat, skip: usize) -> Result<Self, String> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
        let file_schema = builder.schema().clone();
        let mut roots = Vec::new();
        let mut columns = Vec::new();
        for field in format.schema.fields() {
            let Ok(index) = file_schema.index_of(field.name()) else {
                return Err(format!(
                    "it has no column `{}`, which the source's schema ({}) has",
                    field.name(),
                    origin_text(&format.origin)
                ));
            };
            let found = file_schema.field(index).data_type();
            let wanted = field.data_type();
            let needs_cast = found != wanted;
            let castable =
                matches!(format.origin, SchemaOrigin::Declared) && can_cast_types(found, wanted);
            if needs_cast && !castable {
                return Err(format!(
                    "its column `{}` is {found}, and the source's schema ({}) has {wanted}{}",
                    field.name(),
                    origin_text(&format.origin),
                    match format.origin {
                        SchemaOrigin::Declared => "",
                        SchemaOrigin::Inferred(_) => "; declare `schema` to cast the files to one",
                    }
                ));
            }
            roots.push(index);
            columns.push((field.name().clone(), needs_cast));
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(format.batch_rows)
            .with_offset(skip)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ParquetFile {
            reader,
            schema: format.schema.clone(),
            columns,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, String> {
        let Some(batch) = self.reader.next().transpose().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for ((name, needs_cast), field) in self.columns.iter().zip(self.schema.fields()) {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| format!("column `{name}` is missing from a batch read"))?;
            arrays.push(if *needs_cast {
                cast(column, field.data_type())
                    .map_err(|e| format!("casting column `{name}`: {e}"))?
            } else {
                column.clone()
            });
        }
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

fn origin_text(origin: &SchemaOrigin) -> String {
    match origin {
        SchemaOrigin::Declared => "declared in the job".into(),
        SchemaOrigin::Inferred(from) => format!("taken from {from}"),
    }
}

/// The schema of a Parquet file, every column nullable (as Spark reads
/// files), without the file's metadata.
pub(super) fn parquet_schema(path: &Path) -> Result<Schema, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    Ok(Schema::new(
        builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// The schema of `rows` rows of JSON lines, inferred from the files in
/// order until that many were read; the files it was inferred from.
pub(super) fn infer_jsonl(paths: &[&Path], rows: usize) -> Result<(Schema, usize), String> {
    let mut schemas = Vec::new();
    let mut left = rows;
    let mut used = 0;
    for path in paths {
        if left == 0 {
            break;
        }
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (schema, read) =
            arrow::json::reader::infer_json_schema(BufReader::new(file), Some(left))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        schemas.push(schema);
        left = left.saturating_sub(read);
        used += 1;
    }
    let schema = Schema::try_merge(schemas).map_err(|e| e.to_string())?;
    Ok((schema, used))
}

/// The schema of a CSV file, inferred from its first `rows` rows.
pub(super) fn infer_csv(path: &Path, header: bool, rows: usize) -> Result<Schema, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    arrow::csv::reader::Format::default()
        .with_header(header)
        .infer_schema(BufReader::new(file), Some(rows))
        .map(|(schema, _)| schema)
        .map_err(|e| e.to_string())
}
