//! Confluent Avro: records written by `schema_registry_converter`'s encoder
//! with two versions of a subject decode into the reader schema's Arrow
//! columns; the sink encoder's output reads back as the same records.

mod common;

use apache_avro::types::Value;
use arrow::array::{
    Array, AsArray, Decimal128Array, Int64Array, MapArray, StringArray, StructArray,
};
use arrow::datatypes::{DataType, Date32Type, Int32Type, TimeUnit, TimestampMillisecondType};
use common::{Registry, assert_reader_schema_needs_no_lookup, binary, with_schema_id};
use schema_registry_converter::blocking::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::blocking::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use sluice_format::{EncodeSpec, PoisonKind, SchemaTemplate, SchemaVersion, ValueFormat};

const V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"customer","type":"string"},
 {"name":"qty","type":"int"},
 {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"long"}},
 {"name":"address","type":["null",{"type":"record","name":"Address","fields":[
   {"name":"city","type":"string"},{"name":"zip","type":["null","string"],"default":null}]}],"default":null},
 {"name":"note","type":["null","string"],"default":null}
]}"#;

/// V1 without `note`, `qty` promoted to long, and `channel` added with a default.
const V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"customer","type":"string"},
 {"name":"qty","type":"long"},
 {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"long"}},
 {"name":"address","type":["null",{"type":"record","name":"Address","fields":[
   {"name":"city","type":"string"},{"name":"zip","type":["null","string"],"default":null}]}],"default":null},
 {"name":"channel","type":"string","default":"web"}
]}"#;

/// Order `i` as a producer builds it; version 2 orders have a channel.
fn order(i: i64, version: u8) -> Vec<(&'static str, Value)> {
    let address = if i % 3 == 0 {
        Value::Union(0, Box::new(Value::Null))
    } else {
        Value::Union(
            1,
            Box::new(Value::Record(vec![
                ("city".into(), Value::String(format!("city-{}", i % 5))),
                (
                    "zip".into(),
                    if i % 2 == 0 {
                        Value::Union(0, Box::new(Value::Null))
                    } else {
                        Value::Union(1, Box::new(Value::String(format!("{:05}", i))))
                    },
                ),
            ])),
        )
    };
    let price = apache_avro::Decimal::from((1000 + i * 7).to_be_bytes().to_vec());
    let mut fields = vec![
        ("id", Value::Long(i)),
        ("customer", Value::String(format!("customer-{i}"))),
        (
            "qty",
            if version == 1 {
                Value::Int(i as i32 % 10)
            } else {
                Value::Long(i % 10)
            },
        ),
        ("created", Value::TimestampMillis(1_700_000_000_000 + i)),
        ("day", Value::Date(19_000 + i as i32 % 30)),
        ("price", Value::Decimal(price)),
        (
            "status",
            Value::Enum(
                (i % 3) as u32,
                ["NEW", "PAID", "SHIPPED"][(i % 3) as usize].into(),
            ),
        ),
        (
            "tags",
            Value::Array((0..i % 3).map(|t| Value::String(format!("t{t}"))).collect()),
        ),
        (
            "attrs",
            Value::Map([("n".to_owned(), Value::Long(i))].into_iter().collect()),
        ),
        ("address", address),
    ];
    if version == 1 {
        fields.push((
            "note",
            Value::Union(1, Box::new(Value::String(format!("note {i}")))),
        ));
    } else {
        fields.push(("channel", Value::String("app".into())));
    }
    fields
}

/// Values of orders 0..n, even ones written with V1 and odd ones with V2.
fn produce(registry: &Registry, topic: &str, n: i64) -> Vec<Vec<u8>> {
    let encoder = |schema: &str| {
        (
            AvroEncoder::new(SrSettings::new(registry.url())),
            SubjectNameStrategy::TopicNameStrategyWithSchema(
                topic.to_owned(),
                false,
                SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned()),
            ),
        )
    };
    let (v1, v1_subject) = encoder(V1);
    let (v2, v2_subject) = encoder(V2);
    // Register both versions before writing, as two producer releases would.
    v1.encode(order(0, 1), &v1_subject).unwrap();
    v2.encode(order(1, 2), &v2_subject).unwrap();
    (0..n)
        .map(|i| match i % 2 {
            0 => v1.encode(order(i, 1), &v1_subject).unwrap(),
            _ => v2.encode(order(i, 2), &v2_subject).unwrap(),
        })
        .collect()
}

