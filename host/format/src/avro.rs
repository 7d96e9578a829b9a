//! Confluent Avro into Arrow, through `arrow-avro`: one streaming decoder
//! per writer schema id, each resolving its writer schema into the job's
//! reader schema (Avro's rules: added fields take their defaults, removed
//! fields are skipped, promotions apply).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, BinaryArray};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_avro::reader::{Decoder, DecoderMode, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};

use crate::reassembly::Reassembly;
use crate::registry::{Lookup, LookupBudget, Registry, RegistrySchema};
use crate::{Decoded, FormatError, Poison, PoisonKind, ValueDecoder, confluent_frame};

/// Rows a writer's decoder buffers before it is flushed.
const DECODER_ROWS: usize = 4096;

/// Decodes Confluent Avro values into the reader schema's columns.
#[derive(Debug)]
pub(crate) struct AvroDecoder {
    registry: Registry,
    reader: AvroSchema,
    reader_text: RegistrySchema,
    schema: SchemaRef,
    writers: HashMap<u32, Writer>,
    lookups: LookupBudget,
}

/// What is known of one writer schema id.
#[derive(Debug)]
enum Writer {
    /// Records with this id decode with this decoder.
    Usable(Box<WriterDecoder>),
    /// Records with this id are poison, for this reason.
    Unusable(PoisonKind, String),
    /// The registry said it has no schema of this id, at this time; asked
    /// again once that answer expires.
    Missing(String, Instant),
}

/// A writer schema's decoder and the input rows it holds since its last
/// flush.
#[derive(Debug)]
struct WriterDecoder {
    id: u32,
    store: SchemaStore,
    decoder: Decoder,
    pending: Vec<u32>,
}

impl AvroDecoder {
    pub(crate) fn new(registry: Registry, reader: RegistrySchema) -> Result<Self, FormatError> {
        if reader.schema_type != "AVRO" {
            return Err(FormatError::Schema(format!(
                "the reader schema (id {}) is {}, not AVRO",
                reader.id, reader.schema_type
            )));
        }
        let reader_schema = AvroSchema::new(reader.schema.clone());
        let probe = WriterDecoder::build(reader.id, &reader.schema, &reader_schema)
            .map_err(|e| FormatError::Schema(format!("reader schema {}: {e}", reader.id)))?;
        let schema = Arc::new(Schema::new(probe.decoder.schema().fields().clone()));
        // Records written with the reader schema itself need no lookup, so a
        // flood of made-up ids cannot spend the budget they would need.
        let writers = HashMap::from([(reader.id, Writer::Usable(Box::new(probe)))]);
        Ok(AvroDecoder {
            lookups: registry.lookup_budget(),
            registry,
            reader: reader_schema,
            reader_text: reader,
            schema,
            writers,
        })
    }

    /// The decoder of writer schema `id`, fetching the schema on first use
    /// (and again once a "no such schema" answer expires); `None` when the
    /// lookup budget of this second is spent.
    fn writer(&mut self, id: u32) -> Result<Option<&mut Writer>, FormatError> {
        if let Some(Writer::Missing(_, since)) = self.writers.get(&id)
            && self.lookups.expired(*since)
        {
            self.writers.remove(&id);
        }
        if !self.writers.contains_key(&id) {
            if !self.lookups.take() {
                return Ok(None);
            }
            let writer = match self.registry.schema_by_id(id)? {
                Lookup::Missing(message) => {
                    Writer::Missing(format!("schema id {id}: {message}"), Instant::now())
                }
                Lookup::Found(schema) if schema.schema_type != "AVRO" => Writer::Unusable(
                    PoisonKind::IncompatibleSchema,
                    format!("schema id {id} is {}, not AVRO", schema.schema_type),
                ),
                Lookup::Found(schema) => {
                    match WriterDecoder::build(id, &schema.schema, &self.reader) {
                        Ok(decoder) => Writer::Usable(Box::new(decoder)),
                        Err(e) => Writer::Unusable(
                            PoisonKind::IncompatibleSchema,
                            format!("schema id {id} cannot be read as the reader schema: {e}"),
                        ),
                    }
                }
            };
            self.writers.insert(id, writer);
        }
        Ok(self.writers.get_mut(&id))
    }

