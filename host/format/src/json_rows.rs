//! JSON values into Arrow rows of a fixed schema, through `arrow-json`; a
//! value that does not fit the schema is poison, not a failed batch.

use std::sync::Arc;

use arrow::array::{Array, BinaryArray};
use arrow::datatypes::{DataType, Field, Fields, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::{Decoder, ReaderBuilder};
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use crate::{Decoded, FormatError, Poison, PoisonKind};

/// Builds Arrow rows of one schema from JSON values.
#[derive(Debug)]
pub(crate) struct JsonRows {
    schema: SchemaRef,
}

impl JsonRows {
    pub(crate) fn new(schema: SchemaRef) -> Self {
        JsonRows { schema }
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// A decoder for up to `rows` rows in one batch.
    fn decoder(&self, rows: usize) -> Result<Decoder, FormatError> {
        ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows.max(1))
            .build_decoder()
            .map_err(|e| FormatError::Schema(e.to_string()))
    }

    /// The rows for `values` (input row, value). Values that do not fit the
    /// schema come back as poison.
    pub(crate) fn build(
        &self,
        values: Vec<(u32, Value)>,
    ) -> Result<(RecordBatch, Vec<u32>, Vec<Poison>), FormatError> {
        let all: Vec<&Value> = values.iter().map(|(_, v)| v).collect();
        self.rows_of(
            &values,
            |decoder| decoder.serialize(&all),
            |decoder, value| decoder.serialize(&[value]),
        )
    }

    /// The decoded batch of `good` (input row, value) values, with the
    /// values that do not fit added to `poison`.
    pub(crate) fn decoded(
        &self,
        good: Vec<(u32, Value)>,
        poison: Vec<Poison>,
    ) -> Result<Decoded, FormatError> {
        let (batch, rows, unfit) = self.build(good)?;
        Ok(with_poison(batch, rows, poison, unfit))
    }

    /// The decoded batch of `good` (input row, JSON text) values, read
    /// from their bytes, with the values that do not fit the schema added
    /// to `poison`. Each text must be one JSON value.
    pub(crate) fn decoded_text(
        &self,
        good: &[(u32, &[u8])],
        poison: Vec<Poison>,
    ) -> Result<Decoded, FormatError> {
        let (batch, rows, unfit) = self.rows_of(
            good,
            |decoder| good.iter().try_for_each(|(_, text)| feed(decoder, text)),
            |decoder, text| feed(decoder, text),
        )?;
        Ok(with_poison(batch, rows, poison, unfit))
    }

    /// The rows of `items` (input row, item): all of them through `all`,
    /// or, when some item does not fit the schema, each through `one`, the
    /// ones that do not fit as poison.
    fn rows_of<T>(
        &self,
        items: &[(u32, T)],
        all: impl FnOnce(&mut Decoder) -> Result<(), ArrowError>,
        one: impl Fn(&mut Decoder, &T) -> Result<(), ArrowError>,
    ) -> Result<(RecordBatch, Vec<u32>, Vec<Poison>), FormatError> {
        // One row more than the items: `feed` ends each text with a newline,
        // which a full decoder would not take.
        let mut decoder = self.decoder(items.len() + 1)?;
        if let Ok(batch) = all(&mut decoder).and_then(|()| decoder.flush()) {
            let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
            return Ok((batch, items.iter().map(|(r, _)| *r).collect(), Vec::new()));
        }
        // Some item does not fit: find which, one at a time.
        let mut decoder = self.decoder(items.len() + 1)?;
        let mut rows = Vec::new();
        let mut poison = Vec::new();
        for (row, item) in items {
            let mut single = self.decoder(2)?;
            match one(&mut single, item).and_then(|()| single.flush()) {
                Ok(_) => {
                    one(&mut decoder, item).map_err(|e| FormatError::Schema(e.to_string()))?;
                    rows.push(*row);
                }
                Err(e) => poison.push(Poison {
                    row: *row,
                    kind: PoisonKind::InvalidValue,
                    message: format!("does not fit the reader schema: {e}"),
                }),
            }
        }
        let batch = self
            .flush(&mut decoder)?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
        Ok((batch, rows, poison))
    }

    fn flush(&self, decoder: &mut Decoder) -> Result<Option<RecordBatch>, FormatError> {
        decoder
            .flush()
            .map_err(|e| FormatError::Schema(e.to_string()))
    }
}

/// `batch` of `rows`, with the poison found before it and the rows that did
/// not fit, in input order.
fn with_poison(
    batch: RecordBatch,
    rows: Vec<u32>,
    mut poison: Vec<Poison>,
    unfit: Vec<Poison>,
) -> Decoded {
    poison.extend(unfit);
    poison.sort_by_key(|p| p.row);
    Decoded {
        batch,
        rows,
        poison,
    }
}

/// One JSON text into `decoder`, ended so that the next cannot run on
/// into it (`1` then `2` would read as `12`).
fn feed(decoder: &mut Decoder, text: &[u8]) -> Result<(), arrow::error::ArrowError> {
    for part in [text, b"\n"] {
        let mut rest = part;
        while !rest.is_empty() {
            let read = decoder.decode(rest)?;
            if read == 0 {
                return Err(arrow::error::ArrowError::JsonError(
                    "the decoder took no bytes".into(),
                ));
            }
            rest = &rest[read..];
        }
    }
    Ok(())
}

/// JSON values with their input rows, and the records that are poison.
type Screened = (Vec<(u32, Value)>, Vec<Poison>);

/// Each value through `decode_one`: the JSON values with their input rows,
/// and the records that are poison.
pub(crate) fn screen(
    values: &BinaryArray,
    mut decode_one: impl FnMut(&[u8]) -> Result<Result<Value, (PoisonKind, String)>, FormatError>,
) -> Result<Screened, FormatError> {
    let mut good = Vec::with_capacity(values.len());
    let mut poison = Vec::new();
    for row in 0..values.len() {
        match decode_one(values.value(row))? {
            Ok(value) => good.push((row as u32, value)),
            Err((kind, message)) => poison.push(Poison {
                row: row as u32,
                kind,
                message,
            }),
        }
    }
    Ok((good, poison))
}

/// A map with utf8 keys, the Arrow type of JSON objects and Protobuf maps.
pub(crate) fn utf8_map(values: DataType) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", values, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}
