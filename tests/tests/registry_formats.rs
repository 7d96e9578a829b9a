//! Schema Registry formats end to end: topics written with
//! `schema_registry_converter`'s encoders, as real producers write them, go
//! through `sluice run` (decode, a Wasm plugin, encode) against a real
//! broker and the registry stand-in; a poison corpus never stops the job,
//! and every record ends up in the output or the dead-letter topic.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use apache_avro::types::Value as AvroValue;
use prost_reflect::prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use schema_registry_converter::blocking::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::blocking::json::{JsonDecoder, JsonEncoder};
use schema_registry_converter::blocking::proto_decoder::ProtoDecoder;
use schema_registry_converter::blocking::proto_raw::ProtoRawEncoder;
use schema_registry_converter::blocking::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::json;
use sluice_e2e::kafka::{
    Broker, Record, brokers_with_end_offsets, create_topic, produce, produce_with_raw_header_key,
    read_back, unique,
};
use sluice_e2e::run_job;
use sluice_plugin_artifacts as artifacts;
use sluice_registry_stand_in::StandIn;

const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"customer","type":"string"},
 {"name":"amount","type":"double"}]}"#;

/// V1 plus a field with a default.
const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"customer","type":"string"},
 {"name":"amount","type":"double"},
 {"name":"channel","type":"string","default":"web"}]}"#;

const PAYMENT_PROTO: &str = r#"syntax = "proto3";
package shop;
message Payment { int64 id = 1; string customer = 2; double amount = 3; repeated string tags = 4; }
"#;

fn strategy(topic: &str, schema_type: SchemaType, schema: &str) -> SubjectNameStrategy {
    SubjectNameStrategy::TopicNameStrategyWithSchema(
        topic.to_owned(),
        false,
        SuppliedSchema::new(None, schema_type, schema.to_owned()),
    )
}

fn order(i: i64, amount: f64) -> Vec<(&'static str, AvroValue)> {
    vec![
        ("id", AvroValue::Long(i)),
        ("customer", AvroValue::String(format!("customer-{i}"))),
        ("amount", AvroValue::Double(amount)),
    ]
}

