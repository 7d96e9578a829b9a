//! One file of a directory source, read in batches from a given row:
//! JSON lines, CSV or Parquet, conformed to the source's schema. Errors
//! are messages for the caller to put the file's name on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use arrow::array::ArrayRef;
use arrow::compute::{can_cast_types, cast};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::Decoder;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use sluice_config::DirectoryFormat;

use crate::json_lines::{check_line, is_blank, json_decoder};

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
}

/// An open file, positioned at a row.
pub(super) enum Cursor {
    Jsonl(JsonLines),
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
            DirectoryFormat::Jsonl => Cursor::Jsonl(JsonLines::open(
                file,
                self.schema.clone(),
                self.batch_rows,
                skip,
            )?),
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
    /// The next batch of rows; `None` at the end of the file.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, String> {
        match self {
            Cursor::Jsonl(jsonl) => jsonl.next_batch(),
            Cursor::Csv(csv) => csv.next().transpose().map_err(|e| e.to_string()),
            Cursor::Parquet(parquet) => parquet.next_batch(),
        }
    }

    /// The file's batches from here on, ending after the first error.
    pub(super) fn into_batches(
        mut self,
    ) -> impl Iterator<Item = Result<RecordBatch, String>> + Send + 'static {
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let next = self.next_batch().transpose();
            failed = matches!(next, Some(Err(_)));
            next
        })
    }
}

/// A JSON-lines file, decoded a batch of lines at a time. Each line that is
/// not blank holds one row; a line that does not decode is named by its
/// number.
pub(super) struct JsonLines {
    lines: BufReader<File>,
    decoder: Decoder,
    schema: SchemaRef,
    batch_rows: usize,
    /// Lines read so far.
    line: u64,
    /// The raw lines of the batch being decoded, and where each starts.
    raw: Vec<u8>,
    starts: Vec<(u64, usize)>,
}

impl JsonLines {
    fn open(file: File, schema: SchemaRef, batch_rows: usize, skip: u64) -> Result<Self, String> {
        let decoder = json_decoder(&schema, batch_rows)?;
        let mut jsonl = JsonLines {
            lines: BufReader::new(file),
            decoder,
            schema,
            batch_rows,
            line: 0,
            raw: Vec::new(),
            starts: Vec::new(),
        };
        // Rows handed out before were one a line, each of which decoded:
        // skipping them needs no decoding.
        let mut skipped = 0;
        let mut line = Vec::new();
        while skipped < skip {
            if !jsonl.read_line(&mut line)? {
                return Err(format!(
                    "it has {skipped} rows, fewer than the {skip} read from it before"
                ));
            }
            if !is_blank(&line) {
                skipped += 1;
            }
        }
        Ok(jsonl)
    }

    /// Read the next line into `line`; false at the end of the file.
    fn read_line(&mut self, line: &mut Vec<u8>) -> Result<bool, String> {
        line.clear();
        let read = self
            .lines
            .read_until(b'\n', line)
            .map_err(|e| format!("line {}: {e}", self.line + 1))?;
        if read > 0 {
            self.line += 1;
        }
        Ok(read > 0)
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, String> {
        self.raw.clear();
        self.starts.clear();
        let mut line = Vec::new();
        while self.starts.len() < self.batch_rows && self.read_line(&mut line)? {
            if !is_blank(&line) {
                self.starts.push((self.line, self.raw.len()));
                self.raw.extend_from_slice(&line);
                if !line.ends_with(b"\n") {
                    self.raw.push(b'\n');
                }
            }
        }
        if self.starts.is_empty() {
            return Ok(None);
        }
        let decoded = self
            .decoder
            .decode(&self.raw)
            .and_then(|used| Ok((used, self.decoder.flush()?)));
        match decoded {
            Ok((used, Some(batch)))
                if used == self.raw.len() && batch.num_rows() == self.starts.len() =>
            {
                Ok(Some(batch))
            }
            Ok(_) => Err(self.locate(None)),
            Err(error) => Err(self.locate(Some(error))),
        }
    }

    /// The first line of the batch that does not decode to one row, and
    /// why; decoding the lines one by one is only done once a batch failed.
    fn locate(&self, error: Option<ArrowError>) -> String {
        let ends = self
            .starts
            .iter()
            .skip(1)
            .map(|(_, start)| *start)
            .chain([self.raw.len()]);
        for (&(line, start), end) in self.starts.iter().zip(ends) {
            let text = &self.raw[start..end];
            if let Err(message) = check_line(&self.schema, text) {
                return format!("line {line}: {message}");
            }
        }
        let (first, last) = (self.starts[0].0, self.line);
        match error {
            Some(error) => format!("lines {first}-{last}: {error}"),
            None => format!("lines {first}-{last}: not one JSON value per line"),
        }
    }
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
