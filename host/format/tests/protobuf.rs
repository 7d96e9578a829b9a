//! Confluent Protobuf: messages written by `schema_registry_converter`'s raw
//! encoder with two versions of a schema decode into the reader message's
//! Arrow columns; the sink encoder's output reads back as the same messages.

mod common;

use arrow::array::{Array, AsArray, BinaryArray, Float64Array, Int64Array, MapArray, StructArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use common::{Registry, assert_reader_schema_needs_no_lookup, binary};
use prost_reflect::prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, Value};
use schema_registry_converter::blocking::proto_decoder::ProtoDecoder;
use schema_registry_converter::blocking::proto_raw::ProtoRawEncoder;
use schema_registry_converter::blocking::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use sluice_format::{EncodeSpec, PoisonKind, SchemaVersion, ValueFormat};

const V1: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";

message Payment {
  int64 id = 1;
  string customer = 2;
  double amount = 3;
  google.protobuf.Timestamp created = 4;
  Method method = 5;
  repeated string tags = 6;
  map<string, int64> attrs = 7;
  Card card = 8;
  optional string note = 9;
  bytes token = 10;

  enum Method { CASH = 0; CARD = 1; }
  message Card { string brand = 1; int32 last4 = 2; }
}
"#;

/// V1 without `note`, with `channel` added.
const V2: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";

message Payment {
  int64 id = 1;
  string customer = 2;
  double amount = 3;
  google.protobuf.Timestamp created = 4;
  Method method = 5;
  repeated string tags = 6;
  map<string, int64> attrs = 7;
  Card card = 8;
  reserved 9;
  bytes token = 10;
  string channel = 11;

  enum Method { CASH = 0; CARD = 1; }
  message Card { string brand = 1; int32 last4 = 2; }
}
"#;

/// The `shop.Payment` descriptor of a schema text, compiled as a producer does.
fn descriptor(schema: &str) -> prost_reflect::MessageDescriptor {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("payment.proto"), schema).unwrap();
    let files = protox::compile(["payment.proto"], [dir.path()]).unwrap();
    DescriptorPool::from_file_descriptor_set(files)
        .unwrap()
        .get_message_by_name("shop.Payment")
        .unwrap()
}

/// Payment `i` as JSON, in the version's shape.
fn payment(i: i64, version: u8) -> serde_json::Value {
    let mut payment = serde_json::json!({
        "id": i,
        "customer": format!("customer-{i}"),
        "amount": i as f64 * 1.5,
        "created": format!("2024-01-01T00:00:{:02}.000250Z", i % 60),
        "method": if i % 2 == 0 { "CASH" } else { "CARD" },
        "tags": (0..i % 3).map(|t| format!("t{t}")).collect::<Vec<_>>(),
        "attrs": { "n": i },
        "token": "3q2+7w==",
    });
    if i % 4 != 0 {
        payment["card"] = serde_json::json!({ "brand": "visa", "last4": 1000 + i });
    }
    if version == 1 {
        if i % 3 != 0 {
            payment["note"] = serde_json::json!(format!("note {i}"));
        }
    } else {
        payment["channel"] = serde_json::json!("app");
    }
    payment
}

/// Values of payments 0..n: even ones written with V1, odd ones with V2.
fn produce(registry: &Registry, topic: &str, n: i64) -> Vec<Vec<u8>> {
    let writer = |schema: &str| {
        (
            ProtoRawEncoder::new(SrSettings::new(registry.url())),
            SubjectNameStrategy::TopicNameStrategyWithSchema(
                topic.to_owned(),
                false,
                SuppliedSchema::new(None, SchemaType::Protobuf, schema.to_owned()),
            ),
            descriptor(schema),
        )
    };
    let versions = [writer(V1), writer(V2)];
    let encode = |i: i64| {
        let (encoder, subject, message) = &versions[(i % 2) as usize];
        let value =
            DynamicMessage::deserialize(message.clone(), payment(i, (i % 2 + 1) as u8)).unwrap();
        encoder
            .encode(&value.encode_to_vec(), "shop.Payment", subject)
            .unwrap()
    };
    // Register both versions before writing, as two producer releases would.
    encode(0);
    encode(1);
    (0..n).map(encode).collect()
}

