//! `decode`: Confluent-framed Avro, Protobuf and JSON Schema values decoded
//! into Arrow through `sluice-format`, in batches of 8192, on one thread;
//! and, as the baseline, the same Avro values decoded through apache-avro's
//! generic `Value` path.
//!
//! The values are written the way real producers write them: by
//! `schema_registry_converter`'s encoders, registering their schemas with a
//! Schema Registry. The registry is `sluice-registry-stand-in` (a test-support
//! crate) running in this process, so the benchmark needs no service; it is
//! idle while anything is timed, because every decoder fetches its schemas
//! in an untimed warm-up.
//!
//! The record is an order of ten fields with the same logical content in
//! each format: a long id, a string customer, an int quantity, a double
//! amount, a millisecond timestamp, a date, an enum status, a nullable
//! note, a boolean and an array of string tags.
//!
//! Every timed decode checks that it gave one row per input value and no
//! poison, so a broken decoder cannot post a figure.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use apache_avro::types::Value as AvroValue;
use arrow::array::{Array, AsArray, BinaryArray};
use arrow::datatypes::Int64Type;
use prost_reflect::prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use schema_registry_converter::blocking::avro::{AvroDecoder as ConverterAvroDecoder, AvroEncoder};
use schema_registry_converter::blocking::json::JsonEncoder;
use schema_registry_converter::blocking::proto_raw::ProtoRawEncoder;
use schema_registry_converter::blocking::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::{Value as Json, json};
use sluice_format::{DecodeSpec, SchemaVersion, ValueDecoder, ValueFormat, open_decoder};
use sluice_registry_stand_in::StandIn;

/// Values per decoded batch, as the pipeline hands them to the decoder.
const BATCH_ROWS: usize = 8_192;
/// Batches of distinct records per format; a round cycles through them.
const BATCHES: usize = 8;
/// How long each contender runs per round (at least one batch).
const ROUND: Duration = Duration::from_millis(400);
/// Rounds; the contenders alternate within each, and the best round counts.
const ROUNDS: usize = 5;

const AVRO_SCHEMA: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"customer","type":"string"},
 {"name":"qty","type":"int"},
 {"name":"amount","type":"double"},
 {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED","CANCELLED"]}},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"gift","type":"boolean"},
 {"name":"tags","type":{"type":"array","items":"string"}}
]}"#;

const PROTO_SCHEMA: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";

message Order {
  int64 id = 1;
  string customer = 2;
  int32 qty = 3;
  double amount = 4;
  google.protobuf.Timestamp created = 5;
  int32 day = 6; // days since 1970-01-01
  Status status = 7;
  optional string note = 8;
  bool gift = 9;
  repeated string tags = 10;

  enum Status { NEW = 0; PAID = 1; SHIPPED = 2; CANCELLED = 3; }
}
"#;

const JSON_SCHEMA: &str = r#"{
 "$schema": "http://json-schema.org/draft-07/schema#",
 "title": "Order",
 "type": "object",
 "properties": {
  "id": {"type": "integer"},
  "customer": {"type": "string"},
  "qty": {"type": "integer"},
  "amount": {"type": "number"},
  "created": {"type": "string", "format": "date-time"},
  "day": {"type": "string", "format": "date"},
  "status": {"enum": ["NEW", "PAID", "SHIPPED", "CANCELLED"]},
  "note": {"type": ["null", "string"]},
  "gift": {"type": "boolean"},
  "tags": {"type": "array", "items": {"type": "string"}}
 },
 "required": ["id", "customer", "qty", "amount", "created", "day", "status", "gift", "tags"],
 "additionalProperties": false
}"#;

const STATUSES: [&str; 4] = ["NEW", "PAID", "SHIPPED", "CANCELLED"];
const NOTES: [&str; 3] = [
    "leave at the back door",
    "gift wrap, no invoice in the box",
    "call on arrival",
];
const TAGS: [&str; 6] = ["express", "fragile", "b2b", "promo", "repeat", "eu"];

/// One order's logical content.
struct Order {
    id: i64,
    customer: String,
    qty: i32,
    amount: f64,
    created_ms: i64,
    day: i32,
    status: usize,
    note: Option<&'static str>,
    gift: bool,
    tags: Vec<&'static str>,
}

