//! Aggregate plugins: vectorised accumulators over states the host owns.

use arrow_array::RecordBatch;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Config, Error, Result};

/// An aggregate function over windows and keys, like Flink's
/// `AggregateFunction`, but called once per batch.
///
/// The host groups rows by (window, key) and keeps one [`Aggregate::State`]
/// per group, stored, checkpointed and handed back as bytes; the SDK
/// (de)serialises it. Implement this trait and call [`export_aggregate!`].
///
/// ```rust,ignore
/// use sluice_sdk::{Aggregate, Config, RecordBatch, Result};
///
/// struct Count;
///
/// impl Aggregate for Count {
///     type State = u64;
///     fn init(_: &Config) -> Result<Self> { Ok(Count) }
///     fn update(&self, states: &mut [u64], _batch: &RecordBatch, groups: &[u32]) -> Result<()> {
///         for &g in groups { states[g as usize] += 1; }
///         Ok(())
///     }
///     fn merge(&self, state: &mut u64, other: u64) { *state += other; }
///     fn finish(&self, states: &[u64]) -> Result<Finished> { /* one row per state */ }
/// }
/// sluice_sdk::export_aggregate!(Count);
/// ```
pub trait Aggregate: Sized + 'static {
    /// The accumulator of one group; `Default` is the empty accumulator.
    type State: Default + Serialize + DeserializeOwned;

    /// Build the function from the job file's configuration.
    fn init(config: &Config) -> Result<Self>;

    /// Fold a batch into the states: row `i` belongs to `states[groups[i]]`.
    fn update(&self, states: &mut [Self::State], batch: &RecordBatch, groups: &[u32])
    -> Result<()>;

    /// Fold `other` into `state` (session windows that join, partial
    /// results that combine).
    fn merge(&self, state: &mut Self::State, other: Self::State);

    /// The output rows of finished groups.
    fn finish(&self, states: &[Self::State]) -> Result<Finished>;
}

/// What [`Aggregate::finish`] returns: output rows, and which state each
/// came from.
#[derive(Debug, Clone)]
pub struct Finished {
    batch: RecordBatch,
    groups: Vec<u32>,
}

impl Finished {
    /// Rows where row `i` belongs to `states[groups[i]]`: a state may give
    /// any number of rows, zero included.
    pub fn with_groups(batch: RecordBatch, groups: Vec<u32>) -> Result<Self> {
        if groups.len() != batch.num_rows() {
            return Err(Error::fatal(format!(
                "finish returned {} rows but {} group ids",
                batch.num_rows(),
                groups.len()
            )));
        }
        Ok(Finished { batch, groups })
    }

    /// The output rows.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The state of each row; empty when there is one row per state.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// Both parts.
    pub fn into_parts(self) -> (RecordBatch, Vec<u32>) {
        (self.batch, self.groups)
    }
}

/// One row per state, in order.
impl From<RecordBatch> for Finished {
    fn from(batch: RecordBatch) -> Self {
        Finished {
            batch,
            groups: Vec::new(),
        }
    }
}

/// Runs an [`Aggregate`] on states as bytes, as the host sees it. The Wasm
/// exports use it, and so can a native host (benchmarks comparing the same
/// logic compiled natively).
#[derive(Debug)]
pub struct StateCodec<A> {
    aggregate: A,
}

impl<A: Aggregate> StateCodec<A> {
    /// Initialise the aggregate from its configuration.
    pub fn new(config: &Config) -> Result<Self> {
        Ok(StateCodec {
            aggregate: A::init(config)?,
        })
    }

    /// [`Aggregate::update`] on encoded states.
    pub fn update(
        &self,
        states: Vec<Vec<u8>>,
        batch: &RecordBatch,
        groups: &[u32],
    ) -> Result<Vec<Vec<u8>>> {
        let count = states.len();
        if let Some(bad) = groups.iter().find(|&&g| g as usize >= count) {
            return Err(Error::fatal(format!(
                "host sent group id {bad} for {count} states"
            )));
        }
        if groups.len() != batch.num_rows() {
            return Err(Error::fatal(format!(
                "host sent {} group ids for {} rows",
                groups.len(),
                batch.num_rows()
            )));
        }
        let mut decoded = decode_all::<A::State>(&states)?;
        self.aggregate.update(&mut decoded, batch, groups)?;
        encode_all(&decoded)
    }

    /// [`Aggregate::merge`] on encoded states, pairwise.
    pub fn merge(&self, left: Vec<Vec<u8>>, right: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        if left.len() != right.len() {
            return Err(Error::fatal(format!(
                "host sent {} and {} states to merge",
                left.len(),
                right.len()
            )));
        }
        let merged = decode_all::<A::State>(&left)?
            .into_iter()
            .zip(decode_all::<A::State>(&right)?)
            .map(|(mut state, other)| {
                self.aggregate.merge(&mut state, other);
                state
            })
            .collect::<Vec<_>>();
        encode_all(&merged)
    }

    /// [`Aggregate::finish`] on encoded states.
    pub fn finish(&self, states: Vec<Vec<u8>>) -> Result<Finished> {
        let decoded = decode_all::<A::State>(&states)?;
        self.aggregate.finish(&decoded)
    }
}

fn decode_all<S: Default + DeserializeOwned>(states: &[Vec<u8>]) -> Result<Vec<S>> {
    states
        .iter()
        .map(|bytes| {
            if bytes.is_empty() {
                Ok(S::default())
            } else {
                postcard::from_bytes(bytes)
                    .map_err(|e| Error::fatal(format!("state cannot be decoded: {e}")))
            }
        })
        .collect()
}

fn encode_all<S: Serialize>(states: &[S]) -> Result<Vec<Vec<u8>>> {
    states
        .iter()
        .map(|state| {
            postcard::to_allocvec(state)
                .map_err(|e| Error::fatal(format!("state cannot be encoded: {e}")))
        })
        .collect()
}