    /// Decodes every row of `values` into `done` (or `poison`).
    fn decode_rows(
        &mut self,
        values: &BinaryArray,
        done: &mut Reassembly,
        poison: &mut Vec<Poison>,
    ) -> Result<(), FormatError> {
        let reader = self.reader.clone();
        for row in 0..values.len() {
            let row32 = row as u32;
            let (id, payload) = match confluent_frame(values.value(row)) {
                Ok(frame) => frame,
                Err(p) => {
                    poison.push(Poison { row: row32, ..p });
                    continue;
                }
            };
            let (kind, message) = match self.writer(id)? {
                None => self.lookups.over_budget(id),
                Some(Writer::Unusable(kind, message)) => (*kind, message.clone()),
                Some(Writer::Missing(message, _)) => (PoisonKind::UnknownSchemaId, message.clone()),
                Some(Writer::Usable(writer)) => {
                    match writer.decode(row32, payload, values, &reader, done)? {
                        Ok(()) => continue,
                        Err(message) => (
                            PoisonKind::CorruptPayload,
                            format!("schema id {id}: {message}"),
                        ),
                    }
                }
            };
            poison.push(Poison {
                row: row32,
                kind,
                message,
            });
        }
        for writer in self.writers.values_mut() {
            if let Writer::Usable(writer) = writer {
                writer.flush(done)?;
            }
        }
        Ok(())
    }
}

impl WriterDecoder {
    fn build(id: u32, writer: &str, reader: &AvroSchema) -> Result<Self, String> {
        let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
        store
            .set(Fingerprint::Id(id), AvroSchema::new(writer.to_owned()))
            .map_err(|e| e.to_string())?;
        let decoder = Self::decoder(id, &store, reader)?;
        Ok(WriterDecoder {
            id,
            store,
            decoder,
            pending: Vec::new(),
        })
    }

    fn decoder(id: u32, store: &SchemaStore, reader: &AvroSchema) -> Result<Decoder, String> {
        ReaderBuilder::new()
            .with_batch_size(DECODER_ROWS)
            .with_reader_schema(reader.clone())
            .with_writer_schema_store(store.clone())
            .with_active_fingerprint(Fingerprint::Id(id))
            .with_decoder_mode(DecoderMode::UnframedDatum)
            .build_decoder()
            .map_err(|e| e.to_string())
    }

    /// Decode one record's payload; a record that fails leaves the decoder
    /// as it was before it.
    fn decode(
        &mut self,
        row: u32,
        payload: &[u8],
        values: &BinaryArray,
        reader: &AvroSchema,
        done: &mut Reassembly,
    ) -> Result<Result<(), String>, FormatError> {
        if self.decoder.batch_is_full() {
            self.flush(done)?;
        }
        let outcome = match self.decoder.decode(payload) {
            Ok(consumed) if consumed == payload.len() => Ok(()),
            Ok(consumed) => Err(format!(
                "{} bytes after the record's end (payload {} bytes)",
                payload.len() - consumed,
                payload.len()
            )),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                self.pending.push(row);
                Ok(Ok(()))
            }
            Err(message) => {
                // The failed record may have left part of a row behind:
                // start a fresh decoder with the rows that were good.
                self.decoder = Self::decoder(self.id, &self.store, reader)
                    .map_err(|e| FormatError::Schema(format!("schema id {}: {e}", self.id)))?;
                let good = std::mem::take(&mut self.pending);
                for &good_row in &good {
                    let (_, payload) =
                        confluent_frame(values.value(good_row as usize)).expect("decoded before");
                    self.decoder
                        .decode(payload)
                        .map_err(|e| FormatError::Schema(format!("re-decoding: {e}")))?;
                }
                self.pending = good;
                self.flush(done)?;
                Ok(Err(message))
            }
        }
    }

    /// Drops the rows decoded since the last flush.
    fn discard(&mut self, reader: &AvroSchema) -> Result<(), FormatError> {
        self.decoder = Self::decoder(self.id, &self.store, reader)
            .map_err(|e| FormatError::Schema(format!("schema id {}: {e}", self.id)))?;
        self.pending.clear();
        Ok(())
    }

    fn flush(&mut self, done: &mut Reassembly) -> Result<(), FormatError> {
        if let Some(batch) = self
            .decoder
            .flush()
            .map_err(|e| FormatError::Schema(format!("schema id {}: {e}", self.id)))?
        {
            done.push(batch, std::mem::take(&mut self.pending));
        }
        Ok(())
    }
}

impl ValueDecoder for AvroDecoder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn reader_schema(&self) -> Option<&RegistrySchema> {
        Some(&self.reader_text)
    }

    fn decode(&mut self, values: &BinaryArray) -> Result<Decoded, FormatError> {
        let mut done = Reassembly::new(self.schema.clone());
        let mut poison = Vec::new();
        if let Err(error) = self.decode_rows(values, &mut done, &mut poison) {
            // The batch will be retried whole: what this attempt decoded
            // must not be delivered with the retry's rows.
            let reader = self.reader.clone();
            for writer in self.writers.values_mut() {
                if let Writer::Usable(writer) = writer {
                    writer.discard(&reader)?;
                }
            }
            return Err(error);
        }
        let (batch, rows) = done.finish()?;
        Ok(Decoded {
            batch: drop_metadata(batch, &self.schema)?,
            rows,
            poison,
        })
    }
}

/// `batch` with the decoder's schema (without arrow-avro's metadata).
fn drop_metadata(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, FormatError> {
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
        .map_err(|e| FormatError::Schema(e.to_string()))
}
