//! JSON lines, decoded on several threads: one thread cuts the bytes into
//! blocks of whole lines, decoders take the blocks in turn, and the batches
//! come out in the file's order. A line that does not decode to exactly one
//! row is named by its number.

use std::io::BufRead;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::json::reader::Decoder;
use arrow::record_batch::RecordBatch;
use sluice_format::{FlatJson, is_blank};

use crate::ordered::OrderedMap;

/// Some whole lines of a file.
#[derive(Debug)]
pub(crate) struct Block {
    /// The lines, each ended by a newline but perhaps the file's last.
    bytes: Vec<u8>,
    /// The number of its first line in the file, from 1.
    first_line: u64,
}

/// Bytes a reader of a JSON-lines file reads at a time (its `BufReader`'s
/// capacity): a block of a batch's lines spans a few reads, not thousands.
pub(crate) const READ_BUFFER: usize = 1 << 20;

/// Bytes in a block, beyond which it ends at the next line's end: a batch
/// of long lines is decoded from several blocks, and what the decoders
/// hold stays bounded whatever the trigger's rows.
const BLOCK_BYTES: usize = 16 << 20;

/// A reader's bytes as blocks of up to `lines` lines, ending at the first
/// line's end past `max_bytes`.
pub(crate) struct LineBlocks<R> {
    reader: R,
    lines: usize,
    max_bytes: usize,
    /// Lines cut so far.
    line: u64,
    /// The byte length of the last block, to size the next.
    last_len: usize,
}

impl<R: BufRead> LineBlocks<R> {
    /// Cut `reader`, whose first line is line `first_line` of its file,
    /// into blocks of `lines` lines (at least one) or about `max_bytes`.
    pub(crate) fn new(reader: R, first_line: u64, lines: usize, max_bytes: usize) -> Self {
        LineBlocks {
            reader,
            lines: lines.max(1),
            max_bytes,
            line: first_line.saturating_sub(1),
            last_len: 0,
        }
    }

    /// The next block; `None` at the end of the input.
    fn next_block(&mut self) -> std::io::Result<Option<Block>> {
        let mut bytes = Vec::with_capacity(self.last_len + self.last_len / 8);
        let mut lines = 0;
        while lines < self.lines {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                if bytes.last().is_some_and(|&b| b != b'\n') {
                    lines += 1;
                }
                break;
            }
            let (mut take, mut full) = (available.len(), false);
            for at in memchr::memchr_iter(b'\n', available) {
                lines += 1;
                if lines == self.lines || bytes.len() + at + 1 >= self.max_bytes {
                    (take, full) = (at + 1, true);
                    break;
                }
            }
            bytes.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            if full {
                break;
            }
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        let first_line = self.line + 1;
        self.line += lines as u64;
        self.last_len = bytes.len();
        Ok(Some(Block { bytes, first_line }))
    }
}

impl<R: BufRead> Iterator for LineBlocks<R> {
    type Item = Result<Block, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let first_line = self.line + 1;
        self.next_block()
            .map_err(|e| format!("reading from line {first_line}: {e}"))
            .transpose()
    }
}

/// Batches of a JSON-lines input, decoded on `decoders` threads and given
/// in the input's order; the first error ends them.
pub(crate) struct ParallelJsonLines {
    batches: std::vec::IntoIter<RecordBatch>,
    blocks: Option<OrderedMap<Result<Vec<RecordBatch>, String>>>,
}

