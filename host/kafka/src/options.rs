//! Spark's Kafka source options, parsed and checked.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::KafkaError;

/// Which partitions to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// `subscribe`: every partition of these topics.
    Topics(Vec<String>),
    /// `subscribePattern`: every partition of topics matching this regex.
    Pattern(String),
    /// `assign`: these partitions of these topics.
    Partitions(BTreeMap<String, Vec<i32>>),
}

/// Where reading starts when the job starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The earliest available offset of every partition.
    Earliest,
    /// The end of every partition (only new records).
    Latest,
    /// Per topic and partition: an offset, or -2 (earliest) / -1 (latest).
    /// Partitions not named start at latest, as in Spark.
    Offsets(BTreeMap<String, BTreeMap<i32, i64>>),
    /// The first offset whose timestamp is at or after this time (ms).
    Timestamp(i64),
}

/// The options of a Kafka source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceOptions {
    /// What to read.
    pub subscription: Subscription,
    /// Where to start.
    pub starting_offsets: StartingOffsets,
    /// Fail when offsets to be read are gone (default true).
    pub fail_on_data_loss: bool,
    /// Upper bound on offsets per micro-batch, across partitions.
    pub max_offsets_per_trigger: Option<usize>,
    /// Upper bound on fetched bytes librdkafka queues ahead of the job.
    pub max_bytes_in_flight: u64,
    /// How often partitions of `subscribe`/`subscribePattern` are refreshed.
    pub partition_refresh: Duration,
    /// Settings for librdkafka: every `kafka.*` option, prefix removed.
    pub client: BTreeMap<String, String>,
}

/// librdkafka settings Sluice owns; a job may not override them.
const OWNED_CLIENT_SETTINGS: &[&str] = &[
    "enable.auto.commit",
    "auto.offset.reset",
    "enable.auto.offset.store",
];

const SOURCE_OPTIONS: &[&str] = &[
    "subscribe",
    "subscribePattern",
    "assign",
    "startingOffsets",
    "startingTimestamp",
    "failOnDataLoss",
    "maxOffsetsPerTrigger",
    "maxBytesInFlight",
    "partitionRefreshMs",
    "valueFormat",
];

fn invalid(option: &str, message: impl Into<String>) -> KafkaError {
    KafkaError::Option {
        option: option.to_owned(),
        message: message.into(),
    }
}

impl SourceOptions {
    /// Parse the options of a job's Kafka source.
    pub fn parse(options: &BTreeMap<String, String>) -> Result<Self, KafkaError> {
        let client = client_settings(options, SOURCE_OPTIONS)?;
        let chosen: Vec<&str> = ["subscribe", "subscribePattern", "assign"]
            .into_iter()
            .filter(|k| options.contains_key(*k))
            .collect();
        let subscription = match chosen.as_slice() {
            ["subscribe"] => Subscription::Topics(
                options["subscribe"]
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            ["subscribePattern"] => {
                let pattern = options["subscribePattern"].clone();
                regex::Regex::new(&pattern)
                    .map_err(|e| invalid("subscribePattern", e.to_string()))?;
                Subscription::Pattern(pattern)
            }
            ["assign"] => {
                Subscription::Partitions(serde_json::from_str(&options["assign"]).map_err(|e| {
                    invalid(
                        "assign",
                        format!("expected JSON like {{\"topic\":[0,1]}}: {e}"),
                    )
                })?)
            }
            [] => {
                return Err(invalid(
                    "subscribe",
                    "set exactly one of subscribe, subscribePattern, assign",
                ));
            }
            many => {
                return Err(invalid(
                    many[0],
                    format!("set only one of {}", many.join(", ")),
                ));
            }
        };
        if matches!(&subscription, Subscription::Topics(t) if t.is_empty()) {
            return Err(invalid("subscribe", "no topic named"));
        }
        let starting_offsets = match (
            options.get("startingTimestamp"),
            options.get("startingOffsets"),
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "startingTimestamp",
                    "set startingOffsets or startingTimestamp, not both",
                ));
            }
            (Some(ts), None) => StartingOffsets::Timestamp(ts.parse().map_err(|_| {
                invalid(
                    "startingTimestamp",
                    format!("{ts:?} is not milliseconds since the epoch"),
                )
            })?),
            (None, None) => StartingOffsets::Latest,
            (None, Some(text)) => match text.trim() {
                "earliest" => StartingOffsets::Earliest,
                "latest" => StartingOffsets::Latest,
                json => StartingOffsets::Offsets(parse_offsets(json)?),
            },
        };
        let fail_on_data_loss = match options.get("failOnDataLoss").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(invalid(
                    "failOnDataLoss",
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        // `valueFormat = "string"` is a decode of the job's (invalid UTF-8
        // is dead-lettered); the source reads `value` as bytes either way.
        if let Some(other) = options
            .get("valueFormat")
            .filter(|f| !matches!(f.as_str(), "binary" | "string"))
        {
            return Err(invalid(
                "valueFormat",
                format!("{other:?} is not binary or string"),
            ));
        }
        let positive = |name: &str| -> Result<Option<u64>, KafkaError> {
            options
                .get(name)
                .map(|v| match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(invalid(name, format!("{v:?} is not a positive integer"))),
                })
                .transpose()
        };
        Ok(SourceOptions {
            subscription,
            starting_offsets,
            fail_on_data_loss,
            max_offsets_per_trigger: positive("maxOffsetsPerTrigger")?.map(|n| n as usize),
            max_bytes_in_flight: positive("maxBytesInFlight")?.unwrap_or(64 << 20),
            partition_refresh: Duration::from_millis(
                positive("partitionRefreshMs")?.unwrap_or(10_000),
            ),
            client,
        })
    }
}

