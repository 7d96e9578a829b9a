//! Confluent JSON Schema: values written by `schema_registry_converter`'s
//! validating encoder with two versions of a schema decode into the reader
//! schema's Arrow columns; the sink encoder's output reads back the same.

mod common;

use arrow::array::{Array, AsArray, Float64Array, Int64Array, MapArray, StructArray};
use arrow::datatypes::{DataType, Date32Type, TimeUnit, TimestampMicrosecondType};
use common::{Registry, assert_reader_schema_needs_no_lookup, binary};
use schema_registry_converter::blocking::json::{JsonDecoder, JsonEncoder};
use schema_registry_converter::blocking::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::json;
use sluice_format::{EncodeSpec, PoisonKind, SchemaTemplate, SchemaVersion, ValueFormat};

fn schema(version: u8) -> serde_json::Value {
    let mut schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "customer": {"type": "string"},
            "amount": {"type": "number"},
            "created": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "status": {"enum": ["NEW", "PAID"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "attrs": {"type": "object", "additionalProperties": {"type": "integer"}},
            "address": {"$ref": "#/definitions/Address"},
            "note": {"type": ["string", "null"]}
        },
        "required": ["id", "customer", "amount", "created"],
        "definitions": {
            "Address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": false
            }
        }
    });
    if version == 2 {
        let properties = schema["properties"].as_object_mut().unwrap();
        properties.remove("note");
        properties.insert(
            "channel".into(),
            json!({"type": "string", "default": "web"}),
        );
    }
    schema
}

fn order(i: i64, version: u8) -> serde_json::Value {
    let mut order = json!({
        "id": i,
        "customer": format!("customer-{i}"),
        "amount": i as f64 / 4.0,
        "created": format!("2024-03-01T12:00:{:02}.5Z", i % 60),
        "day": format!("2024-03-{:02}", 1 + i % 28),
        "status": if i % 2 == 0 { "NEW" } else { "PAID" },
        "tags": (0..i % 3).map(|t| format!("t{t}")).collect::<Vec<_>>(),
        "attrs": {"n": i},
    });
    if i % 4 != 0 {
        order["address"] = json!({"city": format!("city-{}", i % 5)});
    }
    if version == 1 {
        order["note"] = if i % 3 == 0 {
            json!(null)
        } else {
            json!(format!("note {i}"))
        };
    } else {
        order["channel"] = json!("app");
    }
    order
}

/// Values of orders 0..n: even ones written with v1, odd ones with v2.
fn produce(registry: &Registry, topic: &str, n: i64) -> Vec<Vec<u8>> {
    let writer = |version: u8| {
        (
            JsonEncoder::new(SrSettings::new(registry.url())),
            SubjectNameStrategy::TopicNameStrategyWithSchema(
                topic.to_owned(),
                false,
                SuppliedSchema::new(None, SchemaType::Json, schema(version).to_string()),
            ),
        )
    };
    let versions = [writer(1), writer(2)];
    let encode = |i: i64| {
        let (encoder, subject) = &versions[(i % 2) as usize];
        encoder
            .encode(&order(i, (i % 2 + 1) as u8), subject)
            .unwrap()
    };
    encode(0);
    encode(1);
    (0..n).map(encode).collect()
}

#[test]
fn two_schema_versions_decode_into_the_reader_schema() {
    let registry = Registry::start();
    let values = produce(&registry, "orders", 40);
    let mut decoder = registry.decoder(
        ValueFormat::JsonSchema,
        "orders-value",
        SchemaVersion::Latest,
    );
    let decoded = decoder.decode(&binary(&values)).unwrap();
    assert!(decoded.poison.is_empty(), "{:?}", decoded.poison);
    let batch = decoded.batch;
    let schema = batch.schema();
    let field = |name: &str| schema.field_with_name(name).unwrap().clone();
    assert!(schema.field_with_name("note").is_err(), "v2 has no note");
    assert_eq!(field("id").data_type(), &DataType::Int64);
    assert!(!field("id").is_nullable(), "required");
    assert!(field("channel").is_nullable(), "not required");
    assert_eq!(field("amount").data_type(), &DataType::Float64);
    assert!(matches!(
        field("created").data_type(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_))
    ));
    assert_eq!(field("day").data_type(), &DataType::Date32);
    assert_eq!(field("status").data_type(), &DataType::Utf8);
    assert!(matches!(field("tags").data_type(), DataType::List(_)));
    assert!(matches!(field("attrs").data_type(), DataType::Map(_, _)));
    let DataType::Struct(address) = field("address").data_type().clone() else {
        panic!("address is not a struct")
    };
    assert!(
        !address[0].is_nullable() && address[1].is_nullable(),
        "city required, zip not"
    );

    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let ids = column("id");
    let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
    let amount = column("amount");
    let amount = amount.as_any().downcast_ref::<Float64Array>().unwrap();
    let created = column("created");
    let created = created.as_primitive::<TimestampMicrosecondType>();
    let day = column("day");
    let day = day.as_primitive::<Date32Type>();
    let attrs = column("attrs");
    let attrs = attrs.as_any().downcast_ref::<MapArray>().unwrap();
    let address = column("address");
    let address = address.as_any().downcast_ref::<StructArray>().unwrap();
    let channel = column("channel");
    let channel = channel.as_string::<i32>();
    for row in 0..40 {
        let i = row as i64;
        assert_eq!(ids.value(row), i);
        assert_eq!(amount.value(row), i as f64 / 4.0);
        assert_eq!(
            created.value(row),
            (1_709_294_400 + i % 60) * 1_000_000 + 500_000
        );
        assert_eq!(
            day.value(row),
            19_783 + (i % 28) as i32,
            "days since 1970 of 2024-03-DD"
        );
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
        assert_eq!(address.is_null(row), i % 4 == 0);
        assert_eq!(
            channel.is_null(row),
            i % 2 == 0,
            "v1 values have no channel"
        );
    }
}

