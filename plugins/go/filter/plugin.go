// Package plugin keeps the rows where `column OP value` holds, exactly as
// the Rust `filter` plugin does. Config: `column`, `op` (eq, ne, lt, le,
// gt, ge, is_null, is_not_null), `value` (parsed as the column's type) and
// `on_mismatch` (`drop`, the default, or `reject`: the other rows go back
// as invalid input). Null never matches a comparison; floats compare in
// IEEE total order, as Arrow does.
package plugin

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"sluice"
)

// Transform filters one batch.
func Transform(batch *sluice.Batch, config sluice.Config) error {
	name, err := config.Require("column")
	if err != nil {
		return err
	}
	column := batch.Column(name)
	if column == nil {
		return sluice.Fatal("no column `%s` in the batch", name)
	}
	op, err := config.Require("op")
	if err != nil {
		return err
	}
	keep, err := matches(column, op, config)
	if err != nil {
		return err
	}
	switch mismatch := config["on_mismatch"]; mismatch {
	case "", "drop":
		return batch.Filter(keep)
	case "reject":
		var rejected []uint32
		for row, k := range keep {
			if !k {
				rejected = append(rejected, uint32(row))
			}
		}
		if len(rejected) == 0 {
			return nil
		}
		return sluice.InvalidInput(rejected, "`%s` %s %s does not hold", name, op, config["value"])
	default:
		return sluice.Fatal("on_mismatch %q is not `drop` or `reject`", mismatch)
	}
}

// matches is, per row, whether `column op value` holds.
func matches(column *sluice.Column, op string, config sluice.Config) ([]bool, error) {
	keep := make([]bool, column.Len)
	if op == "is_null" || op == "is_not_null" {
		for r := range keep {
			keep[r] = column.IsNull(r) == (op == "is_null")
		}
		return keep, nil
	}
	text, err := config.Require("value")
	if err != nil {
		return nil, err
	}
	value, err := parse(column.Type, text)
	if err != nil {
		return nil, err
	}
	holds, ok := map[string]func(int) bool{
		"eq": func(o int) bool { return o == 0 },
		"ne": func(o int) bool { return o != 0 },
		"lt": func(o int) bool { return o < 0 },
		"le": func(o int) bool { return o <= 0 },
		"gt": func(o int) bool { return o > 0 },
		"ge": func(o int) bool { return o >= 0 },
	}[op]
	if !ok {
		return nil, sluice.Fatal("unknown op `%s`", op)
	}
	for r := range keep {
		keep[r] = !column.IsNull(r) && holds(compare(column, r, value))
	}
	return keep, nil
}

// key is a comparable form of one value: integers as int64 or uint64,
// floats as their total-order key, strings as bytes.
type key struct {
	signed   int64
	unsigned uint64
	text     []byte
}

func parse(t sluice.Type, text string) (key, error) {
	bad := func() (key, error) { return key{}, sluice.Fatal("value %q is not a %s", text, arrowNames[t]) }
	switch t {
	case sluice.Int32, sluice.Int64:
		bits := 64
		if t == sluice.Int32 {
			bits = 32
		}
		v, err := strconv.ParseInt(text, 10, bits)
		if err != nil {
			return bad()
		}
		return key{signed: v}, nil
	case sluice.Uint32, sluice.Uint64:
		bits := 64
		if t == sluice.Uint32 {
			bits = 32
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(text, "+"), 10, bits)
		if err != nil || strings.HasPrefix(text, "++") {
			return bad()
		}
		return key{unsigned: v}, nil
	case sluice.Float32, sluice.Float64:
		if !isFloat(text) {
			return bad()
		}
		bits := 64
		if t == sluice.Float32 {
			bits = 32
		}
		v, err := strconv.ParseFloat(text, bits)
		if err != nil && !isRange(err) {
			return bad()
		}
		if t == sluice.Float32 {
			f := float32(v)
			if v != v {
				f = math.Float32frombits(0x7fc00000 | signBit32(text))
			}
			return key{signed: int64(order32(f))}, nil
		}
		if v != v {
			v = math.Float64frombits(0x7ff8000000000000 | uint64(signBit32(text))<<32)
		}
		return key{signed: order64(v)}, nil
	case sluice.Bool:
		switch text {
		case "true":
			return key{signed: 1}, nil
		case "false":
			return key{}, nil
		}
		return bad()
	case sluice.Utf8:
		return key{text: []byte(text)}, nil
	}
	return key{}, sluice.Fatal("cannot filter on a %s column", arrowNames[t])
}

// arrowNames are the types as Arrow (and so the Rust plugin) names them.
var arrowNames = map[sluice.Type]string{
	sluice.Bool: "Boolean", sluice.Int32: "Int32", sluice.Int64: "Int64", sluice.Uint32: "UInt32",
	sluice.Uint64: "UInt64", sluice.Float32: "Float32", sluice.Float64: "Float64", sluice.Utf8: "Utf8",
	sluice.Binary: "Binary", sluice.Timestamp: "Timestamp", sluice.List: "List", sluice.Struct: "Struct",
}

// signBit32 is the sign bit of a float32 that text spells: Rust reads
// "nan" as the canonical quiet NaN, with the sign it is written with, where
// Go's NaN has other bits.
func signBit32(text string) uint32 {
	if strings.HasPrefix(text, "-") {
		return 1 << 31
	}
	return 0
}

// isRange reports an out-of-range float, which Rust reads as ±inf or 0 too.
func isRange(err error) bool {
	return err.(*strconv.NumError).Err == strconv.ErrRange
}

// isFloat is whether text is a float as Rust's FromStr reads one: decimal
// with an optional exponent, or inf/infinity/nan in any case.
func isFloat(text string) bool {
	p := strings.TrimLeft(text, "+-")
	if len(text)-len(p) > 1 {
		return false
	}
	switch strings.ToLower(p) {
	case "inf", "infinity", "nan":
		return true
	}
	digits, i := 0, 0
	for ; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
		digits++
	}
	if i < len(p) && p[i] == '.' {
		for i++; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		start := i
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(p)
}

func order64(x float64) int64 {
	bits := int64(math.Float64bits(x))
	return bits ^ int64(uint64(bits>>63)>>1)
}

func order32(x float32) int32 {
	bits := int32(math.Float32bits(x))
	return bits ^ int32(uint32(bits>>31)>>1)
}

func sign[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare orders row r of column against value.
func compare(column *sluice.Column, r int, value key) int {
	switch column.Type {
	case sluice.Int32:
		return sign(int64(column.Int32s[r]), value.signed)
	case sluice.Int64:
		return sign(column.Int64s[r], value.signed)
	case sluice.Uint32:
		return sign(uint64(column.Uint32s[r]), value.unsigned)
	case sluice.Uint64:
		return sign(column.Uint64s[r], value.unsigned)
	case sluice.Float32:
		return sign(int64(order32(column.Float32s[r])), value.signed)
	case sluice.Float64:
		return sign(order64(column.Float64s[r]), value.signed)
	case sluice.Bool:
		b := int64(0)
		if column.Bool(r) {
			b = 1
		}
		return sign(b, value.signed)
	}
	return bytes.Compare(column.Value(r), value.text)
}
