//! Test guest: allocates without bound in `process`, so the host's memory
//! limit must stop it.

use sluice_sdk::{RecordBatch, Result, transform};

/// Keeps allocating 1 MiB chunks and touching them.
#[transform]
pub fn hog(batch: RecordBatch) -> Result<RecordBatch> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        if std::hint::black_box(hoard.len()) == usize::MAX {
            return Ok(batch);
        }
    }
}
