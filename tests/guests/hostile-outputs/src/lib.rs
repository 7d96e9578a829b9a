//! Test guest: answers every batch the way a hostile plugin would, chosen
//! by `mode`:
//! - `duplicate-rejects`: rejects row 0 of the batch a million times over;
//! - `rejects-past-the-end`: rejects a row the batch does not have;
//! - `rows-without-columns`: returns a batch of no columns and 4 billion rows;
//! - `counter-flood`: adds to 100,000 counters of different names;
//! - `log-flood`: logs 100,000 records of 10 KiB;
//! - `sleep`: sleeps for a million seconds, then passes the batch on;
//! - `selects-past-the-end`: selects a row the batch does not have;
//! - `names-a-missing-column`: names an input column the batch does not have;
//! - `made-of-another-length`: makes a column one row longer than the output.

use std::sync::Arc;

use sluice_sdk::arrow_array::{Int64Array, RecordBatchOptions};
use sluice_sdk::arrow_schema::Schema;
use sluice_sdk::{Config, Error, Level, Output, OutputColumn, RecordBatch, Result, transform};

/// Answers `batch` as the configured `mode` says.
#[transform]
pub fn hostile(batch: RecordBatch, config: &Config) -> Result<Output> {
    let rows = u32::try_from(batch.num_rows()).unwrap_or(u32::MAX);
    Ok(match config.require("mode")? {
        "selects-past-the-end" => Output::columns([OutputColumn::Others])?.select(vec![0, rows]),
        "names-a-missing-column" => Output::columns([OutputColumn::input("no-such-column")])?,
        "made-of-another-length" => Output::columns([
            OutputColumn::Others,
            OutputColumn::made(
                "longer",
                Arc::new(Int64Array::from(vec![0; rows as usize + 1])),
            ),
        ])?,
        _ => Output::new(hostile_batch(batch, config)?),
    })
}

/// The modes that answer with a batch, or an error.
fn hostile_batch(batch: RecordBatch, config: &Config) -> Result<RecordBatch> {
    match config.require("mode")? {
        "duplicate-rejects" => Err(Error::invalid_rows("every row is bad", vec![0; 1_000_000])),
        "rejects-past-the-end" => {
            let past = u32::try_from(batch.num_rows()).unwrap_or(u32::MAX);
            Err(Error::invalid_rows("a row that is not there", vec![past]))
        }
        "rows-without-columns" => {
            let options = RecordBatchOptions::new().with_row_count(Some(4_000_000_000));
            Ok(RecordBatch::try_new_with_options(
                Arc::new(Schema::empty()),
                vec![],
                &options,
            )?)
        }
        "counter-flood" => {
            for i in 0..100_000 {
                sluice_sdk::counter_add(&format!("counter-{i}"), 1);
            }
            Ok(batch)
        }
        "log-flood" => {
            let message = "x".repeat(10 * 1024);
            for _ in 0..100_000 {
                sluice_sdk::log(Level::Warn, &message, &[]);
            }
            Ok(batch)
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(1_000_000));
            Ok(batch)
        }
        other => Err(Error::fatal(format!("unknown mode `{other}`"))),
    }
}
