//! Test guest: numbers the rows it has seen, across batches, in a column
//! `seen` (1, 2, 3, ...), and keeps the count through `snapshot` and
//! `restore`. With `trap_on_id = N`, an instance that was not restored
//! traps on the row whose `id` is N: after the host goes back to its last
//! checkpoint and restores the count, the row passes. For swaps: with
//! `label = L`, each row also gets a column `version` holding L; with
//! `fail = "true"` every batch traps; with `refuse_state = "true"` a
//! restored state is refused.

use std::sync::Arc;

use sluice_sdk::arrow_array::{
    Int64Array, RecordBatch, StringArray, cast::AsArray, types::Int64Type,
};
use sluice_sdk::arrow_schema::{DataType, Field, Schema};
use sluice_sdk::{Config, Error, Output, Result, Transform, export_transform};

/// The running count of rows.
#[derive(Debug)]
pub struct RowCounter {
    seen: i64,
    trap_on_id: Option<i64>,
    restored: bool,
    label: Option<String>,
    fail: bool,
    refuse_state: bool,
}

impl Transform for RowCounter {
    fn init(config: &Config) -> Result<Self> {
        Ok(RowCounter {
            seen: 0,
            trap_on_id: config.parse("trap_on_id")?,
            restored: false,
            label: config.get("label").map(str::to_owned),
            fail: config.parse("fail")?.unwrap_or(false),
            refuse_state: config.parse("refuse_state")?.unwrap_or(false),
        })
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Output> {
        if self.fail {
            panic!("row-counter: told to fail");
        }
        if let (Some(trap), false) = (self.trap_on_id, self.restored)
            && let Some(ids) = batch.column_by_name("id")
            && ids
                .as_primitive::<Int64Type>()
                .iter()
                .any(|id| id == Some(trap))
        {
            panic!("row-counter: told to trap on id {trap}");
        }
        let first = self.seen;
        let seen = Int64Array::from_iter_values((1..=batch.num_rows() as i64).map(|i| first + i));
        self.seen += batch.num_rows() as i64;
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("seen", DataType::Int64, false));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(seen));
        if let Some(label) = &self.label {
            fields.push(Field::new("version", DataType::Utf8, false));
            columns.push(Arc::new(StringArray::from(vec![
                label.as_str();
                batch.num_rows()
            ])));
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?.into())
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(self.seen.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        if self.refuse_state {
            return Err(Error::fatal("row-counter: told to refuse the state"));
        }
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| Error::fatal(format!("not a row-counter state: {} bytes", state.len())))?;
        self.seen = i64::from_le_bytes(bytes);
        self.restored = true;
        Ok(())
    }
}

export_transform!(RowCounter);
