//! A transform plugin as an operator: its typed errors handled as the
//! contract says. `invalid-input` rows are set aside as rejected and the
//! rest of the batch is processed again; `transient` errors are retried
//! with backoff; anything else fails the batch.

use std::time::Duration;

use arrow::array::{BooleanArray, UInt32Array};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::record_batch::RecordBatch;
use sluice_config::PluginSpec;
use sluice_runtime::{PluginLimits, Runtime, RuntimeError, TransformPlugin};

use crate::{Collector, Operator, OperatorError, RejectKind, Rejected, Routed};

/// Attempts of a call that keeps failing with `transient`.
const TRANSIENT_ATTEMPTS: u32 = 4;

/// One transform plugin of a job.
#[derive(Debug)]
pub struct TransformOperator {
    plugin: TransformPlugin,
}

impl TransformOperator {
    /// Load the plugin `spec` names, with the limits the job file gives it.
    pub fn load(spec: &PluginSpec, runtime: &Runtime) -> Result<Self, OperatorError> {
        let plugin = TransformPlugin::load(
            runtime,
            &spec.name,
            &spec.plugin,
            spec.config.clone(),
            limits_of(spec),
        )
        .map_err(load_error(spec))?;
        Ok(TransformOperator { plugin })
    }

    /// The loaded plugin.
    pub fn plugin(&self) -> &TransformPlugin {
        &self.plugin
    }
}

impl Operator for TransformOperator {
    fn name(&self) -> &str {
        self.plugin.name()
    }

    fn process_batch(
        &mut self,
        mut batch: RecordBatch,
        out: &mut Collector,
    ) -> Result<Option<RecordBatch>, OperatorError> {
        let mut transient_failures = 0;
        loop {
            match self.plugin.process(&batch) {
                Ok(output) => {
                    out.routed
                        .extend(output.routed.into_iter().map(|(output, rows)| Routed {
                            operator: self.name().to_owned(),
                            output,
                            rows,
                        }));
                    return Ok(Some(output.batch));
                }
                Err(error)
                    if error.is_retryable() && transient_failures + 1 < TRANSIENT_ATTEMPTS =>
                {
                    transient_failures += 1;
                    let backoff = Duration::from_millis(100 << transient_failures);
                    tracing::warn!(
                        plugin = self.name(),
                        attempt = transient_failures,
                        ?backoff,
                        "retrying: {error}"
                    );
                    std::thread::sleep(backoff);
                }
                Err(error) => {
                    let Some(rejected) = TransformPlugin::rejected_rows(&error) else {
                        return Err(error.into());
                    };
                    let (bad, good) = split_rows(&batch, &rejected.rows).map_err(|message| {
                        OperatorError::Batch {
                            operator: self.name().to_owned(),
                            message,
                        }
                    })?;
                    out.rejected.push(Rejected {
                        operator: self.name().to_owned(),
                        kind: RejectKind::InvalidInput,
                        message: rejected.message,
                        rows: bad,
                    });
                    if good.num_rows() == 0 {
                        return Ok(Some(good));
                    }
                    batch = good;
                }
            }
        }
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, OperatorError> {
        Ok(self.plugin.snapshot()?)
    }

    fn restore(&mut self, state: Option<&[u8]>) -> Result<(), OperatorError> {
        self.plugin.restore(state).map_err(|error| match error {
            RuntimeError::Plugin { message, .. } => OperatorError::Restore {
                operator: self.name().to_owned(),
                reason: format!("its `restore` rejected the state: {message}"),
            },
            other => OperatorError::Plugin(other),
        })
    }

    fn plugin_digest(&self) -> &str {
        self.plugin.digest()
    }

    fn is_stateless(&self) -> bool {
        !self.plugin.is_stateful()
    }

    fn memory_bytes(&self) -> u64 {
        self.plugin.memory_bytes()
    }
}

/// The error of a plugin that could not be loaded, naming it and its line.
pub(crate) fn load_error(spec: &PluginSpec) -> impl FnOnce(RuntimeError) -> OperatorError + '_ {
    |source| OperatorError::Load {
        name: spec.name.clone(),
        field: spec.field.clone(),
        line: spec.line,
        source: Box::new(source),
    }
}

/// The limits a job file gives a plugin.
pub(crate) fn limits_of(spec: &PluginSpec) -> PluginLimits {
    PluginLimits {
        memory_bytes: usize::try_from(spec.memory_limit).unwrap_or(usize::MAX),
        deadline: spec.deadline,
        ..PluginLimits::default()
    }
}

/// Split `batch` into the rows at `rows` (all rows if empty) and the rest.
fn split_rows(batch: &RecordBatch, rows: &[u32]) -> Result<(RecordBatch, RecordBatch), String> {
    if rows.is_empty() {
        return Ok((batch.clone(), batch.slice(0, 0)));
    }
    let mut rejected = vec![false; batch.num_rows()];
    for &row in rows {
        *rejected.get_mut(row as usize).ok_or_else(|| {
            format!(
                "plugin rejected row {row} of a {}-row batch",
                batch.num_rows()
            )
        })? = true;
    }
    let keep = BooleanArray::from(rejected.iter().map(|r| !r).collect::<Vec<_>>());
    let indices = UInt32Array::from(rows.to_vec());
    let bad = take_record_batch(batch, &indices).map_err(|e| e.to_string())?;
    let good = filter_record_batch(batch, &keep).map_err(|e| e.to_string())?;
    Ok((bad, good))
}
