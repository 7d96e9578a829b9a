package sluice

import (
	"reflect"
	"testing"
)

func ptr(s string) *string { return &s }

func TestFilterKeepsRowsInEveryColumnAndNestedArray(t *testing.T) {
	batch := NewBatch(
		Int64Column("n", []int64{1, 2, 3, 4}).WithNulls(2),
		Utf8Column("s", []*string{ptr("a"), nil, ptr("ccc"), ptr("dd")}),
		BoolColumn("b", []bool{true, false, true, false}),
	)
	// A list<int32> column: [[10], [], [20, 30], [40]].
	elements := &Array{Type: Int32, Len: 4, Int32s: []int32{10, 20, 30, 40}}
	batch.Arrays = append(batch.Arrays, elements)
	list := &Array{Type: List, Len: 4, Offsets: []int32{0, 1, 1, 3, 4}, Child: len(batch.Arrays) - 1}
	batch.Columns = append(batch.Columns, Column{Name: "l", Nullable: true, Array: list})
	batch.Arrays = append(batch.Arrays, list)

	if err := batch.Filter([]bool{false, true, true, false}); err != nil {
		t.Fatal(err)
	}
	if batch.NumRows != 2 {
		t.Fatalf("rows: %d", batch.NumRows)
	}
	n := batch.Column("n")
	if n.Int64s[0] != 2 || n.IsNull(0) || !n.IsNull(1) {
		t.Fatalf("n: %v %v", n.Int64s, n.Validity)
	}
	s := batch.Column("s")
	if !s.IsNull(0) || s.String(1) != "ccc" {
		t.Fatalf("s: %q", s.Bytes)
	}
	if b := batch.Column("b"); b.Bool(0) || !b.Bool(1) {
		t.Fatalf("b: %v", b.Bits)
	}
	l := batch.Column("l")
	child := batch.Arrays[l.Child]
	if !reflect.DeepEqual(l.Offsets, []int32{0, 0, 2}) || !reflect.DeepEqual(child.Int32s, []int32{20, 30}) {
		t.Fatalf("l: %v %v", l.Offsets, child.Int32s)
	}
	if len(batch.Arrays) != 5 {
		t.Fatalf("arrays: %d", len(batch.Arrays))
	}
}

func TestCompactDropsReplacedArrays(t *testing.T) {
	batch := NewBatch(Utf8Column("s", []*string{ptr("a")}), Int32Column("n", []int32{7}))
	s := batch.Column("s")
	if err := s.SetValues([][]byte{[]byte("b")}); err != nil {
		t.Fatal(err)
	}
	batch.Compact()
	if len(batch.Arrays) != 2 || batch.Arrays[0] != s.Array || batch.Column("s").String(0) != "b" {
		t.Fatalf("arrays: %v", batch.Arrays)
	}
}

func TestSetValuesChecksTypeAndLength(t *testing.T) {
	batch := NewBatch(Int32Column("n", []int32{7}), Utf8Column("s", []*string{ptr("a")}))
	if err := batch.Column("n").SetValues([][]byte{nil}); err == nil {
		t.Fatal("an int32 column took byte values")
	}
	if err := batch.Column("s").SetValues(nil); err == nil {
		t.Fatal("took 0 values for 1 row")
	}
}

func TestConfigListAndRequire(t *testing.T) {
	config := Config{"columns": " a, b ,,c"}
	if got := config.List("columns"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("list: %v", got)
	}
	if _, err := config.Require("op"); err == nil || err.Error() != "missing config key `op`" {
		t.Fatalf("require: %v", err)
	}
}
