//! Resource limits of one plugin's instances.

use std::time::Duration;

/// The limits every store of a plugin gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Maximum linear memory of one instance, in bytes.
    pub memory_bytes: usize,
    /// Deadline of one call, in wall time (host calls included).
    pub deadline: Duration,
    /// Maximum number of pooled idle instances kept for reuse.
    pub max_idle_instances: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(5),
            max_idle_instances: 4,
        }
    }
}
