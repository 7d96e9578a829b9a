//! A job's progress on a terminal: one live line with its state, rate,
//! rows, lag, watermark and last checkpoint, and a bar with an ETA when
//! the job's end is known ahead. Log lines go through the bar, so they do
//! not tear it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_config::{Job, SourceSpec};
use sluice_job::{JobError, JobHandle, JobState, JobStatus, RunStats};
use tracing_subscriber::fmt::MakeWriter;

/// How often the line is redrawn from the job's status.
const POLL: Duration = Duration::from_millis(200);

/// The line of a job whose end is not known ahead. The message is cut
/// at the terminal's width: a line that wrapped would be cleared from a
/// line too high when the console sink has printed below it.
const LIVE: &str = "{spinner} {wide_msg}";

/// The line of a job whose end is known: a bar and its ETA first, so it
/// keeps its place as the numbers after it change width.
const BAR: &str = "{spinner} [{bar:30}] {percent:>3}% eta {eta:<4} {wide_msg}";

/// [`BAR`] once the job has ended: how long it took instead of the ETA.
const DONE_BAR: &str = "{spinner} [{bar:30}] {percent:>3}% took {elapsed:<4} {wide_msg}";

/// How far into its source a job can be told to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extent {
    /// No end known ahead (a stream, a file, a directory): a live line.
    Open,
    /// A Kafka job with `available_now`: it ends at the partitions' ends
    /// as of its start, so what it has read plus its lag is the total.
    KafkaBacklog,
    /// A generator of this many rows in all.
    Rows(u64),
}

impl Extent {
    /// How far `job` can be told to be.
    fn of(job: &Job) -> Extent {
        match &job.source {
            SourceSpec::Kafka(_) if job.trigger.available_now => Extent::KafkaBacklog,
            SourceSpec::Datagen(datagen) => datagen.rows.map_or(Extent::Open, Extent::Rows),
            _ => Extent::Open,
        }
    }

    /// The bar's position and length, once the job's total is known.
    fn bar(self, status: &JobStatus) -> Option<(u64, u64)> {
        match self {
            Extent::Open => None,
            // No lag yet: the ends of the partitions are not known.
            Extent::KafkaBacklog if status.lag.is_empty() => None,
            Extent::KafkaBacklog => {
                let lag: u64 = status.lag.iter().map(|p| p.records.max(0) as u64).sum();
                Some((status.rows_in, status.rows_in + lag))
            }
            // The generator's position counts the rows made before a
            // restore too; `rows_in` only this run's.
            Extent::Rows(rows) => {
                let made = match status.positions.as_slice() {
                    [position] => u64::try_from(position.offset).unwrap_or(0),
                    _ => status.rows_in,
                };
                Some((made.min(rows), rows))
            }
        }
    }
}

/// The job's line: its name and state, then what is known of its rate,
/// rows, lag, watermark and last checkpoint.
fn line(name: &str, status: &JobStatus) -> String {
    let state = match &status.state {
        JobState::Starting => "starting",
        JobState::Running => "running",
        JobState::Stopping => "stopping",
        JobState::Finished => "finished",
        JobState::Failed(_) => "failed",
    };
    let mut fields = vec![format!("{name} {state}")];
    if let Some(batch) = &status.last_batch {
        let rate = HumanCount(batch.input_rows_per_second.round() as u64);
        fields.push(format!("{rate} rows/s"));
    }
    fields.push(format!(
        "in {} out {}",
        HumanCount(status.rows_in),
        HumanCount(status.rows_out)
    ));
    if !status.lag.is_empty() {
        let lag: i64 = status.lag.iter().map(|p| p.records).sum();
        fields.push(format!("lag {}", HumanCount(lag.max(0) as u64)));
    }
    if let Some(watermark) = status.watermark {
        fields.push(format!("watermark {}", iso_time(watermark)));
    }
    if let Some(epoch) = status.last_checkpoint {
        fields.push(format!("checkpoint {epoch}"));
    }
    fields.join(" · ")
}

/// `ms` since the Unix epoch as an RFC 3339 time (UTC, to the ms), or the
/// number itself outside years 1970 to 9999.
fn iso_time(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) if ms < 253_402_300_800_000 => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        _ => format!("{ms} ms"),
    }
}

