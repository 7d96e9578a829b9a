//! Swapping a running job's transform plugin for another version. The new
//! version is loaded (compiled and instantiated) on the caller's thread,
//! off the job's; the job switches at its next batch boundary, carrying
//! the plugin's state across through `snapshot`/`restore`, and keeps the
//! old version until the new one has passed its first batch. If the new
//! version cannot restore the state, the swap is refused and the job goes
//! on with the old one; if it fails its first batch, the job goes back to
//! the old version and its last checkpoint, and replays from there.

use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use sluice_config::PluginSpec;
use sluice_operator::{Operator, TransformOperator};
use sluice_runtime::Runtime;

use crate::JobError;

/// A swap the job has made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// How long the job paused: from the boundary (every batch out taken
    /// back) to the new version in place.
    pub pause: Duration,
    /// The digest of the version replaced.
    pub from: String,
    /// The digest of the version now running.
    pub to: String,
}

/// A swap in a job's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapRecord {
    /// The transform swapped.
    pub transform: String,
    /// The digest of the version replaced.
    pub from: String,
    /// The digest of the new version.
    pub to: String,
    /// Why the job went back to the old version, if it did.
    pub rolled_back: Option<String>,
}

/// A swap on its way to the job.
#[derive(Debug)]
pub(crate) struct SwapRequest {
    /// The transform to swap, by name.
    pub(crate) transform: String,
    /// The new version, loaded: one copy per task that runs the transform
    /// (the job uses what it needs).
    pub(crate) copies: Vec<Box<dyn Operator>>,
    /// Where the outcome goes.
    pub(crate) reply: Sender<Result<Swapped, JobError>>,
}

/// What a handle needs to ask its job for swaps.
#[derive(Debug)]
pub(crate) struct Swapper {
    /// The job's end of the requests.
    pub(crate) requests: Sender<SwapRequest>,
    /// Loads new versions.
    pub(crate) runtime: Runtime,
    /// How many copies of a transform the job may need (its tasks).
    pub(crate) copies: usize,
}

impl Swapper {
    /// Load `spec` as the new version of `transform` and have the job
    /// switch to it at its next batch boundary; waits for the switch.
    pub(crate) fn swap(&self, transform: &str, spec: &PluginSpec) -> Result<Swapped, JobError> {
        let spec = PluginSpec {
            name: transform.to_owned(),
            ..spec.clone()
        };
        let copies = (0..self.copies.max(1))
            .map(|_| {
                Ok(Box::new(TransformOperator::load(&spec, &self.runtime)?) as Box<dyn Operator>)
            })
            .collect::<Result<Vec<_>, JobError>>()?;
        let (reply, outcome) = channel();
        let gone = || JobError::Swap {
            transform: transform.to_owned(),
            message: "the job is not running".into(),
        };
        self.requests
            .send(SwapRequest {
                transform: transform.to_owned(),
                copies,
                reply,
            })
            .map_err(|_| gone())?;
        outcome.recv().map_err(|_| gone())?
    }
}