/// A job from `source` options, `[decode]` lines and the rest.
fn write_job(
    dir: &Path,
    broker: &Broker,
    topic: &str,
    decode: &str,
    rest: &str,
) -> std::path::PathBuf {
    let text = format!(
        "[job]\nname = \"registry-e2e\"\n\n[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, subscribe = {topic:?}, startingOffsets = \"earliest\" }}\n\n[trigger]\nmax_rows = 2000\nmax_interval = \"200ms\"\navailable_now = true\n\n[decode]\n{decode}\n\n{rest}",
        broker.address
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn kafka_output(name: &str, broker: &Broker, topic: &str, extra: &str) -> String {
    format!(
        "[{name}]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, topic = {topic:?}{extra} }}\n",
        broker.address
    )
}

fn assert_success(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "sluice failed:\n{stderr}");
    stderr
}

fn all_records(by_partition: BTreeMap<i32, Vec<Record>>) -> Vec<Record> {
    by_partition.into_values().flatten().collect()
}

#[test]
fn avro_protobuf_and_json_schema_topics_round_trip_through_decode_and_encode() {
    for broker in brokers_with_end_offsets() {
        let registry = StandIn::start().unwrap();
        avro_round_trip(&broker, &registry.url());
        protobuf_round_trip(&broker, &registry.url());
        json_schema_round_trip(&broker, &registry.url());
    }
}

/// Records of two schema versions in one topic are decoded with the latest,
/// passed through a plugin, encoded with the output subject's schema, and
/// read back by Confluent's deserializer as the same records.
fn avro_round_trip(broker: &Broker, url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("avro-in"), unique("avro-out"));
    create_topic(broker, &input, 2);
    create_topic(broker, &output, 1);
    let settings = SrSettings::new(url.to_owned());
    let v1 = AvroEncoder::new(settings.clone());
    let v2 = AvroEncoder::new(settings.clone());
    let (s1, s2) = (
        strategy(&input, SchemaType::Avro, ORDER_V1),
        strategy(&input, SchemaType::Avro, ORDER_V2),
    );
    let records: Vec<Record> = (0..500i64)
        .map(|i| {
            let value = if i % 2 == 0 {
                v1.encode(order(i, i as f64), &s1).unwrap()
            } else {
                let mut fields = order(i, i as f64);
                fields.push(("channel", AvroValue::String("app".into())));
                v2.encode(fields, &s2).unwrap()
            };
            Record {
                partition: (i % 2) as i32,
                key: Some(format!("k{i}").into_bytes()),
                value: Some(value),
                headers: vec![],
            }
        })
        .collect();
    produce(broker, &input, &records);
    // The output subject holds the reader schema, as a team registers it.
    schema_registry_converter::blocking::schema_registry::post_schema(
        &settings,
        format!("{output}-value"),
        SuppliedSchema::new(None, SchemaType::Avro, ORDER_V2.to_owned()),
    )
    .unwrap();
    let job = write_job(
        dir.path(),
        broker,
        &input,
        &format!("format = \"avro\"\nregistry = {{ url = {url:?} }}\non_error = \"fail\""),
        &format!(
            "[[transform]]\nplugin = {:?}\nconfig = {{ column = \"amount\", op = \"ge\", value = \"0\" }}\n\n[encode]\nformat = \"avro\"\nregistry = {{ url = {url:?} }}\nsubject = \"{output}-value\"\n\n{}",
            artifacts::FILTER,
            kafka_output("sink", broker, &output, "")
        ),
    );
    assert_success(&run_job(&job, &dir.path().join("cache")));
    let decoder = AvroDecoder::new(settings);
    let mut got: Vec<(i64, String, f64, String)> =
        all_records(read_back(broker, &output, 1, 500, Duration::from_secs(60)))
            .iter()
            .map(|record| {
                let AvroValue::Record(fields) =
                    decoder.decode(record.value.as_deref()).unwrap().value
                else {
                    panic!("not a record")
                };
                let get = |name: &str| fields.iter().find(|(n, _)| n == name).unwrap().1.clone();
                match (get("id"), get("customer"), get("amount"), get("channel")) {
                    (
                        AvroValue::Long(id),
                        AvroValue::String(c),
                        AvroValue::Double(a),
                        AvroValue::String(ch),
                    ) => {
                        assert_eq!(
                            record.key.as_deref(),
                            Some(format!("k{id}").as_bytes()),
                            "the key is kept"
                        );
                        (id, c, a, ch)
                    }
                    other => panic!("unexpected fields {other:?}"),
                }
            })
            .collect();
    got.sort_by_key(|r| r.0);
    let want: Vec<(i64, String, f64, String)> = (0..500)
        .map(|i| {
            let channel = if i % 2 == 0 { "web" } else { "app" };
            (i, format!("customer-{i}"), i as f64, channel.to_owned())
        })
        .collect();
    assert_eq!(got, want, "{}: avro", broker.name);
}

