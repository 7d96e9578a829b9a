//! Window state as a checkpoint keeps it: a stable, versioned encoding,
//! split into key groups.
//!
//! The encoding is an Arrow IPC stream (Arrow's own stable format, never
//! `arrow-row` bytes, whose layout may change between releases). Its
//! schema's metadata holds the encoding's version, the watermark and each
//! partition's event time; its batches are the key groups in order, each
//! with columns `key_group`, `window_start`, `window_end`, `fired`,
//! `state` and the key columns (`key.<name>`, in their own types). A key's
//! group is a stable hash of its values modulo [`KEY_GROUPS`], so a
//! checkpoint taken by one task can be split between several.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, LargeBinaryArray, UInt16Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::WindowError;
use crate::accumulator::Accumulator;
use crate::assign::WindowKind;
use crate::operator::{KeyCodec, WindowOperator};
use crate::state::Window;
use crate::watermark::WatermarkState;

/// The number of key groups keyed state is split into.
pub const KEY_GROUPS: u16 = 128;

/// The encoding this release writes; it reads this one only.
const VERSION: &str = "1";
const VERSION_KEY: &str = "sluice.window-state.version";
const WATERMARK_KEY: &str = "sluice.window-state.watermark";
const PARTITIONS_KEY: &str = "sluice.window-state.partitions";
const KEY_PREFIX: &str = "key.";
/// Separates key values in the text a key group is hashed from.
const VALUE_SEPARATOR: u8 = 0x1f;

impl<A: Accumulator> WindowOperator<A> {
    /// The state, the watermark and each partition's event time, encoded.
    pub fn snapshot(&self) -> Result<Vec<u8>, WindowError> {
        let entries: Vec<(Window, &[u8], &crate::state::Entry)> = self.store.entries().collect();
        let key_columns: Vec<ArrayRef> = match &self.keys {
            Some(codec) if !entries.is_empty() => {
                let parser = codec.converter.parser();
                codec
                    .converter
                    .convert_rows(entries.iter().map(|(_, key, _)| parser.parse(key)))?
            }
            _ => Vec::new(),
        };
        let key_fields: Vec<Field> = match &self.keys {
            Some(codec) if !entries.is_empty() => codec
                .fields
                .iter()
                .map(|f| f.clone().with_name(format!("{KEY_PREFIX}{}", f.name())))
                .collect(),
            _ => Vec::new(),
        };
        let groups = key_groups(&key_columns, entries.len())?;
        let mut fields = vec![
            Field::new("key_group", DataType::UInt16, false),
            Field::new("window_start", DataType::Int64, false),
            Field::new("window_end", DataType::Int64, false),
            Field::new("fired", DataType::Boolean, false),
            Field::new("state", DataType::LargeBinary, false),
        ];
        fields.extend(key_fields);
        let watermark = self.watermark.state();
        let metadata = HashMap::from([
            (VERSION_KEY.to_owned(), VERSION.to_owned()),
            (WATERMARK_KEY.to_owned(), watermark.watermark.to_string()),
            (
                PARTITIONS_KEY.to_owned(),
                encode_partitions(&watermark.partitions),
            ),
        ]);
        let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt16Array::from(groups.clone())),
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|(w, _, _)| w.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|(w, _, _)| w.1),
            )),
            Arc::new(BooleanArray::from_iter(
                entries.iter().map(|(_, _, e)| Some(e.fired)),
            )),
            Arc::new(LargeBinaryArray::from_iter_values(
                entries.iter().map(|(_, _, e)| e.state.as_slice()),
            )),
        ];
        columns.extend(key_columns);
        let all = RecordBatch::try_new(schema.clone(), columns)?;
        // One batch per key group, in key-group order.
        let mut by_group: BTreeMap<u16, Vec<u32>> = BTreeMap::new();
        for (row, group) in groups.iter().enumerate() {
            by_group.entry(*group).or_default().push(row as u32);
        }
        let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
        for rows in by_group.values() {
            let indices = arrow::array::UInt32Array::from(rows.clone());
            writer.write(&arrow::compute::take_record_batch(&all, &indices)?)?;
        }
        Ok(writer.into_inner()?)
    }

    /// Drop every group and forget the event time seen: the state of an
    /// operator that has seen no rows.
    pub fn reset(&mut self) {
        self.store.clear();
        self.keys = None;
        self.watermark.restore(
            &WatermarkState {
                watermark: i64::MIN,
                partitions: Vec::new(),
            },
            Instant::now(),
        );
    }

    /// Replace the state, the watermark and each partition's event time
    /// with a snapshot's. Partitions count as having had data at `now`.
    pub fn restore(&mut self, bytes: &[u8], now: Instant) -> Result<(), WindowError> {
        let corrupt = |reason: String| WindowError::Snapshot(reason);
        let reader = StreamReader::try_new(bytes, None)?;
        let schema = reader.schema();
        let metadata = schema.metadata();
        match metadata.get(VERSION_KEY).map(String::as_str) {
            Some(VERSION) => {}
            other => {
                return Err(corrupt(format!(
                    "window state version {other:?}, this release reads version {VERSION}"
                )));
            }
        }
        let watermark = metadata
            .get(WATERMARK_KEY)
            .and_then(|w| w.parse::<i64>().ok())
            .ok_or_else(|| corrupt("no watermark".into()))?;
        let partitions = decode_partitions(metadata.get(PARTITIONS_KEY).map_or("", String::as_str))
            .ok_or_else(|| corrupt("unreadable partition event times".into()))?;
        let key_fields: Vec<Field> = schema
            .fields()
            .iter()
            .filter_map(|f| {
                let name = f.name().strip_prefix(KEY_PREFIX)?;
                Some(f.as_ref().clone().with_name(name))
            })
            .collect();
        self.store.clear();
        self.keys = if key_fields.is_empty() {
            None
        } else {
            Some(KeyCodec::new(key_fields.clone())?)
        };
        let sessions = matches!(self.spec.kind, WindowKind::Session { .. });
        for batch in reader {
            let batch = batch?;
            let starts = batch.column(1).as_primitive::<Int64Type>();
            let ends = batch.column(2).as_primitive::<Int64Type>();
            let fired = batch.column(3).as_boolean();
            let states = batch.column(4).as_binary::<i64>();
            let keys = match &self.keys {
                Some(codec) => Some(
                    codec
                        .converter
                        .convert_columns(&batch.columns()[5..5 + key_fields.len()])?,
                ),
                None => None,
            };
            for row in 0..batch.num_rows() {
                let window = (starts.value(row), ends.value(row));
                let key: &[u8] = keys.as_ref().map_or(&[], |k| k.row(row).data());
                self.store
                    .put(window, key, states.value(row).to_vec(), fired.value(row))?;
                if sessions {
                    self.store.add_session(key, window);
                }
            }
        }
        self.watermark.restore(
            &WatermarkState {
                watermark,
                partitions,
            },
            now,
        );
        Ok(())
    }
}

