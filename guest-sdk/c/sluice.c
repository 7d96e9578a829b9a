/* The C SDK's glue: the `transformer` export over the author's
 * `sluice_transform`, the batch view, and the host imports. It is the only
 * file that sees the generated bindings (transform.h). */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "transform.h"

bool sluice_transform(sluice_batch *batch, const sluice_config *config);

typedef sluice_plugin_types_batch_t wit_batch;
typedef sluice_plugin_types_array_t wit_array;

struct sluice_batch {
    wit_batch *wit;
    size_t num_columns;
    sluice_column *columns;
};

struct sluice_config {
    size_t len;
    char **keys;
    char **values;
};

static sluice_config config;

/* The error the author set, until the call returns. */
static struct {
    uint8_t kind;
    char *message;
} pending;

static void *checked_malloc(size_t size) {
    void *ptr = malloc(size ? size : 1);
    if (!ptr) abort();
    return ptr;
}

static char *dup_n(const uint8_t *ptr, size_t len) {
    char *out = checked_malloc(len + 1);
    memcpy(out, ptr, len);
    out[len] = 0;
    return out;
}

static bool set_error(uint8_t kind, const char *format, va_list args) {
    char buffer[1024];
    vsnprintf(buffer, sizeof buffer, format, args);
    free(pending.message);
    pending.kind = kind;
    pending.message = dup_n((const uint8_t *)buffer, strlen(buffer));
    return false;
}

bool sluice_fatal(const char *format, ...) {
    va_list args;
    va_start(args, format);
    set_error(SLUICE_PLUGIN_TYPES_PLUGIN_ERROR_FATAL, format, args);
    va_end(args);
    return false;
}

bool sluice_transient(const char *format, ...) {
    va_list args;
    va_start(args, format);
    set_error(SLUICE_PLUGIN_TYPES_PLUGIN_ERROR_TRANSIENT, format, args);
    va_end(args);
    return false;
}

bool sluice_invalid_input(const char *format, ...) {
    va_list args;
    va_start(args, format);
    set_error(SLUICE_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT, format, args);
    va_end(args);
    return false;
}

/* The pending error as the contract's error (a fatal one if the author
 * returned false without setting any). */
static void take_error(sluice_plugin_types_plugin_error_t *err) {
    if (!pending.message) {
        sluice_fatal("the transform failed without saying why");
    }
    transform_string_t message = {(uint8_t *)pending.message, strlen(pending.message)};
    err->tag = pending.kind;
    switch (pending.kind) {
    case SLUICE_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT:
        err->val.invalid_input.message = message;
        err->val.invalid_input.rows = (transform_list_u32_t){NULL, 0};
        break;
    case SLUICE_PLUGIN_TYPES_PLUGIN_ERROR_TRANSIENT:
        err->val.transient = message;
        break;
    default:
        err->val.fatal = message;
    }
    pending.message = NULL; /* now owned by the host's post-return */
}

void sluice_counter_add(const char *name, uint64_t delta) {
    transform_string_t wit_name = {(uint8_t *)name, strlen(name)};
    sluice_plugin_host_counter_add(&wit_name, delta);
}

