//! Test guest: tries to reach the filesystem, the environment, the network
//! and the clock, and returns one row per probe saying what it saw.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_sdk::arrow_array::{ArrayRef, StringArray};
use sluice_sdk::{RecordBatch, Result, transform};

/// Ignores its input; returns columns `probe` and `outcome`.
#[transform]
pub fn probe(_batch: RecordBatch) -> Result<RecordBatch> {
    let outcomes: Vec<(&str, String)> = vec![
        (
            "read_dir /",
            match std::fs::read_dir("/") {
                Ok(entries) => format!("listed {} entries", entries.count()),
                Err(e) => format!("denied: {e}"),
            },
        ),
        (
            "read /etc/passwd",
            match std::fs::read("/etc/passwd") {
                Ok(bytes) => format!("read {} bytes", bytes.len()),
                Err(e) => format!("denied: {e}"),
            },
        ),
        (
            "env vars",
            format!("{} variables", std::env::vars().count()),
        ),
        (
            "tcp connect 127.0.0.1:22",
            match std::net::TcpStream::connect("127.0.0.1:22") {
                Ok(_) => "connected".into(),
                Err(e) => format!("denied: {e}"),
            },
        ),
        (
            "wall clock",
            match SystemTime::now().duration_since(UNIX_EPOCH) {
                Ok(since) => format!("{} s since epoch", since.as_secs()),
                Err(e) => format!("denied: {e}"),
            },
        ),
    ];
    let (probes, results): (Vec<&str>, Vec<String>) = outcomes.into_iter().unzip();
    Ok(RecordBatch::try_from_iter(vec![
        ("probe", Arc::new(StringArray::from(probes)) as ArrayRef),
        ("outcome", Arc::new(StringArray::from(results)) as ArrayRef),
    ])?)
}
