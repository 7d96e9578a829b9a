//! The watermark: per partition, the maximum event time seen minus the
//! bounded out-of-orderness; overall, the minimum across partitions that
//! have had data within the idle timeout. A partition is named by its
//! topic and number: two topics' partition 0 are two partitions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// An input partition: its topic (empty for a source without topics) and
/// its number.
pub type PartitionId = (String, i64);

/// Tracks event time per partition and derives the watermark.
#[derive(Debug)]
pub struct WatermarkTracker {
    out_of_orderness: i64,
    idle_timeout: Duration,
    partitions: HashMap<PartitionId, PartitionTime>,
    watermark: i64,
}

/// A tracker's event-time progress, as a checkpoint keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatermarkState {
    /// The watermark, ms.
    pub watermark: i64,
    /// Each partition's maximum event time, ms.
    pub partitions: Vec<(PartitionId, i64)>,
}

#[derive(Debug)]
struct PartitionTime {
    max_event_time: i64,
    last_data: Instant,
}

impl WatermarkTracker {
    /// A tracker with no data yet: the watermark is `i64::MIN`.
    pub fn new(out_of_orderness_ms: i64, idle_timeout: Duration) -> Self {
        WatermarkTracker {
            out_of_orderness: out_of_orderness_ms,
            idle_timeout,
            partitions: HashMap::new(),
            watermark: i64::MIN,
        }
    }

    /// The current watermark, ms; rows with event time below it are late.
    pub fn current(&self) -> i64 {
        self.watermark
    }

    /// Expect data from `partition`: until it has some, or has been silent
    /// for the idle timeout since `now`, it holds the watermark back. A
    /// source that knows its partitions (Kafka) announces them at start, so
    /// a partition read late cannot find its rows already behind the
    /// watermark.
    pub fn expect(&mut self, partition: PartitionId, now: Instant) {
        self.partitions.entry(partition).or_insert(PartitionTime {
            max_event_time: i64::MIN,
            last_data: now,
        });
    }

    /// Record that `partition` had data up to `max_event_time` at `now`.
    pub fn observe(&mut self, partition: PartitionId, max_event_time: i64, now: Instant) {
        let entry = self.partitions.entry(partition).or_insert(PartitionTime {
            max_event_time,
            last_data: now,
        });
        entry.max_event_time = entry.max_event_time.max(max_event_time);
        entry.last_data = now;
    }

    /// Recompute the watermark at `now`: it never goes back. When every
    /// partition is idle it holds.
    pub fn advance(&mut self, now: Instant) -> i64 {
        let active = self
            .partitions
            .values()
            .filter(|p| now.duration_since(p.last_data) < self.idle_timeout)
            .map(|p| p.max_event_time.saturating_sub(self.out_of_orderness))
            .min();
        if let Some(candidate) = active {
            self.watermark = self.watermark.max(candidate);
        }
        self.watermark
    }

    /// The watermark and each partition's maximum event time.
    pub fn state(&self) -> WatermarkState {
        let mut partitions: Vec<(PartitionId, i64)> = self
            .partitions
            .iter()
            .map(|(id, p)| (id.clone(), p.max_event_time))
            .collect();
        partitions.sort_unstable();
        WatermarkState {
            watermark: self.watermark,
            partitions,
        }
    }

    /// Go back to `state`; every partition counts as having had data at
    /// `now`, so none is idle right after a restore.
    pub fn restore(&mut self, state: &WatermarkState, now: Instant) {
        self.watermark = state.watermark;
        self.partitions = state
            .partitions
            .iter()
            .map(|(id, max_event_time)| {
                let time = PartitionTime {
                    max_event_time: *max_event_time,
                    last_data: now,
                };
                (id.clone(), time)
            })
            .collect();
    }

    /// The input has ended: every window may close.
    pub fn end_of_input(&mut self) -> i64 {
        self.watermark = i64::MAX;
        self.watermark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(partition: i64) -> PartitionId {
        ("t".to_owned(), partition)
    }

    #[test]
    fn two_topics_partition_zero_are_two_partitions_and_restore_keeps_both() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(0, Duration::from_secs(10));
        tracker.observe(("a".to_owned(), 0), 500, start);
        tracker.observe(("b".to_owned(), 0), 300, start);
        assert_eq!(tracker.advance(start), 300);
        let state = tracker.state();
        assert_eq!(state.partitions.len(), 2);
        let mut restored = WatermarkTracker::new(0, Duration::from_secs(10));
        restored.restore(&state, start);
        restored.observe(("a".to_owned(), 0), 900, start);
        // b's partition 0 still holds the watermark back after the restore.
        assert_eq!(restored.advance(start), 300);
    }

    #[test]
    fn an_expected_partition_without_data_holds_the_watermark_until_idle() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(0, Duration::from_secs(10));
        tracker.expect(p(0), start);
        tracker.expect(p(1), start);
        tracker.observe(p(0), 500, start);
        assert_eq!(tracker.advance(start), i64::MIN);
        tracker.observe(p(1), 300, start);
        assert_eq!(tracker.advance(start), 300);
        let later = start + Duration::from_secs(11);
        tracker.expect(p(2), start);
        tracker.observe(p(0), 900, later);
        // 1 and 2 have been silent for 11 s: only 0 counts.
        assert_eq!(tracker.advance(later), 900);
    }

    #[test]
    fn the_slowest_active_partition_holds_the_watermark_and_idle_ones_do_not() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(5, Duration::from_secs(10));
        tracker.observe(p(0), 100, start);
        tracker.observe(p(1), 40, start);
        assert_eq!(tracker.advance(start), 35);
        tracker.observe(p(0), 200, start + Duration::from_secs(11));
        // Partition 1 has been silent for 11 s: excluded.
        assert_eq!(tracker.advance(start + Duration::from_secs(11)), 195);
        // Out-of-order data never moves the watermark back.
        tracker.observe(p(0), 150, start + Duration::from_secs(12));
        assert_eq!(tracker.advance(start + Duration::from_secs(12)), 195);
    }
}
