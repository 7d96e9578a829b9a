package sluice

// Filter keeps the rows whose keep entry is true, in every column and in
// the nested arrays under them.
func (b *Batch) Filter(keep []bool) error {
	if len(keep) != b.NumRows {
		return Fatal("Filter: %d keep flags for %d rows", len(keep), b.NumRows)
	}
	rows := make([]int, 0, len(keep))
	for i, k := range keep {
		if k {
			rows = append(rows, i)
		}
	}
	b.rebuild(rows)
	b.NumRows = len(rows)
	return nil
}

// Compact leaves in Arrays only the arrays the columns reach, renumbered.
// The build calls it before handing a batch back, so arrays a plugin
// replaced are not sent.
func (b *Batch) Compact() {
	b.rebuild(nil)
}

// rebuild replaces every column's array tree by its rows (all rows when
// rows is nil), collecting the new trees in a fresh Arrays.
func (b *Batch) rebuild(rows []int) {
	old := b.Arrays
	b.Arrays = make([]*Array, 0, len(old))
	for i := range b.Columns {
		b.Columns[i].Array = b.take(old, b.Columns[i].Array, rows)
	}
}

// take appends to b.Arrays the rows of a (all when rows is nil), its
// children included, and returns the new array.
func (b *Batch) take(old []*Array, a *Array, rows []int) *Array {
	out := *a
	b.Arrays = append(b.Arrays, &out)
	if rows == nil {
		switch a.Type {
		case List:
			out.Child = b.index(b.take(old, old[a.Child], nil))
		case Struct:
			out.Fields = append([]Field(nil), a.Fields...)
			for i := range out.Fields {
				out.Fields[i].Child = b.index(b.take(old, old[a.Fields[i].Child], nil))
			}
		}
		return &out
	}
	out.Len = len(rows)
	if a.Validity != nil {
		out.Validity = takeBits(a.Validity, rows)
	}
	switch a.Type {
	case Bool:
		out.Bits = takeBits(a.Bits, rows)
	case Int32:
		out.Int32s = takeValues(a.Int32s, rows)
	case Int64, Timestamp:
		out.Int64s = takeValues(a.Int64s, rows)
	case Uint32:
		out.Uint32s = takeValues(a.Uint32s, rows)
	case Uint64:
		out.Uint64s = takeValues(a.Uint64s, rows)
	case Float32:
		out.Float32s = takeValues(a.Float32s, rows)
	case Float64:
		out.Float64s = takeValues(a.Float64s, rows)
	case Utf8, Binary:
		out.Offsets, out.Bytes = make([]int32, 1, len(rows)+1), nil
		for _, r := range rows {
			out.Bytes = append(out.Bytes, a.Value(r)...)
			out.Offsets = append(out.Offsets, int32(len(out.Bytes)))
		}
	case List:
		var elements []int
		out.Offsets = make([]int32, 1, len(rows)+1)
		for _, r := range rows {
			for e := a.Offsets[r]; e < a.Offsets[r+1]; e++ {
				elements = append(elements, int(e))
			}
			out.Offsets = append(out.Offsets, int32(len(elements)))
		}
		out.Child = b.index(b.take(old, old[a.Child], nonNil(elements)))
	case Struct:
		out.Fields = append([]Field(nil), a.Fields...)
		for i := range out.Fields {
			out.Fields[i].Child = b.index(b.take(old, old[a.Fields[i].Child], rows))
		}
	}
	return &out
}

// index is the position of a in b.Arrays.
func (b *Batch) index(a *Array) int {
	for i := len(b.Arrays) - 1; i >= 0; i-- {
		if b.Arrays[i] == a {
			return i
		}
	}
	panic("sluice: array not in batch")
}

func nonNil(rows []int) []int {
	if rows == nil {
		return []int{}
	}
	return rows
}

func takeValues[T any](values []T, rows []int) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = values[r]
	}
	return out
}

func takeBits(bits []byte, rows []int) []byte {
	out := make([]byte, (len(rows)+7)/8)
	for i, r := range rows {
		if bits[r>>3]>>(r&7)&1 == 1 {
			out[i>>3] |= 1 << (i & 7)
		}
	}
	return out
}