#[test]
fn two_schema_versions_decode_into_the_reader_message() {
    let registry = Registry::start();
    let values = produce(&registry, "payments", 40);
    let mut decoder = registry.decoder(
        ValueFormat::Protobuf,
        "payments-value",
        SchemaVersion::Latest,
    );
    let decoded = decoder.decode(&binary(&values)).unwrap();
    assert!(decoded.poison.is_empty(), "{:?}", decoded.poison);
    let batch = decoded.batch;
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "id", "customer", "amount", "created", "method", "tags", "attrs", "card", "token",
            "channel"
        ]
    );
    let field = |name: &str| schema.field_with_name(name).unwrap().clone();
    assert_eq!(field("id").data_type(), &DataType::Int64);
    assert!(!field("id").is_nullable(), "a proto3 scalar is never null");
    assert!(matches!(
        field("created").data_type(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_))
    ));
    assert_eq!(field("method").data_type(), &DataType::Utf8);
    assert!(matches!(field("tags").data_type(), DataType::List(_)));
    assert!(matches!(field("attrs").data_type(), DataType::Map(_, _)));
    assert!(matches!(field("card").data_type(), DataType::Struct(_)));
    assert!(field("card").is_nullable(), "a message field has presence");
    assert_eq!(field("token").data_type(), &DataType::Binary);

    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let ids = column("id");
    let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
    let amount = column("amount");
    let amount = amount.as_any().downcast_ref::<Float64Array>().unwrap();
    let created = column("created");
    let created = created.as_primitive::<TimestampMicrosecondType>();
    let method = column("method");
    let method = method.as_string::<i32>();
    let tags = column("tags");
    let tags = tags.as_list::<i32>();
    let attrs = column("attrs");
    let attrs = attrs.as_any().downcast_ref::<MapArray>().unwrap();
    let card = column("card");
    let card = card.as_any().downcast_ref::<StructArray>().unwrap();
    let token = column("token");
    let token = token.as_any().downcast_ref::<BinaryArray>().unwrap();
    let channel = column("channel");
    let channel = channel.as_string::<i32>();
    for row in 0..40 {
        let i = row as i64;
        assert_eq!(ids.value(row), i);
        assert_eq!(amount.value(row), i as f64 * 1.5);
        assert_eq!(
            created.value(row),
            (1_704_067_200 + i % 60) * 1_000_000 + 250
        );
        assert_eq!(method.value(row), if i % 2 == 0 { "CASH" } else { "CARD" });
        assert_eq!(tags.value(row).len() as i64, i % 3);
        assert_eq!(
            attrs
                .value(row)
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            i
        );
        assert_eq!(card.is_null(row), i % 4 == 0, "row {row}");
        assert_eq!(token.value(row), [0xde, 0xad, 0xbe, 0xef]);
        let expected_channel = if i % 2 == 0 { "" } else { "app" };
        assert_eq!(
            channel.value(row),
            expected_channel,
            "v1 messages: proto3's default"
        );
    }
}