pub(crate) fn run() -> anyhow::Result<()> {
    let orders = orders(BATCH_ROWS * BATCHES, 7);
    let registry = StandIn::start().context("starting the registry stand-in")?;
    let url = registry.url();

    let avro = batches(produce_avro(&url, &orders)?);
    let protobuf = batches(produce_protobuf(&url, &orders)?);
    let json_schema = batches(produce_json_schema(&url, &orders)?);
    let expected_ids: i64 = orders.iter().map(|o| o.id).sum();

    let open_with = |format: ValueFormat, subject: &str, validate: bool| {
        open_decoder(&DecodeSpec {
            format,
            registry: [("url".to_owned(), url.clone())].into(),
            subject: Some(subject.to_owned()),
            version: SchemaVersion::Latest,
            schema: None,
            max_value_bytes: 1 << 20,
            validate,
        })
        .with_context(|| format!("opening the {format:?} decoder"))
    };
    let open = |format: ValueFormat, subject: &str| open_with(format, subject, false);
    let mut sluice_avro = open(ValueFormat::Avro, "orders-avro-value")?;
    let mut sluice_protobuf = open(ValueFormat::Protobuf, "orders-protobuf-value")?;
    let mut sluice_json = open(ValueFormat::JsonSchema, "orders-json-value")?;
    // JSON Schema with `validate`: each value checked against its writer
    // schema too.
    let mut sluice_json_validated = open_with(ValueFormat::JsonSchema, "orders-json-value", true)?;

    // Untimed: every decoder fetches its writer schemas now, and each gives
    // ten columns and the right ids, so all three decode the same orders.
    for (name, decoder, values) in [
        ("avro", &mut sluice_avro, &avro),
        ("protobuf", &mut sluice_protobuf, &protobuf),
        ("json-schema", &mut sluice_json, &json_schema),
        (
            "json-schema validated",
            &mut sluice_json_validated,
            &json_schema,
        ),
    ] {
        let mut ids = 0i64;
        for batch in values {
            let decoded = decode_checked(decoder.as_mut(), batch).context(name)?;
            ensure!(
                decoded.batch.num_columns() == 10,
                "{name}: {} columns",
                decoded.batch.num_columns()
            );
            let id = decoded.batch.column_by_name("id").context("no id column")?;
            ids += id.as_primitive::<Int64Type>().values().iter().sum::<i64>();
        }
        ensure!(
            ids == expected_ids,
            "{name}: the ids differ from the orders written"
        );
    }

    // The baselines: apache-avro's generic `Value` path on the Avro values,
    // with the writer schema. Three ways a consumer reaches it; the fastest
    // is the baseline.
    let writer_schema = apache_avro::Schema::parse_str(AVRO_SCHEMA)?;
    let datum_reader =
        apache_avro::reader::datum::GenericDatumReader::builder(&writer_schema).build()?;
    let converter = ConverterAvroDecoder::new(SrSettings::new(url.clone()));
    let baselines: [(&str, Baseline<'_>); 3] = [
        (
            "from_avro_datum",
            Box::new(|payload: &[u8], _: &[u8]| -> anyhow::Result<AvroValue> {
                #[allow(deprecated)] // What the brief names; the builder below is its replacement.
                let value = apache_avro::from_avro_datum(&writer_schema, &mut &payload[..], None)?;
                Ok(value)
            }),
        ),
        (
            "datum_reader_reused",
            Box::new(|payload: &[u8], _: &[u8]| -> anyhow::Result<AvroValue> {
                Ok(datum_reader.read_value(&mut &payload[..])?)
            }),
        ),
        (
            "converter_avro_decoder",
            Box::new(|_: &[u8], framed: &[u8]| -> anyhow::Result<AvroValue> {
                Ok(converter.decode(Some(framed))?.value)
            }),
        ),
    ];
    for (name, decode) in &baselines {
        for batch in &avro {
            baseline_checked(decode, batch).context(*name)?;
        }
    }

    let mut best = Best::default();
    for _ in 0..ROUNDS {
        best.record("avro", &avro, |b| {
            decode_checked(sluice_avro.as_mut(), b).map(drop)
        })?;
        best.record("protobuf", &protobuf, |b| {
            decode_checked(sluice_protobuf.as_mut(), b).map(drop)
        })?;
        best.record("json_schema", &json_schema, |b| {
            decode_checked(sluice_json.as_mut(), b).map(drop)
        })?;
        best.record("json_schema_validated", &json_schema, |b| {
            decode_checked(sluice_json_validated.as_mut(), b).map(drop)
        })?;
        for (name, decode) in &baselines {
            best.record(&format!("baseline.{name}"), &avro, |b| {
                baseline_checked(decode, b)
            })?;
        }
    }

    for (name, values) in [
        ("avro", &avro),
        ("protobuf", &protobuf),
        ("json_schema", &json_schema),
    ] {
        println!(
            "decode.value_bytes.{name}: {:.1} B",
            bytes(values) as f64 / records(values) as f64
        );
    }
    for name in ["avro", "protobuf", "json_schema", "json_schema_validated"] {
        let (rate, mb) = best.get(name);
        println!("decode.sluice.{name}: {rate:.0} records/s");
        println!("decode.sluice.{name}.input: {mb:.1} MB/s");
    }
    let mut fastest = ("", 0.0f64);
    for (name, _) in &baselines {
        let (rate, mb) = best.get(&format!("baseline.{name}"));
        println!("decode.baseline.{name}: {rate:.0} records/s");
        println!("decode.baseline.{name}.input: {mb:.1} MB/s");
        if rate > fastest.1 {
            fastest = (*name, rate);
        }
    }
    println!(
        "decode.ratio.avro_over_baseline.{}: {:.2} x",
        fastest.0,
        best.get("avro").0 / fastest.1
    );
    drop(registry);
    Ok(())
}

/// A baseline decode of one value: (payload without the Confluent prefix,
/// the whole framed value).
type Baseline<'a> = Box<dyn Fn(&[u8], &[u8]) -> anyhow::Result<AvroValue> + 'a>;

/// Decode `values`; fail unless every value became a row and none is poison.
fn decode_checked(
    decoder: &mut dyn ValueDecoder,
    values: &BinaryArray,
) -> anyhow::Result<sluice_format::Decoded> {
    let decoded = decoder.decode(values)?;
    ensure!(
        decoded.poison.is_empty(),
        "{} poison records, the first: {:?}",
        decoded.poison.len(),
        decoded.poison[0]
    );
    ensure!(
        decoded.batch.num_rows() == values.len() && decoded.rows.len() == values.len(),
        "{} rows from {} values",
        decoded.batch.num_rows(),
        values.len()
    );
    Ok(decoded)
}

/// Decode every value of `values` with a baseline; fail unless each is a
/// ten-field record.
fn baseline_checked(decode: &Baseline<'_>, values: &BinaryArray) -> anyhow::Result<()> {
    let mut good = 0;
    for framed in values.iter().flatten() {
        let payload = framed.get(5..).context("a value shorter than its prefix")?;
        match decode(payload, framed)? {
            AvroValue::Record(fields) if fields.len() == 10 => good += 1,
            other => anyhow::bail!("not a ten-field record: {other:?}"),
        }
    }
    ensure!(
        good == values.len(),
        "{good} records from {} values",
        values.len()
    );
    Ok(())
}

/// The best round of each contender: (records/s, MB/s of input).
#[derive(Default)]
struct Best(Vec<(String, f64, f64)>);

impl Best {
    /// Run `decode` over `batches`, cycling, for one round; keep the figure
    /// if it is the contender's best.
    fn record(
        &mut self,
        name: &str,
        batches: &[BinaryArray],
        mut decode: impl FnMut(&BinaryArray) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let (mut rows, mut input) = (0usize, 0usize);
        let started = Instant::now();
        for batch in batches.iter().cycle() {
            decode(batch).with_context(|| format!("decoding {name}"))?;
            rows += batch.len();
            input += batch.value_data().len();
            if started.elapsed() >= ROUND {
                break;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let (rate, mb) = (rows as f64 / seconds, input as f64 / seconds / 1e6);
        match self.0.iter_mut().find(|(n, ..)| n == name) {
            Some(entry) if entry.1 < rate => *entry = (name.to_owned(), rate, mb),
            Some(_) => {}
            None => self.0.push((name.to_owned(), rate, mb)),
        }
        Ok(())
    }

    fn get(&self, name: &str) -> (f64, f64) {
        self.0
            .iter()
            .find(|(n, ..)| n == name)
            .map_or((0.0, 0.0), |(_, rate, mb)| (*rate, *mb))
    }
}

fn batches(values: Vec<Vec<u8>>) -> Vec<BinaryArray> {
    values
        .chunks(BATCH_ROWS)
        .map(BinaryArray::from_iter_values)
        .collect()
}

fn records(batches: &[BinaryArray]) -> usize {
    batches.iter().map(Array::len).sum()
}

fn bytes(batches: &[BinaryArray]) -> usize {
    batches.iter().map(|b| b.value_data().len()).sum()
}

/// `n` orders from a fixed seed.
fn orders(n: usize, seed: u64) -> Vec<Order> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n as i64)
        .map(|i| Order {
            id: 40_000_000 + i,
            customer: format!("customer-{:05}", rng.random_range(0..50_000)),
            qty: rng.random_range(1..20),
            amount: f64::from(rng.random_range(100..50_000i32)) / 100.0,
            created_ms: 1_763_500_000_000 + i * 37 + rng.random_range(0..1_000),
            day: 20_410 + (i / 20_000) as i32,
            status: rng.random_range(0..STATUSES.len()),
            note: (rng.random_range(0..10) < 3).then(|| NOTES[rng.random_range(0..NOTES.len())]),
            gift: rng.random_bool(0.1),
            tags: (0..rng.random_range(0..3))
                .map(|_| TAGS[rng.random_range(0..TAGS.len())])
                .collect(),
        })
        .collect()
}

fn strategy(subject_topic: &str, schema_type: SchemaType, schema: &str) -> SubjectNameStrategy {
    SubjectNameStrategy::TopicNameStrategyWithSchema(
        subject_topic.to_owned(),
        false,
        SuppliedSchema::new(None, schema_type, schema.to_owned()),
    )
}

fn produce_avro(url: &str, orders: &[Order]) -> anyhow::Result<Vec<Vec<u8>>> {
    let encoder = AvroEncoder::new(SrSettings::new(url.to_owned()));
    let subject = strategy("orders-avro", SchemaType::Avro, AVRO_SCHEMA);
    orders
        .iter()
        .map(|o| {
            let note = match o.note {
                Some(note) => AvroValue::Union(1, Box::new(AvroValue::String(note.to_owned()))),
                None => AvroValue::Union(0, Box::new(AvroValue::Null)),
            };
            let fields = vec![
                ("id", AvroValue::Long(o.id)),
                ("customer", AvroValue::String(o.customer.clone())),
                ("qty", AvroValue::Int(o.qty)),
                ("amount", AvroValue::Double(o.amount)),
                ("created", AvroValue::TimestampMillis(o.created_ms)),
                ("day", AvroValue::Date(o.day)),
                (
                    "status",
                    AvroValue::Enum(o.status as u32, STATUSES[o.status].to_owned()),
                ),
                ("note", note),
                ("gift", AvroValue::Boolean(o.gift)),
                (
                    "tags",
                    AvroValue::Array(
                        o.tags
                            .iter()
                            .map(|t| AvroValue::String((*t).to_owned()))
                            .collect(),
                    ),
                ),
            ];
            encoder.encode(fields, &subject).context("Avro encoder")
        })
        .collect()
}

fn produce_protobuf(url: &str, orders: &[Order]) -> anyhow::Result<Vec<Vec<u8>>> {
    let encoder = ProtoRawEncoder::new(SrSettings::new(url.to_owned()));
    let subject = strategy("orders-protobuf", SchemaType::Protobuf, PROTO_SCHEMA);
    let message = order_descriptor()?;
    orders
        .iter()
        .map(|o| {
            let mut fields = common_json(o);
            fields["created"] = json!(rfc3339(o.created_ms));
            fields["day"] = json!(o.day);
            if let Some(note) = o.note {
                fields["note"] = json!(note);
            }
            let value = DynamicMessage::deserialize(message.clone(), fields)?;
            encoder
                .encode(&value.encode_to_vec(), "shop.Order", &subject)
                .context("Protobuf encoder")
        })
        .collect()
}

fn produce_json_schema(url: &str, orders: &[Order]) -> anyhow::Result<Vec<Vec<u8>>> {
    let encoder = JsonEncoder::new(SrSettings::new(url.to_owned()));
    let subject = strategy("orders-json", SchemaType::Json, JSON_SCHEMA);
    orders
        .iter()
        .map(|o| {
            let mut fields = common_json(o);
            fields["created"] = json!(rfc3339(o.created_ms));
            fields["day"] = json!(iso_date(o.day));
            fields["note"] = json!(o.note);
            encoder
                .encode(&fields, &subject)
                .context("JSON Schema encoder")
        })
        .collect()
}

/// The fields every JSON shape writes the same way.
fn common_json(o: &Order) -> Json {
    json!({
        "id": o.id,
        "customer": o.customer,
        "qty": o.qty,
        "amount": o.amount,
        "status": STATUSES[o.status],
        "gift": o.gift,
        "tags": o.tags,
    })
}

/// The `shop.Order` descriptor, compiled as a producer compiles it.
fn order_descriptor() -> anyhow::Result<MessageDescriptor> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("order.proto"), PROTO_SCHEMA)?;
    let files = protox::compile(["order.proto"], [dir.path()])?;
    DescriptorPool::from_file_descriptor_set(files)?
        .get_message_by_name("shop.Order")
        .context("no shop.Order")
}

/// A millisecond Unix timestamp as RFC 3339 in UTC.
fn rfc3339(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000,
    );
    format!("{}T{h:02}:{m:02}:{s:02}.{milli:03}Z", iso_date(days as i32))
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (Howard Hinnant's civil_from_days).
fn iso_date(days: i32) -> String {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
