//! The stages before anything that keeps state: decoding and the
//! stateless transforms. Their result for a batch depends on that batch
//! alone, so a job with `parallelism` N runs N copies of them on threads
//! of their own, hands batches out in turn and takes the results back in
//! the order the batches were cut: what comes after (stateful operators,
//! sinks, checkpoints) sees exactly what one copy would have given.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use sluice_format::Poison;
use sluice_metrics::JobMetrics;
use sluice_operator::{Collector, Operator};
use tracing::Span;

use crate::JobError;
use crate::decode::DecodeStage;

/// Decoding and the stateless transforms, as one task runs them.
#[derive(Debug)]
pub(crate) struct StatelessStages {
    pub(crate) decode: Option<DecodeStage>,
    pub(crate) operators: Vec<Box<dyn Operator>>,
    pub(crate) metrics: JobMetrics,
}

/// A batch through the stateless stages.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The batch as the source gave it (dead letters are made from it).
    pub(crate) source_rows: RecordBatch,
    /// Source rows that could not be decoded.
    pub(crate) poison: Vec<Poison>,
    /// What the operators routed or rejected.
    pub(crate) out: Collector,
    /// The rows for the stages after these; `None` if an operator sent
    /// nothing on.
    pub(crate) rows: Option<RecordBatch>,
    /// Time the stages took.
    pub(crate) took: Duration,
    /// When the batch was cut.
    pub(crate) cut: Instant,
    /// The batch's trace span, which its later stages run in too.
    pub(crate) span: Span,
}

impl StatelessStages {
    /// Decode `source_rows`, a batch cut at `cut`, and pass them through
    /// the operators, in the batch's trace `span`.
    pub(crate) fn run(
        &mut self,
        source_rows: RecordBatch,
        cut: Instant,
        span: Span,
    ) -> Result<Staged, JobError> {
        let entered = span.enter();
        let started = Instant::now();
        let (batch, poison) = match self.decode.as_mut() {
            Some(stage) => {
                let decoded = stage.decode(&source_rows)?;
                self.metrics.rows(
                    "decode",
                    source_rows.num_rows() as u64,
                    decoded.rows.num_rows() as u64,
                );
                (decoded.rows, decoded.poison)
            }
            None => (source_rows.clone(), Vec::new()),
        };
        let mut out = Collector::default();
        let rows = through(&mut self.operators, Some(batch), &mut out, &self.metrics)?;
        let took = started.elapsed();
        drop(entered);
        Ok(Staged {
            source_rows,
            poison,
            out,
            rows,
            took,
            cut,
            span,
        })
    }
}

/// Pass `rows` through `operators` in order, until one sends nothing on,
/// counting each one's rows and timing its call in `metrics`. Each call
/// is a trace span, inside the batch's.
pub(crate) fn through(
    operators: &mut [Box<dyn Operator>],
    mut rows: Option<RecordBatch>,
    out: &mut Collector,
    metrics: &JobMetrics,
) -> Result<Option<RecordBatch>, JobError> {
    for operator in operators {
        let Some(batch) = rows.take() else { break };
        let rows_in = batch.num_rows() as u64;
        let call = tracing::info_span!(
            target: crate::TRACE_TARGET,
            "operator",
            operator = operator.name(),
            plugin.digest = operator.plugin_digest(),
            // As i64: OpenTelemetry's integers are signed.
            rows_in = rows_in as i64,
            rows_out = tracing::field::Empty,
        )
        .entered();
        let started = Instant::now();
        rows = operator.process_batch(batch, out)?;
        let took = started.elapsed();
        let rows_out = rows.as_ref().map_or(0, |b| b.num_rows() as u64);
        call.record("rows_out", rows_out as i64);
        drop(call);
        metrics.rows(operator.name(), rows_in, rows_out);
        metrics.plugin_call(
            operator.name(),
            operator.plugin_digest(),
            took,
            operator.memory_bytes(),
        );
    }
    Ok(rows)
}

/// Let every one of `operators` release what it holds; a failure is
/// logged, and the others are closed all the same.
pub(crate) fn close_all<'a>(operators: impl IntoIterator<Item = &'a mut Box<dyn Operator>>) {
    for operator in operators {
        if let Err(error) = operator.close() {
            tracing::warn!(operator = operator.name(), "closing: {error}");
        }
    }
}

/// What a task is given to do.
#[derive(Debug)]
enum Work {
    /// Run a batch, cut at this instant, through the stages in its span.
    Batch(RecordBatch, Instant, Span),
    /// Put this operator in place of the one at this index, keeping the
    /// old one until told to keep or roll back.
    Swap(usize, Box<dyn Operator>),
    /// Put the old operator back.
    RollBack,
    /// Let the old operator go.
    Keep,
}

/// One task: a thread with its own copy of the stateless stages.
#[derive(Debug)]
struct Task {
    batches: SyncSender<Work>,
    results: Receiver<Result<Staged, JobError>>,
    thread: Option<JoinHandle<()>>,
}

/// The tasks of a job, each with its own stages; batches go to them in
/// turn, one each at most, and come back in the order they went.
#[derive(Debug)]
pub(crate) struct Tasks {
    tasks: Vec<Task>,
    /// The task the next batch goes to.
    next: usize,
    /// Tasks holding a batch, oldest first.
    busy: VecDeque<usize>,
}