#[test]
fn the_sink_encoder_round_trips_messages_a_confluent_consumer_reads() {
    let registry = Registry::start();
    let values = produce(&registry, "payments", 20);
    let mut decoder = registry.decoder(
        ValueFormat::Protobuf,
        "payments-value",
        SchemaVersion::Latest,
    );
    let decoded = decoder.decode(&binary(&values)).unwrap().batch;
    let mut encoder = sluice_format::open_encoder(
        &EncodeSpec {
            format: ValueFormat::Protobuf,
            registry: registry.options(),
            subject: "payments-value".into(),
            auto_register: false,
            record_name: None,
            template: None,
        },
        &decoded.schema(),
    )
    .unwrap();
    let encoded = encoder.encode(&decoded).unwrap();

    let mut again = registry.decoder(
        ValueFormat::Protobuf,
        "payments-value",
        SchemaVersion::Latest,
    );
    let round_trip = again.decode(&encoded).unwrap();
    assert!(round_trip.poison.is_empty(), "{:?}", round_trip.poison);
    assert_eq!(round_trip.batch.columns(), decoded.columns());

    let confluent = ProtoDecoder::new(SrSettings::new(registry.url()));
    for (row, value) in encoded.iter().enumerate() {
        let message = confluent.decode_with_context(value).unwrap().unwrap().value;
        assert_eq!(message.descriptor().full_name(), "shop.Payment");
        assert_eq!(
            message.get_field_by_name("id").unwrap().as_ref(),
            &Value::I64(row as i64)
        );
        assert_eq!(
            message
                .get_field_by_name("token")
                .unwrap()
                .as_bytes()
                .unwrap()
                .as_ref(),
            [0xde, 0xad, 0xbe, 0xef]
        );
    }
}

#[test]
fn corrupt_messages_and_foreign_schemas_are_poison() {
    let registry = Registry::start();
    let good = produce(&registry, "payments", 3);
    let mut corrupt = good[0].clone();
    corrupt.extend([0x0a, 0xff, 0xff]);
    let mut avro_id = good[1].clone();
    let avro = schema_registry_converter::blocking::schema_registry::post_schema(
        &SrSettings::new(registry.url()),
        "other-value".into(),
        SuppliedSchema::new(None, SchemaType::Avro, r#""string""#.into()),
    )
    .unwrap();
    avro_id[1..5].copy_from_slice(&avro.id.to_be_bytes());
    let values = vec![
        good[0].clone(),
        corrupt,
        avro_id,
        good[2].clone(),
        vec![1, 2, 3],
    ];
    let mut decoder = registry.decoder(
        ValueFormat::Protobuf,
        "payments-value",
        SchemaVersion::Latest,
    );
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let kinds: Vec<(u32, PoisonKind)> = decoded.poison.iter().map(|p| (p.row, p.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, PoisonKind::CorruptPayload),
            (2, PoisonKind::IncompatibleSchema),
            (4, PoisonKind::BadMagicByte),
        ]
    );
    assert_eq!(decoded.rows, [0, 3]);
}

#[test]
fn timestamps_outside_the_protobuf_range_are_invalid_values_not_overflows() {
    let registry = Registry::start();
    let message = descriptor(V1);
    let encoder = ProtoRawEncoder::new(SrSettings::new(registry.url()));
    let subject = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "far".to_owned(),
        false,
        SuppliedSchema::new(None, SchemaType::Protobuf, V1.to_owned()),
    );
    let created = message.get_field_by_name("created").unwrap();
    let prost_reflect::Kind::Message(timestamp) = created.kind() else {
        panic!("created is a message")
    };
    let with_created = |seconds: i64, nanos: i32| {
        let mut value = DynamicMessage::deserialize(message.clone(), payment(0, 1)).unwrap();
        let mut at = DynamicMessage::new(timestamp.clone());
        at.set_field_by_name("seconds", Value::I64(seconds));
        at.set_field_by_name("nanos", Value::I32(nanos));
        value.set_field(&created, Value::Message(at));
        encoder
            .encode(&value.encode_to_vec(), "shop.Payment", &subject)
            .unwrap()
    };
    let values = vec![
        with_created(1_700_000_000, 0),
        with_created(i64::MAX, 0),
        with_created(i64::MIN, 0),
        with_created(253_402_300_800, 0),
        with_created(0, -1),
        with_created(253_402_300_799, 999_999_999),
    ];
    let mut decoder = registry.decoder(ValueFormat::Protobuf, "far-value", SchemaVersion::Latest);
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let bad: Vec<(u32, PoisonKind)> = decoded.poison.iter().map(|p| (p.row, p.kind)).collect();
    assert_eq!(
        bad,
        [1, 2, 3, 4].map(|row| (row, PoisonKind::InvalidValue)),
        "{:?}",
        decoded.poison
    );
    assert_eq!(decoded.batch.num_rows(), 2, "the in-range ones decode");
}

