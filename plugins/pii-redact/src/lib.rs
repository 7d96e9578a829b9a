//! Mask e-mail addresses and payment card numbers in string columns.
//!
//! `jane.doe@example.com` becomes `j***@example.com`; a card number (13–19
//! digits, optionally grouped by spaces or dashes, passing the Luhn check)
//! becomes `****-****-****-4242`, keeping the last four digits.
//!
//! Config: `columns` (comma-separated utf8 or binary columns; default:
//! every utf8 column). Binary columns (raw Kafka payloads, say) are scanned
//! as ASCII-compatible bytes. With `columns`, only those cross into the
//! plugin; the others stay with the host.

use std::sync::Arc;

use sluice_sdk::arrow_array::builder::{BinaryBuilder, StringBuilder};
use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::{Array, ArrayRef, BinaryArray, StringArray};
use sluice_sdk::arrow_schema::DataType;
use sluice_sdk::{Config, Error, Output, RecordBatch, Result, Transform, counter_add};

/// The plugin: its configuration.
#[derive(Debug)]
pub struct PiiRedact(Config);

impl Transform for PiiRedact {
    fn init(config: &Config) -> Result<Self> {
        Ok(PiiRedact(config.clone()))
    }

    /// The configured columns; every column without them (any utf8 one may
    /// be redacted).
    fn reads(&self) -> Option<Vec<String>> {
        let wanted = self.0.list("columns");
        (!wanted.is_empty()).then(|| wanted.into_iter().map(str::to_owned).collect())
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Output> {
        redact(batch, &self.0).map(Output::new)
    }
}

sluice_sdk::export_transform!(PiiRedact);

/// Redact PII in the configured string or binary columns.
pub fn redact(batch: RecordBatch, config: &Config) -> Result<RecordBatch> {
    let wanted = config.list("columns");
    for name in &wanted {
        if batch.column_by_name(name).is_none() {
            return Err(Error::fatal(format!("no column `{name}` in the batch")));
        }
    }
    let schema = batch.schema();
    let mut redactions = 0u64;
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let selected = if wanted.is_empty() {
                field.data_type() == &DataType::Utf8
            } else {
                wanted.contains(&field.name().as_str())
            };
            if !selected {
                return Ok(column.clone());
            }
            let (array, count): (ArrayRef, u64) = match field.data_type() {
                DataType::Utf8 => {
                    let (array, count) = redact_strings(column.as_string::<i32>());
                    (Arc::new(array), count)
                }
                DataType::Binary => {
                    let (array, count) = redact_binary(column.as_binary::<i32>());
                    (Arc::new(array), count)
                }
                other => {
                    return Err(Error::fatal(format!(
                        "column `{}` is {other}, not utf8 or binary",
                        field.name()
                    )));
                }
            };
            redactions += count;
            Ok(array)
        })
        .collect::<Result<Vec<_>>>()?;
    counter_add("redactions", redactions);
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Redact every value of `strings`; returns the new array and the number of
/// redactions made.
pub fn redact_strings(strings: &StringArray) -> (StringArray, u64) {
    let mut builder = StringBuilder::with_capacity(strings.len(), strings.values().len());
    let mut scratch = Vec::new();
    let mut count = 0;
    for value in strings.iter() {
        match value {
            None => builder.append_null(),
            Some(text) => {
                scratch.clear();
                count += redact_bytes(text.as_bytes(), &mut scratch);
                // SAFETY: `redact_bytes` copies the input in pieces cut only
                // next to ASCII bytes and inserts only ASCII, so valid UTF-8
                // in gives valid UTF-8 out.
                builder.append_value(unsafe { std::str::from_utf8_unchecked(&scratch) });
            }
        }
    }
    (builder.finish(), count)
}

