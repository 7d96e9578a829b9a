//! JSON objects of flat rows, parsed with simd-json: a fast path beside
//! arrow-json for schemas of primitive columns, for JSON lines and for
//! values of one JSON document each (Kafka records'). Each line or value is
//! parsed as one document, so it is a row exactly as arrow-json takes it.
//! Whatever the fast path does not decode to the same values as arrow-json
//! (a nested column, a value of another JSON type than its column's, any
//! error) it declines, and the caller decodes those rows as before.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanBuilder, Float64Builder, Int64Array, Int64Builder,
    StringBuilder, make_array,
};
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use simd_json::{Buffers, INPUT_PADDING, Node, StaticNode, Tape};

/// Decodes JSON lines or values into batches of a schema of primitive
/// columns, or declines them.
pub struct FlatJson {
    schema: SchemaRef,
    columns: Vec<ColumnType>,
    /// A copy of the text being parsed, padded for simd-json: parsing
    /// unescapes strings in place, and declined text must stay intact.
    text: Vec<u8>,
    /// Where each document of the text at hand is.
    spans: Vec<Range<usize>>,
    buffers: Buffers,
    tape: Tape<'static>,
    /// For each column, the tape position of its value in the row at hand.
    slots: Vec<Option<usize>>,
}

/// The column types the fast path decodes.
#[derive(Clone)]
enum ColumnType {
    Int64,
    Float64,
    Boolean,
    Utf8,
    Timestamp(TimeUnit, Tz),
}

/// A column being built.
enum Column {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Utf8(StringBuilder),
    Timestamp(Timestamps),
}

/// A timestamp column being built.
struct Timestamps {
    unit: TimeUnit,
    tz: Tz,
    values: Int64Builder,
    /// The last text parsed: events in a stream often share their
    /// timestamp with the one before (many per millisecond), and the same
    /// text parses to the same value, `last_value`.
    last_text: String,
    last_value: i64,
}

impl Timestamps {
    /// Append the timestamp `text` spells, as arrow-json parses it; `None`
    /// if it is not one.
    fn append_text(&mut self, text: &str) -> Option<()> {
        // Empty until a text parses: an empty text is parsed (and fails).
        if self.last_text.is_empty() || self.last_text != text {
            let time = string_to_datetime(&self.tz, text).ok()?;
            let value = match self.unit {
                TimeUnit::Second => time.timestamp(),
                TimeUnit::Millisecond => time.timestamp_millis(),
                TimeUnit::Microsecond => time.timestamp_micros(),
                TimeUnit::Nanosecond => time.timestamp_nanos_opt()?,
            };
            self.last_text.clear();
            self.last_text.push_str(text);
            self.last_value = value;
        }
        self.values.append_value(self.last_value);
        Some(())
    }
}