/// Where log lines go: stderr, through the job's bar while one is drawn
/// (it is cleared for the line and drawn again below it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Logs {
    /// The bar being drawn, if any.
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Logs {
    /// Run `write`, which writes to the terminal, with the bar cleared.
    fn around_bar<R>(&self, write: impl FnOnce() -> R) -> R {
        let bar = self
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Draw log lines through `bar` from now on, or plainly again (`None`).
    fn draw_through(&self, bar: Option<ProgressBar>) {
        *self.bar.lock().unwrap_or_else(PoisonError::into_inner) = bar;
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = LogLine<'a>;

    fn make_writer(&'a self) -> LogLine<'a> {
        LogLine {
            logs: self,
            text: Vec::new(),
        }
    }
}

/// One log event, written to stderr in one go when it is complete.
#[derive(Debug)]
pub(crate) struct LogLine<'a> {
    /// Where it goes.
    logs: &'a Logs,
    /// The event so far.
    text: Vec<u8>,
}

impl Write for LogLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine<'_> {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            // Nowhere to report a failed write to stderr.
            let _ = self
                .logs
                .around_bar(|| std::io::stderr().lock().write_all(&self.text));
        }
    }
}

/// Wait for `handle`'s job to end, drawing its progress on stderr every
/// [`POLL`] meanwhile and leaving its last line. `stop` is the flag that
/// stops the job: a job stopped early is not shown as complete.
pub(crate) fn wait(
    job: &Job,
    handle: JobHandle,
    logs: &Logs,
    stop: &AtomicBool,
) -> Result<RunStats, JobError> {
    let extent = Extent::of(job);
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(style(LIVE));
    let handle = Arc::new(handle);
    draw(&bar, &job.name, extent, &handle.status());
    logs.draw_through(Some(bar.clone()));
    let poller = std::thread::Builder::new()
        .name("sluice-progress".into())
        .spawn({
            let (handle, bar, name) = (Arc::clone(&handle), bar.clone(), job.name.clone());
            move || poll(&handle, &bar, &name, extent)
        });
    // A poller that panicked has been reported; the job goes on.
    let last = poller.ok().and_then(|poller| poller.join().ok());
    // The poller's clone of the handle ended with it.
    let result = match Arc::try_unwrap(handle) {
        Ok(handle) => handle.wait(),
        Err(_) => unreachable!("only the poller shared the job's handle"),
    };
    if let Some(mut status) = last {
        // The sinks' last flush comes after the last status.
        if let Ok(stats) = &result {
            status.rows_in = stats.rows_in;
            status.rows_out = stats.rows_out;
        }
        let by_itself = status.state == JobState::Finished && !stop.load(Ordering::Relaxed);
        draw_final(&bar, &job.name, extent, status, by_itself);
    }
    logs.draw_through(None);
    result
}

/// Redraw `bar` from `handle`'s status until the job ends (its thread
/// too: one that panicked leaves its state as it was), and give its last
/// status.
fn poll(handle: &JobHandle, bar: &ProgressBar, name: &str, extent: Extent) -> JobStatus {
    loop {
        let status = handle.status();
        if matches!(status.state, JobState::Finished | JobState::Failed(_)) || handle.is_finished()
        {
            return status;
        }
        draw(bar, name, extent, &status);
        std::thread::sleep(POLL);
    }
}

/// Draw `status` on `bar`: a bar once the job's total is known, else a
/// live line.
fn draw(bar: &ProgressBar, name: &str, extent: Extent, status: &JobStatus) {
    bar.set_message(line(name, status));
    let bounds = extent.bar(status);
    if bar.length().is_some() != bounds.is_some() {
        bar.set_style(style(if bounds.is_some() { BAR } else { LIVE }));
    }
    match bounds {
        Some((position, length)) => {
            // The end is fixed: a lag older than the rows read since
            // makes the total look larger than it is, never smaller
            // (but for batches in flight, which `position` makes up for).
            let length = bar.length().map_or(length, |known| known.min(length));
            bar.set_length(length.max(position));
            bar.set_position(position);
        }
        None => bar.unset_length(),
    }
    bar.tick();
}