/// Each row's key group: a stable hash of its key values' text. Without
/// key columns every group is in key group 0.
fn key_groups(key_columns: &[ArrayRef], rows: usize) -> Result<Vec<u16>, WindowError> {
    if key_columns.is_empty() {
        return Ok(vec![0; rows]);
    }
    let options = FormatOptions::default().with_null("\u{0}");
    let formatters = key_columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut text = Vec::new();
    Ok((0..rows)
        .map(|row| {
            text.clear();
            for formatter in &formatters {
                text.extend_from_slice(formatter.value(row).to_string().as_bytes());
                text.push(VALUE_SEPARATOR);
            }
            (xxhash_rust::xxh3::xxh3_64(&text) % u64::from(KEY_GROUPS)) as u16
        })
        .collect())
}

/// Partition event times as text: `topic\x1fpartition\x1fmax` per line.
fn encode_partitions(partitions: &[((String, i64), i64)]) -> String {
    partitions
        .iter()
        .map(|((topic, partition), max)| format!("{topic}\u{1f}{partition}\u{1f}{max}\n"))
        .collect()
}

fn decode_partitions(text: &str) -> Option<Vec<((String, i64), i64)>> {
    text.lines()
        .map(|line| {
            let mut parts = line.split('\u{1f}');
            let topic = parts.next()?.to_owned();
            let partition = parts.next()?.parse().ok()?;
            let max = parts.next()?.parse().ok()?;
            Some(((topic, partition), max))
        })
        .collect()
}