impl std::fmt::Debug for FlatJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatJson")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl FlatJson {
    /// A decoder for `schema`, or `None` if it has a column the fast path
    /// does not decode (or two columns of one name).
    pub fn new(schema: &SchemaRef) -> Option<Self> {
        let columns = schema
            .fields()
            .iter()
            .map(|field| match field.data_type() {
                DataType::Int64 => Some(ColumnType::Int64),
                DataType::Float64 => Some(ColumnType::Float64),
                DataType::Boolean => Some(ColumnType::Boolean),
                DataType::Utf8 => Some(ColumnType::Utf8),
                DataType::Timestamp(unit, tz) => {
                    let tz = tz.as_deref().unwrap_or("+00:00").parse::<Tz>().ok()?;
                    Some(ColumnType::Timestamp(*unit, tz))
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let fields = schema.fields();
        let unique = fields
            .iter()
            .enumerate()
            .all(|(i, f)| fields[..i].iter().all(|g| g.name() != f.name()));
        unique.then(|| FlatJson {
            schema: Arc::clone(schema),
            slots: vec![None; columns.len()],
            columns,
            text: Vec::new(),
            spans: Vec::new(),
            buffers: Buffers::new(4096),
            tape: Tape(Vec::new()),
        })
    }

    /// The rows of `block`'s lines that are not blank, or `None` to leave
    /// the block to arrow-json; `block` is as it was either way.
    pub fn decode_lines(&mut self, block: &mut Vec<u8>) -> Option<RecordBatch> {
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', block).chain([block.len()]) {
            if start < block.len() && !is_blank(&block[start..end]) {
                spans.push(start..end);
            }
            start = end + 1;
        }
        let len = block.len();
        // Parsing unescapes strings in place, but a string without a
        // backslash is left as it is: only a block with one is parsed in a
        // copy, so that a declined block reaches arrow-json intact.
        let mut copy = std::mem::take(&mut self.text);
        let in_place = memchr::memchr(b'\\', block).is_none();
        let text = if in_place {
            block
        } else {
            copy.clear();
            copy.extend_from_slice(block);
            &mut copy
        };
        text.resize(len + INPUT_PADDING, b' ');
        let batch = self.rows(text, &spans);
        text.truncate(len);
        (self.text, self.spans) = (copy, spans);
        batch
    }

    /// The rows of `values`, one JSON object each, or `None` to leave them
    /// to arrow-json (a null value among them too).
    pub fn decode_values(&mut self, values: &BinaryArray) -> Option<RecordBatch> {
        if values.null_count() > 0 {
            return None;
        }
        let offsets = values.value_offsets();
        let first = *offsets.first()? as usize;
        let bytes = &values.values()[first..*offsets.last()? as usize];
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        spans.extend(
            offsets
                .windows(2)
                .map(|o| o[0] as usize - first..o[1] as usize - first),
        );
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        text.extend_from_slice(bytes);
        text.resize(bytes.len() + INPUT_PADDING, b' ');
        let batch = self.rows(&mut text, &spans);
        (self.text, self.spans) = (text, spans);
        batch
    }

    /// The rows of the documents at `spans` of `text`, whose last
    /// `INPUT_PADDING` bytes are padding.
    fn rows(&mut self, text: &mut [u8], spans: &[Range<usize>]) -> Option<RecordBatch> {
        let mut columns: Vec<Column> = self
            .columns
            .iter()
            .map(|c| c.builder(spans.len()))
            .collect();
        let mut decoded = Some(());
        for span in spans {
            // The tape's nodes borrow the document: it is emptied after each.
            let mut tape = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
            let parsed = simd_json::fill_tape_padded(
                &mut text[span.start..],
                span.len(),
                &mut self.buffers,
                &mut tape,
            );
            decoded = parsed
                .ok()
                .and_then(|()| append_row(&self.schema, &tape.0, &mut self.slots, &mut columns));
            self.tape = tape.reset();
            if decoded.is_none() {
                break;
            }
        }
        decoded?;
        let arrays = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(column, field)| {
                let array = column.finish(field.data_type())?;
                (field.is_nullable() || array.null_count() == 0).then_some(array)
            })
            .collect::<Option<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), arrays).ok()?;
        (batch.num_rows() > 0).then_some(batch)
    }
}

/// Whether a JSON line holds nothing but whitespace: it is no row, on the
/// fast path or off it.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Append the row `nodes` (one parsed line) holds to `columns`; `None` if
/// it is not an object or a value is not one the fast path takes.
fn append_row(
    schema: &SchemaRef,
    nodes: &[Node],
    slots: &mut [Option<usize>],
    columns: &mut [Column],
) -> Option<()> {
    let Some(&Node::Object { len, .. }) = nodes.first() else {
        return None;
    };
    slots.fill(None);
    let fields = schema.fields();
    let mut guess = 0;
    let mut at = 1;
    for _ in 0..len {
        let Node::String(key) = nodes[at] else {
            return None;
        };
        // Rows usually list their keys in one order: try the next column
        // first. A repeated key keeps its last value, as in arrow-json.
        let column = if fields.get(guess).is_some_and(|f| f.name() == key) {
            Some(guess)
        } else {
            fields.iter().position(|f| f.name() == key)
        };
        if let Some(column) = column {
            slots[column] = Some(at + 1);
            guess = column + 1;
        }
        at += 1 + match nodes[at + 1] {
            Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
            _ => 1,
        };
    }
    for (column, slot) in columns.iter_mut().zip(slots.iter()) {
        column.append(slot.map(|at| &nodes[at]))?;
    }
    Some(())
}

