// Package plugin masks e-mail addresses and payment card numbers in string
// columns, exactly as the Rust `pii-redact` plugin does. Config: `columns`
// (comma-separated utf8 or binary columns; default: every utf8 column).
package plugin

import "sluice"

// Transform redacts the configured columns of one batch.
func Transform(batch *sluice.Batch, config sluice.Config) error {
	wanted := config.List("columns")
	for _, name := range wanted {
		if batch.Column(name) == nil {
			return sluice.Fatal("no column `%s` in the batch", name)
		}
	}
	var total uint64
	for i := range batch.Columns {
		column := &batch.Columns[i]
		if len(wanted) > 0 && !contains(wanted, column.Name) || len(wanted) == 0 && column.Type != sluice.Utf8 {
			continue
		}
		if column.Type != sluice.Utf8 && column.Type != sluice.Binary {
			return sluice.Fatal("column `%s` is not utf8 or binary", column.Name)
		}
		values := make([][]byte, column.Len)
		for r := range values {
			if !column.IsNull(r) {
				var count uint64
				values[r], count = redact(column.Value(r))
				total += count
			}
		}
		if err := column.SetValues(values); err != nil {
			return err
		}
	}
	sluice.CounterAdd("redactions", total)
	return nil
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
func isAlnum(b byte) bool { return isDigit(b) || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
func isLocal(b byte) bool {
	return isAlnum(b) || b == '.' || b == '_' || b == '%' || b == '+' || b == '-'
}
func isDomain(b byte) bool { return isAlnum(b) || b == '.' || b == '-' }

// emailAround is the span of an e-mail address whose `@` is at `at`.
func emailAround(s []byte, at int) (start, end int, ok bool) {
	from, to := at, at+1
	for from > 0 && isLocal(s[from-1]) {
		from--
	}
	for to < len(s) && isDomain(s[to]) {
		to++
	}
	for to > at+1 && s[to-1] == '.' {
		to--
	}
	dot := at + 1
	for dot < to && s[dot] != '.' {
		dot++
	}
	if dot == to || from >= at || dot == at+1 || dot+1 >= to {
		return 0, 0, false
	}
	return from, to, true
}

func luhn(digits []byte) bool {
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// cardAt is the end and last four digits of a card number at start.
func cardAt(s []byte, start int) (end int, last4 []byte, ok bool) {
	var digits [19]byte
	n, i, stop := 0, start, start
	for i < len(s) {
		b := s[i]
		if isDigit(b) {
			if n == len(digits) {
				return 0, nil, false
			}
			digits[n] = b
			n++
			i++
			stop = i
		} else if (b == ' ' || b == '-') && i+1 < len(s) && isDigit(s[i+1]) && n > 0 {
			i++
		} else {
			break
		}
	}
	if stop < len(s) && isAlnum(s[stop]) || n < 13 || !luhn(digits[:n]) {
		return 0, nil, false
	}
	return stop, append([]byte(nil), digits[n-4:n]...), true
}

// redact is s with its e-mail addresses and card numbers masked, and the
// number of masks.
func redact(s []byte) ([]byte, uint64) {
	out := make([]byte, 0, len(s)+16)
	var count uint64
	copied, i := 0, 0
	for i < len(s) {
		if s[i] == '@' {
			if start, end, ok := emailAround(s, i); ok && start >= copied {
				out = append(out, s[copied:start+1]...)
				out = append(out, "***"...)
				out = append(out, s[i:end]...)
				copied, i = end, end
				count++
				continue
			}
		} else if isDigit(s[i]) && (i == 0 || !isAlnum(s[i-1])) {
			if end, last4, ok := cardAt(s, i); ok {
				out = append(out, s[copied:i]...)
				out = append(out, "****-****-****-"...)
				out = append(out, last4...)
				copied, i = end, end
				count++
				continue
			}
		}
		i++
	}
	return append(out, s[copied:]...), count
}