#[test]
fn a_fresh_decoder_knows_its_reader_schema_without_a_lookup() {
    let registry = Registry::start();
    let values = produce(&registry, "flood", 2);
    assert_reader_schema_needs_no_lookup(&registry, ValueFormat::Protobuf, &values[1]);
}

/// Every Protobuf kind the decoder maps, with the edge cases of the wire.
const KINDS: &str = r#"syntax = "proto3";
package kinds;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Kinds {
  double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5; uint64 u64 = 6;
  sint32 s32 = 7; sint64 s64 = 8; fixed32 fx32 = 9; fixed64 fx64 = 10; sfixed32 sf32 = 11;
  sfixed64 sf64 = 12; bool b = 13; string s = 14; bytes by = 15; Color color = 16;
  optional int32 oi = 17; Inner inner = 18; repeated Inner inners = 19; repeated sint32 rs = 20;
  map<int32, string> m = 21; google.protobuf.Timestamp ts = 22; google.protobuf.Int64Value w = 23;
  oneof choice { int32 c1 = 24; string c2 = 25; }
  repeated google.protobuf.Timestamp rts = 26; map<string, Inner> mi = 27;

  enum Color { RED = 0; GREEN = 1; }
  message Inner { string name = 1; repeated int64 xs = 2; }
}
"#;

/// Protobuf wire bytes, written by hand.
struct Wire(Vec<u8>);

impl Wire {
    fn new() -> Self {
        Wire(Vec::new())
    }
    fn varint(mut self, mut v: u64) -> Self {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }
    fn key(self, number: u64, wire: u64) -> Self {
        self.varint(number << 3 | wire)
    }
    fn int(self, number: u64, v: u64) -> Self {
        self.key(number, 0).varint(v)
    }
    fn fixed32(mut self, number: u64, v: u32) -> Self {
        self = self.key(number, 5);
        self.0.extend(v.to_le_bytes());
        self
    }
    fn fixed64(mut self, number: u64, v: u64) -> Self {
        self = self.key(number, 1);
        self.0.extend(v.to_le_bytes());
        self
    }
    fn bytes(mut self, number: u64, v: &[u8]) -> Self {
        self = self.key(number, 2).varint(v.len() as u64);
        self.0.extend(v);
        self
    }
    fn message(self, number: u64, m: Wire) -> Self {
        self.bytes(number, &m.0)
    }
}