impl ColumnType {
    /// An empty column of this type with room for `rows` values.
    fn builder(&self, rows: usize) -> Column {
        match self {
            ColumnType::Int64 => Column::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => Column::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Utf8 => Column::Utf8(StringBuilder::with_capacity(rows, rows * 16)),
            ColumnType::Timestamp(unit, tz) => Column::Timestamp(Timestamps {
                unit: *unit,
                tz: *tz,
                values: Int64Builder::with_capacity(rows),
                last_text: String::new(),
                last_value: 0,
            }),
        }
    }
}

impl Column {
    /// Append `value` (`None`: the row has no such key, a null), as
    /// arrow-json would decode it; `None` if the fast path does not take it.
    fn append(&mut self, value: Option<&Node>) -> Option<()> {
        let value = match value {
            None | Some(Node::Static(StaticNode::Null)) => {
                self.append_null();
                return Some(());
            }
            Some(value) => value,
        };
        match (self, value) {
            (Column::Int64(b), Node::Static(number)) => b.append_value(integer(number)?),
            (Column::Float64(b), Node::Static(number)) => b.append_value(float(number)?),
            (Column::Boolean(b), Node::Static(StaticNode::Bool(v))) => b.append_value(*v),
            (Column::Utf8(b), Node::String(s)) => b.append_value(s),
            (Column::Timestamp(t), Node::String(s)) => t.append_text(s)?,
            (Column::Timestamp(t), Node::Static(number)) => t.values.append_value(integer(number)?),
            _ => return None,
        }
        Some(())
    }

    fn append_null(&mut self) {
        match self {
            Column::Int64(b) | Column::Timestamp(Timestamps { values: b, .. }) => b.append_null(),
            Column::Float64(b) => b.append_null(),
            Column::Boolean(b) => b.append_null(),
            Column::Utf8(b) => b.append_null(),
        }
    }

    /// The column as an array of `data_type`, its field's type.
    fn finish(self, data_type: &DataType) -> Option<ArrayRef> {
        Some(match self {
            Column::Int64(mut b) => Arc::new(b.finish()),
            Column::Float64(mut b) => Arc::new(b.finish()),
            Column::Boolean(mut b) => Arc::new(b.finish()),
            Column::Utf8(mut b) => Arc::new(b.finish()),
            Column::Timestamp(mut t) => {
                let values: Int64Array = t.values.finish();
                let data = values
                    .into_data()
                    .into_builder()
                    .data_type(data_type.clone());
                make_array(data.build().ok()?)
            }
        })
    }
}

/// An integer literal as an i64 (simd-json reads non-negative ones as u64).
fn integer(number: &StaticNode) -> Option<i64> {
    match *number {
        StaticNode::I64(v) => Some(v),
        StaticNode::U64(v) => i64::try_from(v).ok(),
        _ => None,
    }
}

