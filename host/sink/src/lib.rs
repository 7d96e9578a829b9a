//! sluice-sink
