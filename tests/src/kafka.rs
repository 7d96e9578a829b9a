//! Kafka helpers for end-to-end tests: the brokers `scripts/services`
//! started, topics, producing and reading back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// A broker under test, and the behaviours it is known to lack.
#[derive(Debug, Clone)]
pub struct Broker {
    /// Its name in test output.
    pub name: &'static str,
    /// host:port.
    pub address: String,
    /// Whether it reports true high watermarks (tansu's are wrong: with
    /// them an available-now job read 1 of 10 records).
    pub correct_high_watermarks: bool,
    /// Whether librdkafka survives its metadata once a topic is deleted
    /// (after a deletion on tansu, librdkafka 2.x crashes in
    /// `rd_kafka_metadata_cache_find` on the metadata it sends).
    pub sane_metadata_after_delete: bool,
}

/// The brokers `scripts/services start` runs, from the environment.
/// Panics when they are not configured: a missing broker is a failed
/// setup, not a reason to skip.
pub fn brokers() -> Vec<Broker> {
    let address = |var: &str| {
        std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set; run `eval $(scripts/services env)` after `scripts/services start`"))
    };
    vec![
        Broker {
            name: "noida-db",
            address: address("SLUICE_TEST_KAFKA_NOIDA"),
            correct_high_watermarks: true,
            sane_metadata_after_delete: true,
        },
        Broker {
            name: "tansu",
            address: address("SLUICE_TEST_KAFKA_TANSU"),
            correct_high_watermarks: false,
            sane_metadata_after_delete: false,
        },
    ]
}

/// noida-db, the broker here whose transactions and `read_committed`
/// are right (TOOLCHAIN.md).
pub fn noida() -> Broker {
    brokers()
        .into_iter()
        .find(|b| b.name == "noida-db")
        .expect("noida-db is configured")
}

/// The brokers that can run an available-now job: it needs each
/// partition's true end offset (tansu's are wrong).
pub fn brokers_with_end_offsets() -> Vec<Broker> {
    brokers()
        .into_iter()
        .filter(|b| b.correct_high_watermarks)
        .collect()
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// An admin client of `broker`.
fn admin_client(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap()
}

/// Create `topic` with `partitions` partitions.
pub fn create_topic(broker: &Broker, topic: &str, partitions: i32) {
    let admin = admin_client(broker);
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results =
        futures_executor::block_on(admin.create_topics([&new], &AdminOptions::new())).unwrap();
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("creating {t} on {}: {e}", broker.name));
    }
}

/// Delete `topics`, so a broker that keeps every record in one store does
/// not carry them into later runs.
pub fn delete_topics(broker: &Broker, topics: &[&str]) {
    let admin = admin_client(broker);
    let results =
        futures_executor::block_on(admin.delete_topics(topics, &AdminOptions::new())).unwrap();
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("deleting {t} on {}: {e}", broker.name));
    }
}

/// A record to produce or as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// The value of header `name`, as text; panics if there is none.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8(v.clone()).unwrap())
            .unwrap_or_else(|| panic!("no header {name} in {:?}", self.headers))
    }
}

/// Produce `records` to `topic` and wait for every acknowledgement.
pub fn produce(broker: &Broker, topic: &str, records: &[Record]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for record in records {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(record.partition)
            .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key);
        }
        if let Some(value) = &record.value {
            base = base.payload(value);
        }
        send_waiting(&producer, base);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// Produce one record to partition 0 of `topic` whose one header has the
/// key `header_key`, any bytes: rdkafka's Rust API only takes header keys
/// that are `&str`, as other clients need not, so this goes through
/// librdkafka's `rd_kafka_produceva`.
pub fn produce_with_raw_header_key(broker: &Broker, topic: &str, header_key: &[u8], value: &[u8]) {
    use rdkafka::bindings as rd;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    let topic_name = std::ffi::CString::new(topic).unwrap();
    let key = std::ffi::CString::new(header_key).expect("a header key holds no NUL");
    let header_value = b"v";
    let vus = [
        rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TOPIC,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 {
                cstr: topic_name.as_ptr(),
            },
        },
        rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 { i32_: 0 },
        },
        rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 {
                mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
                    ptr: value.as_ptr().cast_mut().cast(),
                    size: value.len(),
                },
            },
        },
        rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 {
                header: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                    name: key.as_ptr(),
                    val: header_value.as_ptr().cast(),
                    size: header_value.len() as isize,
                },
            },
        },
    ];
    // SAFETY: every pointer in `vus` outlives the call, which copies what
    // it points at (RD_KAFKA_VTYPE_VALUE without MSGFLAGS is copied).
    let error =
        unsafe { rd::rd_kafka_produceva(producer.client().native_ptr(), vus.as_ptr(), vus.len()) };
    assert!(error.is_null(), "rd_kafka_produceva failed");
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// Send `record`, polling and trying again while the producer refuses it
/// (its queue is full).
pub fn send_waiting<K, P>(producer: &BaseProducer, mut record: BaseRecord<'_, K, P>)
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, returned)) => {
                producer.poll(Duration::from_millis(20));
                record = returned;
            }
        }
    }
}

/// Read `topic` from the start until `expected` records arrived or
/// `timeout` passed; records per partition, in offset order.
pub fn read_back(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> BTreeMap<i32, Vec<Record>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut out: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    let mut count = 0;
    let started = Instant::now();
    while count < expected && started.elapsed() < timeout {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            out.entry(message.partition()).or_default().push(Record {
                partition: message.partition(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers,
            });
            count += 1;
        }
    }
    // Anything beyond `expected` would be a duplicate: look briefly.
    let extra_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra_until {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            out.entry(message.partition()).or_default().push(Record {
                partition: message.partition(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: Vec::new(),
            });
        }
    }
    out
}
