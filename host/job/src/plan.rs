//! A job's plan, as `sluice check` prints it (like Spark's `explain()`):
//! every stage from the source to the sinks, with the plugins loaded and
//! their digests, the dead-letter and late outputs, and no connection made
//! to any broker or registry.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use sluice_config::{
    AggregateSpec, DecodeConfig, EncodeConfig, Job, OnError, PluginSpec, SinkSpec, SourceSpec,
    WindowConfig,
};
use sluice_runtime::Runtime;

use sluice_operator::{Operator, TransformOperator, WindowAggregate};

use crate::{DEAD_LETTER_OUTPUT, JobError};

/// Option names whose values are secrets: shown as `****`.
const SECRET_MARKERS: &[&str] = &[
    "password",
    "secret",
    "basic.auth.user.info",
    "jaas",
    "token",
];

/// What a job will do, stage by stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    job: String,
    /// (stage, what it does), in the order rows pass.
    stages: Vec<(&'static str, String)>,
}

impl Plan {
    /// Validate `job` beyond its file: load and type-check every plugin
    /// (a transform must export the transformer, an aggregate the
    /// aggregator), check the windows, and describe each stage.
    pub fn of(job: &Job, runtime: &Runtime) -> Result<Plan, JobError> {
        let mut stages = vec![("source", source(&job.source))];
        let trigger = job.trigger;
        let cut = if trigger.real_time {
            format!(
                "real time: a batch as soon as the source has rows, at most {} rows or {}; Kafka sinks send each record at once",
                trigger.max_rows,
                bytes(trigger.max_bytes),
            )
        } else {
            format!(
                "a batch at {} rows, {} or {}, whichever comes first{}",
                trigger.max_rows,
                bytes(trigger.max_bytes),
                duration(trigger.max_interval),
                if trigger.available_now {
                    "; available now: stops after what the source holds at the start"
                } else {
                    ""
                }
            )
        };
        stages.push(("trigger", cut));
        if let Some(decode) = &job.decode {
            stages.push(("decode", decoding(decode)));
        }
        let mut stateless = Vec::new();
        let mut keeps_state = None;
        for (i, spec) in job.transforms.iter().enumerate() {
            let operator = TransformOperator::load(spec, runtime)?;
            if keeps_state.is_none() {
                if operator.is_stateless() {
                    stateless.push(spec.name.as_str());
                } else {
                    keeps_state = Some(format!("`{}`", spec.name));
                }
            }
            stages.push((
                "transform",
                format!(
                    "{}. {}",
                    i + 1,
                    plugin_line(spec, operator.plugin().digest())
                ),
            ));
        }
        if !job.transforms.is_empty() {
            stages.push(("rejected", rejections(job)));
        }
        if let Some(spec) = &job.aggregate {
            let aggregate = WindowAggregate::load(spec, runtime)?;
            let digest = aggregate.plugin_digest();
            stages.push(("aggregate", plugin_line(&spec.plugin, digest)));
            stages.push(("windows", windows(spec)));
        }
        stages.push((
            "tasks",
            tasks(
                job,
                &stateless,
                keeps_state.or(job.aggregate.as_ref().map(|_| "the aggregate".into())),
            ),
        ));
        if let Some(encode) = &job.encode {
            stages.push(("encode", encoding(encode)));
        }
        stages.push(("sink", sink(&job.sink)));
        for (name, spec) in &job.outputs {
            stages.push(("output", format!("`{name}` → {}", sink(spec))));
        }
        stages.push(("checkpoint", checkpointing(job)));
        Ok(Plan {
            job: job.name.clone(),
            stages,
        })
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "job `{}`", self.job)?;
        for (stage, what) in &self.stages {
            writeln!(f, "  {stage:<10} {what}")?;
        }
        Ok(())
    }
}

/// How the job spreads its work: which stages run on `parallelism` tasks
/// side by side, and from which operator on the job's thread takes over.
fn tasks(job: &Job, stateless: &[&str], keeps_state: Option<String>) -> String {
    let mut parallel: Vec<String> = Vec::new();
    if job.decode.is_some() {
        parallel.push("decode".into());
    }
    parallel.extend(stateless.iter().map(|name| format!("`{name}`")));
    let rest = keeps_state.map_or(String::new(), |name| {
        format!("; from {name} on (it keeps state), one batch at a time, in order")
    });
    if job.parallelism == 1 || parallel.is_empty() {
        let why = if job.parallelism == 1 {
            "parallelism = 1"
        } else {
            "nothing before the first stateful stage"
        };
        return format!("one: every stage on the job's thread ({why})");
    }
    format!(
        "{}: {} on each, batches side by side, results in the order the batches were cut{rest}",
        job.parallelism,
        parallel.join(", ")
    )
}

