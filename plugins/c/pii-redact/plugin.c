/* Mask e-mail addresses and payment card numbers in string columns, exactly
 * as the Rust `pii-redact` plugin does. Config: `columns` (comma-separated
 * utf8 or binary columns; default: every utf8 column). */

#include <stdlib.h>
#include <string.h>

#include "sluice.h"

static bool is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
static bool is_alnum(uint8_t b) { return is_digit(b) || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z'); }
static bool is_local(uint8_t b) { return is_alnum(b) || b == '.' || b == '_' || b == '%' || b == '+' || b == '-'; }
static bool is_domain(uint8_t b) { return is_alnum(b) || b == '.' || b == '-'; }

/* The span [*start, *end) of an e-mail address whose `@` is at `at`. */
static bool email_around(const uint8_t *s, size_t len, size_t at, size_t *start, size_t *end) {
    size_t from = at, to = at + 1;
    while (from > 0 && is_local(s[from - 1])) from--;
    while (to < len && is_domain(s[to])) to++;
    while (to > at + 1 && s[to - 1] == '.') to--;
    size_t dot = at + 1;
    while (dot < to && s[dot] != '.') dot++;
    if (dot == to || from >= at || dot == at + 1 || dot + 1 >= to) return false;
    *start = from;
    *end = to;
    return true;
}

static bool luhn(const uint8_t *digits, size_t n) {
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = digits[n - 1 - i] - '0';
        if (i % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return sum % 10 == 0;
}

/* A card number at `start`: its end and last four digits. */
static bool card_at(const uint8_t *s, size_t len, size_t start, size_t *end, uint8_t last4[4]) {
    uint8_t digits[19];
    size_t n = 0, i = start, stop = start;
    while (i < len) {
        uint8_t b = s[i];
        if (is_digit(b)) {
            if (n == sizeof digits) return false;
            digits[n++] = b;
            stop = ++i;
        } else if ((b == ' ' || b == '-') && i + 1 < len && is_digit(s[i + 1]) && n > 0) {
            i++;
        } else {
            break;
        }
    }
    if (stop < len && is_alnum(s[stop])) return false;
    if (n < 13 || n > 19 || !luhn(digits, n)) return false;
    memcpy(last4, digits + n - 4, 4);
    *end = stop;
    return true;
}

static void append(uint8_t *out, size_t *at, const void *bytes, size_t len) {
    memcpy(out + *at, bytes, len);
    *at += len;
}

/* `s` redacted into `out` (room for len + 16 bytes per 13 input bytes is
 * enough: a mask never outgrows its input by more); returns the count. */
static uint64_t redact(const uint8_t *s, size_t len, uint8_t *out, size_t *out_len) {
    uint64_t count = 0;
    size_t copied = 0, at = 0, i = 0;
    while (i < len) {
        size_t start, end;
        uint8_t last4[4];
        if (s[i] == '@') {
            if (email_around(s, len, i, &start, &end) && start >= copied) {
                append(out, &at, s + copied, start + 1 - copied);
                append(out, &at, "***", 3);
                append(out, &at, s + i, end - i);
                copied = i = end;
                count++;
                continue;
            }
        } else if (is_digit(s[i]) && (i == 0 || !is_alnum(s[i - 1])) && card_at(s, len, i, &end, last4)) {
            append(out, &at, s + copied, i - copied);
            append(out, &at, "****-****-****-", 15);
            append(out, &at, last4, 4);
            copied = i = end;
            count++;
            continue;
        }
        i++;
    }
    append(out, &at, s + copied, len - copied);
    *out_len = at;
    return count;
}

static bool listed(const char *list, const char *name) {
    sluice_bytes item;
    while (sluice_list_next(&list, &item)) {
        if (item.len == strlen(name) && memcmp(item.ptr, name, item.len) == 0) return true;
    }
    return false;
}

static bool redact_batch(sluice_batch *batch, const sluice_config *config) {
    const char *wanted = sluice_config_get(config, "columns");
    const char *cursor = wanted;
    sluice_bytes item;
    bool any = false;
    while (sluice_list_next(&cursor, &item)) {
        char name[256];
        size_t n = item.len < sizeof name - 1 ? item.len : sizeof name - 1;
        memcpy(name, item.ptr, n);
        name[n] = 0;
        if (!sluice_column_by_name(batch, name)) return sluice_fatal("no column `%s` in the batch", name);
        any = true;
    }
    uint64_t total = 0;
    for (size_t c = 0; c < sluice_num_columns(batch); c++) {
        const sluice_column *column = sluice_column_at(batch, c);
        if (any ? !listed(wanted, column->name) : column->type != SLUICE_UTF8) continue;
        if (column->type != SLUICE_UTF8 && column->type != SLUICE_BINARY) {
            return sluice_fatal("column `%s` is not utf8 or binary", column->name);
        }
        size_t rows = column->len;
        sluice_bytes *values = malloc((rows ? rows : 1) * sizeof *values);
        /* A mask adds at most 3 bytes per e-mail (2+ input bytes) and
         * 2 per card number (13+ input bytes): twice the input is room. */
        size_t room = 2 * (size_t)(column->data.var.offsets[rows] - column->data.var.offsets[0]) + 1;
        uint8_t *out = malloc(room);
        if (!values || !out) abort();
        size_t at = 0;
        for (size_t r = 0; r < rows; r++) {
            sluice_bytes value = sluice_value(column, r);
            if (!value.ptr) {
                values[r] = value;
                continue;
            }
            size_t written;
            total += redact(value.ptr, value.len, out + at, &written);
            values[r] = (sluice_bytes){out + at, written};
            at += written;
        }
        bool ok = sluice_replace_values(batch, column, values);
        free(values);
        free(out);
        if (!ok) return false;
    }
    sluice_counter_add("redactions", total);
    return true;
}

SLUICE_TRANSFORM(redact_batch)
