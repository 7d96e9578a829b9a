#include <stdlib.h>

#include "sluice.h"

/* Upper-case the configured utf8 column (default `name`). */
static bool shout(sluice_batch *batch, const sluice_config *config) {
    const char *name = sluice_config_get(config, "column");
    if (!name) name = "name";
    const sluice_column *column = sluice_column_by_name(batch, name);
    if (!column) return sluice_fatal("no column `%s` in the batch", name);
    if (column->type != SLUICE_UTF8) return sluice_fatal("column `%s` is not utf8", name);
    size_t rows = column->len;
    size_t size = (size_t)(column->data.var.offsets[rows] - column->data.var.offsets[0]);
    sluice_bytes *values = malloc((rows + 1) * sizeof *values);
    uint8_t *out = malloc(size + 1);
    if (!values || !out) return sluice_fatal("out of memory");
    size_t at = 0;
    for (size_t row = 0; row < rows; row++) {
        sluice_bytes value = sluice_value(column, row);
        values[row] = value.ptr ? (sluice_bytes){out + at, value.len} : value;
        for (size_t i = 0; i < value.len; i++) {
            uint8_t b = value.ptr[i];
            out[at++] = b >= 'a' && b <= 'z' ? b - 32 : b;
        }
    }
    bool ok = sluice_replace_values(batch, column, values);
    free(values);
    free(out);
    return ok;
}

SLUICE_TRANSFORM(shout)