fn source(spec: &SourceSpec) -> String {
    match spec {
        SourceSpec::Datagen(datagen) => format!(
            "datagen: {} rows/s{}, columns {}",
            datagen.rows_per_second,
            datagen
                .rows
                .map_or(", unbounded".into(), |rows| format!(", {rows} rows")),
            datagen
                .columns
                .iter()
                .map(|c| format!("{} ({})", c.name, Spelled(&c.generator)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        SourceSpec::File(file) => {
            format!("file {} ({})", file.path.display(), Spelled(&file.format))
        }
        SourceSpec::Directory(directory) => format!(
            "directory {} ({} files, {} first{}), listed every {}",
            directory.path.display(),
            Spelled(&directory.format),
            if directory.latest_first {
                "newest"
            } else {
                "oldest"
            },
            directory
                .max_files_per_trigger
                .map_or(String::new(), |n| format!(", {n} per listing")),
            duration(directory.poll_interval)
        ),
        SourceSpec::Kafka(kafka) => format!("kafka {}", options(&kafka.options)),
        SourceSpec::Nexmark(nexmark) => format!(
            "nexmark {} stream, {} events/s of event time{}",
            Spelled(&nexmark.table),
            nexmark.event_rate,
            nexmark
                .events
                .map_or(", unbounded".into(), |events| format!(", {events} events"))
        ),
    }
}

fn sink(spec: &SinkSpec) -> String {
    match spec {
        SinkSpec::Console(console) => format!("console, {} rows per batch", console.num_rows),
        SinkSpec::File(file) => format!("file {} (JSON lines)", file.path.display()),
        SinkSpec::Parquet(parquet) => format!(
            "parquet part files in {} ({})",
            parquet.path.display(),
            Spelled(&parquet.compression)
        ),
        SinkSpec::Kafka(kafka) => format!("kafka {}", options(&kafka.options)),
    }
}

fn decoding(decode: &DecodeConfig) -> String {
    let mut what = format!("`value` as {}", Spelled(&decode.format));
    if let Some(subject) = &decode.subject {
        what += &format!(", subject `{subject}` version {}", decode.version);
    }
    if let Some(url) = decode.registry.get("url") {
        what += &format!(", registry {url}");
    }
    if let Some(schema) = &decode.schema {
        let columns: Vec<_> = schema
            .iter()
            .map(|c| format!("{} {}", c.name, Spelled(&c.column_type)))
            .collect();
        what += &format!(", columns [{}]", columns.join(", "));
    }
    what += &format!(
        "; values over {} are poison; poison {}",
        bytes(decode.max_value_bytes),
        match decode.on_error {
            OnError::Dlq => format!("→ output `{}`", decode.dead_letter),
            OnError::Fail => "stops the job".into(),
            OnError::SkipAndCount => "is skipped and counted".into(),
        }
    );
    what
}

fn encoding(encode: &EncodeConfig) -> String {
    format!(
        "rows as {} values, subject `{}`{}{}",
        Spelled(&encode.format),
        encode.subject,
        encode
            .registry
            .get("url")
            .map_or(String::new(), |url| format!(", registry {url}")),
        if encode.auto_register_schemas {
            ", schema registered automatically"
        } else {
            ""
        }
    )
}

/// Where and how the job checkpoints, and what that makes its delivery.
fn checkpointing(job: &Job) -> String {
    let Some(checkpoint) = &job.checkpoint else {
        return "off: the job keeps no state or positions across a restart; add [checkpoint] location = ...".into();
    };
    let delivery = match checkpoint.delivery {
        sluice_config::Delivery::ExactlyOnce => {
            "exactly-once (Kafka transactions with the source offsets)"
        }
        sluice_config::Delivery::AtLeastOnce => "at-least-once",
    };
    format!(
        "{} every {}, keeping {}; {delivery}; up to {} restarts from the last checkpoint",
        checkpoint.location,
        duration(checkpoint.interval),
        checkpoint.keep,
        checkpoint.restart_attempts
    )
}

/// Where rows a transform rejects as invalid input go.
fn rejections(job: &Job) -> String {
    let output = match &job.decode {
        Some(decode) => match decode.on_error {
            OnError::Dlq => decode.dead_letter.as_str(),
            OnError::Fail => return "rows a plugin rejects stop the job".into(),
            OnError::SkipAndCount => return "rows a plugin rejects are skipped and counted".into(),
        },
        None => DEAD_LETTER_OUTPUT,
    };
    if job.outputs.contains_key(output) {
        format!("rows a plugin rejects → output `{output}`")
    } else {
        format!(
            "rows a plugin rejects → output `{output}`, which the job does not define: a rejection stops the job"
        )
    }
}

fn windows(spec: &AggregateSpec) -> String {
    let window = match spec.window {
        WindowConfig::Tumbling { size } => format!("tumbling {}", duration(size)),
        WindowConfig::Hopping { size, slide } => {
            format!("hopping {} every {}", duration(size), duration(slide))
        }
        WindowConfig::Session { gap } => format!("session, gap {}", duration(gap)),
    };
    let key = if spec.key.is_empty() {
        "no key".into()
    } else {
        format!("key [{}]", spec.key.join(", "))
    };
    format!(
        "{window} on `{}`, {key}; watermark delay {}, allowed lateness {}, emit {}; late rows → output `{}`",
        spec.event_time,
        duration(spec.watermark_delay),
        duration(spec.allowed_lateness),
        Spelled(&spec.emit),
        spec.late_output
    )
}

/// A plugin's name, file, digest, configuration and limits.
fn plugin_line(spec: &PluginSpec, digest: &str) -> String {
    let config: Vec<_> = spec
        .config
        .iter()
        .map(|(k, v)| format!("{k} = {v:?}"))
        .collect();
    format!(
        "{} {} sha256:{}, memory {}, deadline {}, config {{{}}}",
        spec.name,
        spec.plugin.display(),
        &digest[..digest.len().min(12)],
        bytes(spec.memory_limit),
        duration(spec.deadline),
        config.join(", ")
    )
}

/// Options as `name=value`, secrets masked.
fn options(options: &std::collections::BTreeMap<String, String>) -> String {
    options
        .iter()
        .map(|(name, value)| {
            let secret = SECRET_MARKERS
                .iter()
                .any(|m| name.to_lowercase().contains(m));
            format!("{name}={}", if secret { "****" } else { value })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An enum value as the job file spells it (its serde name).
struct Spelled<'a, T>(&'a T);

impl<T: Serialize> fmt::Display for Spelled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.serialize(f)
    }
}

fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