#[test]
fn every_kind_reads_from_the_wire_into_its_column() {
    let registry = Registry::start();
    let encoder = ProtoRawEncoder::new(SrSettings::new(registry.url()));
    let subject = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "kinds".to_owned(),
        false,
        SuppliedSchema::new(None, SchemaType::Protobuf, KINDS.to_owned()),
    );
    let frame = |wire: Wire| encoder.encode(&wire.0, "kinds.Kinds", &subject).unwrap();
    let inner = |name: &str| Wire::new().bytes(1, name.as_bytes());
    let timestamp = |seconds: u64, nanos: u64| Wire::new().int(1, seconds).int(2, nanos);
    let full = Wire::new()
        .fixed64(1, (-2.5f64).to_bits())
        .fixed32(2, 1.5f32.to_bits())
        .int(3, -7i64 as u64)
        .int(4, -8i64 as u64)
        .int(5, u64::from(u32::MAX))
        .int(6, u64::MAX)
        .int(7, 3) // zigzag: -2
        .int(8, 4) // zigzag: 2
        .fixed32(9, 9)
        .fixed64(10, 10)
        .fixed32(11, -11i32 as u32)
        .fixed64(12, -12i64 as u64)
        .int(13, 1)
        .bytes(14, "first".as_bytes())
        .bytes(14, "naïve".as_bytes()) // the last value wins
        .bytes(15, &[0, 255])
        .int(16, 1)
        .int(17, 0) // present, at its default: not null
        .message(18, inner("a"))
        .message(18, Wire::new().int(2, 5)) // merged into the first
        .message(19, inner("x"))
        .message(19, Wire::new())
        .bytes(20, &Wire::new().varint(1).varint(2).0) // packed: -1, 1
        .int(20, 4) // and one more unpacked: 2
        .message(21, Wire::new().int(1, 10).bytes(2, b"ten"))
        .message(21, Wire::new().int(1, 9).bytes(2, b"nine"))
        .message(21, Wire::new().int(1, 10).bytes(2, b"TEN")) // same key: the last wins
        .message(22, timestamp(1_700_000_000, 123_456_789))
        .message(23, Wire::new()) // present, holding the default
        .bytes(25, b"two")
        .int(24, 1) // the oneof's last field wins
        .message(26, timestamp(0, 1_000))
        .message(27, Wire::new().bytes(1, b"k")) // an entry without a value
        .int(999, 5) // unknown to the reader: skipped
        .int(16, 7); // a number the enum does not name
    let empty = Wire::new();
    let values = vec![frame(full), frame(empty)];
    let mut decoder = registry.decoder(ValueFormat::Protobuf, "kinds-value", SchemaVersion::Latest);
    let decoded = decoder.decode(&binary(&values)).unwrap();
    assert!(decoded.poison.is_empty(), "{:?}", decoded.poison);
    let batch = decoded.batch;
    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let f64s = column("d");
    assert_eq!(
        f64s.as_primitive::<arrow::datatypes::Float64Type>()
            .values(),
        &[-2.5, 0.0]
    );
    assert_eq!(
        column("f")
            .as_primitive::<arrow::datatypes::Float32Type>()
            .values(),
        &[1.5, 0.0]
    );
    assert_eq!(
        column("i32")
            .as_primitive::<arrow::datatypes::Int32Type>()
            .values(),
        &[-7, 0]
    );
    assert_eq!(
        column("i64")
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values(),
        &[-8, 0]
    );
    assert_eq!(
        column("u32")
            .as_primitive::<arrow::datatypes::UInt32Type>()
            .values(),
        &[u32::MAX, 0]
    );
    assert_eq!(
        column("u64")
            .as_primitive::<arrow::datatypes::UInt64Type>()
            .values(),
        &[u64::MAX, 0]
    );
    assert_eq!(
        column("s32")
            .as_primitive::<arrow::datatypes::Int32Type>()
            .values(),
        &[-2, 0]
    );
    assert_eq!(
        column("s64")
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values(),
        &[2, 0]
    );
    assert_eq!(
        column("fx32")
            .as_primitive::<arrow::datatypes::UInt32Type>()
            .values(),
        &[9, 0]
    );
    assert_eq!(
        column("fx64")
            .as_primitive::<arrow::datatypes::UInt64Type>()
            .values(),
        &[10, 0]
    );
    assert_eq!(
        column("sf32")
            .as_primitive::<arrow::datatypes::Int32Type>()
            .values(),
        &[-11, 0]
    );
    assert_eq!(
        column("sf64")
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values(),
        &[-12, 0]
    );
    let b = column("b");
    assert_eq!(
        b.as_boolean().iter().collect::<Vec<_>>(),
        [Some(true), Some(false)]
    );
    let s = column("s");
    assert_eq!(
        s.as_string::<i32>().iter().collect::<Vec<_>>(),
        [Some("naïve"), Some("")]
    );
    let by = column("by");
    assert_eq!(
        by.as_binary::<i32>().iter().collect::<Vec<_>>(),
        [Some(&[0u8, 255][..]), Some(&[][..])]
    );
    let color = column("color");
    assert_eq!(
        color.as_string::<i32>().iter().collect::<Vec<_>>(),
        [Some("7"), Some("RED")]
    );
    let oi = column("oi");
    assert_eq!(
        oi.as_primitive::<arrow::datatypes::Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(0), None]
    );

    let inner = column("inner");
    let inner = inner.as_struct();
    assert!(
        inner.is_valid(0) && inner.is_null(1),
        "an absent message is null"
    );
    assert_eq!(inner.column(0).as_string::<i32>().value(0), "a");
    let xs = inner.column(1).as_list::<i32>().value(0);
    assert_eq!(
        xs.as_primitive::<arrow::datatypes::Int64Type>().values(),
        &[5],
        "merged"
    );
    let inners = column("inners");
    let inners = inners.as_list::<i32>();
    assert_eq!(inners.value_length(0), 2);
    assert_eq!(
        inners.value_length(1),
        0,
        "no items: an empty list, not null"
    );
    assert!(inners.is_valid(1));
    let rs = column("rs");
    let rs = rs.as_list::<i32>().value(0);
    assert_eq!(
        rs.as_primitive::<arrow::datatypes::Int32Type>().values(),
        &[-1, 1, 2]
    );

    let m = column("m");
    let m = m.as_any().downcast_ref::<MapArray>().unwrap().value(0);
    let keys: Vec<_> = m.column(0).as_string::<i32>().iter().flatten().collect();
    let texts: Vec<_> = m.column(1).as_string::<i32>().iter().flatten().collect();
    assert_eq!(keys, ["10", "9"], "by key text, one entry per key");
    assert_eq!(texts, ["TEN", "nine"]);
    let ts = column("ts");
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        ts.iter().collect::<Vec<_>>(),
        [Some(1_700_000_000_123_456), None]
    );
    let w = column("w");
    assert_eq!(
        w.as_primitive::<arrow::datatypes::Int64Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(0), None],
        "a wrapper present with its default is not null"
    );
    let c1 = column("c1");
    let c2 = column("c2");
    assert_eq!(
        c1.as_primitive::<arrow::datatypes::Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(1), None]
    );
    assert!(c2.is_null(0), "the oneof's other field is cleared");
    let rts = column("rts");
    let rts = rts.as_list::<i32>().value(0);
    assert_eq!(
        rts.as_primitive::<TimestampMicrosecondType>().values(),
        &[1]
    );
    let mi = column("mi");
    let mi = mi.as_any().downcast_ref::<MapArray>().unwrap().value(0);
    assert_eq!(mi.column(0).as_string::<i32>().value(0), "k");
    let value = mi.column(1).as_struct();
    assert!(
        value.is_valid(0),
        "an entry without a value holds the empty message"
    );
    assert_eq!(value.column(0).as_string::<i32>().value(0), "");
}