fn protobuf_round_trip(broker: &Broker, url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("proto-in"), unique("proto-out"));
    create_topic(broker, &input, 1);
    create_topic(broker, &output, 1);
    let settings = SrSettings::new(url.to_owned());
    let proto_dir = tempfile::tempdir().unwrap();
    std::fs::write(proto_dir.path().join("payment.proto"), PAYMENT_PROTO).unwrap();
    let files = protox::compile(["payment.proto"], [proto_dir.path()]).unwrap();
    let message = DescriptorPool::from_file_descriptor_set(files)
        .unwrap()
        .get_message_by_name("shop.Payment")
        .unwrap();
    let encoder = ProtoRawEncoder::new(settings.clone());
    let subject = strategy(&input, SchemaType::Protobuf, PAYMENT_PROTO);
    let payment = |i: i64| json!({"id": i, "customer": format!("customer-{i}"), "amount": i as f64 / 2.0, "tags": vec!["a"; (i % 3) as usize]});
    let records: Vec<Record> = (0..300)
        .map(|i| {
            let value = DynamicMessage::deserialize(message.clone(), payment(i)).unwrap();
            Record {
                partition: 0,
                key: None,
                value: Some(
                    encoder
                        .encode(&value.encode_to_vec(), "shop.Payment", &subject)
                        .unwrap(),
                ),
                headers: vec![],
            }
        })
        .collect();
    produce(broker, &input, &records);
    schema_registry_converter::blocking::schema_registry::post_schema(
        &settings,
        format!("{output}-value"),
        SuppliedSchema::new(None, SchemaType::Protobuf, PAYMENT_PROTO.to_owned()),
    )
    .unwrap();
    let job = write_job(
        dir.path(),
        broker,
        &input,
        &format!("format = \"protobuf\"\nregistry = {{ url = {url:?} }}\non_error = \"fail\""),
        &format!(
            "[encode]\nformat = \"protobuf\"\nregistry = {{ url = {url:?} }}\nsubject = \"{output}-value\"\n\n{}",
            kafka_output("sink", broker, &output, "")
        ),
    );
    assert_success(&run_job(&job, &dir.path().join("cache")));
    let decoder = ProtoDecoder::new(settings);
    let got: Vec<serde_json::Value> =
        all_records(read_back(broker, &output, 1, 300, Duration::from_secs(60)))
            .iter()
            .map(|r| {
                let message = decoder
                    .decode_with_context(r.value.as_deref())
                    .unwrap()
                    .unwrap()
                    .value;
                serde_json::to_value(&message).unwrap()
            })
            .collect();
    let want: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            serde_json::to_value(DynamicMessage::deserialize(message.clone(), payment(i)).unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(got, want, "{}: protobuf", broker.name);
}

fn json_schema_round_trip(broker: &Broker, url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("json-in"), unique("json-out"));
    create_topic(broker, &input, 1);
    create_topic(broker, &output, 1);
    let settings = SrSettings::new(url.to_owned());
    let schema = json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "customer": {"type": "string"},
            "amount": {"type": "number"},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
        "required": ["id", "customer", "amount"]
    });
    let encoder = JsonEncoder::new(settings.clone());
    let subject = strategy(&input, SchemaType::Json, &schema.to_string());
    let order = |i: i64| json!({"id": i, "customer": format!("customer-{i}"), "amount": i as f64 / 8.0, "address": {"city": format!("c{}", i % 4)}});
    let records: Vec<Record> = (0..300)
        .map(|i| Record {
            partition: 0,
            key: None,
            value: Some(encoder.encode(&order(i), &subject).unwrap()),
            headers: vec![],
        })
        .collect();
    produce(broker, &input, &records);
    let job = write_job(
        dir.path(),
        broker,
        &input,
        &format!("format = \"json-schema\"\nregistry = {{ url = {url:?} }}\non_error = \"fail\""),
        &format!(
            "[encode]\nformat = \"json-schema\"\nregistry = {{ url = {url:?} }}\nsubject = \"{output}-value\"\n\"auto.register.schemas\" = true\n\n{}",
            kafka_output("sink", broker, &output, "")
        ),
    );
    assert_success(&run_job(&job, &dir.path().join("cache")));
    let decoder = JsonDecoder::new(settings);
    let got: Vec<serde_json::Value> =
        all_records(read_back(broker, &output, 1, 300, Duration::from_secs(60)))
            .iter()
            .map(|r| decoder.decode(r.value.as_deref()).unwrap().unwrap().value)
            .collect();
    let want: Vec<serde_json::Value> = (0..300).map(order).collect();
    assert_eq!(got, want, "{}: json schema", broker.name);
}

/// What was done to record `n` of the poison corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Corpus {
    Good,
    Bad(&'static str),
}

const BAD_KINDS: &[&str] = &[
    "bad-magic-byte",
    "unknown-schema-id",
    "corrupt-payload",
    "too-large",
    "null-value",
    "invalid-input",
];

