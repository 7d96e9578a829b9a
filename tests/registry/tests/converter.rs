//! The stand-in through `schema_registry_converter`'s own blocking client, encoders and
//! decoders: what the product does against a real registry.

use apache_avro::types::Value;
use schema_registry_converter::blocking::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::blocking::json::{JsonDecoder, JsonEncoder};
use schema_registry_converter::blocking::proto_decoder::ProtoDecoder;
use schema_registry_converter::blocking::proto_raw::ProtoRawEncoder;
use schema_registry_converter::blocking::schema_registry::{
    SrSettings, get_all_subjects, get_all_versions, get_schema_by_id, is_compatible_schema,
    post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::prost_reflect::{self, ReflectMessage as _};
use schema_registry_converter::schema_registry_common::{
    RawError, SchemaType, SubjectNameStrategy, SuppliedReference, SuppliedSchema,
};
use sluice_registry_stand_in::StandIn;

const READING: &str = r#"{"type":"record","name":"Reading","namespace":"sluice.test",
  "fields":[{"name":"sensor","type":"string"},{"name":"celsius","type":"double"}]}"#;

const READING_WITH_UNIT: &str = r#"{"type":"record","name":"Reading","namespace":"sluice.test",
  "fields":[{"name":"sensor","type":"string"},{"name":"celsius","type":"double"},
            {"name":"unit","type":"string","default":"C"}]}"#;

const READING_WITH_REQUIRED_UNIT: &str = r#"{"type":"record","name":"Reading","namespace":"sluice.test",
  "fields":[{"name":"sensor","type":"string"},{"name":"celsius","type":"double"},
            {"name":"unit","type":"string"}]}"#;

const ADDRESS: &str = r#"{"type":"record","name":"Address","namespace":"sluice.test",
  "fields":[{"name":"city","type":"string"}]}"#;

/// Names the referenced type by its short name in the same namespace: the converter's Avro
/// reference resolution (`replace_reference`) does not match a full name without a leading dot.
const CUSTOMER: &str = r#"{"type":"record","name":"Customer","namespace":"sluice.test",
  "fields":[{"name":"name","type":"string"},{"name":"address","type":"Address"}]}"#;

const MONEY_PROTO: &str = r#"syntax = "proto3";
package sluice.test;
message Money { string currency = 1; int64 units = 2; }
"#;

const ORDER_PROTO: &str = r#"syntax = "proto3";
package sluice.test;
import "money.proto";
message Order { string id = 1; Money total = 2; }
"#;

fn settings(registry: &StandIn) -> SrSettings {
    SrSettings::new_builder(registry.url())
        .no_proxy()
        .build()
        .expect("settings for the stand-in")
}

/// The registry's `error_code`, as the converter hands it on (the product reads it this way).
fn error_code(error: &SRCError) -> Option<u32> {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<RawError>())
        .map(|raw| raw.error_code)
}

fn avro(schema: &str) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned())
}

fn reading(sensor: &str, celsius: f64) -> Vec<(&'static str, Value)> {
    vec![
        ("sensor", Value::String(sensor.to_owned())),
        ("celsius", Value::Double(celsius)),
    ]
}

#[test]
fn avro_encoder_auto_registers_and_decoder_reads_back() {
    let registry = StandIn::start().unwrap();
    let sr = settings(&registry);
    let with_schema = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "readings".to_owned(),
        false,
        avro(READING),
    );
    let bytes = AvroEncoder::new(sr.clone())
        .encode(reading("s-1", 21.5), &with_schema)
        .expect("encode with auto-registration");
    assert_eq!(bytes[0], 0, "magic byte");
    let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());

    assert_eq!(get_all_subjects(&sr).unwrap(), vec!["readings-value"]);
    assert_eq!(
        get_all_versions(&sr, "readings-value".to_owned()).unwrap(),
        vec![1]
    );

    let decoded = AvroDecoder::new(sr.clone()).decode(Some(&bytes)).unwrap();
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("sensor".to_owned(), Value::String("s-1".to_owned())),
            ("celsius".to_owned(), Value::Double(21.5)),
        ])
    );

    // Without a schema, the topic strategy encodes with the subject's latest version.
    let latest = SubjectNameStrategy::TopicNameStrategy("readings".to_owned(), false);
    let again = AvroEncoder::new(sr)
        .encode(reading("s-1", 21.5), &latest)
        .unwrap();
    assert_eq!(again, bytes);
    assert_eq!(u32::from_be_bytes(again[1..5].try_into().unwrap()), id);
}

#[test]
fn post_schema_and_get_by_id_keep_one_id_across_subjects() {
    let registry = StandIn::start().unwrap();
    let sr = settings(&registry);
    let first = post_schema(&sr, "a-value".to_owned(), avro(READING)).unwrap();
    let second = post_schema(&sr, "b-value".to_owned(), avro(READING)).unwrap();
    assert_eq!(first.id, second.id);
    let evolved = post_schema(&sr, "a-value".to_owned(), avro(READING_WITH_UNIT)).unwrap();
    assert_ne!(evolved.id, first.id);

    let fetched = get_schema_by_id(first.id, &sr).unwrap();
    assert_eq!(fetched.schema_type, SchemaType::Avro);
    assert_eq!(fetched.schema, READING);
    assert!(fetched.references.is_empty());
    assert_eq!(
        get_all_versions(&sr, "a-value".to_owned()).unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        get_all_versions(&sr, "b-value".to_owned()).unwrap(),
        vec![1]
    );

    let missing = get_schema_by_id(999, &sr).unwrap_err();
    assert!(
        !missing.retriable,
        "a missing schema is not worth a retry: {missing:?}"
    );
    assert_eq!(error_code(&missing), Some(40403), "{missing:?}");
}