#[test]
fn the_sink_encoder_round_trips_values_a_confluent_consumer_validates() {
    let registry = Registry::start();
    let values = produce(&registry, "orders", 20);
    let mut decoder = registry.decoder(
        ValueFormat::JsonSchema,
        "orders-value",
        SchemaVersion::Latest,
    );
    let decoded = decoder.decode(&binary(&values)).unwrap().batch;
    for (subject, auto_register) in [("orders-value", false), ("orders-copy-value", true)] {
        let mut encoder = sluice_format::open_encoder(
            &EncodeSpec {
                format: ValueFormat::JsonSchema,
                registry: registry.options(),
                subject: subject.into(),
                auto_register,
                record_name: None,
                template: None,
            },
            &decoded.schema(),
        )
        .unwrap();
        let encoded = encoder.encode(&decoded).unwrap();
        let mut again = registry.decoder(
            ValueFormat::JsonSchema,
            "orders-value",
            SchemaVersion::Latest,
        );
        let round_trip = again.decode(&encoded).unwrap();
        assert!(
            round_trip.poison.is_empty(),
            "{subject}: {:?}",
            round_trip.poison
        );
        assert_eq!(round_trip.batch.columns(), decoded.columns(), "{subject}");
        // Confluent's deserializer validates each value against its schema.
        let confluent = JsonDecoder::new(SrSettings::new(registry.url()));
        for (row, value) in encoded.iter().enumerate() {
            let value = confluent.decode(value).unwrap().unwrap().value;
            assert_eq!(value["id"], json!(row), "{subject}");
        }
    }
}

#[test]
fn invalid_utf8_invalid_json_and_schema_violations_are_poison() {
    let registry = Registry::start();
    let good = produce(&registry, "orders", 2);
    let id = &good[0][..5];
    let framed = |payload: &[u8]| [id, payload].concat();
    let values = vec![
        good[0].clone(),
        framed(b"{\"id\": 1, \"customer\": \"\xff\xfe\"}"),
        framed(b"{\"id\": "),
        framed(
            br#"{"id": "seven", "customer": "c", "amount": 1, "created": "2024-01-01T00:00:00Z"}"#,
        ),
        good[1].clone(),
    ];
    let mut decoder = registry.decoder(
        ValueFormat::JsonSchema,
        "orders-value",
        SchemaVersion::Latest,
    );
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let kinds: Vec<(u32, PoisonKind)> = decoded.poison.iter().map(|p| (p.row, p.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, PoisonKind::InvalidUtf8),
            (2, PoisonKind::InvalidValue),
            (3, PoisonKind::InvalidValue),
        ]
    );
    assert_eq!(decoded.rows, [0, 4]);
}