/// Redact every value of `values` (for example raw Kafka payloads).
pub fn redact_binary(values: &BinaryArray) -> (BinaryArray, u64) {
    let mut builder = BinaryBuilder::with_capacity(values.len(), values.values().len());
    let mut scratch = Vec::new();
    let mut count = 0;
    for value in values.iter() {
        match value {
            None => builder.append_null(),
            Some(bytes) => {
                scratch.clear();
                count += redact_bytes(bytes, &mut scratch);
                builder.append_value(&scratch);
            }
        }
    }
    (builder.finish(), count)
}

/// Append `input` to `out` with e-mails and card numbers masked; returns
/// how many were masked. Works on any ASCII-compatible encoding.
pub fn redact_bytes(input: &[u8], out: &mut Vec<u8>) -> u64 {
    let mut count = 0;
    let mut copied = 0;
    let mut i = 0;
    loop {
        // Skip to the next byte that could start a card number or e-mail.
        i = next_candidate(input, i);
        if i >= input.len() {
            break;
        }
        if input[i] == b'@' {
            if let Some((start, end)) = email_around(input, i)
                && start >= copied
            {
                out.extend_from_slice(&input[copied..=start]);
                out.extend_from_slice(b"***");
                out.extend_from_slice(&input[i..end]);
                copied = end;
                i = end;
                count += 1;
                continue;
            }
        } else if input[i].is_ascii_digit()
            && (i == 0 || !input[i - 1].is_ascii_alphanumeric())
            && let Some((end, last4)) = card_at(input, i)
        {
            out.extend_from_slice(&input[copied..i]);
            out.extend_from_slice(b"****-****-****-");
            out.extend_from_slice(&last4);
            copied = end;
            i = end;
            count += 1;
            continue;
        }
        i += 1;
    }
    out.extend_from_slice(&input[copied..]);
    count
}

/// Bytes of a word, all ones.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether `b` could start a card number (a digit) or sit in an e-mail's
/// `@`.
fn is_candidate(b: u8) -> bool {
    b == b'@' || b.is_ascii_digit()
}

/// A word whose bytes have their high bit set where the byte of `word` is a
/// candidate (SWAR: eight bytes per step, on any target, Wasm included).
fn candidates(word: u64) -> u64 {
    // Per-byte sums stay under 0x100: no carry crosses into the next byte.
    let low7 = word & !HIGHS;
    let at_least_0 = low7 + ONES * (0x80 - u64::from(b'0'));
    let above_9 = low7 + ONES * (0x80 - u64::from(b'9') - 1);
    let digit = at_least_0 & !above_9;
    let not_at = (low7 ^ (ONES * u64::from(b'@'))) + ONES * 0x7f;
    (digit | !not_at) & !word & HIGHS
}

