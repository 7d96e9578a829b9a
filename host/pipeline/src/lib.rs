//! sluice-pipeline
