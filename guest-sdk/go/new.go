package sluice

// NewBatch is a batch of the given columns, which must all have the same
// length; for native tests.
func NewBatch(columns ...Column) *Batch {
	batch := &Batch{Columns: columns}
	for i := range columns {
		batch.NumRows = columns[i].Len
		batch.Arrays = append(batch.Arrays, columns[i].Array)
	}
	return batch
}

// BoolColumn is a nullable column of values.
func BoolColumn(name string, values []bool) Column {
	bits := make([]byte, (len(values)+7)/8)
	for i, v := range values {
		if v {
			bits[i>>3] |= 1 << (i & 7)
		}
	}
	return column(name, &Array{Type: Bool, Len: len(values), Bits: bits})
}

// Int32Column is a nullable column of values.
func Int32Column(name string, values []int32) Column {
	return column(name, &Array{Type: Int32, Len: len(values), Int32s: values})
}

// Int64Column is a nullable column of values.
func Int64Column(name string, values []int64) Column {
	return column(name, &Array{Type: Int64, Len: len(values), Int64s: values})
}

// Uint32Column is a nullable column of values.
func Uint32Column(name string, values []uint32) Column {
	return column(name, &Array{Type: Uint32, Len: len(values), Uint32s: values})
}

// Uint64Column is a nullable column of values.
func Uint64Column(name string, values []uint64) Column {
	return column(name, &Array{Type: Uint64, Len: len(values), Uint64s: values})
}

// Float32Column is a nullable column of values.
func Float32Column(name string, values []float32) Column {
	return column(name, &Array{Type: Float32, Len: len(values), Float32s: values})
}

// Float64Column is a nullable column of values.
func Float64Column(name string, values []float64) Column {
	return column(name, &Array{Type: Float64, Len: len(values), Float64s: values})
}

// Utf8Column is a nullable column of values; nil is null.
func Utf8Column(name string, values []*string) Column {
	bytes := make([][]byte, len(values))
	for i, v := range values {
		if v != nil {
			bytes[i] = []byte(*v)
		}
	}
	return varColumn(name, Utf8, bytes)
}

// BinaryColumn is a nullable column of values; nil is null.
func BinaryColumn(name string, values [][]byte) Column {
	return varColumn(name, Binary, values)
}

// WithNulls is the column with the given rows null.
func (c Column) WithNulls(rows ...int) Column {
	array := *c.Array
	array.Validity = append([]byte(nil), array.Validity...)
	if array.Validity == nil {
		array.Validity = allValid(array.Len)
	}
	for _, r := range rows {
		array.Validity[r>>3] &^= 1 << (r & 7)
	}
	c.Array = &array
	return c
}

func column(name string, array *Array) Column {
	return Column{Name: name, Nullable: true, Array: array}
}

func varColumn(name string, t Type, values [][]byte) Column {
	c := column(name, &Array{Type: t, Len: len(values), Offsets: make([]int32, len(values)+1)})
	if err := c.SetValues(values); err != nil {
		panic(err)
	}
	return c
}