/// Record `n`'s value: good orders, and 1,000 of each bad kind (truncated
/// and corrupted payloads are both `corrupt-payload`: 500 of each).
fn corpus_value(kind: Corpus, n: i64, good: &dyn Fn(i64, f64) -> Vec<u8>) -> Option<Vec<u8>> {
    Some(match kind {
        Corpus::Good => good(n, n as f64),
        Corpus::Bad("bad-magic-byte") => format!("\x01not confluent {n}").into_bytes(),
        Corpus::Bad("unknown-schema-id") => {
            let mut value = good(n, 1.0);
            value[1..5].copy_from_slice(&(900_000 + n as u32).to_be_bytes());
            value
        }
        Corpus::Bad("corrupt-payload") if n % 2 == 0 => {
            let mut value = good(n, 1.0);
            value.truncate(value.len() - 12);
            value
        }
        Corpus::Bad("corrupt-payload") => {
            let mut value = good(n, 1.0);
            value.splice(5..5, [0xff; 11]);
            value
        }
        Corpus::Bad("too-large") => {
            let mut value = good(n, 1.0);
            value.extend(std::iter::repeat_n(b'x', 3000));
            value
        }
        Corpus::Bad("null-value") => return None,
        Corpus::Bad("invalid-input") => good(n, -1.0 - n as f64),
        Corpus::Bad(other) => unreachable!("{other}"),
    })
}

#[test]
fn a_poison_corpus_lands_in_the_dead_letter_topic_and_every_good_record_in_the_output() {
    for broker in brokers_with_end_offsets() {
        poison_corpus_on(&broker);
    }
}

