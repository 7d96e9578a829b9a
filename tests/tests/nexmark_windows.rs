//! The windowed Nexmark queries (q5 hopping, q7 tumbling, q11 session) run
//! by `sluice run` as `[aggregate]` Wasm plugins, checked against a
//! straightforward reference over the same generated bids.

use std::collections::{BTreeMap, HashMap};

use nexmark::config::NexmarkConfig;
use nexmark::event::Bid;
use serde_json::{Value, json};
use sluice_e2e::{assert_rows_equal, iso_millis, nexmark_bids, run_aggregate_job};
use sluice_plugin_artifacts as artifacts;

/// Events of every kind; about 92% are bids.
const EVENTS: usize = 30_000;
const BASE_TIME: u64 = 1_700_000_000_000;
/// 30k events at 10k/s: three seconds of event time.
const EVENT_RATE: usize = 10_000;

/// Run the bid stream through the aggregate `plugin` with `aggregate`
/// settings; returns the results and the late side output.
fn run_aggregate(plugin: &str, aggregate: &str) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let source = format!(
        "[source]\ntype = \"nexmark\"\nevents = {EVENTS}\nbase_time = {BASE_TIME}\nevent_rate = {EVENT_RATE}\n\n[trigger]\nmax_rows = 1000\n"
    );
    let run = run_aggregate_job(
        dir.path(),
        &source,
        plugin,
        &format!("event_time = \"date_time\"\n{aggregate}"),
    );
    (run.results, run.late)
}

fn bids() -> Vec<Bid> {
    let config = NexmarkConfig {
        base_time: BASE_TIME,
        first_rate: EVENT_RATE,
        next_rate: EVENT_RATE,
        ..NexmarkConfig::default()
    };
    nexmark_bids(config, EVENTS)
}

fn iso(ms: i64) -> String {
    iso_millis(ms)
}

/// Like [`assert_rows_equal`], and the reference must have rows.
fn assert_rows_match(got: &[Value], want: &[Value]) {
    assert!(
        !want.is_empty(),
        "the reference has no rows: the test checks nothing"
    );
    assert_rows_equal(got, want);
}

fn time(bid: &Bid) -> i64 {
    i64::try_from(bid.date_time).unwrap()
}

#[test]
fn q5_hot_items_per_hopping_window_match_the_reference() {
    let (size, slide) = (2_000, 500);
    let (got, late) = run_aggregate(
        artifacts::NEXMARK_Q5,
        r#"columns = ["auction"]
window = { type = "hopping", size = "2s", slide = "500ms" }"#,
    );
    // (end, start) → auction → bids.
    let mut counts: BTreeMap<(i64, i64), BTreeMap<i64, i64>> = BTreeMap::new();
    for bid in bids() {
        let t = time(&bid);
        let last_start = t - t.rem_euclid(slide);
        for start in (0..size / slide).map(|i| last_start - i * slide) {
            *counts
                .entry((start + size, start))
                .or_default()
                .entry(bid.auction as i64)
                .or_default() += 1;
        }
    }
    let mut want = Vec::new();
    for ((end, start), auctions) in counts {
        let most = *auctions.values().max().unwrap();
        for (auction, num) in auctions.into_iter().filter(|(_, n)| *n == most) {
            want.push(json!({
                "window_start": iso(start), "window_end": iso(end),
                "auction": auction, "num": num,
            }));
        }
    }
    assert!(late.is_empty(), "in-order bids were side-output as late");
    assert_rows_match(&got, &want);
}

#[test]
fn q7_highest_bid_per_tumbling_window_matches_the_reference() {
    let size = 1_000;
    let (got, late) = run_aggregate(
        artifacts::NEXMARK_Q7,
        r#"window = { type = "tumbling", size = "1s" }"#,
    );
    let mut windows: BTreeMap<i64, Vec<Bid>> = BTreeMap::new();
    for bid in bids() {
        let t = time(&bid);
        windows.entry(t - t.rem_euclid(size)).or_default().push(bid);
    }
    let mut want = Vec::new();
    for (start, bids) in windows {
        let top = bids.iter().map(|b| b.price).max().unwrap();
        for bid in bids.iter().filter(|b| b.price == top) {
            want.push(json!({
                "window_start": iso(start), "window_end": iso(start + size),
                "auction": bid.auction, "bidder": bid.bidder, "price": bid.price,
                "date_time": iso(time(bid)),
            }));
        }
    }
    assert!(late.is_empty(), "in-order bids were side-output as late");
    assert_rows_match(&got, &want);
}

#[test]
fn q11_bids_per_user_session_match_the_reference() {
    let gap = 100;
    let (got, late) = run_aggregate(
        artifacts::NEXMARK_Q11,
        r#"key = ["bidder"]
columns = []
window = { type = "session", gap = "100ms" }"#,
    );
    let mut by_bidder: HashMap<i64, Vec<i64>> = HashMap::new();
    for bid in bids() {
        by_bidder
            .entry(bid.bidder as i64)
            .or_default()
            .push(time(&bid));
    }
    // (end, start, bidder) → bids in the session.
    let mut sessions: BTreeMap<(i64, i64, i64), i64> = BTreeMap::new();
    for (bidder, mut times) in by_bidder {
        times.sort_unstable();
        let (mut start, mut last, mut count) = (times[0], times[0], 0);
        for t in times {
            if t > last + gap {
                sessions.insert((last + gap, start, bidder), count);
                (start, count) = (t, 0);
            }
            last = t;
            count += 1;
        }
        sessions.insert((last + gap, start, bidder), count);
    }
    let want: Vec<Value> = sessions
        .into_iter()
        .map(|((end, start, bidder), count)| {
            json!({
                "window_start": iso(start), "window_end": iso(end),
                "bidder": bidder, "bid_count": count,
            })
        })
        .collect();
    assert!(late.is_empty(), "in-order bids were side-output as late");
    assert_rows_match(&got, &want);
}
