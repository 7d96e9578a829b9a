/* Write Sluice plugins in C: one function over a batch of named columns.
 *
 *     #include "sluice.h"
 *
 *     static bool keep_all(sluice_batch *batch, const sluice_config *config) {
 *         return true;
 *     }
 *     SLUICE_TRANSFORM(keep_all)
 *
 * The function reads columns (sluice_column_by_name), may replace the
 * values of utf8/binary columns or drop rows, and returns true; on failure
 * it returns sluice_fatal(...) (or sluice_invalid_input, sluice_transient).
 * The SDK owns the bindings, the memory of the batch and the entry points.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The type of a column. */
typedef enum {
    SLUICE_BOOL, SLUICE_INT32, SLUICE_INT64, SLUICE_UINT32, SLUICE_UINT64,
    SLUICE_FLOAT32, SLUICE_FLOAT64, SLUICE_UTF8, SLUICE_BINARY, SLUICE_TIMESTAMP,
    SLUICE_LIST, SLUICE_STRUCT,
} sluice_type;

/* A byte string (not NUL-terminated); ptr == NULL marks a null value. */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} sluice_bytes;

/* One column, read-only. `validity` is a bitmap (least significant bit
 * first, a set bit = a valid value), or NULL when no value is null. */
typedef struct {
    const char *name;
    sluice_type type;
    bool nullable;
    size_t len;
    const uint8_t *validity;
    union {
        const uint8_t *bits; /* bool, bit-packed like validity */
        const int32_t *i32;
        const int64_t *i64; /* int64 and timestamp */
        const uint32_t *u32;
        const uint64_t *u64;
        const float *f32;
        const double *f64;
        struct {
            const int32_t *offsets; /* value i: bytes[offsets[i]..offsets[i+1]] */
            const uint8_t *bytes;
        } var; /* utf8 and binary */
    } data;
} sluice_column;

/* A batch of rows (opaque; read it through the functions below). */
typedef struct sluice_batch sluice_batch;
/* The plugin's settings from the job file. */
typedef struct sluice_config sluice_config;

size_t sluice_num_rows(const sluice_batch *batch);
size_t sluice_num_columns(const sluice_batch *batch);
/* Column `index` (0 <= index < sluice_num_columns). */
const sluice_column *sluice_column_at(const sluice_batch *batch, size_t index);
/* The column called `name`, or NULL. */
const sluice_column *sluice_column_by_name(const sluice_batch *batch, const char *name);

/* Whether row `row` of `column` is null. */
static inline bool sluice_is_null(const sluice_column *column, size_t row) {
    return column->validity && !((column->validity[row >> 3] >> (row & 7)) & 1);
}

/* The bytes of row `row` of a utf8 or binary column (ptr NULL if null). */
static inline sluice_bytes sluice_value(const sluice_column *column, size_t row) {
    sluice_bytes value = {NULL, 0};
    if (!sluice_is_null(column, row)) {
        value.ptr = column->data.var.bytes + column->data.var.offsets[row];
        value.len = (size_t)(column->data.var.offsets[row + 1] - column->data.var.offsets[row]);
    }
    return value;
}

/* Give the utf8 or binary column `column` new values, one per row (copied;
 * ptr NULL = null). Returns false, with the error set, on failure. */
bool sluice_replace_values(sluice_batch *batch, const sluice_column *column, const sluice_bytes *values);
/* Keep only the rows where keep[row] is true. */
bool sluice_filter(sluice_batch *batch, const bool *keep);

/* The value of `key` (NUL-terminated), or NULL when unset. */
const char *sluice_config_get(const sluice_config *config, const char *key);
/* Step through a comma-separated list: returns false at its end, else sets
 * `item` to the next trimmed, non-empty item and advances `*cursor`. */
bool sluice_list_next(const char **cursor, sluice_bytes *item);

/* Set the error the host receives; each returns false, for `return`. */
bool sluice_fatal(const char *format, ...) __attribute__((format(printf, 1, 2)));
bool sluice_transient(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* The whole batch is invalid input (its rows go to the dead-letter output). */
bool sluice_invalid_input(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Add `delta` to the plugin's counter `name`. */
void sluice_counter_add(const char *name, uint64_t delta);

/* The plugin's transform: true on success. */
typedef bool sluice_transform_fn(sluice_batch *batch, const sluice_config *config);

/* Make `fn` the plugin's transform. */
#define SLUICE_TRANSFORM(fn) \
    bool sluice_transform(sluice_batch *batch, const sluice_config *config) { \
        return fn(batch, config); \
    }

#endif
