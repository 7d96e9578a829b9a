//! The windowed aggregate as an operator: the host's window state and
//! watermark around an aggregate plugin. Rows later than the allowed
//! lateness go to the job's late output; rows without an event time are
//! rejected, for the dead-letter output.

use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use sluice_config::{AggregateSpec, EmitConfig, WindowConfig};
use sluice_runtime::{AggregatePlugin, Runtime};
use sluice_window::{
    EmitMode, PartitionId, WindowError, WindowKind, WindowOperator, WindowOutput, WindowSpec,
};

use crate::transform::{limits_of, load_error};
use crate::{Collector, Operator, OperatorError, RejectKind, Rejected, Routed};

/// The job's windowed aggregation.
#[derive(Debug)]
pub struct WindowAggregate {
    name: String,
    digest: String,
    definition: String,
    operator: WindowOperator<AggregatePlugin>,
    late_output: String,
    /// The bound on future event times, for the dead-letter message.
    max_event_time_skew: Option<std::time::Duration>,
}

impl WindowAggregate {
    /// Check the windows `spec` declares and load its aggregate plugin.
    pub fn load(spec: &AggregateSpec, runtime: &Runtime) -> Result<Self, OperatorError> {
        let plugin = &spec.plugin;
        let spec_error = |message: String| OperatorError::WindowSpec {
            name: plugin.name.clone(),
            line: spec.window_line,
            message,
        };
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let kind = match spec.window {
            WindowConfig::Tumbling { size } => WindowKind::Tumbling { size: millis(size) },
            WindowConfig::Hopping { size, slide } => WindowKind::Hopping {
                size: millis(size),
                slide: millis(slide),
            },
            WindowConfig::Session { gap } => WindowKind::Session { gap: millis(gap) },
        };
        kind.validate().map_err(spec_error)?;
        let accumulator = AggregatePlugin::load(
            runtime,
            &plugin.name,
            &plugin.plugin,
            plugin.config.clone(),
            limits_of(plugin),
        )
        .map_err(load_error(plugin))?;
        let window = WindowSpec {
            kind,
            key_columns: spec.key.clone(),
            input_columns: spec.columns.clone(),
            event_time_column: spec.event_time.clone(),
            partition_column: spec.partition_column.clone(),
            out_of_orderness_ms: millis(spec.watermark_delay),
            idle_timeout: spec.idle_timeout,
            allowed_lateness_ms: millis(spec.allowed_lateness),
            max_event_time_skew_ms: spec.max_event_time_skew.map(millis),
            emit: match spec.emit {
                EmitConfig::Final => EmitMode::Final,
                EmitConfig::Updates => EmitMode::Updates,
            },
            state_quota: usize::try_from(spec.state_quota).unwrap_or(usize::MAX),
        };
        let definition = format!(
            "{kind:?} windows keyed by [{}] on event time `{}`",
            spec.key.join(", "),
            spec.event_time
        );
        Ok(WindowAggregate {
            name: plugin.name.clone(),
            digest: accumulator.digest().to_owned(),
            definition,
            operator: WindowOperator::new(window, accumulator),
            late_output: spec.late_output.clone(),
            max_event_time_skew: spec.max_event_time_skew,
        })
    }

    /// Announce the input's partitions before the first batch, so each
    /// holds the watermark back until it has data or goes idle.
    pub fn expect_partitions(&mut self, partitions: Vec<PartitionId>) {
        self.operator.expect_partitions(partitions, Instant::now());
    }

    /// The output late rows go to.
    pub fn late_output(&self) -> &str {
        &self.late_output
    }

    /// Open (window, key) groups.
    pub fn open_groups(&self) -> usize {
        self.operator.state().groups()
    }

    /// The current watermark, ms.
    pub fn watermark(&self) -> i64 {
        self.operator.watermark()
    }

    fn window_error(&self) -> impl FnOnce(WindowError) -> OperatorError + '_ {
        |source| OperatorError::Window {
            name: self.name.clone(),
            source,
        }
    }
}

impl Operator for WindowAggregate {
    fn name(&self) -> &str {
        &self.name
    }

    fn process_batch(
        &mut self,
        batch: RecordBatch,
        out: &mut Collector,
    ) -> Result<Option<RecordBatch>, OperatorError> {
        let WindowOutput {
            results,
            late,
            invalid,
            out_of_range,
        } = self
            .operator
            .process(&batch, Instant::now())
            .map_err(|source| OperatorError::Window {
                name: self.name.clone(),
                source,
            })?;
        if let Some(late) = late {
            out.routed.push(Routed {
                operator: self.name.clone(),
                output: self.late_output.clone(),
                rows: late,
            });
        }
        if let Some(invalid) = invalid {
            out.rejected.push(Rejected {
                operator: self.name.clone(),
                kind: RejectKind::MissingEventTime,
                message: "the event-time column is null".into(),
                rows: invalid,
            });
        }
        if let Some(rows) = out_of_range {
            out.rejected.push(Rejected {
                operator: self.name.clone(),
                kind: RejectKind::InvalidEventTime,
                message: match self.max_event_time_skew {
                    Some(skew) => format!(
                        "the event time is more than max_event_time_skew ({skew:?}) past the wall clock, or so near the end of time that no window can hold it"
                    ),
                    None => "the event time is so near the end of time that no window can hold it"
                        .into(),
                },
                rows,
            });
        }
        Ok(results)
    }

    fn on_watermark(
        &mut self,
        watermark: i64,
        _out: &mut Collector,
    ) -> Result<Option<RecordBatch>, OperatorError> {
        if watermark != i64::MAX {
            return Ok(None);
        }
        let finished = self.operator.finish();
        finished.map_err(self.window_error())
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, OperatorError> {
        let state = self.operator.snapshot();
        state.map(Some).map_err(self.window_error())
    }

    fn restore(&mut self, state: Option<&[u8]>) -> Result<(), OperatorError> {
        let Some(state) = state else {
            self.operator.reset();
            return Ok(());
        };
        self.operator
            .restore(state, Instant::now())
            .map_err(|error| OperatorError::Restore {
                operator: self.name.clone(),
                reason: error.to_string(),
            })
    }

    fn state_definition(&self) -> String {
        self.definition.clone()
    }

    fn plugin_digest(&self) -> &str {
        &self.digest
    }

    fn state_bytes(&self) -> usize {
        self.operator.state().bytes()
    }

    fn watermark(&self) -> Option<i64> {
        Some(self.operator.watermark()).filter(|&w| w != i64::MIN)
    }
}
