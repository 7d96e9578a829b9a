"""The host's structured log and metrics; off Wasm they print to stderr."""

import sys

try:
    from wit_world.imports import host as _host
except ImportError:  # running natively, e.g. in the plugin's own tests
    _host = None

LEVELS = ("trace", "debug", "info", "warn", "error")


def log(level, message, **fields):
    """Write a structured log record (`level` one of trace, debug, info,
    warn, error), attributed to the plugin."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; one of {', '.join(LEVELS)}")
    pairs = [(str(k), str(v)) for k, v in fields.items()]
    if _host is None:
        print(f"[{level}] {message} {dict(pairs)}", file=sys.stderr)
    else:
        _host.log(_host.Level[level.upper()], message, pairs)


def counter_add(name, delta):
    """Add `delta` to the plugin's counter `name`."""
    if _host is not None:
        _host.counter_add(name, int(delta))
