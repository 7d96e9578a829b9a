//! A 0.2 transform's output put together from the columns the plugin made
//! and the input's columns it named, taken natively at the rows it chose.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_schema::{FieldRef, Schema};

use crate::bindings::v0_2::exports::sluice::plugin::transformer::OutputColumn;

/// The output of a plugin that read `reads` of `input` (none: every
/// column), made `made`, chose `rows` of `input` (none: every row) and laid
/// out `columns`. The plugin's output is untrusted: a row or column it names
/// that is not there, or made columns of another length than the output's,
/// are errors.
pub(crate) fn assemble(
    input: &RecordBatch,
    reads: Option<&[String]>,
    made: &RecordBatch,
    rows: Option<Vec<u32>>,
    columns: &[OutputColumn],
) -> Result<RecordBatch, String> {
    let names_input = columns
        .iter()
        .any(|column| !matches!(column, OutputColumn::Made(_)));
    let num_rows = match &rows {
        Some(rows) => rows.len(),
        None if names_input => input.num_rows(),
        None => made.num_rows(),
    };
    if made.num_rows() != num_rows {
        return Err(format!(
            "the batch of made columns has {} rows, the output {num_rows}",
            made.num_rows()
        ));
    }
    let rows = rows.map(UInt32Array::from);
    if let Some(rows) = &rows
        && let Some(&row) = rows
            .values()
            .iter()
            .find(|&&row| row as usize >= input.num_rows())
    {
        return Err(format!(
            "rows names row {row} of a batch of {} rows",
            input.num_rows()
        ));
    }
    // The input column each entry names, if any.
    let names: Vec<Option<&str>> = columns
        .iter()
        .map(|column| match column {
            OutputColumn::Input(name) => Some(name.as_str()),
            OutputColumn::Made(i) => made
                .schema_ref()
                .fields()
                .get(*i as usize)
                .map(|f| f.name().as_str()),
            OutputColumn::Others | OutputColumn::InPlace => None,
        })
        .collect();
    let named: HashSet<&str> = names.iter().flatten().copied().collect();
    let read = |name: &str| reads.is_none_or(|reads| reads.iter().any(|r| r == name));
    let placing = columns
        .iter()
        .any(|column| matches!(column, OutputColumn::InPlace));
    // For each input column the plugin read, the entry `in-place` puts in
    // its place, if one names it.
    let in_place: Vec<Option<usize>> = if placing {
        input
            .schema_ref()
            .fields()
            .iter()
            .map(|f| {
                let name = f.name().as_str();
                let entry = || names.iter().position(|n| *n == Some(name));
                if read(name) { entry() } else { None }
            })
            .collect()
    } else {
        Vec::new()
    };
    let placed: HashSet<usize> = in_place.iter().flatten().copied().collect();
    let mut taken = InputColumns {
        input,
        rows: rows.as_ref(),
        cache: HashMap::new(),
    };
    let mut fields: Vec<FieldRef> = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    let push = |entry: &OutputColumn,
                fields: &mut Vec<FieldRef>,
                arrays: &mut Vec<ArrayRef>,
                taken: &mut InputColumns|
     -> Result<(), String> {
        match entry {
            OutputColumn::Made(i) => {
                let i = *i as usize;
                if i >= made.num_columns() {
                    return Err(format!(
                        "made({i}) names a column of a batch of {} columns",
                        made.num_columns()
                    ));
                }
                fields.push(made.schema_ref().field(i).clone().into());
                arrays.push(made.column(i).clone());
            }
            OutputColumn::Input(name) => {
                let index = input
                    .schema_ref()
                    .index_of(name)
                    .map_err(|_| format!("input(`{name}`) names no column of the input"))?;
                fields.push(input.schema_ref().fields()[index].clone());
                arrays.push(taken.at(index)?);
            }
            OutputColumn::Others | OutputColumn::InPlace => {}
        }
        Ok(())
    };
    for (entry_index, column) in columns.iter().enumerate() {
        match column {
            _ if placed.contains(&entry_index) => {}
            OutputColumn::Others => {
                for (index, field) in input.schema_ref().fields().iter().enumerate() {
                    if !named.contains(field.name().as_str()) {
                        fields.push(field.clone());
                        arrays.push(taken.at(index)?);
                    }
                }
            }
            OutputColumn::InPlace => {
                for (index, field) in input.schema_ref().fields().iter().enumerate() {
                    if !read(field.name()) {
                        fields.push(field.clone());
                        arrays.push(taken.at(index)?);
                    } else if let Some(entry) = in_place[index] {
                        push(&columns[entry], &mut fields, &mut arrays, &mut taken)?;
                    }
                }
            }
            entry => push(entry, &mut fields, &mut arrays, &mut taken)?,
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(num_rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|e| e.to_string())
}

/// The input's columns at the chosen rows, each taken once.
struct InputColumns<'a> {
    input: &'a RecordBatch,
    rows: Option<&'a UInt32Array>,
    cache: HashMap<usize, ArrayRef>,
}

impl InputColumns<'_> {
    fn at(&mut self, index: usize) -> Result<ArrayRef, String> {
        let column = self.input.column(index);
        let Some(rows) = self.rows else {
            return Ok(column.clone());
        };
        if let Some(taken) = self.cache.get(&index) {
            return Ok(taken.clone());
        }
        let taken =
            arrow_select::take::take(column.as_ref(), rows, None).map_err(|e| e.to_string())?;
        self.cache.insert(index, taken.clone());
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    use super::*;

    fn input() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            ("b", Arc::new(StringArray::from(vec!["x", "y", "z"]))),
            ("c", Arc::new(Int64Array::from(vec![7, 8, 9]))),
        ])
        .unwrap()
    }

    fn made(values: Vec<i64>) -> RecordBatch {
        let field = Field::new("b", DataType::Int64, false);
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![field])),
            vec![Arc::new(Int64Array::from(values))],
        )
        .unwrap()
    }

    #[test]
    fn others_are_the_input_columns_no_entry_names_at_the_selected_rows() {
        let columns = [
            OutputColumn::Input("c".into()),
            OutputColumn::Others,
            OutputColumn::Made(0),
        ];
        let output = assemble(
            &input(),
            None,
            &made(vec![30, 10]),
            Some(vec![2, 0]),
            &columns,
        )
        .unwrap();
        let expected = RecordBatch::try_from_iter(vec![
            ("c", Arc::new(Int64Array::from(vec![9, 7])) as ArrayRef),
            ("a", Arc::new(Int64Array::from(vec![3, 1]))),
            ("b", Arc::new(Int64Array::from(vec![30, 10]))),
        ])
        .unwrap();
        assert_eq!(output, expected);
    }

    #[test]
    fn in_place_keeps_the_input_order_with_what_the_plugin_read_replaced_or_left_out() {
        let reads = ["b".to_owned(), "c".to_owned()];
        let columns = [
            OutputColumn::InPlace,
            OutputColumn::Made(0),
            OutputColumn::Made(1),
        ];
        let new = Field::new("d", DataType::Int64, false);
        let b = Field::new("b", DataType::Int64, false);
        let made = RecordBatch::try_new(
            Arc::new(Schema::new(vec![new, b])),
            vec![
                Arc::new(Int64Array::from(vec![0, 0, 0])),
                Arc::new(Int64Array::from(vec![4, 5, 6])),
            ],
        )
        .unwrap();
        let output = assemble(&input(), Some(&reads), &made, None, &columns).unwrap();
        // `a` was not read: in place; `b` made: in place; `c` read and not
        // named: left out; `d` new: after them.
        let expected = RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            ("b", Arc::new(Int64Array::from(vec![4, 5, 6]))),
            ("d", Arc::new(Int64Array::from(vec![0, 0, 0]))),
        ])
        .unwrap();
        assert_eq!(output, expected);
    }

    #[test]
    fn made_columns_alone_keep_their_own_row_count() {
        let output = assemble(
            &input(),
            None,
            &made(vec![5]),
            None,
            &[OutputColumn::Made(0)],
        )
        .unwrap();
        assert_eq!(output, made(vec![5]));
    }

    #[test]
    fn what_the_plugin_names_must_be_there() {
        let fails = |made: RecordBatch, rows: Option<Vec<u32>>, columns: &[OutputColumn]| {
            assemble(&input(), None, &made, rows, columns).unwrap_err()
        };
        let error = fails(made(vec![1, 2, 3]), None, &[OutputColumn::Made(1)]);
        assert!(error.contains("made(1)"), "{error}");
        let error = fails(made(vec![1]), None, &[OutputColumn::Others]);
        assert!(error.contains("has 1 rows, the output 3"), "{error}");
        let error = fails(made(vec![1]), Some(vec![3]), &[OutputColumn::Others]);
        assert!(error.contains("row 3 of a batch of 3"), "{error}");
        let error = fails(
            made(vec![1, 2, 3]),
            None,
            &[OutputColumn::Input("d".into())],
        );
        assert!(error.contains("`d`"), "{error}");
    }
}