/// Leave `status` as the bar's last line. A job that ended `by_itself`
/// read all there was: its bar is full and it has no lag left (the last
/// lag seen may be older than its last batches).
fn draw_final(
    bar: &ProgressBar,
    name: &str,
    extent: Extent,
    mut status: JobStatus,
    by_itself: bool,
) {
    if by_itself {
        for partition in &mut status.lag {
            partition.records = 0;
        }
        if let Some((position, _)) = extent.bar(&status) {
            bar.set_length(position);
            bar.set_position(position);
        }
    }
    if bar.length().is_some() {
        bar.set_style(style(DONE_BAR));
    }
    bar.abandon_with_message(line(name, &status));
}

/// The style of `template`.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use sluice_job::{BatchProgress, PartitionLag};

    use super::*;

    /// A status of `rows_in` rows read, nothing else known.
    fn status(rows_in: u64) -> JobStatus {
        JobStatus {
            state: JobState::Running,
            rows_in,
            rows_out: rows_in / 2,
            ..JobStatus::default()
        }
    }

    /// Lag of `records` on partition `partition` of topic `t`.
    fn lag(partition: i32, records: i64) -> PartitionLag {
        PartitionLag {
            topic: "t".into(),
            partition,
            records,
        }
    }

    #[test]
    fn the_line_shows_what_is_known() {
        let status = JobStatus {
            last_batch: Some(BatchProgress {
                rows: 2000,
                input_rows_per_second: 12_345.6,
                processed_rows_per_second: 50_000.0,
                duration_ms: 40.0,
            }),
            lag: vec![lag(0, 1_000), lag(1, 234)],
            watermark: Some(1_700_000_000_123),
            last_checkpoint: Some(7),
            ..status(1_234_567)
        };
        assert_eq!(
            line("clicks", &status),
            "clicks running · 12,346 rows/s · in 1,234,567 out 617,283 · lag 1,234 \
             · watermark 2023-11-14T22:13:20.123Z · checkpoint 7"
        );
    }

    #[test]
    fn the_line_leaves_out_what_is_not_known() {
        assert_eq!(line("clicks", &status(0)), "clicks running · in 0 out 0");
        let failed = JobStatus {
            state: JobState::Failed("the broker went away".into()),
            ..status(10)
        };
        assert_eq!(line("clicks", &failed), "clicks failed · in 10 out 5");
    }

    #[test]
    fn a_watermark_out_of_calendar_range_is_shown_as_a_number() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(-5), "-5 ms");
        assert_eq!(iso_time(i64::MAX), format!("{} ms", i64::MAX));
    }

    #[test]
    fn a_bounded_kafka_job_ends_at_what_it_read_plus_its_lag() {
        let job = job(r#"[source]
            type = "kafka"
            options = { "kafka.bootstrap.servers" = "localhost:9092", subscribe = "t" }
            [trigger]
            available_now = true"#);
        let extent = Extent::of(&job);
        assert_eq!(extent, Extent::KafkaBacklog);
        assert_eq!(extent.bar(&status(500)), None, "no lag known yet");
        let status = JobStatus {
            lag: vec![lag(0, 300), lag(1, 200)],
            ..status(500)
        };
        assert_eq!(extent.bar(&status), Some((500, 1_000)));
    }

    #[test]
    fn a_kafka_stream_and_a_file_have_no_bar() {
        let stream = job(r#"[source]
            type = "kafka"
            options = { "kafka.bootstrap.servers" = "localhost:9092", subscribe = "t" }"#);
        let file = job(r#"[source]
            type = "file"
            path = "in.jsonl"
            format = "jsonl""#);
        let lagging = JobStatus {
            lag: vec![lag(0, 300)],
            ..status(500)
        };
        for job in [stream, file] {
            assert_eq!(Extent::of(&job), Extent::Open);
            assert_eq!(Extent::of(&job).bar(&lagging), None);
        }
    }

    #[test]
    fn a_generator_of_so_many_rows_ends_at_them() {
        let job = job(r#"[source]
            type = "datagen"
            rows = 6000
            columns = [{ name = "id", generator = "sequence" }]"#);
        assert_eq!(Extent::of(&job).bar(&status(2_000)), Some((2_000, 6_000)));
    }

    /// The job of `source`, with a console sink.
    fn job(source: &str) -> Job {
        let text = format!("{source}\n[sink]\ntype = \"console\"\n");
        Job::parse(std::path::Path::new("job.toml"), &text).unwrap()
    }
}
