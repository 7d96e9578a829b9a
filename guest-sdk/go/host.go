package sluice

// Level is the severity of a log record.
type Level uint8

// The log levels.
const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// Host is what the host offers a plugin. Inside a component the build
// binds it to the host's imports; in native tests it does nothing unless a
// test sets it.
var Host interface {
	Log(level Level, message string, fields map[string]string)
	CounterAdd(name string, delta uint64)
} = noHost{}

// Log writes a structured log record attributed to the plugin.
func Log(level Level, message string, fields map[string]string) {
	Host.Log(level, message, fields)
}

// CounterAdd adds delta to the plugin's counter name.
func CounterAdd(name string, delta uint64) {
	Host.CounterAdd(name, delta)
}

type noHost struct{}

func (noHost) Log(Level, string, map[string]string) {}
func (noHost) CounterAdd(string, uint64)            {}
