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
