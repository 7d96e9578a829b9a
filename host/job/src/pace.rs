//! A job's rate limit (a tenant's `max_records_per_second`): after each
//! batch, the job waits until its source rows per second since it started
//! are back at the limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest single wait, so that a stop is noticed.
const MAX_NAP: Duration = Duration::from_millis(50);

/// Keeps a job's source rows at or under a rate.
#[derive(Debug)]
pub(crate) struct Pace {
    rows_per_second: u64,
    since: Instant,
    rows: u64,
}

impl Pace {
    /// At most `rows_per_second` (at least 1), counted from now.
    pub(crate) fn new(rows_per_second: u64) -> Self {
        Pace {
            rows_per_second: rows_per_second.max(1),
            since: Instant::now(),
            rows: 0,
        }
    }

    /// `rows` more were read: wait until they are within the rate, or
    /// `stop` is set.
    pub(crate) fn take(&mut self, rows: u64, stop: &AtomicBool) {
        self.rows += rows;
        let due = Duration::from_secs_f64(self.rows as f64 / self.rows_per_second as f64);
        while let Some(wait) = due.checked_sub(self.since.elapsed()) {
            if wait.is_zero() || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(wait.min(MAX_NAP));
        }
    }
}
