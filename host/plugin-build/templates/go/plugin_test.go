// Native tests: `go test` (with the Go that `sluice plugin build` uses:
// GOFLAGS=-mod=mod GOPROXY=off).
package plugin

import (
	"strings"
	"testing"

	"sluice"
)

func TestUpperCasesTheColumnAndKeepsNulls(t *testing.T) {
	batch := sluice.NewBatch(
		sluice.Utf8Column("name", []*string{ptr("ada"), nil}),
		sluice.Int64Column("n", []int64{1, 2}),
	)
	if err := Transform(batch, sluice.Config{"column": "name"}); err != nil {
		t.Fatal(err)
	}
	name := batch.Column("name")
	if name.String(0) != "ADA" || !name.IsNull(1) {
		t.Fatalf("got %q and null=%v", name.String(0), name.IsNull(1))
	}
	if n := batch.Column("n").Int64s; n[0] != 1 || n[1] != 2 {
		t.Fatalf("n changed: %v", n)
	}
}

func TestAMissingColumnIsAClearError(t *testing.T) {
	batch := sluice.NewBatch(sluice.Int64Column("n", []int64{1}))
	err := Transform(batch, sluice.Config{})
	if err == nil || !strings.Contains(err.Error(), "no utf8 column `name`") {
		t.Fatalf("got %v", err)
	}
}

func ptr(s string) *string { return &s }
