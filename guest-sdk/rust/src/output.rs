//! What a transform returns.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_schema::{ArrowError, Field, FieldRef, Schema};

/// One column of a transform's output laid out with [`Output::columns`].
#[derive(Debug, Clone)]
pub enum OutputColumn {
    /// A column the plugin made: it crosses back to the host.
    Made(FieldRef, ArrayRef),
    /// The input column of this name, unchanged. The host keeps it, so it
    /// does not cross back, and a column the plugin does not read (see
    /// [`crate::Transform::reads`]) never crosses at all.
    Input(String),
    /// Every input column that no other entry names, in input order,
    /// unchanged (as [`OutputColumn::Input`]).
    Others,
}

impl OutputColumn {
    /// A column the plugin made, nullable if it holds nulls.
    pub fn made(name: impl Into<String>, array: ArrayRef) -> Self {
        let field = Field::new(name, array.data_type().clone(), array.is_nullable());
        OutputColumn::Made(Arc::new(field), array)
    }

    /// The input column `name`, unchanged.
    pub fn input(name: impl Into<String>) -> Self {
        OutputColumn::Input(name.into())
    }
}

/// Where a column of the output comes from, as the host is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Column `i` of the made columns.
    Made(u32),
    /// The input column of this name.
    Input(String),
    /// The input columns no other entry names.
    Others,
    /// The input's columns in input order, those the plugin read as the
    /// entries naming them.
    InPlace,
}

/// A transform's result: the rows that continue down the pipeline, and rows
/// sent to named outputs.
#[derive(Debug, Clone)]
pub struct Output {
    /// The columns the plugin made.
    made: RecordBatch,
    /// The output's columns, when laid out with [`Output::columns`]; none
    /// when `made` is the output.
    layout: Option<Vec<Source>>,
    /// The input rows the output's rows are; none for every input row.
    rows: Option<Vec<u32>>,
    routed: Vec<(String, RecordBatch)>,
}

impl Output {
    /// `batch` is the output. Its columns that are input columns as they
    /// came in (the same arrays, under the same field) go back as
    /// [`OutputColumn::Input`], without crossing. For a plugin that
    /// declared what it reads ([`crate::Transform::reads`]), the input
    /// columns it did not read stay in the output in their places, and the
    /// ones it read are as `batch` has them.
    pub fn new(batch: RecordBatch) -> Self {
        Output {
            made: batch,
            layout: None,
            rows: None,
            routed: Vec::new(),
        }
    }

    /// The output is `columns`, in order, over every input row (or the rows
    /// of [`Output::select`]). Every made column must have that many rows.
    pub fn columns(columns: impl IntoIterator<Item = OutputColumn>) -> Result<Self, ArrowError> {
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        let mut layout = Vec::new();
        for column in columns {
            layout.push(match column {
                OutputColumn::Made(field, array) => {
                    fields.push(field);
                    arrays.push(array);
                    Source::Made(arrays.len() as u32 - 1)
                }
                OutputColumn::Input(name) => Source::Input(name),
                OutputColumn::Others => Source::Others,
            });
        }
        let rows = arrays.first().map(|array| array.len());
        let options = RecordBatchOptions::new().with_row_count(Some(rows.unwrap_or(0)));
        Ok(Output {
            made: RecordBatch::try_new_with_options(
                Arc::new(Schema::new(fields)),
                arrays,
                &options,
            )?,
            layout: Some(layout),
            rows: None,
            routed: Vec::new(),
        })
    }

    /// Every input column, unchanged: nothing crosses back.
    pub fn unchanged() -> Self {
        Output {
            made: RecordBatch::new_empty(Arc::new(Schema::empty())),
            layout: Some(vec![Source::Others]),
            rows: None,
            routed: Vec::new(),
        }
    }

    /// Keep only these input rows, in this order: the input columns the
    /// output names are taken at them by the host. Made columns must have
    /// one value per kept row.
    pub fn select(mut self, rows: Vec<u32>) -> Self {
        self.rows = Some(rows);
        self
    }

    /// Also send `batch` to the named output `output`.
    pub fn route(mut self, output: impl Into<String>, batch: RecordBatch) -> Self {
        self.routed.push((output.into(), batch));
        self
    }

    /// The columns the plugin made (with [`Output::columns`], the input
    /// columns it names are not among them).
    pub fn batch(&self) -> &RecordBatch {
        &self.made
    }

    /// The rows sent to named outputs.
    pub fn routed(&self) -> &[(String, RecordBatch)] {
        &self.routed
    }

