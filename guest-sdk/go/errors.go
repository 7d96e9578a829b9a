package sluice

import "fmt"

// ErrorKind tells the host what to do after a plugin error.
type ErrorKind int

// The kinds of plugin error.
const (
	// KindFatal stops the job.
	KindFatal ErrorKind = iota
	// KindTransient asks for a retry of the same batch.
	KindTransient
	// KindInvalidInput sends the rows to the dead-letter output.
	KindInvalidInput
)

// Error is a typed plugin error.
type Error struct {
	Kind    ErrorKind
	Message string
	// Rows are the rejected input rows of an invalid-input error; empty
	// means the whole batch.
	Rows []uint32
}

func (e *Error) Error() string { return e.Message }

// Fatal is an error that stops the job.
func Fatal(format string, args ...any) error {
	return &Error{Kind: KindFatal, Message: fmt.Sprintf(format, args...)}
}

// Transient is an error after which a retry of the same batch may succeed.
func Transient(format string, args ...any) error {
	return &Error{Kind: KindTransient, Message: fmt.Sprintf(format, args...)}
}

// InvalidInput rejects rows (all of them when rows is empty); the host
// dead-letters them.
func InvalidInput(rows []uint32, format string, args ...any) error {
	return &Error{Kind: KindInvalidInput, Message: fmt.Sprintf(format, args...), Rows: rows}
}
