//! A gauge of the time since an instant, measured when it is scraped, so
//! an age keeps growing while nothing updates it (a stalled checkpoint, a
//! watermark that stopped).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Seconds from a moment (Unix milliseconds) to the scrape. Cloning
/// shares it.
#[derive(Debug, Clone)]
pub struct Age {
    since_millis: Arc<AtomicI64>,
}

impl Default for Age {
    fn default() -> Self {
        Age {
            since_millis: Arc::new(AtomicI64::new(now_millis())),
        }
    }
}

impl Age {
    /// Count from `millis` since the Unix epoch.
    pub fn set_millis(&self, millis: i64) {
        self.since_millis.store(millis, Ordering::Relaxed);
    }

    /// Count from now.
    pub fn set_now(&self) {
        self.set_millis(now_millis());
    }

    /// Seconds since the moment set.
    pub fn seconds(&self) -> f64 {
        (now_millis() - self.since_millis.load(Ordering::Relaxed)) as f64 / 1000.0
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl TypedMetric for Age {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for Age {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.seconds())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
