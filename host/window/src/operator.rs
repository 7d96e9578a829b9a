//! The window operator: assigns rows to (window, key) groups, folds them
//! into the groups' states, and emits results as the watermark passes.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, SortField};

use crate::WindowError;
use crate::accumulator::Accumulator;
use crate::assign::WindowKind;
use crate::state::{Group, StateStore, Window};
use crate::watermark::{PartitionId, WatermarkTracker};

/// The column that, beside the partition column, names a row's input
/// partition when the input has it (Kafka's `topic`).
const TOPIC_COLUMN: &str = "topic";

/// When results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitMode {
    /// Once when the watermark passes the window's end, and again for each
    /// batch of late rows within the allowed lateness.
    #[default]
    Final,
    /// Also after every batch, for every window the batch changed (early,
    /// updating results); the latest row of a (window, key) is its result.
    Updates,
}

/// A windowed aggregation, as the job declares it.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    /// Tumbling, hopping or session.
    pub kind: WindowKind,
    /// Columns whose values form the key; empty for one group per window.
    pub key_columns: Vec<String>,
    /// The columns the accumulator reads; `None` passes every column.
    /// Naming them spares copying the others into the plugin.
    pub input_columns: Option<Vec<String>>,
    /// The event-time column: a timestamp, or int64 milliseconds.
    pub event_time_column: String,
    /// A column naming each row's input partition (Kafka's `partition`),
    /// for per-partition watermarks; `None`: one partition.
    pub partition_column: Option<String>,
    /// Bounded out-of-orderness: the watermark trails the maximum event
    /// time by this much, ms.
    pub out_of_orderness_ms: i64,
    /// A partition without data for this long is left out of the watermark.
    pub idle_timeout: Duration,
    /// How long after a window closes late rows still update it, ms.
    pub allowed_lateness_ms: i64,
    /// How far past the host's wall clock an event time may be, ms; a later
    /// row is set aside with the out-of-range ones and does not move the
    /// watermark. `None`: no bound.
    pub max_event_time_skew_ms: Option<i64>,
    /// When results are emitted.
    pub emit: EmitMode,
    /// Largest window state, in bytes.
    pub state_quota: usize,
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct WindowOutput {
    /// Results: `window_start`, `window_end`, the key columns, then the
    /// aggregate's columns.
    pub results: Option<RecordBatch>,
    /// Input rows later than the allowed lateness (the side output).
    pub late: Option<RecordBatch>,
    /// Input rows without an event time.
    pub invalid: Option<RecordBatch>,
    /// Input rows whose event time no window can hold (within a window of
    /// the ends of i64 milliseconds), or is further in the future than
    /// [`WindowSpec::max_event_time_skew_ms`] allows.
    pub out_of_range: Option<RecordBatch>,
}

/// Windowed aggregation over micro-batches.
#[derive(Debug)]
pub struct WindowOperator<A> {
    pub(crate) spec: WindowSpec,
    accumulator: A,
    pub(crate) watermark: WatermarkTracker,
    pub(crate) store: StateStore,
    pub(crate) keys: Option<KeyCodec>,
}

/// Turns key columns into comparable bytes and back.
#[derive(Debug)]
pub(crate) struct KeyCodec {
    pub(crate) converter: RowConverter,
    pub(crate) fields: Vec<Field>,
}