fn poison_corpus_on(broker: &Broker) {
    let registry = StandIn::start().unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq) = (
        unique("poison-in"),
        unique("poison-out"),
        unique("poison-dlq"),
    );
    create_topic(broker, &input, 3);
    // The sink writes each row to its source partition (Spark's `partition`
    // column); the dead-letter output lets the key pick one.
    create_topic(broker, &output, 3);
    create_topic(broker, &dlq, 1);
    let encoder = AvroEncoder::new(SrSettings::new(url.clone()));
    let subject = strategy(&input, SchemaType::Avro, ORDER_V1);
    let good = |i: i64, amount: f64| encoder.encode(order(i, amount), &subject).unwrap();

    // 3,000 good records and 1,000 of each bad kind, shuffled
    // deterministically across three partitions.
    let mut kinds: Vec<Corpus> = std::iter::repeat_n(Corpus::Good, 3000).collect();
    for kind in BAD_KINDS {
        kinds.extend(std::iter::repeat_n(Corpus::Bad(kind), 1000));
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..kinds.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        kinds.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let records: Vec<Record> = kinds
        .iter()
        .enumerate()
        .map(|(n, kind)| Record {
            partition: (n % 3) as i32,
            key: Some(format!("key-{n}").into_bytes()),
            value: corpus_value(*kind, n as i64, &good),
            headers: vec![
                ("n".into(), Some(n.to_string().into_bytes())),
                ("empty".into(), None),
            ],
        })
        .collect();
    produce(broker, &input, &records);
    // Good records whose header key is not UTF-8 (Kafka allows any bytes):
    // they must neither stop the job nor be taken for poison.
    let odd_header_keys: Vec<i64> = (0..10).map(|i| kinds.len() as i64 + i).collect();
    for &id in &odd_header_keys {
        produce_with_raw_header_key(broker, &input, b"trace-\xff\xfe", &good(id, id as f64));
    }

    let job = write_job(
        dir.path(),
        broker,
        &input,
        &format!(
            "format = \"avro\"\nregistry = {{ url = {url:?} }}\nmax_value_bytes = \"2 KiB\"\ndead_letter = \"dlq\""
        ),
        &format!(
            "[[transform]]\nplugin = {:?}\nconfig = {{ column = \"amount\", op = \"ge\", value = \"0\", on_mismatch = \"reject\" }}\n\n{}\n{}",
            artifacts::FILTER,
            kafka_output("sink", broker, &output, ", valueFormat = \"json\""),
            kafka_output("outputs.dlq", broker, &dlq, ""),
        ),
    );
    let stderr = assert_success(&run_job(&job, &dir.path().join("cache")));

    // Every good record is in the output, once.
    let good_count = kinds.iter().filter(|k| **k == Corpus::Good).count();
    let out = all_records(read_back(
        broker,
        &output,
        3,
        good_count + odd_header_keys.len(),
        Duration::from_secs(120),
    ));
    let mut ids: Vec<i64> = out
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(r.value.as_deref().unwrap()).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    let want: Vec<i64> = (0..kinds.len() as i64)
        .filter(|&n| kinds[n as usize] == Corpus::Good)
        .chain(odd_header_keys.iter().copied())
        .collect();
    assert_eq!(ids, want, "{}: good records in the output", broker.name);

    // Every bad record is in the dead-letter topic, once, as it was written,
    // with headers naming why and where from.
    let bad_count = kinds.len() - good_count;
    let dead = all_records(read_back(
        broker,
        &dlq,
        1,
        bad_count,
        Duration::from_secs(120),
    ));
    assert_eq!(dead.len(), bad_count, "{}: dead letters", broker.name);
    let mut seen = HashMap::new();
    for record in &dead {
        let n: usize = record.header("n").parse().unwrap();
        let sent = &records[n];
        assert_eq!(record.key, sent.key, "record {n}: key");
        assert_eq!(record.value, sent.value, "record {n}: value");
        assert_eq!(
            &record.headers[..2],
            &sent.headers[..],
            "record {n}: original headers first"
        );
        let Corpus::Bad(kind) = kinds[n] else {
            panic!("good record {n} in the dead-letter topic")
        };
        assert_eq!(record.header("__sluice.errors.kind"), kind, "record {n}");
        assert!(!record.header("__sluice.errors.message").is_empty());
        assert_eq!(record.header("__sluice.errors.topic"), input);
        assert_eq!(
            record.header("__sluice.errors.partition"),
            (n % 3).to_string()
        );
        assert!(
            record
                .header("__sluice.errors.offset")
                .parse::<i64>()
                .is_ok()
        );
        assert_eq!(record.header("__sluice.errors.job"), "registry-e2e");
        assert!(
            seen.insert(n, ()).is_none(),
            "record {n} dead-lettered twice"
        );
    }
    // The counters balance and are visible in the job's log.
    for kind in BAD_KINDS {
        assert!(
            stderr.contains(&format!("\"{kind}\": 1000")),
            "{}: no count of 1000 {kind} in the log:\n{stderr}",
            broker.name
        );
    }
}

/// An order with an event time in milliseconds (a plain `long`, so that
/// any value, the ends of time included, can be written).
const TIMED_ORDER: &str = r#"{"type":"record","name":"TimedOrder","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"amount","type":"double"},
 {"name":"ts","type":"long"}]}"#;

#[test]
fn extreme_and_far_future_event_times_are_dead_lettered_and_every_good_record_is_counted() {
    for broker in brokers_with_end_offsets() {
        event_time_poison_on(&broker);
    }
}