#[test]
fn a_record_that_breaks_off_mid_message_is_poison_and_the_next_rows_are_whole() {
    let registry = Registry::start();
    let encoder = ProtoRawEncoder::new(SrSettings::new(registry.url()));
    let subject = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "kinds".to_owned(),
        false,
        SuppliedSchema::new(None, SchemaType::Protobuf, KINDS.to_owned()),
    );
    let frame = |wire: Wire| encoder.encode(&wire.0, "kinds.Kinds", &subject).unwrap();
    let good = |i: u64| {
        Wire::new()
            .int(3, i)
            .message(19, Wire::new().bytes(1, b"item").int(2, i))
            .message(21, Wire::new().int(1, i).bytes(2, b"v"))
    };
    // Items and map entries of row 1 were appended before its end turned
    // out to be missing; a bad UTF-8 string and a wrong wire type follow.
    let mut cut = good(1).0;
    cut.extend([0x9a, 0x01, 0x10, 0x0a]); // inners: 16 bytes announced, one there
    let values = vec![
        frame(good(0)),
        frame(Wire(cut)),
        frame(good(2)),
        frame(good(3).bytes(14, &[0xff])),
        frame(good(4).fixed64(3, 1)),
        frame(good(5)),
    ];
    let mut decoder = registry.decoder(ValueFormat::Protobuf, "kinds-value", SchemaVersion::Latest);
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let kinds: Vec<(u32, PoisonKind)> = decoded.poison.iter().map(|p| (p.row, p.kind)).collect();
    assert_eq!(
        kinds,
        [1, 3, 4].map(|row| (row, PoisonKind::CorruptPayload)),
        "{:?}",
        decoded.poison
    );
    assert!(
        decoded.poison[1].message.contains("field s"),
        "{}",
        decoded.poison[1].message
    );
    assert_eq!(decoded.rows, [0, 2, 5]);
    let batch = decoded.batch;
    let ids = batch.column_by_name("i32").unwrap().clone();
    assert_eq!(
        ids.as_primitive::<arrow::datatypes::Int32Type>().values(),
        &[0, 2, 5]
    );
    let inners = batch.column_by_name("inners").unwrap().clone();
    let inners = inners.as_list::<i32>();
    assert_eq!(
        inners.value_offsets(),
        &[0, 1, 2, 3],
        "no item of a poison row is left"
    );
    let xs = inners
        .value(2)
        .as_struct()
        .column(1)
        .as_list::<i32>()
        .value(0);
    assert_eq!(
        xs.as_primitive::<arrow::datatypes::Int64Type>().values(),
        &[5]
    );
    let m = batch.column_by_name("m").unwrap().clone();
    let m = m.as_any().downcast_ref::<MapArray>().unwrap();
    assert_eq!(m.value_offsets(), &[0, 1, 2, 3]);
    // The next batch starts from empty columns.
    let again = decoder.decode(&binary(&values[..1])).unwrap();
    assert_eq!(again.batch.num_rows(), 1);
}