impl KeyCodec {
    /// A codec for key columns of these fields.
    pub(crate) fn new(fields: Vec<Field>) -> Result<Self, WindowError> {
        let converter = RowConverter::new(
            fields
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        Ok(KeyCodec { converter, fields })
    }
}

/// The groups of one batch: their windows and keys, and each taken row's
/// group.
#[derive(Debug, Default)]
struct Grouping {
    groups: Vec<Group>,
    /// window → its slot in `keys`.
    windows: HashMap<Window, usize>,
    /// Each window's groups by key.
    keys: Vec<WindowKeys>,
    /// The window of the last row assigned and its slot: rows close in
    /// time share a window, which is then not looked up again.
    last: Option<(Window, usize)>,
    rows: Vec<u32>,
    group_of_row: Vec<u32>,
}

/// The groups of one window in a batch.
#[derive(Debug, Default)]
struct WindowKeys {
    /// The group of the empty key (a job without key columns).
    keyless: Option<u32>,
    /// Key → group; looked up by borrowed key, without allocating.
    keyed: HashMap<crate::state::Key, u32>,
}

impl WindowKeys {
    fn get(&self, key: &[u8]) -> Option<u32> {
        if key.is_empty() {
            // Without key columns every row has this key: no lookup.
            self.keyless
        } else {
            self.keyed.get(key).copied()
        }
    }

    fn insert(&mut self, key: &[u8], group: u32) {
        if key.is_empty() {
            self.keyless = Some(group);
        } else {
            self.keyed.insert(key.into(), group);
        }
    }
}

impl Grouping {
    fn assign(&mut self, row: usize, window: Window, key: &[u8]) {
        let slot = match self.last {
            Some((last, slot)) if last == window => slot,
            _ => {
                let slot = *self.windows.entry(window).or_insert_with(|| {
                    self.keys.push(WindowKeys::default());
                    self.keys.len() - 1
                });
                self.last = Some((window, slot));
                slot
            }
        };
        let keys = &mut self.keys[slot];
        let group = match keys.get(key) {
            Some(group) => group,
            None => {
                let group = self.groups.len() as u32;
                keys.insert(key, group);
                self.groups.push((window, key.into()));
                group
            }
        };
        self.rows.push(row as u32);
        self.group_of_row.push(group);
    }
}

impl<A: Accumulator> WindowOperator<A> {
    /// An operator with no state; `spec.kind` must be valid.
    pub fn new(spec: WindowSpec, accumulator: A) -> Self {
        WindowOperator {
            watermark: WatermarkTracker::new(spec.out_of_orderness_ms, spec.idle_timeout),
            store: StateStore::new(spec.state_quota),
            spec,
            accumulator,
            keys: None,
        }
    }

    /// Announce the input's partitions (the values of the partition
    /// column) before the first batch: each holds the watermark back until
    /// it has data or goes idle. Without a partition column every row is in
    /// one partition, and the announcement is ignored.
    pub fn expect_partitions(
        &mut self,
        partitions: impl IntoIterator<Item = PartitionId>,
        now: Instant,
    ) {
        if self.spec.partition_column.is_none() {
            return;
        }
        for partition in partitions {
            self.watermark.expect(partition, now);
        }
    }

