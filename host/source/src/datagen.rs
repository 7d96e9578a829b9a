//! The `datagen` source: rows from declared generators at a fixed rate.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sluice_config::{DatagenColumn, DatagenSource, Generator};

use crate::{Chunk, Position, Room, Source, SourceError, row_position, rows_at};

const FIRST_NAMES: &[&str] = &[
    "ann", "bob", "chen", "dana", "eli", "fatima", "goran", "hana", "ivan", "jo",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.io",
    "shop.example.net",
];
const WORDS: &[&str] = &[
    "order", "shipped", "refund", "please", "call", "me", "about", "invoice", "today", "thanks",
];

/// Generates rows from declared columns at `rows_per_second`.
#[derive(Debug)]
pub struct Datagen {
    spec: DatagenSource,
    schema: SchemaRef,
    rng: SmallRng,
    started: Instant,
    produced: u64,
}

impl Datagen {
    /// Check the column declarations and start the clock.
    pub fn new(spec: &DatagenSource) -> Result<Self, SourceError> {
        if spec.rows_per_second == 0 {
            return Err(SourceError::Config(
                "datagen `rows_per_second` must be positive".into(),
            ));
        }
        if spec.columns.is_empty() {
            return Err(SourceError::Config(
                "datagen needs at least one column".into(),
            ));
        }
        let fields = spec
            .columns
            .iter()
            .map(field)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Datagen {
            spec: spec.clone(),
            schema: Arc::new(Schema::new(fields)),
            rng: SmallRng::seed_from_u64(spec.seed),
            started: Instant::now(),
            produced: 0,
        })
    }

    fn generate(&mut self, rows: usize) -> RecordBatch {
        let first = self.produced;
        let columns: Vec<ArrayRef> = self
            .spec
            .columns
            .clone()
            .iter()
            .map(|column| self.column(column, first, rows))
            .collect();
        self.produced += rows as u64;
        RecordBatch::try_new(self.schema.clone(), columns)
            .expect("generated columns match the schema")
    }

    fn column(&mut self, column: &DatagenColumn, first: u64, rows: usize) -> ArrayRef {
        let rng = &mut self.rng;
        let null_fraction = column.null_fraction;
        let valid = move |rng: &mut SmallRng| {
            null_fraction <= 0.0 || !rng.random_bool(null_fraction.min(1.0))
        };
        let min = column.min.unwrap_or(0.0);
        let max = column.max.unwrap_or(1000.0);
        match column.generator {
            Generator::Sequence => Arc::new(Int64Array::from_iter(
                (0..rows as u64).map(|i| Some(min as i64 + (first + i) as i64)),
            )),
            Generator::Int => {
                Arc::new(Int64Array::from_iter((0..rows).map(|_| {
                    valid(rng).then(|| rng.random_range(min as i64..=max as i64))
                })))
            }
            Generator::Float => Arc::new(Float64Array::from_iter(
                (0..rows).map(|_| valid(rng).then(|| rng.random_range(min..max))),
            )),
            Generator::Bool => Arc::new(BooleanArray::from_iter(
                (0..rows).map(|_| valid(rng).then(|| rng.random_bool(0.5))),
            )),
            Generator::Timestamp => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                Arc::new(
                    TimestampMillisecondArray::from_iter(
                        (0..rows).map(|_| valid(rng).then_some(now)),
                    )
                    .with_timezone("+00:00"),
                )
            }
            Generator::Choice => {
                let values = &column.values;
                Arc::new(StringArray::from_iter((0..rows).map(|_| {
                    valid(rng).then(|| values[rng.random_range(0..values.len())].clone())
                })))
            }
            Generator::Email => Arc::new(StringArray::from_iter(
                (0..rows).map(|_| valid(rng).then(|| email(rng))),
            )),
            Generator::CardNumber => Arc::new(StringArray::from_iter(
                (0..rows).map(|_| valid(rng).then(|| card(rng))),
            )),
            Generator::Text => Arc::new(StringArray::from_iter(
                (0..rows).map(|_| valid(rng).then(|| text(rng))),
            )),
        }
    }
}

impl Source for Datagen {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_chunk(&mut self, room: Room, max_wait: Duration) -> Result<Chunk, SourceError> {
        let remaining = self
            .spec
            .rows
            .map_or(u64::MAX, |total| total - self.produced);
        if remaining == 0 {
            return Ok(Chunk::End);
        }
        let rate = self.spec.rows_per_second;
        let due = (self.started.elapsed().as_secs_f64() * rate as f64) as u64;
        let ready = due
            .saturating_sub(self.produced)
            .min(remaining)
            .min(room.rows as u64);
        if ready == 0 {
            let next_due = Duration::from_secs_f64((self.produced + 1) as f64 / rate as f64);
            std::thread::sleep(
                next_due
                    .saturating_sub(self.started.elapsed())
                    .min(max_wait),
            );
            return Ok(Chunk::Idle);
        }
        Ok(Chunk::Rows(self.generate(ready as usize)))
    }