const char *sluice_config_get(const sluice_config *config, const char *key) {
    for (size_t i = 0; i < config->len; i++) {
        if (strcmp(config->keys[i], key) == 0) return config->values[i];
    }
    return NULL;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool sluice_list_next(const char **cursor, sluice_bytes *item) {
    const char *at = *cursor;
    while (at && *at) {
        const char *end = strchr(at, ',');
        if (!end) end = at + strlen(at);
        const char *start = at;
        const char *stop = end;
        while (start < stop && is_space(*start)) start++;
        while (stop > start && is_space(stop[-1])) stop--;
        at = *end ? end + 1 : end;
        if (stop > start) {
            item->ptr = (const uint8_t *)start;
            item->len = (size_t)(stop - start);
            *cursor = at;
            return true;
        }
    }
    *cursor = at;
    return false;
}

size_t sluice_num_rows(const sluice_batch *batch) { return batch->wit->num_rows; }

size_t sluice_num_columns(const sluice_batch *batch) { return batch->num_columns; }

const sluice_column *sluice_column_at(const sluice_batch *batch, size_t index) {
    return index < batch->num_columns ? &batch->columns[index] : NULL;
}

const sluice_column *sluice_column_by_name(const sluice_batch *batch, const char *name) {
    for (size_t i = 0; i < batch->num_columns; i++) {
        if (strcmp(batch->columns[i].name, name) == 0) return &batch->columns[i];
    }
    return NULL;
}

/* Point `view` at the buffers of `array`. */
static void view_array(sluice_column *view, const wit_array *array) {
    const sluice_plugin_types_array_data_t *data = &array->data;
    view->len = array->len;
    view->validity = array->validity.is_some ? array->validity.val.ptr : NULL;
    switch (data->tag) {
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_BOOLEAN: view->type = SLUICE_BOOL; view->data.bits = data->val.boolean.ptr; break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_INT32: view->type = SLUICE_INT32; view->data.i32 = data->val.int32.ptr; break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_INT64: view->type = SLUICE_INT64; view->data.i64 = data->val.int64.ptr; break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_UINT32: view->type = SLUICE_UINT32; view->data.u32 = data->val.uint32.ptr; break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_UINT64: view->type = SLUICE_UINT64; view->data.u64 = data->val.uint64.ptr; break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_FLOAT32: view->type = SLUICE_FLOAT32; view->data.f32 = data->val.float32.ptr; break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_FLOAT64: view->type = SLUICE_FLOAT64; view->data.f64 = data->val.float64.ptr; break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_UTF8:
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_BINARY:
        view->type = data->tag == SLUICE_PLUGIN_TYPES_ARRAY_DATA_UTF8 ? SLUICE_UTF8 : SLUICE_BINARY;
        view->data.var.offsets = data->val.utf8.offsets.ptr;
        view->data.var.bytes = data->val.utf8.bytes.ptr;
        break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_TIMESTAMP:
        view->type = SLUICE_TIMESTAMP;
        view->data.i64 = data->val.timestamp.values.ptr;
        break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_LIST: view->type = SLUICE_LIST; break;
    default: view->type = SLUICE_STRUCT;
    }
}

static wit_array *array_of(sluice_batch *batch, const sluice_column *column) {
    size_t index = (size_t)(column - batch->columns);
    return &batch->wit->arrays.ptr[batch->wit->columns.ptr[index].array];
}

bool sluice_replace_values(sluice_batch *batch, const sluice_column *column, const sluice_bytes *values) {
    if (column < batch->columns || column >= batch->columns + batch->num_columns) {
        return sluice_fatal("sluice_replace_values: not a column of this batch");
    }
    if (column->type != SLUICE_UTF8 && column->type != SLUICE_BINARY) {
        return sluice_fatal("sluice_replace_values: column `%s` is not utf8 or binary", column->name);
    }
    size_t rows = column->len;
    size_t total = 0;
    bool nulls = false;
    for (size_t i = 0; i < rows; i++) {
        total += values[i].ptr ? values[i].len : 0;
        nulls |= values[i].ptr == NULL;
    }
    if (total > INT32_MAX) return sluice_fatal("column `%s`: more than 2 GiB of values", column->name);
    int32_t *offsets = checked_malloc((rows + 1) * sizeof *offsets);
    uint8_t *bytes = checked_malloc(total);
    uint8_t *validity = nulls ? calloc((rows + 7) / 8 + 1, 1) : NULL;
    size_t at = 0;
    offsets[0] = 0;
    for (size_t i = 0; i < rows; i++) {
        if (values[i].ptr) {
            memcpy(bytes + at, values[i].ptr, values[i].len);
            at += values[i].len;
            if (validity) validity[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
        offsets[i + 1] = (int32_t)at;
    }
    wit_array *array = array_of(batch, column);
    sluice_plugin_types_array_data_free(&array->data);
    transform_option_list_u8_free(&array->validity);
    array->data.val.utf8.offsets = (transform_list_s32_t){offsets, rows + 1};
    array->data.val.utf8.bytes = (transform_list_u8_t){bytes, total};
    array->validity.is_some = validity != NULL;
    array->validity.val = (transform_list_u8_t){validity, validity ? (rows + 7) / 8 : 0};
    view_array((sluice_column *)column, array);
    return true;
}

static bool bit(const uint8_t *bits, size_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

/* `bits` keeping the rows in `keep` (n of them). */
static uint8_t *filter_bits(const uint8_t *bits, const size_t *keep, size_t n) {
    uint8_t *out = calloc(n / 8 + 1, 1);
    if (!out) abort();
    for (size_t i = 0; i < n; i++) {
        if (bit(bits, keep[i])) out[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    return out;
}

#define FILTER_LIST(list, type)                                         \
    do {                                                                \
        type *out = checked_malloc(n * sizeof(type));                   \
        for (size_t i = 0; i < n; i++) out[i] = (list).ptr[keep[i]];    \
        free((list).ptr);                                               \
        (list).ptr = out;                                               \
        (list).len = n;                                                 \
    } while (0)

/* Keep the rows `keep` (n of them, in order) of `arrays[index]` and of its
 * children, in place. */
static void filter_array(wit_array *arrays, uint32_t index, const size_t *keep, size_t n) {
    wit_array *array = &arrays[index];
    sluice_plugin_types_array_data_t *data = &array->data;
    switch (data->tag) {
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_LIST: {
        sluice_plugin_types_list_data_t *list = &data->val.list;
        const int32_t *from = list->offsets.ptr;
        size_t items = 0;
        for (size_t i = 0; i < n; i++) items += (size_t)(from[keep[i] + 1] - from[keep[i]]);
        size_t *item_keep = checked_malloc((items + 1) * sizeof *item_keep);
        int32_t *offsets = checked_malloc((n + 1) * sizeof *offsets);
        size_t at = 0;
        offsets[0] = 0;
        for (size_t i = 0; i < n; i++) {
            for (int32_t j = from[keep[i]]; j < from[keep[i] + 1]; j++) item_keep[at++] = (size_t)j;
            offsets[i + 1] = (int32_t)at;
        }
        filter_array(arrays, list->child, item_keep, items);
        free(item_keep);
        free(list->offsets.ptr);
        list->offsets = (transform_list_s32_t){offsets, n + 1};
        break;
    }
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_STRUCT:
        for (size_t f = 0; f < data->val.struct_.len; f++) {
            filter_array(arrays, data->val.struct_.ptr[f].child, keep, n);
        }
        break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_BOOLEAN: {
        uint8_t *bits = filter_bits(data->val.boolean.ptr, keep, n);
        free(data->val.boolean.ptr);
        data->val.boolean = (transform_list_u8_t){bits, n / 8 + 1};
        break;
    }
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_INT32: FILTER_LIST(data->val.int32, int32_t); break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_INT64: FILTER_LIST(data->val.int64, int64_t); break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_UINT32: FILTER_LIST(data->val.uint32, uint32_t); break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_UINT64: FILTER_LIST(data->val.uint64, uint64_t); break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_FLOAT32: FILTER_LIST(data->val.float32, float); break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_FLOAT64: FILTER_LIST(data->val.float64, double); break;
    case SLUICE_PLUGIN_TYPES_ARRAY_DATA_TIMESTAMP: FILTER_LIST(data->val.timestamp.values, int64_t); break;
    default: { /* utf8, binary */
        sluice_plugin_types_var_data_t *var = &data->val.utf8;
        size_t total = 0;
        for (size_t i = 0; i < n; i++) total += (size_t)(var->offsets.ptr[keep[i] + 1] - var->offsets.ptr[keep[i]]);
        int32_t *offsets = checked_malloc((n + 1) * sizeof *offsets);
        uint8_t *bytes = checked_malloc(total);
        size_t at = 0;
        offsets[0] = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t from = var->offsets.ptr[keep[i]];
            size_t len = (size_t)(var->offsets.ptr[keep[i] + 1] - from);
            memcpy(bytes + at, var->bytes.ptr + from, len);
            at += len;
            offsets[i + 1] = (int32_t)at;
        }
        sluice_plugin_types_var_data_free(var);
        var->offsets = (transform_list_s32_t){offsets, n + 1};
        var->bytes = (transform_list_u8_t){bytes, total};
    }
    }
    if (array->validity.is_some) {
        uint8_t *validity = filter_bits(array->validity.val.ptr, keep, n);
        free(array->validity.val.ptr);
        array->validity.val = (transform_list_u8_t){validity, n / 8 + 1};
    }
    array->len = (uint32_t)n;
}

bool sluice_filter(sluice_batch *batch, const bool *keep) {
    size_t all = 0;
    while (all < batch->wit->num_rows && keep[all]) all++;
    if (all == batch->wit->num_rows) {
        /* Every row stays: the columns stay as they are, nested ones too. */
        return true;
    }
    size_t rows = batch->wit->num_rows;
    size_t *kept = checked_malloc(rows * sizeof *kept);
    size_t n = 0;
    for (size_t i = 0; i < rows; i++) {
        if (keep[i]) kept[n++] = i;
    }
    for (size_t c = 0; c < batch->num_columns; c++) {
        uint32_t index = batch->wit->columns.ptr[c].array;
        filter_array(batch->wit->arrays.ptr, index, kept, n);
        view_array(&batch->columns[c], &batch->wit->arrays.ptr[index]);
    }
    free(kept);
    batch->wit->num_rows = (uint32_t)n;
    return true;
}

bool exports_sluice_plugin_transformer_init(sluice_plugin_types_config_t *entries,
                                            sluice_plugin_types_plugin_error_t *err) {
    (void)err;
    for (size_t i = 0; i < config.len; i++) {
        free(config.keys[i]);
        free(config.values[i]);
    }
    free(config.keys);
    free(config.values);
    config.len = entries->len;
    config.keys = checked_malloc(entries->len * sizeof(char *));
    config.values = checked_malloc(entries->len * sizeof(char *));
    for (size_t i = 0; i < entries->len; i++) {
        config.keys[i] = dup_n(entries->ptr[i].f0.ptr, entries->ptr[i].f0.len);
        config.values[i] = dup_n(entries->ptr[i].f1.ptr, entries->ptr[i].f1.len);
    }
    sluice_plugin_types_config_free(entries);
    return true;
}

bool exports_sluice_plugin_transformer_process(wit_batch *input, sluice_plugin_types_transformed_t *ret,
                                               sluice_plugin_types_plugin_error_t *err) {
    sluice_batch batch = {input, input->columns.len, NULL};
    batch.columns = checked_malloc(input->columns.len * sizeof *batch.columns);
    for (size_t i = 0; i < input->columns.len; i++) {
        const sluice_plugin_types_column_t *column = &input->columns.ptr[i];
        batch.columns[i].name = dup_n(column->name.ptr, column->name.len);
        batch.columns[i].nullable = column->nullable;
        view_array(&batch.columns[i], &input->arrays.ptr[column->array]);
    }
    bool ok = sluice_transform(&batch, &config);
    for (size_t i = 0; i < batch.num_columns; i++) free((char *)batch.columns[i].name);
    free(batch.columns);
    if (!ok) {
        take_error(err);
        sluice_plugin_types_batch_free(input);
        return false;
    }
    free(pending.message);
    pending.message = NULL;
    /* The input's buffers become the output's: the host frees them after
     * reading (post-return). */
    ret->batch = *input;
    ret->routed = (sluice_plugin_types_list_routed_t){NULL, 0};
    return true;
}

bool exports_sluice_plugin_transformer_snapshot(transform_list_u8_t *ret) {
    (void)ret;
    return false;
}

bool exports_sluice_plugin_transformer_restore(transform_list_u8_t *state, sluice_plugin_types_plugin_error_t *err) {
    (void)err;
    transform_list_u8_free(state);
    return true;
}
