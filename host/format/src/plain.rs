//! Values without a registry: JSON objects and CSV lines of a declared
//! schema, and the raw value as a string or bytes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::flat_json::FlatJson;
use crate::json_rows::{JsonRows, screen};
use crate::{Decoded, FormatError, Poison, PoisonKind, ValueDecoder};

/// One JSON object per value.
#[derive(Debug)]
pub(crate) struct JsonDecoder {
    rows: JsonRows,
    /// Values of flat rows of primitive columns decode here first.
    flat: Option<FlatJson>,
}

impl JsonDecoder {
    pub(crate) fn new(schema: SchemaRef) -> Self {
        JsonDecoder {
            flat: FlatJson::new(&schema),
            rows: JsonRows::new(schema),
        }
    }
}

impl ValueDecoder for JsonDecoder {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        if let Some(batch) = self.flat.as_mut().and_then(|f| f.decode_values(values)) {
            return Ok(Decoded {
                batch,
                rows: (0..values.len() as u32).collect(),
                poison: Vec::new(),
            });
        }
        let (good, poison) = screen(values, |value| {
            let text = match std::str::from_utf8(value) {
                Ok(text) => text,
                Err(e) => return Ok(Err((PoisonKind::InvalidUtf8, e.to_string()))),
            };
            Ok(match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) if value.is_object() => Ok(value),
                Ok(other) => Err((
                    PoisonKind::InvalidValue,
                    format!("expected a JSON object, found {other}"),
                )),
                Err(e) => Err((PoisonKind::InvalidValue, format!("invalid JSON: {e}"))),
            })
        })?;
        self.rows.decoded(good, poison)
    }
}

/// One CSV line per value, no header.
#[derive(Debug)]
pub(crate) struct CsvDecoder {
    schema: SchemaRef,
}

impl CsvDecoder {
    pub(crate) fn new(schema: SchemaRef) -> Self {
        CsvDecoder { schema }
    }

    /// The rows of `lines`, or the parser's error.
    fn parse(&self, lines: &[&[u8]]) -> Result<RecordBatch, String> {
        let mut decoder = arrow::csv::ReaderBuilder::new(self.schema.clone())
            .with_header(false)
            .with_batch_size(lines.len().max(1))
            .build_decoder();
        let mut text = Vec::new();
        for line in lines {
            text.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                text.push(b'\n');
            }
        }
        let mut rest = text.as_slice();
        while !rest.is_empty() {
            let consumed = decoder.decode(rest).map_err(|e| e.to_string())?;
            if consumed == 0 {
                break;
            }
            rest = &rest[consumed..];
        }
        let batch = decoder.flush().map_err(|e| e.to_string())?;
        let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
        if batch.num_rows() != lines.len() {
            return Err(format!(
                "{} values gave {} CSV rows (a value must be one line)",
                lines.len(),
                batch.num_rows()
            ));
        }
        Ok(batch)
    }
}

impl ValueDecoder for CsvDecoder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        let lines: Vec<&[u8]> = values.iter().map(|v| v.unwrap_or_default()).collect();
        if let Ok(batch) = self.parse(&lines) {
            return Ok(Decoded {
                batch,
                rows: (0..lines.len() as u32).collect(),
                poison: Vec::new(),
            });
        }
        let mut good = Vec::new();
        let mut rows = Vec::new();
        let mut poison = Vec::new();
        for (row, line) in lines.iter().enumerate() {
            let kind = if std::str::from_utf8(line).is_err() {
                PoisonKind::InvalidUtf8
            } else {
                PoisonKind::InvalidValue
            };
            match self.parse(&[line]) {
                Ok(_) if kind == PoisonKind::InvalidValue => {
                    good.push(*line);
                    rows.push(row as u32);
                }
                Ok(_) => poison.push(Poison {
                    row: row as u32,
                    kind,
                    message: "the line is not valid UTF-8".into(),
                }),
                Err(message) => poison.push(Poison {
                    row: row as u32,
                    kind,
                    message,
                }),
            }
        }
        let batch = self
            .parse(&good)
            .map_err(|e| FormatError::Schema(format!("re-parsing good CSV lines: {e}")))?;
        Ok(Decoded {
            batch,
            rows,
            poison,
        })
    }
}

/// The value itself, as a `value` column of utf8 or binary.
#[derive(Debug)]
pub(crate) struct RawDecoder {
    schema: SchemaRef,
    as_string: bool,
}

impl RawDecoder {
    pub(crate) fn string() -> Self {
        Self::new(DataType::Utf8, true)
    }

    pub(crate) fn bytes() -> Self {
        Self::new(DataType::Binary, false)
    }

    fn new(data_type: DataType, as_string: bool) -> Self {
        RawDecoder {
            schema: Arc::new(Schema::new(vec![Field::new("value", data_type, false)])),
            as_string,
        }
    }
}

impl ValueDecoder for RawDecoder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        let mut rows = Vec::with_capacity(values.len());
        let mut poison = Vec::new();
        let column: ArrayRef = if self.as_string {
            let mut strings = Vec::with_capacity(values.len());
            for row in 0..values.len() {
                match std::str::from_utf8(values.value(row)) {
                    Ok(text) => {
                        strings.push(text);
                        rows.push(row as u32);
                    }
                    Err(e) => poison.push(Poison {
                        row: row as u32,
                        kind: PoisonKind::InvalidUtf8,
                        message: e.to_string(),
                    }),
                }
            }
            Arc::new(StringArray::from(strings))
        } else {
            rows.extend(0..values.len() as u32);
            Arc::new(values.clone())
        };
        let batch = RecordBatch::try_new(self.schema.clone(), vec![column])
            .map_err(|e| FormatError::Schema(e.to_string()))?;
        Ok(Decoded {
            batch,
            rows,
            poison,
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Float64Type;

    use super::*;

    #[test]
    fn a_float_reads_the_same_on_the_fast_path_and_off_it() {
        let schema = Arc::new(Schema::new(vec![Field::new("f", DataType::Float64, true)]));
        let mut decoder = JsonDecoder::new(schema);
        // serde_json rounds this one up unless its `float_roundtrip`
        // feature is on (jsonschema turns it on in this build); arrow-json
        // and simd-json round it correctly.
        let text = &b"{\"f\":2.2250738585072011e-308}"[..];
        let fast = decoder
            .decode(&BinaryArray::from_iter_values([text]))
            .unwrap();
        // A null value among them: the batch goes through serde_json.
        let slow = decoder
            .decode(&BinaryArray::from(vec![Some(text), None]))
            .unwrap();
        assert_eq!(slow.poison.len(), 1);
        let first = |d: &Decoded| d.batch.column(0).as_primitive::<Float64Type>().value(0);
        assert_eq!(first(&fast).to_bits(), 2.225073858507201e-308f64.to_bits());
        assert_eq!(first(&slow).to_bits(), first(&fast).to_bits());
    }
}
