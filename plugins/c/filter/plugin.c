/* Keep the rows where `column OP value` holds, exactly as the Rust `filter`
 * plugin does. Config: `column`, `op` (eq, ne, lt, le, gt, ge, is_null,
 * is_not_null) and `value` (parsed as the column's type). Null never matches
 * a comparison; floats compare in IEEE total order, as Arrow does. */

#include <stdlib.h>
#include <string.h>

#include "sluice.h"

static const char *const NAMES[] = {
    "Boolean", "Int32", "Int64", "UInt32", "UInt64", "Float32", "Float64", "Utf8",
    "Binary", "Timestamp", "List", "Struct",
};

/* A comparable form of one value: integers widened, floats as their
 * total-order key, strings as bytes. */
typedef struct {
    __int128 number;
    sluice_bytes text;
} key;

static int64_t total_order64(double x) {
    int64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits ^ (int64_t)((uint64_t)(bits >> 63) >> 1);
}

static int32_t total_order32(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits ^ (int32_t)((uint32_t)(bits >> 31) >> 1);
}

/* Parse `text` like Rust's integer FromStr: an optional sign (`+` only for
 * unsigned types), then digits only. */
static bool parse_integer(const char *text, bool is_signed, __int128 low, __int128 high, __int128 *out) {
    const char *p = text;
    bool negative = false;
    if (*p == '+' || (*p == '-' && is_signed)) negative = *p++ == '-';
    if (!*p) return false;
    __int128 value = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        value = value * 10 + (*p - '0');
        if (value > high + 1) return false;
    }
    value = negative ? -value : value;
    if (value < low || value > high) return false;
    *out = value;
    return true;
}

static bool ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
        if (x != *b) return false;
    }
    return *a == *b;
}

/* Whether `text` is a float as Rust's FromStr reads one: decimal with an
 * optional exponent, or inf/infinity/nan in any case; no spaces. */
static bool is_float(const char *text) {
    const char *p = text;
    if (*p == '+' || *p == '-') p++;
    if (ieq(p, "inf") || ieq(p, "infinity") || ieq(p, "nan")) return true;
    const char *q = p;
    size_t digits = 0;
    while (*q >= '0' && *q <= '9') q++, digits++;
    if (*q == '.') {
        q++;
        while (*q >= '0' && *q <= '9') q++, digits++;
    }
    if (!digits) return false;
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (*q < '0' || *q > '9') return false;
        while (*q >= '0' && *q <= '9') q++;
    }
    return *q == 0;
}

static bool scalar(const sluice_column *column, const char *text, key *out) {
    const char *type = NAMES[column->type];
    switch (column->type) {
    case SLUICE_INT32:
        if (parse_integer(text, true, INT32_MIN, INT32_MAX, &out->number)) return true;
        break;
    case SLUICE_INT64:
        if (parse_integer(text, true, INT64_MIN, INT64_MAX, &out->number)) return true;
        break;
    case SLUICE_UINT32:
        if (parse_integer(text, false, 0, UINT32_MAX, &out->number)) return true;
        break;
    case SLUICE_UINT64:
        if (parse_integer(text, false, 0, UINT64_MAX, &out->number)) return true;
        break;
    case SLUICE_FLOAT32:
        if (!is_float(text)) break;
        out->number = total_order32(strtof(text, NULL));
        return true;
    case SLUICE_FLOAT64:
        if (!is_float(text)) break;
        out->number = total_order64(strtod(text, NULL));
        return true;
    case SLUICE_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            out->number = text[0] == 't';
            return true;
        }
        break;
    case SLUICE_UTF8:
        out->text = (sluice_bytes){(const uint8_t *)text, strlen(text)};
        return true;
    default:
        return sluice_fatal("cannot filter on a %s column", type);
    }
    return sluice_fatal("value \"%s\" is not a %s", text, type);
}

static key row_key(const sluice_column *c, size_t row) {
    key k = {0, {NULL, 0}};
    switch (c->type) {
    case SLUICE_INT32: k.number = c->data.i32[row]; break;
    case SLUICE_INT64: k.number = c->data.i64[row]; break;
    case SLUICE_UINT32: k.number = c->data.u32[row]; break;
    case SLUICE_UINT64: k.number = c->data.u64[row]; break;
    case SLUICE_FLOAT32: k.number = total_order32(c->data.f32[row]); break;
    case SLUICE_FLOAT64: k.number = total_order64(c->data.f64[row]); break;
    case SLUICE_BOOL: k.number = (c->data.bits[row >> 3] >> (row & 7)) & 1; break;
    default: k.text = sluice_value(c, row);
    }
    return k;
}

static int compare(const sluice_column *c, key a, key b) {
    if (c->type == SLUICE_UTF8) {
        size_t n = a.text.len < b.text.len ? a.text.len : b.text.len;
        int order = n ? memcmp(a.text.ptr, b.text.ptr, n) : 0;
        if (order) return order;
        return (a.text.len > b.text.len) - (a.text.len < b.text.len);
    }
    return (a.number > b.number) - (a.number < b.number);
}

static bool filter_rows(sluice_batch *batch, const sluice_config *config) {
    const char *name = sluice_config_get(config, "column");
    if (!name) return sluice_fatal("missing config key `column`");
    const sluice_column *column = sluice_column_by_name(batch, name);
    if (!column) return sluice_fatal("no column `%s` in the batch", name);
    const char *op = sluice_config_get(config, "op");
    if (!op) return sluice_fatal("missing config key `op`");
    size_t rows = sluice_num_rows(batch);
    bool *keep = malloc(rows ? rows : 1);
    if (!keep) abort();
    bool ok = true;
    bool is_null = strcmp(op, "is_null") == 0;
    if (is_null || strcmp(op, "is_not_null") == 0) {
        for (size_t r = 0; r < rows; r++) keep[r] = sluice_is_null(column, r) == is_null;
    } else {
        const char *text = sluice_config_get(config, "value");
        key value;
        int low = 1, high = -1; /* the comparison results that keep a row */
        bool ne = strcmp(op, "ne") == 0;
        if (!text) {
            ok = sluice_fatal("missing config key `value`");
        } else if (!scalar(column, text, &value)) {
            ok = false;
        } else if (strcmp(op, "eq") == 0) {
            low = 0, high = 0;
        } else if (strcmp(op, "lt") == 0) {
            low = -1, high = -1;
        } else if (strcmp(op, "le") == 0) {
            low = -1, high = 0;
        } else if (strcmp(op, "gt") == 0) {
            low = 1, high = 1;
        } else if (strcmp(op, "ge") == 0) {
            low = 0, high = 1;
        } else if (!ne) {
            ok = sluice_fatal("unknown op `%s`", op);
        }
        for (size_t r = 0; ok && r < rows; r++) {
            if (sluice_is_null(column, r)) {
                keep[r] = false;
                continue;
            }
            int order = compare(column, row_key(column, r), value);
            order = (order > 0) - (order < 0);
            keep[r] = ne ? order != 0 : order >= low && order <= high;
        }
    }
    ok = ok && sluice_filter(batch, keep);
    free(keep);
    return ok;
}

SLUICE_TRANSFORM(filter_rows)
