//! The `file` source: JSON lines or CSV, with a declared or inferred schema.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_config::{ColumnType, DeclaredColumn, FileFormat, FileSource};

use crate::json_lines::{ParallelJsonLines, READ_BUFFER};
use crate::read_ahead::ReadAhead;
use crate::{Chunk, Position, Room, Source, SourceError, row_position, rows_at};

/// Rows read to infer a schema when none is declared.
const INFER_ROWS: usize = 1_000;

/// A file's batches, parsed ahead; the first error ends them.
type Batches = Box<dyn Iterator<Item = Result<RecordBatch, String>> + Send>;

/// Reads a file in chunks of up to `chunk_rows` rows.
pub struct FileReader {
    what: String,
    schema: SchemaRef,
    batches: Batches,
    /// Rows handed out.
    rows: u64,
    /// The rest of a batch a seek landed in.
    pending: Option<RecordBatch>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("file", &self.what)
            .field("schema", &self.schema)
            .finish()
    }
}

impl FileReader {
    /// Open the file and settle its schema; JSON lines are decoded on
    /// `decoders` threads.
    pub fn open(
        spec: &FileSource,
        chunk_rows: usize,
        decoders: usize,
    ) -> Result<Self, SourceError> {
        let what = spec.path.display().to_string();
        let read_error = |message: String| SourceError::Read {
            what: what.clone(),
            message,
        };
        let mut file = BufReader::with_capacity(
            READ_BUFFER,
            File::open(&spec.path).map_err(|e| read_error(e.to_string()))?,
        );
        let schema = match &spec.schema {
            Some(columns) => Arc::new(declared_schema(columns)),
            None => {
                let inferred = match spec.format {
                    FileFormat::Jsonl => {
                        arrow::json::reader::infer_json_schema_from_seekable(
                            &mut file,
                            Some(INFER_ROWS),
                        )
                        .map_err(|e| read_error(format!("inferring the schema: {e}")))?
                        .0
                    }
                    FileFormat::Csv => {
                        let (schema, _) = arrow::csv::reader::Format::default()
                            .with_header(spec.header)
                            .infer_schema(&mut file, Some(INFER_ROWS))
                            .map_err(|e| read_error(format!("inferring the schema: {e}")))?;
                        file.rewind().map_err(|e| read_error(e.to_string()))?;
                        schema
                    }
                };
                Arc::new(inferred)
            }
        };
        // The next chunks are parsed while the job works on this one.
        let batches: Batches = match spec.format {
            // One JSON value a line: blocks of lines decode apart.
            FileFormat::Jsonl => Box::new(
                ParallelJsonLines::start("sluice-file", file, 1, &schema, chunk_rows, decoders)
                    .map_err(read_error)?,
            ),
            // A quoted CSV field may hold a newline: one parser reads on.
            FileFormat::Csv => {
                let rows = arrow::csv::ReaderBuilder::new(schema.clone())
                    .with_header(spec.header)
                    .with_batch_size(chunk_rows)
                    .build(file)
                    .map_err(|e| read_error(e.to_string()))?
                    .map(|batch| batch.map_err(|e| e.to_string()));
                Box::new(
                    ReadAhead::start("sluice-file", 1, rows)
                        .map_err(|e| read_error(format!("starting its reader thread: {e}")))?
                        .reads(),
                )
            }
        };
        Ok(FileReader {
            what,
            schema,
            batches,
            rows: 0,
            pending: None,
        })
    }
}

impl Source for FileReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_chunk(&mut self, _room: Room, _max_wait: Duration) -> Result<Chunk, SourceError> {
        if let Some(rest) = self.pending.take() {
            self.rows += rest.num_rows() as u64;
            return Ok(Chunk::Rows(rest));
        }
        match self.batches.next() {
            None => Ok(Chunk::End),
            Some(Ok(batch)) => {
                self.rows += batch.num_rows() as u64;
                Ok(Chunk::Rows(batch))
            }
            Some(Err(e)) => Err(SourceError::Read {
                what: self.what.clone(),
                message: e,
            }),
        }
    }

    fn positions(&self) -> Vec<Position> {
        row_position(self.rows)
    }

    /// Skip forward to a row; a file is read from its start, so the
    /// position may not be behind the rows read already.
    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError> {
        let target = rows_at(positions)?;
        if target < self.rows {
            return Err(SourceError::Config(format!(
                "cannot go back to row {target} of {}: {} rows were read already",
                self.what, self.rows
            )));
        }
        while self.rows < target {
            let batch = match self.batches.next() {
                Some(Ok(batch)) => batch,
                Some(Err(e)) => {
                    return Err(SourceError::Read {
                        what: self.what.clone(),
                        message: e,
                    });
                }
                None => {
                    return Err(SourceError::Config(format!(
                        "{} has {} rows, fewer than the {target} its checkpoint read",
                        self.what, self.rows
                    )));
                }
            };
            let rows = batch.num_rows() as u64;
            if self.rows + rows > target {
                // The rest of this batch is the next chunk.
                let skip = (target - self.rows) as usize;
                self.pending = Some(batch.slice(skip, batch.num_rows() - skip));
            }
            self.rows += rows.min(target - self.rows);
        }
        Ok(())
    }
}

/// The schema of the columns a job file declares.
pub(crate) fn declared_schema(columns: &[DeclaredColumn]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.column_type), c.nullable))
            .collect::<Vec<_>>(),
    )
}

/// The Arrow type of a column type a job file declares.
pub fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Utf8 => DataType::Utf8,
        ColumnType::TimestampMs => {
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(spec: &FileSource) -> Vec<RecordBatch> {
        let mut reader = FileReader::open(spec, 2, 2).unwrap();
        let mut out = Vec::new();
        while let Chunk::Rows(batch) = reader.next_chunk(Room::rows(2), Duration::ZERO).unwrap() {
            out.push(batch);
        }
        out
    }

    #[test]
    fn jsonl_with_inferred_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(
            &path,
            "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":null}\n{\"a\":3,\"b\":\"z\"}\n",
        )
        .unwrap();
        let spec = FileSource {
            path,
            format: FileFormat::Jsonl,
            schema: None,
            header: true,
        };
        let batches = read_all(&spec);
        assert_eq!(
            batches
                .iter()
                .map(RecordBatch::num_rows)
                .collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Int64);
    }

    #[test]
    fn csv_with_declared_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "a,b\n1,x\n2,y\n").unwrap();
        let schema = vec![
            DeclaredColumn {
                name: "a".into(),
                column_type: ColumnType::Float64,
                nullable: false,
            },
            DeclaredColumn {
                name: "b".into(),
                column_type: ColumnType::Utf8,
                nullable: true,
            },
        ];
        let spec = FileSource {
            path,
            format: FileFormat::Csv,
            schema: Some(schema),
            header: true,
        };
        let batches = read_all(&spec);
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Float64);
    }

    #[test]
    fn malformed_line_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":\n").unwrap();
        let schema = vec![DeclaredColumn {
            name: "a".into(),
            column_type: ColumnType::Int64,
            nullable: true,
        }];
        let spec = FileSource {
            path,
            format: FileFormat::Jsonl,
            schema: Some(schema),
            header: true,
        };
        let mut reader = FileReader::open(&spec, 10, 2).unwrap();
        let error = reader
            .next_chunk(Room::rows(10), Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(error.contains("in.jsonl"), "{error}");
    }
}
