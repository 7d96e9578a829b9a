//! Keep at most `limit` rows of each batch.

use sluice_sdk::{Config, RecordBatch, Result, transform};

/// Keep the first `limit` rows (default 10).
#[transform]
pub fn head(batch: RecordBatch, config: &Config) -> Result<RecordBatch> {
    let limit: usize = config.parse("limit")?.unwrap_or(10);
    Ok(batch.slice(0, batch.num_rows().min(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    #[test]
    fn keeps_the_first_rows() {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..20));
        let batch = RecordBatch::try_from_iter([("id", ids)]).unwrap();
        let out = head(batch, &Config::new([("limit", "3")])).unwrap();
        assert_eq!(out.num_rows(), 3);
    }
}
