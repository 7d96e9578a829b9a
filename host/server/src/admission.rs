//! What a tenant's job may do on a shared host, checked at submit: it
//! reads and writes only topics on its allow-list (rows that name their
//! own topic are checked by the sink as they are written), uses no file of the
//! host (no file sources or sinks, no librdkafka setting that names a file
//! or loads code), and asks for no more than its quotas. The host then
//! places the job's checkpoints and names its consumer group itself.

use std::collections::BTreeMap;
use std::path::Path;

use sluice_config::{CheckpointConfig, Job, SinkSpec, SourceSpec};
use sluice_kafka::{SourceOptions, Subscription};

use crate::tenants::Tenant;

/// librdkafka settings a hosted job may give (as `kafka.*` options): how
/// to reach and authenticate to its cluster, and tuning. Anything else,
/// notably settings that name files (`ssl.ca.location`), load code
/// (`plugin.library.paths`), run commands (`sasl.kerberos.kinit.cmd`) or
/// pick the consumer group, is refused.
const HOSTED_CLIENT_SETTINGS: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "client.rack",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "request.timeout.ms",
    "socket.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "isolation.level",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.wait.max.ms",
    "max.partition.fetch.bytes",
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "batch.size",
    "batch.num.messages",
    "message.max.bytes",
    "compression.type",
    "compression.codec",
    "acks",
];

/// Why a job was refused: the field at fault, and whether it asked for
/// something the tenant may not have (403) or is malformed (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The field, dotted (`source.options.subscribe`).
    pub(crate) field: String,
    /// Why.
    pub(crate) message: String,
    /// Whether the tenant lacks a right (rather than the job being wrong).
    pub(crate) forbidden: bool,
}

impl Refusal {
    fn forbidden(field: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal {
            field: field.into(),
            message: message.into(),
            forbidden: true,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal {
            field: field.into(),
            message: message.into(),
            forbidden: false,
        }
    }
}

/// Check `job` against what `tenant` may do, then make it a hosted job:
/// its consumer group and transactional ids carry the job's id, and its
/// checkpoints live in `checkpoints` (replacing any location it gave), so
/// that the host can resume it after a restart.
pub(crate) fn admit(
    tenant: &Tenant,
    job: &mut Job,
    id: &str,
    checkpoints: &Path,
) -> Result<(), Refusal> {
    check_source(tenant, &job.source)?;
    check_sink(tenant, "sink", &job.sink)?;
    for (name, output) in &job.outputs {
        check_sink(tenant, &format!("outputs.{name}"), output)?;
    }
    let quotas = &tenant.config;
    let plugins = job
        .transforms
        .iter()
        .chain(job.aggregate.as_ref().map(|a| &a.plugin));
    for plugin in plugins {
        let field = plugin.field.trim_end_matches(".plugin");
        if plugin.memory_limit > quotas.memory_limit.as_u64() {
            return Err(Refusal::forbidden(
                format!("{field}.memory_limit"),
                format!(
                    "{} is over the tenant's {} per instance",
                    bytesize::ByteSize(plugin.memory_limit),
                    quotas.memory_limit
                ),
            ));
        }
        if plugin.deadline > quotas.deadline {
            return Err(Refusal::forbidden(
                format!("{field}.deadline"),
                format!(
                    "{} is over the tenant's {} per call",
                    humantime::format_duration(plugin.deadline),
                    humantime::format_duration(quotas.deadline)
                ),
            ));
        }
    }
    if let Some(aggregate) = &job.aggregate
        && aggregate.state_quota > quotas.max_state_bytes.as_u64()
    {
        return Err(Refusal::forbidden(
            "aggregate.state_quota",
            format!(
                "{} is over the tenant's {} of state",
                bytesize::ByteSize(aggregate.state_quota),
                quotas.max_state_bytes
            ),
        ));
    }
    if let Some(checkpoint) = &job.checkpoint
        && checkpoint.restart_backoff < quotas.min_restart_backoff
    {
        return Err(Refusal::forbidden(
            "checkpoint.restart_backoff",
            format!(
                "{} is under the tenant's minimum of {}",
                humantime::format_duration(checkpoint.restart_backoff),
                humantime::format_duration(quotas.min_restart_backoff)
            ),
        ));
    }
    job.name = format!("{}.{}.{id}", tenant.name(), job.name);
    let location = checkpoints.to_string_lossy().into_owned();
    match &mut job.checkpoint {
        Some(checkpoint) => {
            checkpoint.location = location;
            checkpoint.options = BTreeMap::new();
        }
        None => {
            job.checkpoint = Some(
                toml::from_str::<CheckpointConfig>(&format!("location = {location:?}"))
                    .expect("a checkpoint section of a location alone parses"),
            );
        }
    }
    Ok(())
}

fn check_source(tenant: &Tenant, source: &SourceSpec) -> Result<(), Refusal> {
    let kafka = match source {
        SourceSpec::Kafka(kafka) => kafka,
        SourceSpec::Datagen(_) | SourceSpec::Nexmark(_) => return Ok(()),
        SourceSpec::File(_) | SourceSpec::Directory(_) => {
            return Err(Refusal::forbidden(
                "source.type",
                "a hosted job cannot read the host's files; read Kafka",
            ));
        }
    };
    check_client_settings("source.options", &kafka.options)?;
    let options = SourceOptions::parse(&kafka.options)
        .map_err(|e| Refusal::invalid("source.options", e.to_string()))?;
    let topics: Vec<&String> = match &options.subscription {
        Subscription::Topics(topics) => topics.iter().collect(),
        Subscription::Partitions(partitions) => partitions.keys().collect(),
        Subscription::Pattern(_) => {
            return Err(Refusal::forbidden(
                "source.options.subscribePattern",
                "a hosted job names its topics (subscribe or assign), so that they can be checked against the tenant's allow-list",
            ));
        }
    };
    for topic in topics {
        if !tenant.may_use_topic(topic) {
            return Err(Refusal::forbidden(
                "source.options",
                format!("topic {topic:?} is not on the tenant's allow-list"),
            ));
        }
    }
    Ok(())
}

fn check_sink(tenant: &Tenant, field: &str, sink: &SinkSpec) -> Result<(), Refusal> {
    match sink {
        SinkSpec::Console(_) => Ok(()),
        SinkSpec::File(_) | SinkSpec::Parquet(_) => Err(Refusal::forbidden(
            format!("{field}.type"),
            "a hosted job cannot write the host's files; write Kafka",
        )),
        SinkSpec::Kafka(kafka) => {
            let options = format!("{field}.options");
            check_client_settings(&options, &kafka.options)?;
            // Rows that name their own topic (a `topic` column) are
            // checked as they are written.
            match kafka.options.get("topic") {
                Some(topic) if !tenant.may_use_topic(topic) => Err(Refusal::forbidden(
                    format!("{options}.topic"),
                    format!("topic {topic:?} is not on the tenant's allow-list"),
                )),
                _ => Ok(()),
            }
        }
    }
}

fn check_client_settings(field: &str, options: &BTreeMap<String, String>) -> Result<(), Refusal> {
    for key in options.keys() {
        if let Some(setting) = key.strip_prefix("kafka.")
            && !HOSTED_CLIENT_SETTINGS.contains(&setting)
        {
            return Err(Refusal::forbidden(
                format!("{field}.{key}"),
                format!(
                    "not allowed in a hosted job; allowed: {}",
                    HOSTED_CLIENT_SETTINGS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
