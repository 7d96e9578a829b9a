// Mask e-mail addresses and payment card numbers in string columns, exactly
// as the Rust `pii-redact` plugin does. Config: `columns` (comma-separated
// utf8 or binary columns; default: every utf8 column).

import { Column, Fatal, counterAdd, transform } from "sluice";

const isDigit = (b) => b >= 0x30 && b <= 0x39;
const isAlnum = (b) => isDigit(b) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const isLocal = (b) => isAlnum(b) || b === 0x2e || b === 0x5f || b === 0x25 || b === 0x2b || b === 0x2d;
const isDomain = (b) => isAlnum(b) || b === 0x2e || b === 0x2d;
const STARS = Uint8Array.of(0x2a, 0x2a, 0x2a);
const CARD = new TextEncoder().encode("****-****-****-");

/** [start, end] of an e-mail address whose `@` is at `at`, or null. */
function emailAround(bytes, at) {
  let start = at;
  while (start > 0 && isLocal(bytes[start - 1])) start--;
  let end = at + 1;
  while (end < bytes.length && isDomain(bytes[end])) end++;
  while (end > at + 1 && bytes[end - 1] === 0x2e) end--;
  let dot = at + 1;
  while (dot < end && bytes[dot] !== 0x2e) dot++;
  if (dot === end || start >= at || dot === at + 1 || dot + 1 >= end) return null;
  return [start, end];
}

function luhn(digits, n) {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let d = digits[n - 1 - i] - 0x30;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

const digits = new Uint8Array(19);

/** End of a card number starting at `start` (its last four digits are
 * `digits[n-4..n]`), or -1. */
function cardAt(bytes, start) {
  let n = 0;
  let i = start;
  let end = start;
  while (i < bytes.length) {
    const b = bytes[i];
    if (isDigit(b)) {
      if (n === 19) return -1;
      digits[n++] = b;
      end = ++i;
    } else if ((b === 0x20 || b === 0x2d) && i + 1 < bytes.length && isDigit(bytes[i + 1]) && n > 0) {
      i++;
    } else {
      break;
    }
  }
  if (end < bytes.length && isAlnum(bytes[end])) return -1;
  if (n < 13 || n > 19 || !luhn(digits, n)) return -1;
  CARD_LAST4.set(digits.subarray(n - 4, n));
  return end;
}
const CARD_LAST4 = new Uint8Array(4);

/** `bytes` with e-mails and card numbers masked, and how many. */
function redact(bytes) {
  const parts = [];
  let count = 0;
  let copied = 0;
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    if (b === 0x40) {
      const span = emailAround(bytes, i);
      if (span !== null && span[0] >= copied) {
        parts.push(bytes.subarray(copied, span[0] + 1), STARS, bytes.subarray(i, span[1]));
        copied = i = span[1];
        count++;
        continue;
      }
    } else if (isDigit(b) && (i === 0 || !isAlnum(bytes[i - 1]))) {
      const end = cardAt(bytes, i);
      if (end >= 0) {
        parts.push(bytes.subarray(copied, i), CARD, CARD_LAST4.slice());
        copied = i = end;
        count++;
        continue;
      }
    }
    i++;
  }
  if (count === 0) return [bytes, 0];
  parts.push(bytes.subarray(copied));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return [out, count];
}

export const redactBatch = transform((batch, config) => {
  const wanted = config.list("columns");
  wanted.forEach((name) => batch.column(name));
  let total = 0;
  for (const column of batch.columns) {
    const selected = wanted.length ? wanted.includes(column.name) : column.type === "utf8";
    if (!selected) continue;
    if (column.type !== "utf8" && column.type !== "binary") {
      throw new Fatal(`column \`${column.name}\` is ${column.type}, not utf8 or binary`);
    }
    const values = [];
    for (let i = 0; i < column.length; i++) {
      if (column.isNull(i)) {
        values.push(null);
        continue;
      }
      const [masked, count] = redact(column.bytesAt(i));
      total += count;
      values.push(masked);
    }
    batch = batch.replace(Column.ofBytes(column.name, column.type, values, { nullable: column.nullable }));
  }
  counterAdd("redactions", total);
  return batch;
}, { reads: (config) => (config.list("columns").length ? config.list("columns") : null) });