/// A number literal as an f64, rounded as arrow-json's parse of its text
/// rounds it. simd-json reads only `-0` as the integer `I64(0)`.
fn float(number: &StaticNode) -> Option<f64> {
    match *number {
        StaticNode::F64(v) => Some(v),
        StaticNode::I64(0) => Some(-0.0),
        StaticNode::I64(v) => Some(v as f64),
        StaticNode::U64(v) => Some(v as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Schema};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
                true,
            ),
            Field::new("u", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("n", DataType::Int64, false),
        ]))
    }

    /// What arrow-json makes of `block`: its one batch, or its error.
    fn arrow_json(schema: &SchemaRef, block: &[u8]) -> Result<RecordBatch, String> {
        let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(1 << 20)
            .build_decoder()
            .unwrap();
        let used = decoder.decode(block).map_err(|e| e.to_string())?;
        assert_eq!(used, block.len());
        let batch = decoder.flush().map_err(|e| e.to_string())?;
        batch.ok_or_else(|| "no rows".to_owned())
    }

    /// A JSON text for column `key` (or for a key not in the schema):
    /// values of its type, nulls and values of other types, in their many
    /// spellings.
    fn value(rng: &mut SmallRng, key: &str) -> String {
        let spelled = |rng: &mut SmallRng, options: &[&str]| {
            options[rng.random_range(0..options.len())].to_owned()
        };
        if rng.random_ratio(1, 200) {
            return spelled(
                rng,
                &["null", "{}", "[1,{\"i\":2}]", "\"7\"", "true", "1.5"],
            );
        }
        match key {
            "i" | "n" => match rng.random_range(0..40) {
                0 => rng.random::<i64>().to_string(),
                1 => rng.random_range(-1000..1000).to_string(),
                2..10 => spelled(
                    rng,
                    &["-0", "0", "9223372036854775807", "-9223372036854775808"],
                ),
                10 => spelled(
                    rng,
                    &["9223372036854775808", "1e3", "-1.0", "18446744073709551615"],
                ),
                _ => rng.random_range(0..100_000).to_string(),
            },
            "f" => match rng.random_range(0..10) {
                0 => format!("{:e}", rng.random::<f64>() * 1e10),
                1 => rng.random_range(-1000..1000).to_string(),
                2 => format!("{}", f64::from_bits(rng.random::<u64>() >> 2)),
                3 => spelled(
                    rng,
                    &[
                        "-0",
                        "0",
                        "-0.0",
                        "1E400",
                        "2.2250738585072011e-308",
                        "9007199254740993",
                    ],
                ),
                _ => format!("{:.3}", rng.random::<f64>() * 1e6),
            },
            "b" => spelled(rng, &["true", "false"]),
            "t" | "u" => match rng.random_range(0..40) {
                0 => format!(
                    "\"2023-11-14T22:13:{:02}.{:03}Z\"",
                    rng.random_range(0..60),
                    rng.random_range(0..1000)
                ),
                1 => rng
                    .random_range(-1_000_000_000_000i64..4_000_000_000_000)
                    .to_string(),
                2..10 => spelled(
                    rng,
                    &[
                        "\"2024-02-29 23:59:59+05:30\"",
                        "\"2023-01-01T00:00:00.123456789-08:00\"",
                        "\"2023-01-01\"",
                        "\"1970-01-01T00:00:00\"",
                    ],
                ),
                10 => spelled(
                    rng,
                    &[
                        "\"2023-02-30T00:00:00Z\"",
                        "\"yesterday\"",
                        "1.5e3",
                        "\"9999-12-31T23:59:59Z\"",
                    ],
                ),
                _ => format!(
                    "\"2023-11-14T22:13:{:02}.{:03}Z\"",
                    rng.random_range(0..60),
                    rng.random_range(0..1000)
                ),
            },
            _ => spelled(
                rng,
                &[
                    "\"plain\"",
                    "\"\"",
                    "\"a \\\"quoted\\\" \\\\ word\"",
                    "\"caf\\u00e9 \\ud83d\\ude00\"",
                    "\"tab\\tand\\nnewline\"",
                    "\"Zoë, ünïcode\"",
                ],
            ),
        }
    }

    /// A line of a random object: the columns' keys in any order, some
    /// missing or repeated, keys the schema lacks, whitespace.
    fn line(rng: &mut SmallRng) -> String {
        if rng.random_ratio(1, 400) {
            return [
                "[1]",
                "null",
                "{\"i\":1}{\"i\":2}",
                "{\"i\":1",
                "{\"i\":1} x",
                "7",
            ][rng.random_range(0..6)]
            .to_owned();
        }
        let mut keys = vec!["i", "f", "b", "s", "t", "u", "n", "other", "nested"];
        let mut fields = Vec::new();
        for _ in 0..keys.len() {
            let key = keys.swap_remove(rng.random_range(0..keys.len()));
            if key != "n" && rng.random_ratio(1, 10) {
                continue;
            }
            let text = match key {
                "nested" => "{\"i\": [1, \"x\", {\"s\": null}]}".to_owned(),
                "s" | "other" => value(rng, "s"),
                _ => value(rng, key),
            };
            fields.push(format!(
                "\"{key}\":{}{text}",
                if rng.random_ratio(1, 8) { " " } else { "" }
            ));
            if rng.random_ratio(1, 50) {
                fields.push(format!("\"{key}\":{}", value(rng, key)));
            }
        }
        format!("{{{}}}", fields.join(","))
    }

    #[test]
    fn what_it_decodes_arrow_json_decodes_the_same() {
        let schema = schema();
        let mut flat = FlatJson::new(&schema).unwrap();
        let mut rng = SmallRng::seed_from_u64(17);
        let (mut fast, mut blocks) = (0, 0);
        for _ in 0..5000 {
            let rows = rng.random_range(1..6);
            let mut block: String = (0..rows).map(|_| line(&mut rng) + "\n").collect();
            if rng.random_ratio(1, 4) {
                block.pop(); // a file's last line needs no newline
            }
            blocks += 1;
            if let Some(batch) = flat.decode_lines(&mut block.as_bytes().to_vec()) {
                fast += 1;
                assert_eq!(Ok(batch), arrow_json(&schema, block.as_bytes()), "{block}");
            }
        }
        // Rows of values of their columns' types are the common case.
        assert!(fast * 4 > blocks, "{fast} of {blocks} blocks decoded");
    }

    #[test]
    fn values_decode_as_arrow_json_decodes_them_as_lines() {
        let schema = schema();
        let mut flat = FlatJson::new(&schema).unwrap();
        let mut rng = SmallRng::seed_from_u64(18);
        let mut fast = 0;
        for _ in 0..2000 {
            let values: Vec<String> = (0..rng.random_range(1..6))
                .map(|_| line(&mut rng))
                .collect();
            let array = BinaryArray::from_iter_values(values.iter().map(String::as_bytes));
            // A slice of a larger array: its offsets do not start at 0.
            let padded = BinaryArray::from_iter_values(
                ["{\"n\":0}"]
                    .into_iter()
                    .chain(values.iter().map(String::as_str)),
            );
            for array in [array, padded.slice(1, values.len())] {
                if let Some(batch) = flat.decode_values(&array) {
                    fast += 1;
                    assert_eq!(Ok(batch), arrow_json(&schema, values.join("\n").as_bytes()));
                }
            }
        }
        assert!(fast > 1000, "{fast} of 4000 arrays decoded");
        let with_null = BinaryArray::from(vec![Some(&b"{\"n\":1}"[..]), None]);
        assert!(flat.decode_values(&with_null).is_none());
        let blank = BinaryArray::from_iter_values([&b"{\"n\":1}"[..], b" "]);
        assert!(flat.decode_values(&blank).is_none());
    }

    #[test]
    fn rows_of_their_columns_types_are_decoded_blank_lines_skipped() {
        let schema = schema();
        let block = b"{\"n\":1,\"i\":-0,\"f\":-0,\"s\":\"caf\\u00e9\",\"t\":\"2023-11-14T22:13:20.5Z\"}\n \n{\"n\":2,\"b\":true,\"u\":7}\r\n";
        let batch = FlatJson::new(&schema)
            .unwrap()
            .decode_lines(&mut block.to_vec())
            .unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(Ok(batch.clone()), arrow_json(&schema, block));
        let f = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(f.value(0).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn it_declines_what_it_does_not_decode_as_arrow_json_does() {
        let schema = schema();
        let mut flat = FlatJson::new(&schema).unwrap();
        for block in [
            "{\"n\":1,\"i\":\"7\"}",                    // a string for an integer
            "{\"n\":1,\"i\":1.0}",                      // a float for an integer
            "{\"n\":1,\"i\":9223372036854775808}",      // past i64
            "{\"n\":1,\"s\":7}",                        // a number for a string
            "{\"n\":1,\"f\":[1]}",                      // nested, for a primitive column
            "{\"n\":1,\"t\":\"2023-02-30T00:00:00Z\"}", // no such day
            "{\"n\":null}",                             // null in a non-nullable column
            "{\"i\":1}",                                // and missing from it
            "{\"n\":1}{\"n\":2}",                       // two values on a line
            "{\"n\":1",                                 // a cut line
            "[1]",                                      // not an object
            "{\"s\":\"a\\\"b\",\"n\":null}",            // an escape, and a null `n`
            "\n  \n",                                   // no rows
        ] {
            let mut bytes = block.as_bytes().to_vec();
            assert!(flat.decode_lines(&mut bytes).is_none(), "{block}");
            assert_eq!(bytes, block.as_bytes(), "a declined block is left intact");
        }
        // The decoder goes on after a decline.
        assert!(
            flat.decode_lines(&mut b"{\"n\":1,\"s\":\"a\\\"b\"}".to_vec())
                .is_some()
        );
    }

    #[test]
    fn schemas_with_other_types_are_left_to_arrow_json() {
        let nested = Schema::new(vec![Field::new(
            "l",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        )]);
        assert!(FlatJson::new(&Arc::new(nested)).is_none());
        let twice = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("a", DataType::Utf8, true),
        ]);
        assert!(FlatJson::new(&Arc::new(twice)).is_none());
    }
}