    /// The output as one batch of `input`'s rows and columns: what the host
    /// makes of it. For native tests and benchmarks.
    pub fn resolve(&self, input: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let laid = self.clone().lay_out(input, false);
        let rows = laid.rows.clone().map(UInt32Array::from);
        let input_column = |name: &str| -> Result<(FieldRef, ArrayRef), ArrowError> {
            let index = input.schema_ref().index_of(name)?;
            let column = match &rows {
                Some(rows) => arrow_select::take::take(input.column(index).as_ref(), rows, None)?,
                None => input.column(index).clone(),
            };
            Ok((input.schema_ref().fields()[index].clone(), column))
        };
        let mut columns = Vec::new();
        for source in &laid.layout {
            match source {
                Source::Made(i) => columns.push((
                    laid.made.schema_ref().fields()[*i as usize].clone(),
                    laid.made.column(*i as usize).clone(),
                )),
                Source::Input(name) => columns.push(input_column(name)?),
                Source::InPlace => {}
                Source::Others => {
                    for field in input.schema_ref().fields() {
                        if !laid.names(field.name()) {
                            columns.push(input_column(field.name())?);
                        }
                    }
                }
            }
        }
        let (fields, arrays): (Vec<_>, Vec<_>) = columns.into_iter().unzip();
        let options = RecordBatchOptions::new().with_row_count(Some(laid.made.num_rows()));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
    }

    /// The output as the contract carries it, for a call on `input` by a
    /// plugin that declared what it reads (`read_some`) or not.
    pub(crate) fn lay_out(self, input: &RecordBatch, read_some: bool) -> LaidOut {
        let num_rows = match (&self.rows, &self.layout) {
            (Some(rows), _) => rows.len(),
            (None, Some(_)) if self.made.num_columns() == 0 => input.num_rows(),
            (None, _) => self.made.num_rows(),
        };
        let layout = match self.layout {
            Some(layout) => layout,
            None if self.rows.is_none() && num_rows == input.num_rows() => {
                return LaidOut::passing_unchanged(self.made, input, self.routed, read_some);
            }
            None => (0..self.made.num_columns() as u32)
                .map(Source::Made)
                .collect(),
        };
        let options = RecordBatchOptions::new().with_row_count(Some(num_rows));
        let made = RecordBatch::try_new_with_options(
            self.made.schema(),
            self.made.columns().to_vec(),
            &options,
        )
        .unwrap_or(self.made);
        LaidOut {
            made,
            layout,
            rows: self.rows,
            routed: self.routed,
        }
    }
}

/// An [`Output`] as the contract carries it.
pub(crate) struct LaidOut {
    pub(crate) made: RecordBatch,
    pub(crate) layout: Vec<Source>,
    pub(crate) rows: Option<Vec<u32>>,
    pub(crate) routed: Vec<(String, RecordBatch)>,
}

impl LaidOut {
    /// `batch` as the output of a call on `input` (with the same rows):
    /// its columns that are input columns as they came in are sent as
    /// such, the others as made.
    fn passing_unchanged(
        batch: RecordBatch,
        input: &RecordBatch,
        routed: Vec<(String, RecordBatch)>,
        read_some: bool,
    ) -> Self {
        let input_schema = input.schema_ref();
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        let mut layout = Vec::new();
        if read_some {
            layout.push(Source::InPlace);
        }
        for (field, array) in batch.schema_ref().fields().iter().zip(batch.columns()) {
            let unchanged = input_schema.index_of(field.name()).is_ok_and(|i| {
                input_schema.field(i) == field.as_ref() && Arc::ptr_eq(input.column(i), array)
            });
            if unchanged {
                layout.push(Source::Input(field.name().clone()));
            } else {
                fields.push(field.clone());
                arrays.push(array.clone());
                layout.push(Source::Made(arrays.len() as u32 - 1));
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let made =
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
                .expect("columns of one batch make a batch");
        LaidOut {
            made,
            layout,
            rows: None,
            routed,
        }
    }

    /// Whether an entry other than `Others` names `name`.
    fn names(&self, name: &str) -> bool {
        self.layout.iter().any(|source| match source {
            Source::Made(i) => self.made.schema_ref().field(*i as usize).name() == name,
            Source::Input(input) => input == name,
            Source::Others | Source::InPlace => false,
        })
    }
}

impl From<RecordBatch> for Output {
    fn from(batch: RecordBatch) -> Self {
        Output::new(batch)
    }
}