impl Tasks {
    /// Start one task per copy of the stages.
    pub(crate) fn start(job: &str, copies: Vec<StatelessStages>) -> Result<Self, JobError> {
        let tasks = copies
            .into_iter()
            .enumerate()
            .map(|(index, mut stages)| {
                let (batches, inbox) = sync_channel::<Work>(1);
                let (outbox, results) = sync_channel(1);
                let thread = std::thread::Builder::new()
                    .name(format!("sluice-task-{index}"))
                    .spawn(move || {
                        let mut replaced: Option<(usize, Box<dyn Operator>)> = None;
                        for work in inbox {
                            match work {
                                Work::Batch(batch, cut, span) => {
                                    if outbox.send(stages.run(batch, cut, span)).is_err() {
                                        break;
                                    }
                                }
                                Work::Swap(at, operator) => {
                                    let old =
                                        std::mem::replace(&mut stages.operators[at], operator);
                                    replaced = Some((at, old));
                                }
                                Work::RollBack => {
                                    if let Some((at, old)) = replaced.take() {
                                        let new = std::mem::replace(&mut stages.operators[at], old);
                                        close_all([new].iter_mut());
                                    }
                                }
                                Work::Keep => {
                                    close_all(replaced.take().map(|(_, old)| old).iter_mut());
                                }
                            }
                        }
                        close_all(&mut stages.operators);
                    })
                    .map_err(|e| {
                        JobError::Setup(format!("job `{job}`: starting task {index}: {e}"))
                    })?;
                Ok(Task {
                    batches,
                    results,
                    thread: Some(thread),
                })
            })
            .collect::<Result<Vec<_>, JobError>>()?;
        Ok(Tasks {
            tasks,
            next: 0,
            busy: VecDeque::new(),
        })
    }

    /// Whether a task is free for another batch.
    pub(crate) fn has_room(&self) -> bool {
        self.busy.len() < self.tasks.len()
    }

    /// Whether batches are out with the tasks.
    pub(crate) fn is_busy(&self) -> bool {
        !self.busy.is_empty()
    }

    /// Hand `batch`, cut at `cut` and traced in `span`, to the next task;
    /// there must be room.
    pub(crate) fn send(
        &mut self,
        batch: RecordBatch,
        cut: Instant,
        span: Span,
    ) -> Result<(), JobError> {
        debug_assert!(self.has_room());
        let index = self.next;
        self.tasks[index]
            .batches
            .send(Work::Batch(batch, cut, span))
            .map_err(|_| task_lost(index))?;
        self.busy.push_back(index);
        self.next = (index + 1) % self.tasks.len();
        Ok(())
    }

    /// The result of the oldest batch out, if it is ready (`wait`: once it
    /// is); `None` when no batch is out or, without `wait`, it is not done.
    pub(crate) fn oldest(&mut self, wait: bool) -> Option<Result<Staged, JobError>> {
        let &index = self.busy.front()?;
        let results = &self.tasks[index].results;
        let result = if wait {
            results.recv().map_err(|_| task_lost(index))
        } else {
            match results.try_recv() {
                Ok(result) => Ok(result),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => Err(task_lost(index)),
            }
        };
        self.busy.pop_front();
        Some(result.and_then(|staged| staged))
    }

    /// The result of the oldest batch out, once it is ready, waiting up to
    /// `timeout`; `None` when no batch is out or it is not done by then.
    pub(crate) fn oldest_within(&mut self, timeout: Duration) -> Option<Result<Staged, JobError>> {
        let &index = self.busy.front()?;
        let result = match self.tasks[index].results.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => Err(task_lost(index)),
        };
        self.busy.pop_front();
        Some(result)
    }

    /// Wait for every batch out and drop the results (after a failure).
    pub(crate) fn discard(&mut self) {
        while self.oldest(true).is_some() {}
    }

    /// How many tasks there are.
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Put one of `copies` in each task in place of its operator at
    /// `index`; no batch may be out. Each task keeps its old operator
    /// until [`Tasks::keep`] or [`Tasks::roll_back`].
    pub(crate) fn swap(
        &mut self,
        index: usize,
        copies: Vec<Box<dyn Operator>>,
    ) -> Result<(), JobError> {
        debug_assert!(!self.is_busy() && copies.len() == self.tasks.len());
        for (task, (number, copy)) in self.tasks.iter().zip(copies.into_iter().enumerate()) {
            task.batches
                .send(Work::Swap(index, copy))
                .map_err(|_| task_lost(number))?;
        }
        Ok(())
    }

    /// Every task puts its old operator back.
    pub(crate) fn roll_back(&mut self) {
        self.tell_all(|| Work::RollBack);
    }

    /// Every task lets its old operator go.
    pub(crate) fn keep(&mut self) {
        self.tell_all(|| Work::Keep);
    }

    fn tell_all(&mut self, work: impl Fn() -> Work) {
        for task in &self.tasks {
            // A task that is gone has nothing to put back or let go.
            let _ = task.batches.send(work());
        }
    }
}

impl Drop for Tasks {
    /// Close every task's inbox; each closes its operators and ends.
    fn drop(&mut self) {
        self.discard();
        let threads: Vec<_> = self
            .tasks
            .drain(..)
            .filter_map(|task| {
                drop(task.batches);
                task.thread
            })
            .collect();
        for thread in threads {
            if thread.join().is_err() {
                tracing::warn!("a task panicked while closing");
            }
        }
    }
}

/// The error of a task whose thread is gone (it panicked).
fn task_lost(index: usize) -> JobError {
    JobError::Batch(format!("task {index} ended unexpectedly (it panicked)"))
}