#[test]
fn with_validate_values_the_writer_schema_forbids_are_poison_with_the_validators_message() {
    let registry = Registry::start();
    let good = produce(&registry, "orders", 1);
    let id = &good[0][..5];
    let framed = |payload: &serde_json::Value| [id, payload.to_string().as_bytes()].concat();
    let mut outside_the_enum = order(0, 1);
    outside_the_enum["status"] = json!("LOST");
    let mut forbidden_property = order(0, 1);
    forbidden_property["address"] = json!({"city": "Oslo", "planet": "Mars"});
    let values = vec![
        good[0].clone(),
        framed(&outside_the_enum),
        framed(&forbidden_property),
    ];
    // Without validate, as Confluent's deserializer by default, both fit
    // the reader schema's columns and are read.
    let unchecked = registry
        .decoder(
            ValueFormat::JsonSchema,
            "orders-value",
            SchemaVersion::Latest,
        )
        .decode(&binary(&values))
        .unwrap();
    assert_eq!(unchecked.rows, [0, 1, 2], "{:?}", unchecked.poison);
    let mut decoder = registry.validating_decoder("orders-value");
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let poison: Vec<(u32, PoisonKind, &str)> = decoded
        .poison
        .iter()
        .map(|p| (p.row, p.kind, p.message.as_str()))
        .collect();
    assert_eq!(decoded.rows, [0], "{poison:?}");
    assert_eq!(poison.len(), 2, "{poison:?}");
    assert_eq!((poison[0].0, poison[0].1), (1, PoisonKind::InvalidValue));
    assert!(poison[0].2.contains("LOST"), "{}", poison[0].2);
    assert_eq!((poison[1].0, poison[1].1), (2, PoisonKind::InvalidValue));
    assert!(poison[1].2.contains("planet"), "{}", poison[1].2);
}

#[test]
fn an_auto_registered_schema_keeps_the_decoded_enum_title_and_additional_properties() {
    let registry = Registry::start();
    let values = produce(&registry, "orders", 6);
    let mut decoder = registry.decoder(
        ValueFormat::JsonSchema,
        "orders-value",
        SchemaVersion::Latest,
    );
    let template = SchemaTemplate {
        schema: decoder.reader_schema().cloned().unwrap(),
        columns: decoder.schema(),
    };
    let decoded = decoder.decode(&binary(&values)).unwrap().batch;
    let mut encoder = sluice_format::open_encoder(
        &EncodeSpec {
            format: ValueFormat::JsonSchema,
            registry: registry.options(),
            subject: "out-value".into(),
            auto_register: true,
            record_name: None,
            template: Some(template),
        },
        &decoded.schema(),
    )
    .unwrap();
    let encoded = encoder.encode(&decoded).unwrap();
    let client = sluice_format::Registry::connect(&registry.options()).unwrap();
    let registered = client
        .subject_version("out-value", SchemaVersion::Latest)
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&registered.schema).unwrap();
    assert_eq!(schema["title"], "Order");
    assert_eq!(
        schema["properties"]["status"]["enum"],
        json!(["NEW", "PAID"])
    );
    assert_eq!(
        schema["definitions"]["Address"]["additionalProperties"],
        json!(false)
    );
    // The values validate against what was registered.
    let mut again = registry.decoder(ValueFormat::JsonSchema, "out-value", SchemaVersion::Latest);
    let round_trip = again.decode(&encoded).unwrap();
    assert!(round_trip.poison.is_empty(), "{:?}", round_trip.poison);
}

#[test]
fn a_fresh_decoder_knows_its_reader_schema_without_a_lookup() {
    let registry = Registry::start();
    let values = produce(&registry, "flood", 2);
    assert_reader_schema_needs_no_lookup(&registry, ValueFormat::JsonSchema, &values[1]);
}

#[test]
fn values_are_read_from_their_bytes_and_one_that_does_not_fit_is_poison_alone() {
    let registry = Registry::start();
    let good = produce(&registry, "orders", 3);
    let id = &good[0][..5];
    let framed = |payload: &str| [id, payload.as_bytes()].concat();
    let values = vec![
        good[0].clone(),
        // Not a date-time the column can hold.
        framed(r#"{"id": 1, "customer": "c", "amount": 1, "created": "yesterday"}"#),
        // A key given twice: the last wins, for the validator and the columns.
        framed(
            r#"{"id": "x", "customer": "c", "amount": 2.5, "created": "2024-01-01T00:00:00Z", "id": 7}"#,
        ),
        // Whitespace around the value; two values must not run into each other.
        framed(
            " {\"id\": 8, \"customer\": \"d\", \"amount\": 3, \"created\": \"2024-01-01T00:00:00Z\"} \n",
        ),
        good[2].clone(),
    ];
    let mut decoder = registry.decoder(
        ValueFormat::JsonSchema,
        "orders-value",
        SchemaVersion::Latest,
    );
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let kinds: Vec<(u32, PoisonKind)> = decoded.poison.iter().map(|p| (p.row, p.kind)).collect();
    assert_eq!(
        kinds,
        [(1, PoisonKind::InvalidValue)],
        "{:?}",
        decoded.poison
    );
    assert_eq!(decoded.rows, [0, 2, 3, 4]);
    let ids = decoded.batch.column_by_name("id").unwrap().clone();
    assert_eq!(
        ids.as_any().downcast_ref::<Int64Array>().unwrap().values(),
        &[0, 7, 8, 2]
    );
}
