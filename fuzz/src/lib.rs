//! What the fuzz targets share: a registry stand-in in the process with a
//! reader schema of every kind registered, and decoders reading it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::BinaryArray;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use schema_registry_converter::blocking::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use sluice_format::{DecodeSpec, SchemaVersion, ValueDecoder, ValueFormat, open_decoder};
use sluice_registry_stand_in::StandIn;

/// An Avro record with every kind of field the decoder maps.
pub const AVRO_SCHEMA: &str = r#"{"type":"record","name":"Order","namespace":"fuzz","fields":[
 {"name":"id","type":"long"},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
 {"name":"quantities","type":{"type":"map","values":"long"}},
 {"name":"placed_on","type":{"type":"int","logicalType":"date"}},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
 {"name":"code","type":{"type":"fixed","name":"Code","size":4}},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"ship_to","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"zip","type":["null","string"],"default":null}]}},
 {"name":"score","type":["null","double","string"],"default":null}]}"#;

/// A Protobuf message with every kind of field the decoder maps.
pub const PROTOBUF_SCHEMA: &str = r#"syntax = "proto3";
package fuzz;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message Order {
  int64 id = 1;
  Status status = 2;
  map<string, int64> quantities = 3;
  google.protobuf.Timestamp placed = 4;
  Address ship_to = 5;
  optional string note = 6;
  oneof payment { string card = 7; bytes voucher = 8; }
  repeated double prices = 9;
  google.protobuf.Int32Value count = 10;
  sint64 delta = 11;
  fixed32 flags = 12;
  message Address { string city = 1; repeated string lines = 2; }
  enum Status { NEW = 0; PAID = 1; }
}
"#;

/// A JSON Schema with an enum, a map, a date, nesting and a closed object.
pub const JSON_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,
 "properties":{"id":{"type":"integer"},"status":{"type":"string","enum":["NEW","PAID"]},
 "quantities":{"type":"object","additionalProperties":{"type":"integer"}},
 "placed_on":{"type":"string","format":"date"},"at":{"type":"string","format":"date-time"},
 "total":{"type":"number"},"tags":{"type":"array","items":{"type":"string"}},
 "ship_to":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
 "required":["id","status"]}"#;

/// The schema id every registry format's reader schema gets (the first registered).
pub const SCHEMA_ID: u32 = 1;

/// A decoder of `format`, made once per process.
pub fn decoder(format: ValueFormat) -> &'static Mutex<Box<dyn ValueDecoder>> {
    static DECODERS: OnceLock<Mutex<BTreeMap<String, &'static Mutex<Box<dyn ValueDecoder>>>>> =
        OnceLock::new();
    let mut decoders = DECODERS.get_or_init(Default::default).lock().unwrap();
    decoders
        .entry(format!("{format:?}"))
        .or_insert_with(|| Box::leak(Box::new(Mutex::new(open(format)))))
}

fn open(format: ValueFormat) -> Box<dyn ValueDecoder> {
    let (schema_type, text) = match format {
        ValueFormat::Avro => (Some(SchemaType::Avro), AVRO_SCHEMA),
        ValueFormat::Protobuf => (Some(SchemaType::Protobuf), PROTOBUF_SCHEMA),
        ValueFormat::JsonSchema => (Some(SchemaType::Json), JSON_SCHEMA),
        _ => (None, ""),
    };
    let mut registry = BTreeMap::new();
    if let Some(schema_type) = schema_type {
        // The stand-in lives as long as the fuzzer (held in a static, so
        // that the leak checker does not count it).
        static STAND_INS: Mutex<Vec<StandIn>> = Mutex::new(Vec::new());
        let stand_in = StandIn::start().expect("the stand-in starts");
        let url = stand_in.url();
        STAND_INS.lock().unwrap().push(stand_in);
        let id = post_schema(
            &SrSettings::new(url.clone()),
            "fuzz-value".to_owned(),
            SuppliedSchema::new(None, schema_type, text.to_owned()),
        )
        .expect("the reader schema registers")
        .id;
        assert_eq!(id, SCHEMA_ID);
        registry.insert("url".to_owned(), url);
    }
    open_decoder(&DecodeSpec {
        format,
        registry,
        subject: Some("fuzz-value".to_owned()),
        version: SchemaVersion::Latest,
        schema: Some(Arc::new(declared_schema())),
        max_value_bytes: 1 << 20,
    })
    .expect("the decoder opens")
}

/// The declared columns of the JSON and CSV decoders.
fn declared_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("day", DataType::Date32, true),
    ])
}

/// Decodes `data` as one Kafka value with `format`'s decoder. For the
/// registry formats an even first byte frames the rest with the reader
/// schema's id (so most inputs reach the payload decoder); an odd one sends
/// the rest as it is (framing included).
pub fn decode_one(format: ValueFormat, data: &[u8]) {
    let framed = matches!(
        format,
        ValueFormat::Avro | ValueFormat::Protobuf | ValueFormat::JsonSchema
    );
    let value = match data.split_first() {
        Some((first, rest)) if framed && first % 2 == 0 => {
            let mut value = vec![0];
            value.extend_from_slice(&SCHEMA_ID.to_be_bytes());
            if format == ValueFormat::Protobuf {
                // The message index list: the first message.
                value.push(0);
            }
            value.extend_from_slice(rest);
            value
        }
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    };
    let mut decoder = decoder(format).lock().unwrap();
    let _ = decoder.decode(&BinaryArray::from_iter_values([value]));
}