/// 600 good orders over six 10 s windows, and after every tenth an order
/// whose event time is at an end of `i64` or far in the future: a windowed
/// job dead-letters those as `invalid-event-time`, they move no watermark
/// (nothing good is late), and every good order is counted in its window.
fn event_time_poison_on(broker: &Broker) {
    let registry = StandIn::start().unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let (input, dlq) = (unique("times-in"), unique("times-dlq"));
    create_topic(broker, &input, 2);
    create_topic(broker, &dlq, 1);
    let encoder = AvroEncoder::new(SrSettings::new(url.clone()));
    let subject = strategy(&input, SchemaType::Avro, TIMED_ORDER);
    let encode = |id: i64, ts: i64| {
        let fields = vec![
            ("id", AvroValue::Long(id)),
            ("amount", AvroValue::Double(id as f64)),
            ("ts", AvroValue::Long(ts)),
        ];
        encoder.encode(fields, &subject).unwrap()
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = now_ms - now_ms % 10_000 - 120_000;
    const DAY: i64 = 86_400_000;
    let bad_times = [
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
        i64::MAX - 1,
        now_ms + 2 * DAY,
        now_ms + 100 * 365 * DAY,
    ];
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for i in 0..600i64 {
        records.push((encode(i, base + i * 100), i));
        if i % 10 == 9 {
            let n = 1_000 + i;
            records.push((encode(n, bad_times[(i / 10) as usize % bad_times.len()]), n));
            bad.push(n);
        }
    }
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(k, (value, id))| Record {
            // Each partition's good times rise, as a producer's would.
            partition: (k % 2) as i32,
            key: Some(format!("key-{id}").into_bytes()),
            value: Some(value),
            headers: vec![("id".into(), Some(id.to_string().into_bytes()))],
        })
        .collect();
    produce(broker, &input, &records);

    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[job]\nname = \"registry-times\"\n\n[source]\ntype = \"kafka\"\noptions = {{ \"kafka.bootstrap.servers\" = {:?}, subscribe = {input:?}, startingOffsets = \"earliest\" }}\n\n[trigger]\nmax_rows = 100\navailable_now = true\n\n[decode]\nformat = \"avro\"\nregistry = {{ url = {url:?} }}\ndead_letter = \"dlq\"\n\n[aggregate]\nplugin = {:?}\nconfig = {{ column = \"amount\" }}\nevent_time = \"ts\"\npartition_column = \"partition\"\nwindow = {{ type = \"tumbling\", size = \"10s\" }}\nmax_event_time_skew = \"1h\"\n\n[sink]\ntype = \"file\"\npath = \"out.jsonl\"\n\n[outputs.late]\ntype = \"file\"\npath = \"late.jsonl\"\n\n{}",
            broker.address,
            artifacts::STATS,
            kafka_output("outputs.dlq", broker, &dlq, ""),
        ),
    )
    .unwrap();
    assert_success(&run_job(&job, &dir.path().join("cache")));

    let counts: Vec<i64> = sluice_e2e::read_json_lines(&dir.path().join("out.jsonl"))
        .iter()
        .map(|row| row["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![100; 6], "{}: counts per window", broker.name);
    let late = sluice_e2e::read_json_lines(&dir.path().join("late.jsonl"));
    assert!(
        late.is_empty(),
        "{}: {} good rows late",
        broker.name,
        late.len()
    );

    let dead = all_records(read_back(
        broker,
        &dlq,
        1,
        bad.len(),
        Duration::from_secs(60),
    ));
    let mut dead_ids: Vec<i64> = dead
        .iter()
        .map(|record| {
            assert_eq!(record.header("__sluice.errors.kind"), "invalid-event-time");
            let id: i64 = record.header("id").parse().unwrap();
            let sent = records.iter().find(|r| r.key == record.key).unwrap();
            assert_eq!(record.value, sent.value, "record {id}: value as written");
            id
        })
        .collect();
    dead_ids.sort_unstable();
    assert_eq!(dead_ids, bad, "{}: dead letters", broker.name);
}

#[test]
fn fail_stops_at_the_first_poison_record_and_skip_and_count_counts_it() {
    for broker in brokers_with_end_offsets() {
        let registry = StandIn::start().unwrap();
        let url = registry.url();
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (unique("policy-in"), unique("policy-out"));
        create_topic(&broker, &input, 1);
        create_topic(&broker, &output, 1);
        let encoder = AvroEncoder::new(SrSettings::new(url.clone()));
        let subject = strategy(&input, SchemaType::Avro, ORDER_V1);
        let mut values: Vec<Vec<u8>> = (0..10)
            .map(|i| encoder.encode(order(i, 1.0), &subject).unwrap())
            .collect();
        values[4] = b"oops".to_vec();
        let records: Vec<Record> = values
            .into_iter()
            .map(|v| Record {
                partition: 0,
                key: None,
                value: Some(v),
                headers: vec![],
            })
            .collect();
        produce(&broker, &input, &records);
        let sink = kafka_output("sink", &broker, &output, ", valueFormat = \"json\"");

        let job = write_job(
            dir.path(),
            &broker,
            &input,
            &format!("format = \"avro\"\nregistry = {{ url = {url:?} }}\non_error = \"fail\""),
            &sink,
        );
        let result = run_job(&job, &dir.path().join("cache"));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(
            !result.status.success(),
            "{}: a poison record must stop the job",
            broker.name
        );
        assert!(
            stderr.contains(&format!("record {input}/0@4")) && stderr.contains("bad-magic-byte"),
            "{}: the error names the record and the kind:\n{stderr}",
            broker.name
        );

        let job = write_job(
            dir.path(),
            &broker,
            &input,
            &format!(
                "format = \"avro\"\nregistry = {{ url = {url:?} }}\non_error = \"skip-and-count\""
            ),
            &sink,
        );
        let stderr = assert_success(&run_job(&job, &dir.path().join("cache")));
        assert!(stderr.contains("\"bad-magic-byte\": 1"), "{stderr}");
        let out = all_records(read_back(&broker, &output, 1, 9, Duration::from_secs(30)));
        assert_eq!(out.len(), 9, "{}: the nine good records", broker.name);
    }
}

#[test]
fn json_values_with_invalid_utf8_are_dead_lettered_and_the_rest_decode() {
    for broker in brokers_with_end_offsets() {
        let registry = StandIn::start().unwrap();
        let url = registry.url();
        let dir = tempfile::tempdir().unwrap();
        let (input, output, dlq) = (unique("utf8-in"), unique("utf8-out"), unique("utf8-dlq"));
        create_topic(&broker, &input, 1);
        create_topic(&broker, &output, 1);
        create_topic(&broker, &dlq, 1);
        let schema = json!({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}, "required": ["id"]});
        let encoder = JsonEncoder::new(SrSettings::new(url.clone()));
        let subject = strategy(&input, SchemaType::Json, &schema.to_string());
        // 1,000 good values and 1,000 whose name holds bytes that are not UTF-8.
        let records: Vec<Record> = (0..2000)
            .map(|i| {
                let mut value = encoder
                    .encode(&json!({"id": i, "name": format!("n{i}")}), &subject)
                    .unwrap();
                if i % 2 == 1 {
                    let at = value.len() - 3;
                    value[at] = 0xff;
                }
                Record {
                    partition: 0,
                    key: None,
                    value: Some(value),
                    headers: vec![],
                }
            })
            .collect();
        produce(&broker, &input, &records);
        let job = write_job(
            dir.path(),
            &broker,
            &input,
            &format!(
                "format = \"json-schema\"\nregistry = {{ url = {url:?} }}\ndead_letter = \"dlq\""
            ),
            &format!(
                "{}\n{}",
                kafka_output("sink", &broker, &output, ", valueFormat = \"json\""),
                kafka_output("outputs.dlq", &broker, &dlq, "")
            ),
        );
        let stderr = assert_success(&run_job(&job, &dir.path().join("cache")));
        assert!(stderr.contains("\"invalid-utf8\": 1000"), "{stderr}");
        let out = all_records(read_back(
            &broker,
            &output,
            1,
            1000,
            Duration::from_secs(60),
        ));
        let ids: Vec<i64> = out
            .iter()
            .map(|r| {
                serde_json::from_slice::<serde_json::Value>(r.value.as_deref().unwrap())
                        .unwrap()["id"]
                        .as_i64()
                        .unwrap()
            })
            .collect();
        assert_eq!(
            ids,
            (0..2000).step_by(2).collect::<Vec<i64>>(),
            "{}",
            broker.name
        );
        let dead = all_records(read_back(&broker, &dlq, 1, 1000, Duration::from_secs(60)));
        assert_eq!(dead.len(), 1000, "{}", broker.name);
        for (record, sent) in dead.iter().zip(records.iter().skip(1).step_by(2)) {
            assert_eq!(record.value, sent.value, "dead-lettered as written");
            assert_eq!(record.header("__sluice.errors.kind"), "invalid-utf8");
        }
    }
}