    fn positions(&self) -> Vec<Position> {
        row_position(self.produced)
    }

    /// Random rows are not replayed: the rows after a seek are new ones
    /// (seeded by the position), and the row count and rate go on from it.
    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError> {
        let produced = rows_at(positions)?;
        self.produced = produced;
        self.rng = SmallRng::seed_from_u64(self.spec.seed ^ produced);
        let rate = self.spec.rows_per_second as f64;
        self.started = Instant::now() - Duration::from_secs_f64(produced as f64 / rate);
        Ok(())
    }
}

fn field(column: &DatagenColumn) -> Result<Field, SourceError> {
    let data_type = match column.generator {
        Generator::Sequence | Generator::Int => DataType::Int64,
        Generator::Float => DataType::Float64,
        Generator::Bool => DataType::Boolean,
        Generator::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
        Generator::Choice if column.values.is_empty() => {
            return Err(SourceError::Config(format!(
                "column `{}`: `choice` needs `values`",
                column.name
            )));
        }
        Generator::Choice | Generator::Email | Generator::CardNumber | Generator::Text => {
            DataType::Utf8
        }
    };
    if let (Some(min), Some(max)) = (column.min, column.max)
        && min > max
    {
        return Err(SourceError::Config(format!(
            "column `{}`: min {min} is above max {max}",
            column.name
        )));
    }
    if !(0.0..=1.0).contains(&column.null_fraction) {
        return Err(SourceError::Config(format!(
            "column `{}`: null_fraction must be in 0.0–1.0",
            column.name
        )));
    }
    Ok(Field::new(
        &column.name,
        data_type,
        column.null_fraction > 0.0,
    ))
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn email(rng: &mut SmallRng) -> String {
    format!(
        "{}.{}{}@{}",
        pick(rng, FIRST_NAMES),
        pick(rng, FIRST_NAMES),
        rng.random_range(1..100),
        pick(rng, DOMAINS)
    )
}

/// A Luhn-valid 16-digit card number in groups of four.
fn card(rng: &mut SmallRng) -> String {
    let mut digits: Vec<u32> = std::iter::once(4)
        .chain((0..14).map(|_| rng.random_range(0..10)))
        .collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let text: String = digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    format!(
        "{} {} {} {}",
        &text[0..4],
        &text[4..8],
        &text[8..12],
        &text[12..16]
    )
}

fn text(rng: &mut SmallRng) -> String {
    let mut words: Vec<String> = (0..rng.random_range(3..8))
        .map(|_| pick(rng, WORDS).to_owned())
        .collect();
    match rng.random_range(0..4) {
        0 => words.push(email(rng)),
        1 => words.push(card(rng)),
        _ => {}
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    fn spec(rows: u64, rate: u64) -> DatagenSource {
        DatagenSource {
            rows_per_second: rate,
            rows: Some(rows),
            seed: 7,
            columns: vec![
                DatagenColumn {
                    name: "id".into(),
                    generator: Generator::Sequence,
                    min: None,
                    max: None,
                    values: vec![],
                    null_fraction: 0.0,
                },
                DatagenColumn {
                    name: "card".into(),
                    generator: Generator::CardNumber,
                    min: None,
                    max: None,
                    values: vec![],
                    null_fraction: 0.0,
                },
            ],
        }
    }

    fn drain(source: &mut Datagen) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        loop {
            match source
                .next_chunk(Room::rows(100), Duration::from_millis(20))
                .unwrap()
            {
                Chunk::Rows(batch) => out.push(batch),
                Chunk::Idle => {}
                Chunk::End => return out,
            }
        }
    }

    #[test]
    fn produces_exactly_the_requested_rows_in_sequence() {
        let mut source = Datagen::new(&spec(250, 1_000_000)).unwrap();
        let batches = drain(&mut source);
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(ids, (0..250).collect::<Vec<_>>());
        assert!(batches.iter().all(|b| b.num_rows() <= 100));
    }

    #[test]
    fn respects_the_rate() {
        let mut source = Datagen::new(&spec(50, 500)).unwrap();
        let started = Instant::now();
        drain(&mut source);
        // 50 rows at 500 rows/s cannot finish in under ~100 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn card_numbers_pass_luhn() {
        let mut source = Datagen::new(&spec(20, 1_000_000)).unwrap();
        for batch in drain(&mut source) {
            for card in batch.column(1).as_string::<i32>().iter().flatten() {
                let digits: Vec<u32> = card.chars().filter_map(|c| c.to_digit(10)).collect();
                assert_eq!(digits.len(), 16);
                let sum: u32 = digits
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, &d)| {
                        if i % 2 == 1 {
                            let x = d * 2;
                            if x > 9 { x - 9 } else { x }
                        } else {
                            d
                        }
                    })
                    .sum();
                assert_eq!(sum % 10, 0, "{card}");
            }
        }
    }
}