    /// The latest event time a row may have: the wall clock plus the
    /// allowed skew, or no bound.
    fn latest_acceptable_time(&self) -> i64 {
        let Some(skew) = self.spec.max_event_time_skew_ms else {
            return i64::MAX;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        now.saturating_add(skew)
    }

    /// The current watermark, ms.
    pub fn watermark(&self) -> i64 {
        self.watermark.current()
    }

    /// The window state.
    pub fn state(&self) -> &StateStore {
        &self.store
    }

    /// Fold one batch in, then emit what the advanced watermark closes.
    pub fn process(
        &mut self,
        batch: &RecordBatch,
        now: Instant,
    ) -> Result<WindowOutput, WindowError> {
        let times = self.event_times(batch)?;
        let key_rows = self.key_rows(batch)?;
        let key = |row: usize| -> &[u8] {
            match &key_rows {
                Some(rows) => rows.row(row).data(),
                None => &[],
            }
        };
        let watermark = self.watermark.current();
        let lateness = self.spec.allowed_lateness_ms;
        let expired = |end: i64| end.saturating_add(lateness) <= watermark;

        let kind = self.spec.kind;
        let latest = self.latest_acceptable_time();
        // The times a window can hold; a time none can (within a window of
        // the ends of i64), or too far in the future, is set aside and must
        // not move the watermark.
        let placeable: Vec<Option<i64>> = times
            .iter()
            .map(|t| t.filter(|&t| kind.fits(t) && t <= latest))
            .collect();
        let mut late = Vec::new();
        let mut invalid = Vec::new();
        let mut out_of_range = Vec::new();
        let mut grouping = Grouping::default();
        let mut initial: HashMap<u32, (Vec<Vec<u8>>, bool)> = HashMap::new();
        match self.spec.kind {
            WindowKind::Session { gap } => {
                let mut by_key: HashMap<&[u8], Vec<(i64, usize)>> = HashMap::new();
                for (row, (time, placed)) in times.iter().zip(&placeable).enumerate() {
                    match (*time, *placed) {
                        (None, _) => invalid.push(row as u32),
                        (Some(_), None) => out_of_range.push(row as u32),
                        (_, Some(t)) if expired(t.saturating_add(gap)) => late.push(row as u32),
                        (_, Some(t)) => by_key.entry(key(row)).or_default().push((t, row)),
                    }
                }
                let mut keys: Vec<&[u8]> = by_key.keys().copied().collect();
                keys.sort_unstable();
                for key in keys {
                    let mut rows = by_key.remove(key).unwrap_or_default();
                    rows.sort_unstable();
                    for session in self.sessions_of(key, &rows, gap) {
                        let first = grouping.rows.len();
                        for &row in &session.rows {
                            grouping.assign(row, session.window, key);
                        }
                        let group = grouping.group_of_row[first];
                        let mut parts = Vec::new();
                        let mut fired = false;
                        for old in &session.merged {
                            if let Some(entry) = self.store.remove(*old, key) {
                                fired |= entry.fired;
                                parts.push(entry.state);
                            }
                        }
                        self.store.add_session(key, session.window);
                        initial.insert(group, (parts, fired));
                    }
                }
            }
            kind => {
                for (row, (time, placed)) in times.iter().zip(&placeable).enumerate() {
                    let t = match (*time, *placed) {
                        (None, _) => {
                            invalid.push(row as u32);
                            continue;
                        }
                        (Some(_), None) => {
                            out_of_range.push(row as u32);
                            continue;
                        }
                        (_, Some(t)) => t,
                    };
                    let mut assigned = false;
                    for window in kind.windows_of(t).filter(|w| !expired(w.1)) {
                        grouping.assign(row, window, key(row));
                        assigned = true;
                    }
                    if !assigned {
                        late.push(row as u32);
                    }
                }
            }
        }

        let states = self.initial_states(&grouping, initial)?;
        let touched = self.update(batch, &grouping, states)?;
        self.observe(batch, &placeable, now)?;
        let watermark = self.watermark.advance(now);
        let results = self.emit(watermark, &touched)?;
        Ok(WindowOutput {
            results,
            late: take_rows(batch, late)?,
            invalid: take_rows(batch, invalid)?,
            out_of_range: take_rows(batch, out_of_range)?,
        })
    }

    /// The input has ended: emit every window.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, WindowError> {
        let watermark = self.watermark.end_of_input();
        self.emit(watermark, &HashSet::new())
    }