/// JSON offsets: `{"topic":{"0":23,"1":-2}}`.
fn parse_offsets(json: &str) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, KafkaError> {
    let raw: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(json).map_err(|e| {
        invalid(
            "startingOffsets",
            format!(
                "expected earliest, latest or JSON like {{\"topic\":{{\"0\":23,\"1\":-2}}}}: {e}"
            ),
        )
    })?;
    raw.into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(p, offset)| {
                    let p: i32 = p.parse().map_err(|_| {
                        invalid(
                            "startingOffsets",
                            format!("{p:?} is not a partition number"),
                        )
                    })?;
                    if offset < -2 {
                        return Err(invalid(
                            "startingOffsets",
                            format!("offset {offset} of {topic}-{p} is below -2"),
                        ));
                    }
                    Ok((p, offset))
                })
                .collect::<Result<_, _>>()?;
            Ok((topic, partitions))
        })
        .collect()
}

/// The `kafka.*` options with the prefix removed; any other option must be
/// one of `known`.
pub(crate) fn client_settings(
    options: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<BTreeMap<String, String>, KafkaError> {
    let mut client = BTreeMap::new();
    for (key, value) in options {
        if let Some(setting) = key.strip_prefix("kafka.") {
            if OWNED_CLIENT_SETTINGS.contains(&setting) {
                return Err(invalid(key, "Sluice manages this setting itself"));
            }
            client.insert(setting.to_owned(), value.clone());
        } else if !known.contains(&key.as_str()) {
            return Err(invalid(
                key,
                format!(
                    "unknown option; known: {}, and kafka.* for librdkafka",
                    known.join(", ")
                ),
            ));
        }
    }
    if !client.contains_key("bootstrap.servers") {
        return Err(invalid("kafka.bootstrap.servers", "required"));
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<SourceOptions, KafkaError> {
        let mut options: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        options
            .entry("kafka.bootstrap.servers".into())
            .or_insert_with(|| "b:9092".into());
        SourceOptions::parse(&options)
    }

    #[test]
    fn defaults_match_spark() {
        let o = parse(&[("subscribe", "a, b")]).unwrap();
        assert_eq!(
            o.subscription,
            Subscription::Topics(vec!["a".into(), "b".into()])
        );
        assert_eq!(o.starting_offsets, StartingOffsets::Latest);
        assert!(o.fail_on_data_loss);
        assert_eq!(
            o.client.get("bootstrap.servers").map(String::as_str),
            Some("b:9092")
        );
    }

    #[test]
    fn json_offsets_and_assign() {
        let o = parse(&[
            ("assign", r#"{"t":[0,2]}"#),
            ("startingOffsets", r#"{"t":{"0":5,"2":-2}}"#),
        ])
        .unwrap();
        assert_eq!(
            o.subscription,
            Subscription::Partitions(BTreeMap::from([("t".into(), vec![0, 2])]))
        );
        assert_eq!(
            o.starting_offsets,
            StartingOffsets::Offsets(BTreeMap::from([(
                "t".into(),
                BTreeMap::from([(0, 5), (2, -2)])
            )]))
        );
    }

    #[test]
    fn clear_errors() {
        let message = |pairs: &[(&str, &str)]| parse(pairs).unwrap_err().to_string();
        assert!(message(&[]).contains("set exactly one of subscribe"));
        assert!(message(&[("subscribe", "a"), ("assign", "{}")]).contains("set only one of"));
        assert!(
            message(&[("subscribe", "a"), ("startingOffsets", "{oops")])
                .contains("startingOffsets")
        );
        assert!(message(&[("subscribePattern", "(")]).contains("subscribePattern"));
        assert!(
            message(&[("subscribe", "a"), ("kafka.enable.auto.commit", "true")])
                .contains("manages this setting")
        );
        assert!(message(&[("subscribe", "a"), ("subscibe", "typo")]).contains("unknown option"));
        assert!(
            message(&[("subscribe", "a"), ("maxOffsetsPerTrigger", "0")])
                .contains("positive integer")
        );
    }
}
