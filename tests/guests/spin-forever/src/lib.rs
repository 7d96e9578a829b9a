//! Test guest: never returns from `process`, so the host's CPU deadline
//! must stop it.

use sluice_sdk::{RecordBatch, Result, transform};

/// Loops forever.
#[transform]
pub fn spin(batch: RecordBatch) -> Result<RecordBatch> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(batch.num_rows() as u64));
        if n == u64::MAX {
            return Ok(batch);
        }
    }
}
