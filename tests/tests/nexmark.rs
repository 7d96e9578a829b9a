//! `sluice run` with the built-in `nexmark` source through the Nexmark
//! query plugins q0, q1 and q2, checked row by row against a reference: the
//! same events generated here with the `nexmark` crate (unfiltered, every
//! kind, bids picked out) and queried by plain Rust.

use nexmark::config::NexmarkConfig;
use nexmark::event::Bid;
use serde_json::{Value, json};
use sluice_e2e::{assert_rows_equal, iso_millis, nexmark_bids, read_json_lines, run_job};
use sluice_plugin_artifacts as artifacts;

/// Events of every kind the source generates; about 92% are bids.
const EVENTS: usize = 20_000;
/// Event time of the first event, ms since the Unix epoch (not 0, so dates
/// and milliseconds both show in the output).
const BASE_TIME: u64 = 1_700_000_000_123;
/// The knobs the job sets away from their defaults, so a source that
/// ignored them would give other rows.
const EVENT_RATE: usize = 40_000;
const ACTIVE_PEOPLE: usize = 300;
const IN_FLIGHT_AUCTIONS: usize = 40;

/// Run the Nexmark bid stream through `plugin` into a JSON-lines file and
/// return its rows.
fn run_query(plugin: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"
[source]
type = "nexmark"
table = "bid"
events = {EVENTS}
base_time = {BASE_TIME}
event_rate = {EVENT_RATE}
active_people = {ACTIVE_PEOPLE}
in_flight_auctions = {IN_FLIGHT_AUCTIONS}

[trigger]
max_rows = 1500

[[transform]]
plugin = {plugin:?}

[sink]
type = "file"
path = "out.jsonl"
"#
        ),
    )
    .unwrap();
    let output = run_job(&job, &dir.path().join("cache"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    read_json_lines(&dir.path().join("out.jsonl"))
}

/// The bids among the first [`EVENTS`] events, straight from the generator.
fn reference_bids() -> Vec<Bid> {
    let config = NexmarkConfig {
        base_time: BASE_TIME,
        first_rate: EVENT_RATE,
        next_rate: EVENT_RATE,
        active_people: ACTIVE_PEOPLE,
        in_flight_auctions: IN_FLIGHT_AUCTIONS,
        ..NexmarkConfig::default()
    };
    nexmark_bids(config, EVENTS)
}

fn iso(ms: u64) -> String {
    iso_millis(i64::try_from(ms).unwrap())
}

#[test]
fn iso_matches_known_dates() {
    assert_eq!(iso(0), "1970-01-01T00:00:00");
    assert_eq!(iso(951_782_400_007), "2000-02-29T00:00:00.007");
    assert_eq!(iso(BASE_TIME), "2023-11-14T22:13:20.123");
}

#[test]
fn q0_passes_every_bid_through() {
    let want: Vec<Value> = reference_bids()
        .into_iter()
        .map(|bid| {
            json!({
                "auction": bid.auction,
                "bidder": bid.bidder,
                "price": bid.price,
                "channel": bid.channel,
                "url": bid.url,
                "date_time": iso(bid.date_time),
                "extra": bid.extra,
            })
        })
        .collect();
    assert!(want.len() > 18_000);
    assert_rows_equal(&run_query(artifacts::NEXMARK_Q0), &want);
}

#[test]
fn q1_converts_every_price_to_euros() {
    let want: Vec<Value> = reference_bids()
        .into_iter()
        .map(|bid| {
            json!({
                "auction": bid.auction,
                "bidder": bid.bidder,
                "price": bid.price * 908 / 1000,
                "date_time": iso(bid.date_time),
            })
        })
        .collect();
    assert_rows_equal(&run_query(artifacts::NEXMARK_Q1), &want);
}

#[test]
fn q2_keeps_the_bids_on_every_123rd_auction() {
    let want: Vec<Value> = reference_bids()
        .into_iter()
        .filter(|bid| bid.auction % 123 == 0)
        .map(|bid| json!({ "auction": bid.auction, "price": bid.price }))
        .collect();
    assert!(!want.is_empty(), "the reference selects no bid");
    assert_rows_equal(&run_query(artifacts::NEXMARK_Q2), &want);
}
