"""Mask e-mail addresses and payment card numbers in string columns, exactly
as the Rust `pii-redact` plugin does.

`jane.doe@example.com` becomes `j***@example.com`; a card number (13-19
digits, optionally grouped by single spaces or dashes, passing the Luhn
check) becomes `****-****-****-4242`.

Config: `columns` (comma-separated utf8 or binary columns; default: every
utf8 column).
"""

import re

import sluice

CANDIDATE = re.compile(rb"[@0-9]")
LOCAL = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
DOMAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
DIGITS = frozenset(b"0123456789")


def email_around(data, at):
    """The span of an e-mail address whose `@` is at `at`, or None."""
    start = at
    while start > 0 and data[start - 1] in LOCAL:
        start -= 1
    end = at + 1
    while end < len(data) and data[end] in DOMAIN:
        end += 1
    while end > at + 1 and data[end - 1] == 0x2E:  # '.'
        end -= 1
    dot = data.find(b".", at + 1, end)
    if dot < 0 or start >= at or dot == at + 1 or dot + 1 >= end:
        return None
    return start, end


def luhn(digits):
    total = 0
    for i, d in enumerate(reversed(digits)):
        d -= 0x30
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def card_at(data, start):
    """(end, last four digits) of a card number starting at `start`, or None."""
    digits = []
    i = end = start
    n = len(data)
    while i < n:
        b = data[i]
        if b in DIGITS:
            if len(digits) == 19:
                return None
            digits.append(b)
            i += 1
            end = i
        elif (b == 0x20 or b == 0x2D) and i + 1 < n and data[i + 1] in DIGITS and digits:
            i += 1
        else:
            break
    if end < n and data[end] in ALNUM:
        return None
    if not 13 <= len(digits) <= 19 or not luhn(digits):
        return None
    return end, bytes(digits[-4:])


def redact(data):
    """`data` (bytes) with e-mails and card numbers masked, and the count."""
    out = []
    count = copied = i = 0
    while True:
        found = CANDIDATE.search(data, i)
        if found is None:
            break
        i = found.start()
        if data[i] == 0x40:  # '@'
            span = email_around(data, i)
            if span is not None and span[0] >= copied:
                start, end = span
                out += (data[copied:start + 1], b"***", data[i:end])
                copied = i = end
                count += 1
                continue
        elif i == 0 or data[i - 1] not in ALNUM:
            card = card_at(data, i)
            if card is not None:
                end, last4 = card
                out += (data[copied:i], b"****-****-****-", last4)
                copied = i = end
                count += 1
                continue
        i += 1
    if not out:
        return data, 0
    out.append(data[copied:])
    return b"".join(out), count


@sluice.transform(reads=lambda config: config.list("columns") or None)
def redact_batch(batch, config):
    wanted = config.list("columns")
    for name in wanted:
        batch.column(name)  # a fatal error names a missing column
    total = 0
    for column in batch.columns:
        selected = column.name in wanted if wanted else column.type == "utf8"
        if not selected:
            continue
        if column.type not in ("utf8", "binary"):
            raise sluice.Fatal(f"column `{column.name}` is {column.type}, not utf8 or binary")
        text = column.type == "utf8"
        values = []
        for value in column.values:
            if value is None:
                values.append(None)
                continue
            masked, count = redact(value.encode() if text else value)
            total += count
            values.append(masked.decode() if text else masked)
        batch = batch.replace(column.name, values)
    sluice.counter_add("redactions", total)
    return batch