impl ParallelJsonLines {
    /// Start decoding `reader`, whose first line is line `first_line` of
    /// its file, as rows of `schema` in batches of up to `batch_rows` rows,
    /// on `decoders` threads named after `name`.
    pub(crate) fn start(
        name: &str,
        reader: impl BufRead + Send + 'static,
        first_line: u64,
        schema: &SchemaRef,
        batch_rows: usize,
        decoders: usize,
    ) -> Result<Self, String> {
        let workers = (0..decoders.max(1))
            .map(|_| {
                let mut decoder = json_decoder(schema, batch_rows)?;
                let mut flat = FlatJson::new(schema);
                let schema = schema.clone();
                Ok(move |block: Result<Block, String>| {
                    let mut block = block?;
                    match flat
                        .as_mut()
                        .and_then(|flat| flat.decode_lines(&mut block.bytes))
                    {
                        Some(batch) => Ok(vec![batch]),
                        None => decode_block(&mut decoder, &schema, &block),
                    }
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let blocks = OrderedMap::start(
            name,
            LineBlocks::new(reader, first_line, batch_rows, BLOCK_BYTES),
            workers,
        )
        .map_err(|e| format!("starting its decoder threads: {e}"))?;
        Ok(ParallelJsonLines {
            batches: Vec::new().into_iter(),
            blocks: Some(blocks),
        })
    }
}

impl Iterator for ParallelJsonLines {
    type Item = Result<RecordBatch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.batches.next() {
                return Some(Ok(batch));
            }
            match self.blocks.as_mut()?.next()? {
                Ok(Ok(batches)) => self.batches = batches.into_iter(),
                Ok(Err(message)) => {
                    self.blocks = None;
                    return Some(Err(message));
                }
                Err(lost) => {
                    self.blocks = None;
                    return Some(Err(format!("decoding stopped: {lost}")));
                }
            }
        }
    }
}

/// Decode a block, one row to each line that is not blank.
fn decode_block(
    decoder: &mut Decoder,
    schema: &SchemaRef,
    block: &Block,
) -> Result<Vec<RecordBatch>, String> {
    let mut batches = Vec::new();
    let mut rest = block.bytes.as_slice();
    let mut decode = || -> Result<(), arrow::error::ArrowError> {
        loop {
            let used = decoder.decode(rest)?;
            rest = &rest[used..];
            match decoder.flush()? {
                Some(batch) => batches.push(batch),
                None if used == 0 || rest.is_empty() => return Ok(()),
                None => {}
            }
        }
    };
    let decoded = decode();
    let bad_line = || first_bad_line(schema, block);
    match decoded {
        Ok(())
            if batches.iter().map(RecordBatch::num_rows).sum::<usize>()
                == rows_expected(&block.bytes) =>
        {
            Ok(batches)
        }
        Ok(()) => Err(bad_line().unwrap_or_else(|| {
            let last = block.first_line + lines(&block.bytes).count() as u64 - 1;
            format!(
                "lines {}-{last}: not one JSON value per line",
                block.first_line
            )
        })),
        Err(error) => {
            Err(bad_line().unwrap_or_else(|| format!("from line {}: {error}", block.first_line)))
        }
    }
}

/// The lines of `bytes` that are not blank.
fn rows_expected(bytes: &[u8]) -> usize {
    lines(bytes).filter(|line| !is_blank(line)).count()
}

/// The lines of `bytes`, without their newlines.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', bytes)
        .chain((bytes.last() != Some(&b'\n') && !bytes.is_empty()).then_some(bytes.len()))
        .map(move |end| {
            let line = &bytes[start..end];
            start = end + 1;
            line
        })
}

/// The first line of `block` that does not decode to one row, and why.
fn first_bad_line(schema: &SchemaRef, block: &Block) -> Option<String> {
    lines(&block.bytes)
        .zip(block.first_line..)
        .filter(|(line, _)| !is_blank(line))
        .find_map(|(line, number)| {
            check_line(schema, line)
                .err()
                .map(|why| format!("line {number}: {why}"))
        })
}

/// Whether `line` decodes to exactly one row of `schema`, and if not, why.
fn check_line(schema: &SchemaRef, line: &[u8]) -> Result<(), String> {
    let mut decoder = json_decoder(schema, 2)?;
    let used = decoder.decode(line).map_err(|e| e.to_string())?;
    let batch = decoder.flush().map_err(|e| e.to_string())?;
    match (used == line.len(), batch.map_or(0, |b| b.num_rows())) {
        (true, 1) => Ok(()),
        (_, 0) => Err("no complete JSON value".to_owned()),
        _ => Err("more than one JSON value on the line".to_owned()),
    }
}

/// A decoder of rows of `schema`, in batches of up to `batch_rows`.
fn json_decoder(schema: &SchemaRef, batch_rows: usize) -> Result<Decoder, String> {
    arrow::json::ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_rows)
        .build_decoder()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]))
    }

    /// Every row of `text`, decoded in batches of `rows` on `decoders`
    /// threads, or the first error.
    fn decode(text: &str, rows: usize, decoders: usize) -> Result<Vec<RecordBatch>, String> {
        let reader = std::io::Cursor::new(text.as_bytes().to_vec());
        ParallelJsonLines::start("test", reader, 1, &schema(), rows, decoders)
            .unwrap()
            .collect()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    #[test]
    fn blocks_hold_whole_lines_numbered_from_one() {
        let text = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":4}";
        // A small buffer: lines span the reader's reads.
        let reader = std::io::BufReader::with_capacity(3, &text[..]);
        let blocks: Vec<Block> = LineBlocks::new(reader, 1, 3, usize::MAX)
            .map(Result::unwrap)
            .collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].bytes, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
        assert_eq!((blocks[0].first_line, blocks[1].first_line), (1, 4));
        assert_eq!(blocks[1].bytes, b"{\"a\":4}");
        // Past 10 bytes a block ends at the next line's end; a longer line
        // is a block alone.
        let text = b"{\"a\":1}\n{\"a\":2}\n{\"a\":12345678}\n{\"a\":4}\n";
        let reader = std::io::BufReader::with_capacity(5, &text[..]);
        let blocks: Vec<Block> = LineBlocks::new(reader, 1, 100, 10)
            .map(Result::unwrap)
            .collect();
        let lines: Vec<(u64, usize)> = blocks
            .iter()
            .map(|b| (b.first_line, b.bytes.len()))
            .collect();
        assert_eq!(lines, vec![(1, 16), (3, 15), (4, 8)]);
    }

    #[test]
    fn rows_come_in_the_files_order_on_any_number_of_threads() {
        let text: String = (0..10_000).map(|i| format!("{{\"a\":{i}}}\n")).collect();
        for decoders in [1, 2, 3] {
            let batches = decode(&text, 64, decoders).unwrap();
            assert!(batches.iter().all(|b| b.num_rows() <= 64));
            assert_eq!(values(&batches), (0..10_000).collect::<Vec<_>>());
        }
    }

    #[test]
    fn blank_lines_are_skipped_and_a_last_line_needs_no_newline() {
        let batches = decode("{\"a\":1}\n\n  \n{\"a\":2}\n{\"a\":null}", 2, 2).unwrap();
        let column: Vec<Option<i64>> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .iter()
            })
            .collect();
        assert_eq!(column, vec![Some(1), Some(2), None]);
    }

    #[test]
    fn a_bad_line_is_named_by_its_number_in_the_file() {
        let mut text: String = (0..100).map(|i| format!("{{\"a\":{i}}}\n")).collect();
        text.push_str("{\"a\":\"x\"}\n{\"a\":1}\n");
        let error = decode(&text, 8, 2).unwrap_err();
        assert!(error.starts_with("line 101: "), "{error}");
    }

    #[test]
    fn two_values_on_a_line_or_a_cut_value_are_errors() {
        let two = decode("{\"a\":1}\n{\"a\":2} {\"a\":3}\n", 10, 1).unwrap_err();
        assert_eq!(two, "line 2: more than one JSON value on the line");
        let cut = decode("{\"a\":1}\n{\"a\":\n", 10, 1).unwrap_err();
        assert!(cut.starts_with("line 2: "), "{cut}");
    }
}