/// The index of the first candidate byte at or after `from`, or the length.
fn next_candidate(input: &[u8], from: usize) -> usize {
    let mut i = from;
    while i + 8 <= input.len() {
        let word = u64::from_le_bytes(input[i..i + 8].try_into().expect("8 bytes"));
        let found = candidates(word);
        if found != 0 {
            return i + found.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    while i < input.len() && !is_candidate(input[i]) {
        i += 1;
    }
    i
}

fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// The span of an e-mail address whose `@` is at `at`: a non-empty local
/// part, and a domain with a dot that neither starts nor ends it.
fn email_around(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > 0 && is_local_char(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < bytes.len() && is_domain_char(bytes[end]) {
        end += 1;
    }
    while end > at + 1 && bytes[end - 1] == b'.' {
        end -= 1;
    }
    let domain = &bytes[at + 1..end];
    let dot = domain.iter().position(|&b| b == b'.')?;
    (start < at && dot > 0 && dot + 1 < domain.len()).then_some((start, end))
}

/// A card number starting at `start`: 13–19 digits, single spaces or dashes
/// between groups, Luhn-valid, not followed by another digit or letter.
/// Returns its end and last four digits.
fn card_at(bytes: &[u8], start: usize) -> Option<(usize, [u8; 4])> {
    let mut digits = [0u8; 19];
    let mut n = 0;
    let mut i = start;
    let mut end = start;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            if n == digits.len() {
                return None;
            }
            digits[n] = b;
            n += 1;
            i += 1;
            end = i;
        } else if (b == b' ' || b == b'-')
            && i + 1 < bytes.len()
            && bytes[i + 1].is_ascii_digit()
            && n > 0
        {
            i += 1;
        } else {
            break;
        }
    }
    if end < bytes.len() && bytes[end].is_ascii_alphanumeric() {
        return None;
    }
    if !(13..=19).contains(&n) || !luhn(&digits[..n]) {
        return None;
    }
    Some((
        end,
        [digits[n - 4], digits[n - 3], digits[n - 2], digits[n - 1]],
    ))
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_scan_finds_exactly_the_scalar_candidates() {
        for b in 0..=255u8 {
            for position in 0..8 {
                let mut word = [b'x'; 8];
                word[position] = b;
                let expected = if is_candidate(b) { position } else { 8 };
                assert_eq!(
                    next_candidate(&word, 0),
                    expected,
                    "byte {b:#x} at {position}"
                );
                let mut padded = word.to_vec();
                padded.extend_from_slice(b"yy@");
                let expected = if is_candidate(b) { position } else { 10 };
                assert_eq!(
                    next_candidate(&padded, 0),
                    expected,
                    "byte {b:#x} at {position}"
                );
            }
        }
    }

    fn redacted(text: &str) -> String {
        let mut out = Vec::new();
        redact_bytes(text.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn masks_emails_keeping_domain() {
        assert_eq!(
            redacted("contact jane.doe@example.com now"),
            "contact j***@example.com now"
        );
        assert_eq!(
            redacted("a@b.co, x_y@mail.example.org."),
            "a***@b.co, x***@mail.example.org."
        );
    }

    #[test]
    fn leaves_non_emails() {
        for text in [
            "user@localhost",
            "@example.com",
            "price @ 5.00",
            "no pii here",
        ] {
            assert_eq!(redacted(text), text);
        }
    }

    #[test]
    fn masks_luhn_valid_cards_only() {
        assert_eq!(
            redacted("card 4111 1111 1111 1111 ok"),
            "card ****-****-****-1111 ok"
        );
        assert_eq!(redacted("4242-4242-4242-4242"), "****-****-****-4242");
        // Fails Luhn: an order number, not a card.
        assert_eq!(redacted("order 4111111111111112"), "order 4111111111111112");
        // Too short.
        assert_eq!(redacted("tel 555 1234"), "tel 555 1234");
    }

    #[test]
    fn redacts_selected_columns_and_keeps_nulls() {
        use sluice_sdk::arrow_schema::{Field, Schema};
        let schema = Schema::new(vec![
            Field::new("email", DataType::Utf8, true),
            Field::new("note", DataType::Utf8, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("bob@corp.io"), None])),
                Arc::new(StringArray::from(vec![Some("kept bob@corp.io"), Some("x")])),
            ],
        )
        .unwrap();
        let out = redact(batch, &Config::new([("columns", "email")])).unwrap();
        let email = out.column(0).as_string::<i32>();
        assert_eq!(email.value(0), "b***@corp.io");
        assert!(email.is_null(1));
        assert_eq!(
            out.column(1).as_string::<i32>().value(0),
            "kept bob@corp.io"
        );
    }

    #[test]
    fn redacts_binary_payloads_and_keeps_other_bytes() {
        use sluice_sdk::arrow_schema::{Field, Schema};
        let payload: &[u8] = b"{\"email\":\"ann@x.org\",\"blob\":\"\xff\xfe\"}";
        let schema = Schema::new(vec![Field::new("value", DataType::Binary, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(BinaryArray::from(vec![Some(payload), None]))],
        )
        .unwrap();
        let out = redact(batch, &Config::new([("columns", "value")])).unwrap();
        let values = out.column(0).as_binary::<i32>();
        assert_eq!(
            values.value(0),
            b"{\"email\":\"a***@x.org\",\"blob\":\"\xff\xfe\"}"
        );
        assert!(values.is_null(1));
    }
}
