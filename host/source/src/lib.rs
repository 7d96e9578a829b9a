//! sluice-source