    /// Each batch group's state before the batch: stored, merged from the
    /// sessions it joins, or new.
    fn initial_states(
        &mut self,
        grouping: &Grouping,
        mut merged: HashMap<u32, (Vec<Vec<u8>>, bool)>,
    ) -> Result<Vec<(Vec<u8>, bool)>, WindowError> {
        // Sessions that join several stored ones: merge pairwise, in rounds,
        // one call per round.
        loop {
            let pending: Vec<u32> = merged
                .iter()
                .filter(|(_, (parts, _))| parts.len() >= 2)
                .map(|(&g, _)| g)
                .collect();
            if pending.is_empty() {
                break;
            }
            let (left, right): (Vec<Vec<u8>>, Vec<Vec<u8>>) = pending
                .iter()
                .map(|g| {
                    let parts = &mut merged.get_mut(g).expect("pending group").0;
                    (parts.remove(0), parts.remove(0))
                })
                .unzip();
            let combined = self.accumulator.merge(&left, &right)?;
            for (g, state) in pending.iter().zip(combined) {
                merged.get_mut(g).expect("pending group").0.insert(0, state);
            }
        }
        Ok(grouping
            .groups
            .iter()
            .enumerate()
            .map(|(g, (window, key))| match merged.remove(&(g as u32)) {
                Some((mut parts, fired)) => (parts.pop().unwrap_or_default(), fired),
                None => self
                    .store
                    .get(*window, key)
                    .map(|entry| (entry.state.clone(), entry.fired))
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Fold the grouped rows into their states; returns the groups touched.
    fn update(
        &mut self,
        batch: &RecordBatch,
        grouping: &Grouping,
        initial: Vec<(Vec<u8>, bool)>,
    ) -> Result<HashSet<Group>, WindowError> {
        if grouping.groups.is_empty() {
            return Ok(HashSet::new());
        }
        let identity = grouping.rows.len() == batch.num_rows()
            && grouping
                .rows
                .iter()
                .enumerate()
                .all(|(i, &r)| i as u32 == r);
        let input = self.project(batch)?;
        let rows = if identity {
            input
        } else {
            take_record_batch(&input, &UInt32Array::from(grouping.rows.clone()))?
        };
        let (states, fired): (Vec<Vec<u8>>, Vec<bool>) = initial.into_iter().unzip();
        let updated = self
            .accumulator
            .update(&states, &rows, &grouping.group_of_row)?;
        for (((window, key), state), fired) in grouping.groups.iter().zip(updated).zip(fired) {
            self.store.put(*window, key, state, fired)?;
        }
        Ok(grouping.groups.iter().cloned().collect())
    }

    /// Emit the groups the watermark closes (first firing, or a late
    /// update), plus, in `Updates` mode, every group the batch touched;
    /// drop the state of windows past their allowed lateness.
    fn emit(
        &mut self,
        watermark: i64,
        touched: &HashSet<Group>,
    ) -> Result<Option<RecordBatch>, WindowError> {
        let lateness = self.spec.allowed_lateness_ms;
        let mut emit: Vec<Group> = Vec::new();
        let mut emitted = HashSet::new();
        let mut states = Vec::new();
        for (window, key) in self.store.ending_by(watermark) {
            let group = (window, key);
            let entry = self.store.get(group.0, &group.1).expect("listed group");
            let fired = entry.fired;
            if !fired || touched.contains(&group) {
                states.push(entry.state.clone());
                emitted.insert(group.clone());
                emit.push(group.clone());
            }
            if window.1.saturating_add(lateness) <= watermark {
                self.store.remove(group.0, &group.1);
            } else if !fired {
                self.store.mark_fired(group.0, &group.1);
            }
        }
        if self.spec.emit == EmitMode::Updates {
            let mut early: Vec<&Group> = touched.iter().filter(|g| !emitted.contains(*g)).collect();
            early.sort_unstable_by(|a, b| (a.0.1, a.0.0, &a.1).cmp(&(b.0.1, b.0.0, &b.1)));
            for group in early {
                if let Some(entry) = self.store.get(group.0, &group.1) {
                    states.push(entry.state.clone());
                    emit.push(group.clone());
                }
            }
        }
        if emit.is_empty() {
            return Ok(None);
        }
        let (values, groups) = self.accumulator.finish(&states)?;
        let groups: Vec<u32> = if groups.is_empty() {
            (0..emit.len() as u32).collect()
        } else {
            groups
        };
        self.results(&emit, &values, &groups).map(Some)
    }

    /// `window_start`, `window_end`, the keys, then the aggregate's columns.
    fn results(
        &self,
        emit: &[Group],
        values: &RecordBatch,
        groups: &[u32],
    ) -> Result<RecordBatch, WindowError> {
        let window = |f: fn(&Window) -> i64| -> ArrayRef {
            Arc::new(TimestampMillisecondArray::from_iter_values(
                groups.iter().map(|&g| f(&emit[g as usize].0)),
            ))
        };
        let mut fields = vec![
            Field::new(
                "window_start",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new(
                "window_end",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ];
        let mut columns = vec![window(|w| w.0), window(|w| w.1)];
        if let Some(codec) = &self.keys {
            let parser = codec.converter.parser();
            let rows = groups.iter().map(|&g| parser.parse(&emit[g as usize].1));
            columns.extend(codec.converter.convert_rows(rows)?);
            fields.extend(codec.fields.iter().cloned());
        }
        fields.extend(values.schema().fields().iter().map(|f| f.as_ref().clone()));
        columns.extend(values.columns().iter().cloned());
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    /// The session windows a key's sorted rows form, each joined with the
    /// stored sessions it touches.
    fn sessions_of(&self, key: &[u8], rows: &[(i64, usize)], gap: i64) -> Vec<Session> {
        let mut sessions: Vec<Session> = Vec::new();
        for &(t, row) in rows {
            let proto = (t, t.saturating_add(gap));
            match sessions.last_mut() {
                Some(last) if last.window.1 >= proto.0 => {
                    last.window.1 = last.window.1.max(proto.1);
                    last.rows.push(row);
                }
                _ => sessions.push(Session {
                    window: proto,
                    rows: vec![row],
                    merged: Vec::new(),
                }),
            }
            // Join stored sessions until the window stops growing.
            let last = sessions.last_mut().expect("just pushed");
            loop {
                let touching = self.store.sessions_touching(key, last.window);
                let mut grew = false;
                for old in touching {
                    if !last.merged.contains(&old) {
                        last.merged.push(old);
                        let joined = (last.window.0.min(old.0), last.window.1.max(old.1));
                        grew |= joined != last.window;
                        last.window = joined;
                    }
                }
                if !grew {
                    break;
                }
            }
        }
        sessions
    }

    /// The columns the accumulator reads (all, unless the spec names them).
    fn project(&self, batch: &RecordBatch) -> Result<RecordBatch, WindowError> {
        let Some(names) = &self.spec.input_columns else {
            return Ok(batch.clone());
        };
        let indices = names
            .iter()
            .map(|name| {
                batch
                    .schema()
                    .index_of(name)
                    .map_err(|_| WindowError::Column {
                        column: name.clone(),
                        message: format!(
                            "an aggregate input column not in the input (columns: {})",
                            column_names(batch)
                        ),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let projected = batch.project(&indices)?;
        if indices.is_empty() {
            // No columns, but the rows still count.
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            return Ok(RecordBatch::try_new_with_options(
                projected.schema(),
                Vec::new(),
                &options,
            )?);
        }
        Ok(projected)
    }

    /// The event time of every row, ms; `None` where it is null.
    fn event_times(&self, batch: &RecordBatch) -> Result<Vec<Option<i64>>, WindowError> {
        let name = &self.spec.event_time_column;
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| WindowError::Column {
                column: name.clone(),
                message: format!("not in the input (columns: {})", column_names(batch)),
            })?;
        let millis = match column.data_type() {
            DataType::Timestamp(_, _) | DataType::Int64 | DataType::Date64 => cast(
                &cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
                &DataType::Int64,
            )?,
            other => {
                return Err(WindowError::Column {
                    column: name.clone(),
                    message: format!(
                        "event time must be a timestamp or int64 milliseconds, not {other}"
                    ),
                });
            }
        };
        Ok(millis.as_primitive::<Int64Type>().iter().collect())
    }

    /// The key of every row as comparable bytes; `None` without key columns.
    fn key_rows(&mut self, batch: &RecordBatch) -> Result<Option<arrow::row::Rows>, WindowError> {
        if self.spec.key_columns.is_empty() {
            return Ok(None);
        }
        let columns = self
            .spec
            .key_columns
            .iter()
            .map(|name| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| WindowError::Column {
                        column: name.clone(),
                        message: format!(
                            "key column not in the input (columns: {})",
                            column_names(batch)
                        ),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.keys.is_none() {
            let schema = batch.schema();
            let fields: Vec<Field> = self
                .spec
                .key_columns
                .iter()
                .map(|name| schema.field_with_name(name).cloned())
                .collect::<Result<_, _>>()?;
            self.keys = Some(KeyCodec::new(fields)?);
        }
        let codec = self.keys.as_ref().expect("set above");
        Ok(Some(codec.converter.convert_columns(&columns)?))
    }

    /// Feed each partition's maximum event time in the batch to the watermark.
    fn observe(
        &mut self,
        batch: &RecordBatch,
        times: &[Option<i64>],
        now: Instant,
    ) -> Result<(), WindowError> {
        let partitions: Option<Vec<Option<i64>>> = match &self.spec.partition_column {
            None => None,
            Some(name) => {
                let column = batch
                    .column_by_name(name)
                    .ok_or_else(|| WindowError::Column {
                        column: name.clone(),
                        message: format!(
                            "partition column not in the input (columns: {})",
                            column_names(batch)
                        ),
                    })?;
                Some(match column.data_type() {
                    DataType::Int32 => column
                        .as_primitive::<Int32Type>()
                        .iter()
                        .map(|p| p.map(i64::from))
                        .collect(),
                    DataType::Int64 => column.as_primitive::<Int64Type>().iter().collect(),
                    other => {
                        return Err(WindowError::Column {
                            column: name.clone(),
                            message: format!(
                                "a partition column must be int32 or int64, not {other}"
                            ),
                        });
                    }
                })
            }
        };
        let topics = self
            .spec
            .partition_column
            .as_ref()
            .and_then(|_| batch.column_by_name(TOPIC_COLUMN))
            .and_then(|c| c.as_string_opt::<i32>());
        let mut max_by_partition: HashMap<(Option<&str>, i64), i64> = HashMap::new();
        let mut fold = |id, max: i64| {
            let known = max_by_partition.entry(id).or_insert(max);
            *known = (*known).max(max);
        };
        // Rows of a partition come in runs: the map is touched once a run.
        let mut run: Option<((Option<&str>, i64), i64)> = None;
        for (row, time) in times.iter().enumerate() {
            let Some(t) = *time else { continue };
            let partition = partitions.as_ref().and_then(|p| p[row]).unwrap_or(0);
            let topic = topics.filter(|t| t.is_valid(row)).map(|t| t.value(row));
            match &mut run {
                Some((id, max)) if *id == (topic, partition) => *max = (*max).max(t),
                _ => {
                    if let Some((id, max)) = run.replace(((topic, partition), t)) {
                        fold(id, max);
                    }
                }
            }
        }
        if let Some((id, max)) = run {
            fold(id, max);
        }
        for ((topic, partition), max) in max_by_partition {
            let id = (topic.unwrap_or_default().to_owned(), partition);
            self.watermark.observe(id, max, now);
        }
        Ok(())
    }
}

/// One session window a batch forms for a key.
#[derive(Debug)]
struct Session {
    window: Window,
    rows: Vec<usize>,
    /// Stored sessions it joins.
    merged: Vec<Window>,
}

fn take_rows(batch: &RecordBatch, rows: Vec<u32>) -> Result<Option<RecordBatch>, WindowError> {
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(take_record_batch(batch, &UInt32Array::from(rows))?))
}

fn column_names(batch: &RecordBatch) -> String {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