#[test]
fn two_schema_versions_decode_into_the_reader_schema_with_logical_and_nested_types() {
    let registry = Registry::start();
    let values = produce(&registry, "orders", 200);
    let mut decoder = registry.decoder(ValueFormat::Avro, "orders-value", SchemaVersion::Latest);
    let decoded = decoder.decode(&binary(&values)).unwrap();
    assert!(decoded.poison.is_empty(), "{:?}", decoded.poison);
    assert_eq!(decoded.rows, (0..200).collect::<Vec<u32>>());
    let batch = decoded.batch;
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "id", "customer", "qty", "created", "day", "price", "status", "tags", "attrs",
            "address", "channel"
        ],
        "the reader (v2) schema's fields, without v1's `note`"
    );
    let field = |name: &str| schema.field_with_name(name).unwrap();
    assert_eq!(
        field("qty").data_type(),
        &DataType::Int64,
        "int promoted to long"
    );
    assert!(matches!(
        field("created").data_type(),
        DataType::Timestamp(TimeUnit::Millisecond, Some(_))
    ));
    assert_eq!(field("day").data_type(), &DataType::Date32);
    assert_eq!(field("price").data_type(), &DataType::Decimal128(9, 2));
    assert!(
        matches!(field("status").data_type(), DataType::Dictionary(_, v) if **v == DataType::Utf8)
    );
    assert!(matches!(field("tags").data_type(), DataType::List(_)));
    assert!(matches!(field("attrs").data_type(), DataType::Map(_, _)));
    assert!(matches!(field("address").data_type(), DataType::Struct(_)));
    assert!(
        field("address").is_nullable(),
        "a union with null is nullable"
    );
    assert!(!field("id").is_nullable());

    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let qty = column("qty");
    let qty = qty.as_any().downcast_ref::<Int64Array>().unwrap();
    let created = column("created");
    let created = created.as_primitive::<TimestampMillisecondType>();
    let day = column("day");
    let day = day.as_primitive::<Date32Type>();
    let price = column("price");
    let price = price.as_any().downcast_ref::<Decimal128Array>().unwrap();
    let status = column("status");
    let status = status.as_dictionary::<Int32Type>();
    let status_names = status
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let tags = column("tags");
    let tags = tags.as_list::<i32>();
    let attrs = column("attrs");
    let attrs = attrs.as_any().downcast_ref::<MapArray>().unwrap();
    let address = column("address");
    let address = address.as_any().downcast_ref::<StructArray>().unwrap();
    let channel = column("channel");
    let channel = channel.as_string::<i32>();
    for row in 0..200 {
        let i = row as i64;
        assert_eq!(qty.value(row), i % 10);
        assert_eq!(created.value(row), 1_700_000_000_000 + i);
        assert_eq!(day.value(row), 19_000 + i as i32 % 30);
        assert_eq!(price.value(row), i128::from(1000 + i * 7));
        let key = status.keys().value(row) as usize;
        assert_eq!(
            status_names.value(key),
            ["NEW", "PAID", "SHIPPED"][(i % 3) as usize]
        );
        assert_eq!(tags.value(row).len() as i64, i % 3);
        let entry = attrs.value(row);
        assert_eq!(entry.column(0).as_string::<i32>().value(0), "n");
        assert_eq!(
            entry
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            i
        );
        assert_eq!(address.is_null(row), i % 3 == 0, "row {row}");
        if !address.is_null(row) {
            let zip = address.column_by_name("zip").unwrap().as_string::<i32>();
            assert_eq!(zip.is_null(row), i % 2 == 0);
        }
        let expected_channel = if i % 2 == 0 { "web" } else { "app" };
        assert_eq!(
            channel.value(row),
            expected_channel,
            "v1 rows take the default"
        );
    }
}

