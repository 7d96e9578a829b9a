//! Nexmark query 0, pass-through: every bid, unchanged.
//!
//! `SELECT * FROM bid`. It measures what a plugin call costs with no work
//! in it: it reads no column, so none crosses into the sandbox or back.

use sluice_sdk::{Output, RecordBatch, Result, transform};

/// Every input column, unchanged.
#[transform(reads = [])]
pub fn q0(_batch: RecordBatch) -> Result<Output> {
    Ok(Output::unchanged())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::arrow_array::{Int64Array, StringArray};
    use sluice_sdk::arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn returns_every_row_unchanged() {
        let schema = Schema::new(vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("channel", DataType::Utf8, false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![1000, 1001, 1002])),
                Arc::new(StringArray::from(vec!["Google", "Apple", "channel-7"])),
            ],
        )
        .unwrap();
        assert_eq!(q0(batch.clone()).unwrap().resolve(&batch).unwrap(), batch);
    }
}
