//! The `nexmark` source: the Nexmark benchmark's people, auctions and bids,
//! from RisingWave's generator (the `nexmark` crate), as fast as they are
//! asked for. Event times come from the generator's event numbers, never
//! from the clock, so one configuration always gives the same rows.

use std::sync::Arc;
use std::time::Duration;

use ::nexmark::EventGenerator;
use ::nexmark::config::NexmarkConfig;
use ::nexmark::event::{Event, EventType};
use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_config::{NexmarkSource, NexmarkTable};

use crate::{Chunk, Position, Room, Source, SourceError, row_position, rows_at};

/// Rows the column builders reserve room for up front, at most.
const MAX_RESERVED_ROWS: usize = 64 * 1024;

/// Generates one Nexmark stream (`bid`, `auction` or `person`).
#[derive(Debug)]
pub struct Nexmark {
    table: NexmarkTable,
    schema: SchemaRef,
    generator: EventGenerator,
    config: NexmarkConfig,
    event_type: EventType,
    /// Events (of every kind) after which the stream ends.
    events: Option<u64>,
}

impl Nexmark {
    /// Check the configuration and set up the generator.
    pub fn new(spec: &NexmarkSource) -> Result<Self, SourceError> {
        if spec.event_rate == 0 {
            return Err(SourceError::Config(
                "nexmark `event_rate` must be positive".into(),
            ));
        }
        let size = |value: u64, name: &str| {
            usize::try_from(value)
                .map_err(|_| SourceError::Config(format!("nexmark `{name}` {value} is too large")))
        };
        let rate = size(spec.event_rate, "event_rate")?;
        let config = NexmarkConfig {
            base_time: spec.base_time,
            first_rate: rate,
            next_rate: rate,
            active_people: size(spec.active_people, "active_people")?,
            in_flight_auctions: size(spec.in_flight_auctions, "in_flight_auctions")?,
            ..NexmarkConfig::default()
        };
        let (event_type, fields) = match spec.table {
            NexmarkTable::Bid => (EventType::Bid, BidColumns::fields()),
            NexmarkTable::Auction => (EventType::Auction, AuctionColumns::fields()),
            NexmarkTable::Person => (EventType::Person, PersonColumns::fields()),
        };
        Ok(Nexmark {
            table: spec.table,
            schema: Arc::new(Schema::new(fields)),
            generator: EventGenerator::new(config.clone()).with_type_filter(event_type),
            config,
            event_type,
            events: spec.events,
        })
    }

    /// Whether the next event of the table is past the `events` bound.
    fn exhausted(&self) -> bool {
        self.events
            .is_some_and(|total| self.generator.global_offset() >= total)
    }

    /// Up to `max_rows` events of the table, as columns.
    fn generate<C: Columns>(&mut self, max_rows: usize) -> Vec<ArrayRef> {
        let mut columns = C::with_capacity(max_rows.min(MAX_RESERVED_ROWS));
        for _ in 0..max_rows {
            if self.exhausted() {
                break;
            }
            match self.generator.next() {
                Some(event) => columns.push(event),
                None => break,
            }
        }
        columns.finish()
    }
}

impl Source for Nexmark {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_chunk(&mut self, room: Room, _max_wait: Duration) -> Result<Chunk, SourceError> {
        if self.exhausted() {
            return Ok(Chunk::End);
        }
        let columns = match self.table {
            NexmarkTable::Bid => self.generate::<BidColumns>(room.rows),
            NexmarkTable::Auction => self.generate::<AuctionColumns>(room.rows),
            NexmarkTable::Person => self.generate::<PersonColumns>(room.rows),
        };
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Chunk::Rows)
            .map_err(|e| SourceError::Read {
                what: "nexmark events".into(),
                message: e.to_string(),
            })
    }

    fn positions(&self) -> Vec<Position> {
        row_position(self.generator.offset())
    }

    fn seek(&mut self, positions: &[Position]) -> Result<(), SourceError> {
        let offset = rows_at(positions)?;
        self.generator = EventGenerator::new(self.config.clone())
            .with_type_filter(self.event_type)
            .with_offset(offset);
        Ok(())
    }
}

/// The column builders of one table.
trait Columns {
    /// The table's columns, all non-null.
    fn fields() -> Vec<Field>;
    /// Builders with room for `rows` rows.
    fn with_capacity(rows: usize) -> Self;
    /// Append one event of the table's kind.
    fn push(&mut self, event: Event);
    /// The columns, in the order of [`Columns::fields`].
    fn finish(self) -> Vec<ArrayRef>;
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn timestamp(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, None),
        false,
    )
}

fn strings(rows: usize, average_bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * average_bytes)
}

fn unexpected(event: &Event) -> ! {
    unreachable!(
        "the generator is filtered to one kind, yet gave a {:?}",
        event.event_type()
    )
}

struct BidColumns {
    auction: Int64Builder,
    bidder: Int64Builder,
    price: Int64Builder,
    channel: StringBuilder,
    url: StringBuilder,
    date_time: TimestampMillisecondBuilder,
    extra: StringBuilder,
}

