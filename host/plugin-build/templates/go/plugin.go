// Package plugin upper-cases the configured utf8 column (default `name`).
package plugin

import (
	"bytes"

	"sluice"
)

// Transform is called once per batch.
func Transform(batch *sluice.Batch, config sluice.Config) error {
	name, ok := config["column"]
	if !ok {
		name = "name"
	}
	column := batch.Column(name)
	if column == nil || column.Type != sluice.Utf8 {
		return sluice.Fatal("no utf8 column `%s` in the batch", name)
	}
	values := make([][]byte, column.Len)
	for i := range values {
		if !column.IsNull(i) {
			values[i] = bytes.ToUpper(column.Value(i))
		}
	}
	return column.SetValues(values)
}