#[test]
fn an_older_reader_version_reads_its_records_and_refuses_ones_it_cannot_read() {
    let registry = Registry::start();
    let values = produce(&registry, "orders", 10);
    let mut decoder = registry.decoder(ValueFormat::Avro, "orders-value", SchemaVersion::Number(1));
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let schema = decoded.batch.schema();
    assert!(schema.field_with_name("note").unwrap().is_nullable());
    assert!(schema.field_with_name("channel").is_err());
    assert_eq!(decoded.rows, [0, 2, 4, 6, 8], "the v1 records");
    let note = decoded
        .batch
        .column_by_name("note")
        .unwrap()
        .as_string::<i32>()
        .clone();
    assert_eq!(note.value(1), "note 2");
    // v2 widened `qty` to long, which a v1 reader cannot narrow back.
    assert_eq!(decoded.poison.len(), 5);
    for poison in &decoded.poison {
        assert_eq!(poison.row % 2, 1);
        assert_eq!(poison.kind, PoisonKind::IncompatibleSchema);
        assert!(poison.message.contains("Long to Int"), "{}", poison.message);
    }
}

#[test]
fn the_sink_encoder_round_trips_records_a_confluent_consumer_reads() {
    let registry = Registry::start();
    let values = produce(&registry, "orders", 50);
    let mut decoder = registry.decoder(ValueFormat::Avro, "orders-value", SchemaVersion::Latest);
    let decoded = decoder.decode(&binary(&values)).unwrap().batch;

    // Encode with the subject's own schema, then with one registered from the rows.
    for (subject, auto_register) in [("orders-value", false), ("orders-copy-value", true)] {
        let mut encoder = sluice_format::open_encoder(
            &EncodeSpec {
                format: ValueFormat::Avro,
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
        assert_eq!(encoded.len(), 50);

        // The same records come back through Sluice's decoder...
        let mut again = registry.decoder(ValueFormat::Avro, subject, SchemaVersion::Latest);
        let round_trip = again.decode(&encoded).unwrap();
        assert!(round_trip.poison.is_empty(), "{:?}", round_trip.poison);
        assert_eq!(round_trip.batch.columns(), decoded.columns(), "{subject}");

        // ...and through Confluent's wire format as another client reads it.
        let confluent = AvroDecoder::new(SrSettings::new(registry.url()));
        for (row, value) in encoded.iter().enumerate() {
            let record = confluent.decode(value).unwrap().value;
            let Value::Record(fields) = record else {
                panic!("not a record: {record:?}")
            };
            assert_eq!(
                fields[0],
                ("id".to_owned(), Value::Long(row as i64)),
                "{subject}"
            );
            assert_eq!(
                fields[1],
                (
                    "customer".to_owned(),
                    Value::String(format!("customer-{row}"))
                ),
                "{subject}"
            );
        }
    }
}

/// The schema registered under `subject`, as JSON.
fn registered(registry: &Registry, subject: &str) -> serde_json::Value {
    let client = sluice_format::Registry::connect(&registry.options()).unwrap();
    let schema = client
        .subject_version(subject, SchemaVersion::Latest)
        .unwrap();
    serde_json::from_str(&schema.schema).unwrap()
}

#[test]
fn an_auto_registered_schema_keeps_the_decoded_records_name_defaults_and_symbols() {
    let registry = Registry::start();
    let values = produce(&registry, "orders", 10);
    let mut decoder = registry.decoder(ValueFormat::Avro, "orders-value", SchemaVersion::Latest);
    let template = SchemaTemplate {
        schema: decoder.reader_schema().cloned().unwrap(),
        columns: decoder.schema(),
    };
    let decoded = decoder.decode(&binary(&values)).unwrap().batch;
    let spec = |subject: &str, template, record_name: Option<&str>| EncodeSpec {
        format: ValueFormat::Avro,
        registry: registry.options(),
        subject: subject.into(),
        auto_register: true,
        record_name: record_name.map(str::to_owned),
        template,
    };
    let mut encoder =
        sluice_format::open_encoder(&spec("out-value", Some(template), None), &decoded.schema())
            .unwrap();
    let encoded = encoder.encode(&decoded).unwrap();
    let schema = registered(&registry, "out-value");
    assert_eq!(
        (&schema["name"], &schema["namespace"]),
        (&"Order".into(), &"shop".into())
    );
    let field = |name: &str| {
        schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(field("channel")["default"], "web");
    assert_eq!(
        field("status")["type"]["symbols"],
        serde_json::json!(["NEW", "PAID", "SHIPPED"])
    );
    assert_eq!(field("address")["default"], serde_json::Value::Null);
    assert!(!schema.to_string().contains("avro.enum"), "{schema}");

    // A consumer with its own `shop.Order` reader schema resolves the
    // records against the registered writer schema.
    let writer = apache_avro::Schema::parse(&schema).unwrap();
    // (Without `price`: apache-avro 0.22 fails to resolve any bytes
    // decimal, "Precision 9 too small to hold decimal values with 2 bytes".)
    let mut v2: serde_json::Value = serde_json::from_str(V2).unwrap();
    v2["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "price");
    let reader = apache_avro::Schema::parse(&v2).unwrap();
    for value in encoded.iter().flatten() {
        let record = apache_avro::reader::datum::GenericDatumReader::builder(&writer)
            .reader_schema(&reader)
            .build()
            .unwrap()
            .read_value(&mut &value[5..])
            .unwrap();
        assert!(matches!(record, Value::Record(_)), "{record:?}");
    }

    // Rows not decoded from Avro: the name the job sets, or the subject's.
    for (subject, record_name, name, namespace) in [
        ("named-value", Some("hc.Thing"), "Thing", Some("hc")),
        ("plain-value", None, "plain_value", None),
    ] {
        sluice_format::open_encoder(&spec(subject, None, record_name), &decoded.schema()).unwrap();
        let schema = registered(&registry, subject);
        assert_eq!(schema["name"], name);
        assert_eq!(schema["namespace"].as_str(), namespace);
    }
}

#[test]
fn bad_records_are_poison_with_their_kind_and_the_rest_decode() {
    let registry = Registry::start();
    let good = produce(&registry, "orders", 4);
    let mut truncated = good[0].clone();
    truncated.truncate(truncated.len() / 2);
    let mut corrupt = good[1].clone();
    corrupt.splice(5..5, [0xff; 11]);
    let mut unknown_id = good[2].clone();
    unknown_id[1..5].copy_from_slice(&9999u32.to_be_bytes());
    let values = vec![
        good[0].clone(),
        b"{\"not\":\"avro\"}".to_vec(),
        truncated,
        good[1].clone(),
        corrupt,
        unknown_id,
        vec![0, 0],
        good[3].clone(),
    ];
    let mut decoder = registry.decoder(ValueFormat::Avro, "orders-value", SchemaVersion::Latest);
    let decoded = decoder.decode(&binary(&values)).unwrap();
    let kinds: Vec<(u32, PoisonKind)> = decoded.poison.iter().map(|p| (p.row, p.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, PoisonKind::BadMagicByte),
            (2, PoisonKind::CorruptPayload),
            (4, PoisonKind::CorruptPayload),
            (5, PoisonKind::UnknownSchemaId),
            (6, PoisonKind::BadMagicByte),
        ]
    );
    assert_eq!(decoded.rows, [0, 3, 7]);
    let ids = decoded.batch.column_by_name("id").unwrap().clone();
    let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(
        ids.values().to_vec(),
        [0, 1, 3],
        "good rows after bad ones decode intact"
    );
}

#[test]
fn a_registry_outage_mid_batch_does_not_decode_the_earlier_rows_twice_on_retry() {
    let registry = Registry::start();
    let values = produce(&registry, "outage", 4);
    let mut decoder = registry.decoder(ValueFormat::Avro, "outage-value", SchemaVersion::Latest);
    // The decoder meets V2 (odd orders) while the registry is up.
    decoder.decode(&binary(&values[1..2])).unwrap();
    let address = registry.address();
    drop(registry);
    // Two V2 rows, then a V1 row whose schema must be fetched: the fetch fails.
    let batch = binary(&[values[1].clone(), values[3].clone(), values[0].clone()]);
    assert!(decoder.decode(&batch).is_err(), "the registry is down");
    // The registry comes back with the same schemas under the same ids.
    let registry = Registry::start_at(address);
    produce(&registry, "outage", 2);
    let decoded = decoder.decode(&batch).unwrap();
    assert!(decoded.poison.is_empty(), "{:?}", decoded.poison);
    let ids = decoded
        .batch
        .column_by_name("id")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>()
        .values()
        .to_vec();
    assert_eq!(ids, [1, 3, 0], "each row once, in order");
    assert_eq!(decoded.rows, [0, 1, 2]);
}

#[test]
fn an_unknown_schema_id_is_asked_again_once_the_answer_expires() {
    let registry = Registry::start();
    let values = produce(&registry, "lagging", 2);
    let mut decoder = registry.decoder_with(
        ValueFormat::Avro,
        "lagging-value",
        SchemaVersion::Latest,
        &[("negative.cache.ttl.ms", "300")],
    );
    // Id 3 is not registered yet, as on a replica that lags.
    let value = with_schema_id(&values[1], 3);
    let first = decoder
        .decode(&binary(std::slice::from_ref(&value)))
        .unwrap();
    assert_eq!(first.poison[0].kind, PoisonKind::UnknownSchemaId);
    // Now it is (V2 again under a new subject gets id 2; a third schema id 3).
    let mut v3 = V2.replace("\"default\":\"web\"", "\"default\":\"app\"");
    v3.push(' ');
    schema_registry_converter::blocking::schema_registry::post_schema(
        &SrSettings::new(registry.url()),
        "other-value".into(),
        SuppliedSchema::new(None, SchemaType::Avro, v3),
    )
    .unwrap();
    let cached = decoder
        .decode(&binary(std::slice::from_ref(&value)))
        .unwrap();
    assert_eq!(cached.poison.len(), 1, "the answer is believed for a while");
    std::thread::sleep(std::time::Duration::from_millis(400));
    let later = decoder.decode(&binary(&[value])).unwrap();
    assert!(later.poison.is_empty(), "{:?}", later.poison);
    assert_eq!(later.batch.num_rows(), 1);
}

#[test]
fn a_flood_of_made_up_schema_ids_costs_a_bounded_number_of_lookups() {
    let registry = Registry::start();
    let values = produce(&registry, "flood", 2);
    let mut decoder = registry.decoder_with(
        ValueFormat::Avro,
        "flood-value",
        SchemaVersion::Latest,
        &[("lookups.per.second", "5")],
    );
    // The job has met its producers' schemas before the flood.
    let warm = decoder.decode(&binary(&values)).unwrap();
    assert_eq!(warm.batch.num_rows(), 2);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let flood: Vec<Vec<u8>> = (0..200)
        .map(|i| with_schema_id(&values[1], 1000 + i))
        .collect();
    let decoded = decoder.decode(&binary(&flood)).unwrap();
    assert_eq!(
        decoded.poison.len(),
        200,
        "every made-up id is dead-lettered"
    );
    assert!(
        decoded
            .poison
            .iter()
            .all(|p| p.kind == PoisonKind::UnknownSchemaId)
    );
    let not_asked = decoded
        .poison
        .iter()
        .filter(|p| p.message.contains("was not looked up"))
        .count();
    assert_eq!(not_asked, 195, "5 lookups this second, the rest not asked");
    // Records of the schemas the decoder knows still decode.
    let good = decoder.decode(&binary(&values)).unwrap();
    assert_eq!(good.batch.num_rows(), 2, "{:?}", good.poison);
    // A fresh decoder knows its reader schema's (V2's) id without a lookup.
    assert_reader_schema_needs_no_lookup(&registry, ValueFormat::Avro, &values[1]);
}