impl Columns for BidColumns {
    fn fields() -> Vec<Field> {
        vec![
            int64("auction"),
            int64("bidder"),
            int64("price"),
            utf8("channel"),
            utf8("url"),
            timestamp("date_time"),
            utf8("extra"),
        ]
    }

    fn with_capacity(rows: usize) -> Self {
        BidColumns {
            auction: Int64Builder::with_capacity(rows),
            bidder: Int64Builder::with_capacity(rows),
            price: Int64Builder::with_capacity(rows),
            channel: strings(rows, 12),
            url: strings(rows, 72),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            extra: strings(rows, 72),
        }
    }

    fn push(&mut self, event: Event) {
        let Event::Bid(bid) = event else {
            unexpected(&event)
        };
        self.auction.append_value(bid.auction as i64);
        self.bidder.append_value(bid.bidder as i64);
        self.price.append_value(bid.price as i64);
        self.channel.append_value(&bid.channel);
        self.url.append_value(&bid.url);
        self.date_time.append_value(bid.date_time as i64);
        self.extra.append_value(&bid.extra);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.auction.finish()),
            Arc::new(self.bidder.finish()),
            Arc::new(self.price.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

struct AuctionColumns {
    id: Int64Builder,
    item_name: StringBuilder,
    description: StringBuilder,
    initial_bid: Int64Builder,
    reserve: Int64Builder,
    date_time: TimestampMillisecondBuilder,
    expires: TimestampMillisecondBuilder,
    seller: Int64Builder,
    category: Int64Builder,
    extra: StringBuilder,
}

impl Columns for AuctionColumns {
    fn fields() -> Vec<Field> {
        vec![
            int64("id"),
            utf8("item_name"),
            utf8("description"),
            int64("initial_bid"),
            int64("reserve"),
            timestamp("date_time"),
            timestamp("expires"),
            int64("seller"),
            int64("category"),
            utf8("extra"),
        ]
    }

    fn with_capacity(rows: usize) -> Self {
        AuctionColumns {
            id: Int64Builder::with_capacity(rows),
            item_name: strings(rows, 20),
            description: strings(rows, 100),
            initial_bid: Int64Builder::with_capacity(rows),
            reserve: Int64Builder::with_capacity(rows),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            expires: TimestampMillisecondBuilder::with_capacity(rows),
            seller: Int64Builder::with_capacity(rows),
            category: Int64Builder::with_capacity(rows),
            extra: strings(rows, 380),
        }
    }

    fn push(&mut self, event: Event) {
        let Event::Auction(auction) = event else {
            unexpected(&event)
        };
        self.id.append_value(auction.id as i64);
        self.item_name.append_value(&auction.item_name);
        self.description.append_value(&auction.description);
        self.initial_bid.append_value(auction.initial_bid as i64);
        self.reserve.append_value(auction.reserve as i64);
        self.date_time.append_value(auction.date_time as i64);
        self.expires.append_value(auction.expires as i64);
        self.seller.append_value(auction.seller as i64);
        self.category.append_value(auction.category as i64);
        self.extra.append_value(&auction.extra);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.item_name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.initial_bid.finish()),
            Arc::new(self.reserve.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.expires.finish()),
            Arc::new(self.seller.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

struct PersonColumns {
    id: Int64Builder,
    name: StringBuilder,
    email_address: StringBuilder,
    credit_card: StringBuilder,
    city: StringBuilder,
    state: StringBuilder,
    date_time: TimestampMillisecondBuilder,
    extra: StringBuilder,
}

impl Columns for PersonColumns {
    fn fields() -> Vec<Field> {
        vec![
            int64("id"),
            utf8("name"),
            utf8("email_address"),
            utf8("credit_card"),
            utf8("city"),
            utf8("state"),
            timestamp("date_time"),
            utf8("extra"),
        ]
    }

    fn with_capacity(rows: usize) -> Self {
        PersonColumns {
            id: Int64Builder::with_capacity(rows),
            name: strings(rows, 12),
            email_address: strings(rows, 17),
            credit_card: strings(rows, 19),
            city: strings(rows, 8),
            state: strings(rows, 2),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            extra: strings(rows, 140),
        }
    }

    fn push(&mut self, event: Event) {
        let Event::Person(person) = event else {
            unexpected(&event)
        };
        self.id.append_value(person.id as i64);
        self.name.append_value(&person.name);
        self.email_address.append_value(&person.email_address);
        self.credit_card.append_value(&person.credit_card);
        self.city.append_value(&person.city);
        self.state.append_value(&person.state);
        self.date_time.append_value(person.date_time as i64);
        self.extra.append_value(&person.extra);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.email_address.finish()),
            Arc::new(self.credit_card.finish()),
            Arc::new(self.city.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int64Type, TimestampMillisecondType};

    const BASE_TIME: u64 = 1_700_000_000_000;

    fn spec(table: NexmarkTable, events: Option<u64>) -> NexmarkSource {
        NexmarkSource {
            events,
            table,
            base_time: BASE_TIME,
            event_rate: 10_000,
            active_people: 1_000,
            in_flight_auctions: 100,
        }
    }

    fn drain(source: &mut Nexmark, max_rows: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        loop {
            match source
                .next_chunk(Room::rows(max_rows), Duration::ZERO)
                .unwrap()
            {
                Chunk::Rows(batch) => out.push(batch),
                Chunk::Idle => panic!("the nexmark source never idles"),
                Chunk::End => return out,
            }
        }
    }

    fn rows(batches: &[RecordBatch]) -> usize {
        batches.iter().map(RecordBatch::num_rows).sum()
    }

    #[test]
    fn bid_schema_is_fixed_and_every_chunk_has_it() {
        let mut source = Nexmark::new(&spec(NexmarkTable::Bid, Some(1_000))).unwrap();
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let expected = Schema::new(vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("bidder", DataType::Int64, false),
            Field::new("price", DataType::Int64, false),
            Field::new("channel", DataType::Utf8, false),
            Field::new("url", DataType::Utf8, false),
            Field::new("date_time", ts, false),
            Field::new("extra", DataType::Utf8, false),
        ]);
        assert_eq!(*source.schema(), expected);
        for batch in drain(&mut source, 300) {
            assert_eq!(*batch.schema(), expected);
            assert!(batch.columns().iter().all(|c| c.null_count() == 0));
        }
    }

    #[test]
    fn auction_and_person_schemas_name_the_generator_fields() {
        for (table, names) in [
            (
                NexmarkTable::Auction,
                &[
                    "id",
                    "item_name",
                    "description",
                    "initial_bid",
                    "reserve",
                    "date_time",
                    "expires",
                    "seller",
                    "category",
                    "extra",
                ][..],
            ),
            (
                NexmarkTable::Person,
                &[
                    "id",
                    "name",
                    "email_address",
                    "credit_card",
                    "city",
                    "state",
                    "date_time",
                    "extra",
                ][..],
            ),
        ] {
            let mut source = Nexmark::new(&spec(table, Some(500))).unwrap();
            let schema = source.schema();
            let got: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(got, names);
            let batches = drain(&mut source, 7);
            assert!(rows(&batches) > 0);
            assert!(batches.iter().all(|b| b.schema() == schema));
        }
    }

    #[test]
    fn same_config_gives_identical_batches() {
        for table in [
            NexmarkTable::Bid,
            NexmarkTable::Auction,
            NexmarkTable::Person,
        ] {
            let mut a = Nexmark::new(&spec(table, Some(3_000))).unwrap();
            let first = drain(&mut a, 256);
            std::thread::sleep(std::time::Duration::from_millis(5));
            let mut b = Nexmark::new(&spec(table, Some(3_000))).unwrap();
            assert_eq!(first, drain(&mut b, 256));
        }
    }

    #[test]
    fn event_times_follow_the_rate_from_base_time() {
        let mut source = Nexmark::new(&spec(NexmarkTable::Bid, Some(20_000))).unwrap();
        let times: Vec<i64> = drain(&mut source, 4096)
            .iter()
            .flat_map(|b| {
                b.column(5)
                    .as_primitive::<TimestampMillisecondType>()
                    .values()
                    .to_vec()
            })
            .collect();
        // 20 000 events at 10 000 events/s span two seconds of event time.
        assert!(times.is_sorted());
        assert!(times[0] >= BASE_TIME as i64);
        assert!(*times.last().unwrap() <= BASE_TIME as i64 + 2_000);
        assert!(*times.last().unwrap() >= BASE_TIME as i64 + 1_990);
    }

    #[test]
    fn events_bound_counts_every_kind() {
        let count = |table| {
            let mut source = Nexmark::new(&spec(table, Some(1_234))).unwrap();
            let batches = drain(&mut source, 100);
            assert!(batches.iter().all(|b| b.num_rows() <= 100));
            assert!(matches!(
                source.next_chunk(Room::rows(100), Duration::ZERO).unwrap(),
                Chunk::End
            ));
            rows(&batches)
        };
        let (bids, auctions, people) = (
            count(NexmarkTable::Bid),
            count(NexmarkTable::Auction),
            count(NexmarkTable::Person),
        );
        // Of every 50 events, 1 is a person, 3 are auctions and 46 are bids.
        assert_eq!((people, auctions), (25, 75));
        assert_eq!(bids + auctions + people, 1_234);
    }

    #[test]
    fn unbounded_source_keeps_going_and_ids_keep_growing() {
        let mut source = Nexmark::new(&spec(NexmarkTable::Person, None)).unwrap();
        let mut last = i64::MIN;
        for _ in 0..5 {
            let Chunk::Rows(batch) = source
                .next_chunk(Room::rows(1_000), Duration::ZERO)
                .unwrap()
            else {
                panic!("an unbounded source ended");
            };
            assert_eq!(batch.num_rows(), 1_000);
            let ids = batch.column(0).as_primitive::<Int64Type>();
            assert!(ids.value(0) > last);
            last = ids.value(ids.len() - 1);
        }
    }

    #[test]
    fn zero_event_rate_is_rejected() {
        let mut bad = spec(NexmarkTable::Bid, None);
        bad.event_rate = 0;
        let error = Nexmark::new(&bad).unwrap_err().to_string();
        assert!(error.contains("event_rate"), "{error}");
    }
}