#[test]
fn registration_rejects_what_backward_compatibility_forbids() {
    let registry = StandIn::start().unwrap();
    let sr = settings(&registry);
    post_schema(&sr, "r-value".to_owned(), avro(READING)).unwrap();

    assert!(is_compatible_schema(&sr, "r-value".to_owned(), avro(READING_WITH_UNIT)).unwrap());
    assert!(
        !is_compatible_schema(&sr, "r-value".to_owned(), avro(READING_WITH_REQUIRED_UNIT)).unwrap()
    );
    let rejected = post_schema(&sr, "r-value".to_owned(), avro(READING_WITH_REQUIRED_UNIT))
        .expect_err("a new field without a default breaks BACKWARD");
    assert_eq!(error_code(&rejected), Some(409), "{rejected:?}");
    post_schema(&sr, "r-value".to_owned(), avro(READING_WITH_UNIT)).unwrap();
    assert_eq!(
        get_all_versions(&sr, "r-value".to_owned()).unwrap(),
        vec![1, 2]
    );
}

#[test]
fn avro_references_register_and_resolve_for_encoding() {
    let registry = StandIn::start().unwrap();
    let sr = settings(&registry);
    let customer = avro(CUSTOMER).with_references(vec![SuppliedReference::new(
        "sluice.test.Address".to_owned(),
        "address".to_owned(),
        ADDRESS.to_owned(),
    )]);
    let registered = post_schema(&sr, "customers-value".to_owned(), customer).unwrap();
    assert_eq!(registered.references.len(), 1);
    assert_eq!(registered.references[0].subject, "address");
    assert_eq!(registered.references[0].version, 1);

    let fetched = get_schema_by_id(registered.id, &sr).unwrap();
    assert_eq!(fetched.references, registered.references);

    let latest = SubjectNameStrategy::TopicNameStrategy("customers".to_owned(), false);
    let bytes = AvroEncoder::new(sr.clone())
        .encode(
            vec![
                ("name", Value::String("Ada".to_owned())),
                (
                    "address",
                    Value::Record(vec![("city".to_owned(), Value::String("Delft".to_owned()))]),
                ),
            ],
            &latest,
        )
        .expect("the encoder resolves the reference from the registry");
    let decoded = AvroDecoder::new(sr).decode(Some(&bytes)).unwrap();
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("name".to_owned(), Value::String("Ada".to_owned())),
            (
                "address".to_owned(),
                Value::Record(vec![("city".to_owned(), Value::String("Delft".to_owned()))])
            ),
        ])
    );
}

#[test]
fn protobuf_references_register_and_resolve_for_decoding() {
    let registry = StandIn::start().unwrap();
    let sr = settings(&registry);
    let order = SuppliedSchema::new(None, SchemaType::Protobuf, ORDER_PROTO.to_owned())
        .with_references(vec![SuppliedReference::new(
            "money.proto".to_owned(),
            "money".to_owned(),
            MONEY_PROTO.to_owned(),
        )]);
    let registered = post_schema(&sr, "orders-value".to_owned(), order).unwrap();
    let fetched = get_schema_by_id(registered.id, &sr).unwrap();
    assert_eq!(fetched.schema_type, SchemaType::Protobuf);
    assert_eq!(fetched.references[0].name, "money.proto");

    // Order { id: "o-1", total: Money { currency: "EUR", units: 42 } }
    let order_bytes = [
        0x0a, 3, b'o', b'-', b'1', 0x12, 7, 0x0a, 3, b'E', b'U', b'R', 0x10, 42,
    ];
    let latest = SubjectNameStrategy::TopicNameStrategy("orders".to_owned(), false);
    let encoded = ProtoRawEncoder::new(sr.clone())
        .encode(&order_bytes, "sluice.test.Order", &latest)
        .unwrap();
    assert_eq!(
        u32::from_be_bytes(encoded[1..5].try_into().unwrap()),
        registered.id
    );

    let prost_reflect::Value::Message(order) =
        ProtoDecoder::new(sr).decode(Some(&encoded)).unwrap()
    else {
        panic!("a protobuf message decodes to a message");
    };
    assert_eq!(order.descriptor().full_name(), "sluice.test.Order");
    assert_eq!(order.get_field_by_name("id").unwrap().as_str(), Some("o-1"));
    let total = order.get_field_by_name("total").unwrap();
    let total = total.as_message().unwrap();
    assert_eq!(total.get_field_by_name("units").unwrap().as_i64(), Some(42));
}

#[test]
fn json_encoder_auto_registers_and_decoder_reads_back() {
    let registry = StandIn::start().unwrap();
    let sr = settings(&registry);
    let schema = r#"{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}"#;
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "events".to_owned(),
        false,
        SuppliedSchema::new(None, SchemaType::Json, schema.to_owned()),
    );
    let encoder = JsonEncoder::new(sr.clone());
    let event = serde_json::json!({ "id": 7 });
    let bytes = encoder.encode(&event, &strategy).unwrap();
    assert!(
        encoder.encode(&serde_json::json!({}), &strategy).is_err(),
        "the schema the registry serves requires `id`"
    );

    let decoded = JsonDecoder::new(sr.clone())
        .decode(Some(&bytes))
        .unwrap()
        .unwrap();
    assert_eq!(decoded.value, event);
    let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    assert_eq!(
        get_schema_by_id(id, &sr).unwrap().schema_type,
        SchemaType::Json
    );
}
