// Package sluice is the Go SDK for Sluice plugins: a plugin is one function
// over a batch of named columns,
//
//	func Transform(batch *sluice.Batch, config sluice.Config) error
//
// declared in the plugin's package. The build generates the component
// bindings and calls it once per batch; the package itself is plain Go, so
// `go test` runs a plugin natively.
package sluice

import "fmt"

// Type is the type of an array's values.
type Type int

// The array types of the plugin contract.
const (
	Bool Type = iota
	Int32
	Int64
	Uint32
	Uint64
	Float32
	Float64
	Utf8
	Binary
	Timestamp
	List
	Struct
)

var typeNames = [...]string{"bool", "int32", "int64", "uint32", "uint64", "float32", "float64", "utf8", "binary", "timestamp", "list", "struct"}

// String is the type's name as the job file spells it.
func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// TimeUnit is the unit of a timestamp's values, counted from the Unix epoch.
type TimeUnit uint8

// The units a timestamp may count in.
const (
	Second TimeUnit = iota
	Millisecond
	Microsecond
	Nanosecond
)

// Field is one field of a struct array.
type Field struct {
	Name     string
	Nullable bool
	// Child is the index of the field's array in Batch.Arrays.
	Child int
}

// Array holds Len values of one Type in Arrow's layout. Only the slice of
// its type is set; the slices share the host's buffers, so reading them
// copies nothing.
type Array struct {
	Type Type
	Len  int
	// Validity is bit-packed, least significant bit first; a set bit is a
	// valid value. Nil means every value is valid.
	Validity []byte
	// Bits holds a Bool array's values, bit-packed like Validity.
	Bits     []byte
	Int32s   []int32
	Int64s   []int64 // Int64 and Timestamp values
	Uint32s  []uint32
	Uint64s  []uint64
	Float32s []float32
	Float64s []float64
	// Offsets (Len+1 entries) index Bytes for Utf8 and Binary values, and
	// the child array's elements for List values.
	Offsets []int32
	Bytes   []byte
	// Unit and Timezone describe a Timestamp array; Timezone nil is naive.
	Unit     TimeUnit
	Timezone *string
	// Child (index in Batch.Arrays) and ChildNullable describe a List array.
	Child         int
	ChildNullable bool
	// Fields describe a Struct array.
	Fields []Field
}

// IsNull reports whether value i is null.
func (a *Array) IsNull(i int) bool {
	return a.Validity != nil && a.Validity[i>>3]>>(i&7)&1 == 0
}

// Bool is value i of a Bool array.
func (a *Array) Bool(i int) bool {
	return a.Bits[i>>3]>>(i&7)&1 == 1
}

// Value is value i of a Utf8 or Binary array, sharing the array's bytes.
func (a *Array) Value(i int) []byte {
	return a.Bytes[a.Offsets[i]:a.Offsets[i+1]]
}

// String is value i of a Utf8 array as a Go string (a copy).
func (a *Array) String(i int) string {
	return string(a.Value(i))
}

// Column is a named top-level column; its array's fields and methods are
// the column's (column.Int64s, column.IsNull(i)).
type Column struct {
	Name     string
	Nullable bool
	*Array
}

// Batch is the rows of one call as columns. Nested arrays (list elements,
// struct fields) are in Arrays and referenced by index.
type Batch struct {
	NumRows int
	Columns []Column
	Arrays  []*Array
}

// Column is the column called name, or nil.
func (b *Batch) Column(name string) *Column {
	for i := range b.Columns {
		if b.Columns[i].Name == name {
			return &b.Columns[i]
		}
	}
	return nil
}

// SetValues gives a Utf8 or Binary column new values, one per row; a nil
// value is null. The column's other arrays stay as they are.
func (c *Column) SetValues(values [][]byte) error {
	if c.Type != Utf8 && c.Type != Binary {
		return Fatal("SetValues: column `%s` is %s, not utf8 or binary", c.Name, c.Type)
	}
	if len(values) != c.Len {
		return Fatal("SetValues: %d values for the %d rows of column `%s`", len(values), c.Len, c.Name)
	}
	size := 0
	for _, v := range values {
		size += len(v)
	}
	array := &Array{Type: c.Type, Len: c.Len, Offsets: make([]int32, 0, c.Len+1), Bytes: make([]byte, 0, size)}
	array.Offsets = append(array.Offsets, 0)
	for i, v := range values {
		if v == nil {
			if array.Validity == nil {
				array.Validity = allValid(c.Len)
			}
			array.Validity[i>>3] &^= 1 << (i & 7)
		}
		array.Bytes = append(array.Bytes, v...)
		array.Offsets = append(array.Offsets, int32(len(array.Bytes)))
	}
	if array.Validity != nil && !c.Nullable {
		return Fatal("SetValues: column `%s` is not nullable but got a nil value", c.Name)
	}
	c.Array = array
	return nil
}

func allValid(n int) []byte {
	bits := make([]byte, (n+7)/8)
	for i := range bits {
		bits[i] = 0xff
	}
	return bits
}