#[test]
fn a_double_that_is_not_a_number_stays_one() {
    let registry = Registry::start();
    let encoder = ProtoRawEncoder::new(SrSettings::new(registry.url()));
    let subject = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "kinds".to_owned(),
        false,
        SuppliedSchema::new(None, SchemaType::Protobuf, KINDS.to_owned()),
    );
    let nan = encoder
        .encode(
            &Wire::new().fixed64(1, f64::NAN.to_bits()).0,
            "kinds.Kinds",
            &subject,
        )
        .unwrap();
    let mut decoder = registry.decoder(ValueFormat::Protobuf, "kinds-value", SchemaVersion::Latest);
    let decoded = decoder.decode(&binary(&[nan])).unwrap();
    assert!(decoded.poison.is_empty(), "{:?}", decoded.poison);
    let d = decoded.batch.column_by_name("d").unwrap().clone();
    assert!(
        d.as_primitive::<arrow::datatypes::Float64Type>()
            .value(0)
            .is_nan()
    );
}

#[test]
fn a_record_of_another_message_of_the_schema_is_incompatible() {
    let registry = Registry::start();
    let encoder = ProtoRawEncoder::new(SrSettings::new(registry.url()));
    let subject = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "kinds".to_owned(),
        false,
        SuppliedSchema::new(None, SchemaType::Protobuf, KINDS.to_owned()),
    );
    let kinds = encoder
        .encode(&Wire::new().int(3, 1).0, "kinds.Kinds", &subject)
        .unwrap();
    let inner = encoder
        .encode(&Wire::new().bytes(1, b"x").0, "kinds.Kinds.Inner", &subject)
        .unwrap();
    let mut decoder = registry.decoder(ValueFormat::Protobuf, "kinds-value", SchemaVersion::Latest);
    let values = vec![inner.clone(), kinds, inner];
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let kinds: Vec<(u32, PoisonKind)> = decoded.poison.iter().map(|p| (p.row, p.kind)).collect();
    assert_eq!(
        kinds,
        [0, 2].map(|row| (row, PoisonKind::IncompatibleSchema))
    );
    assert!(
        decoded.poison[1].message.contains("kinds.Kinds.Inner"),
        "{}",
        decoded.poison[1].message
    );
    assert_eq!(decoded.rows, [1]);
}
