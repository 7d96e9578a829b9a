"""The plugin's entry point, as registered by `@transform` or `@aggregate`."""

import inspect

from .errors import Fatal

#: `fn(batch, config) -> Batch` of a transform plugin.
transform = None
#: `fn(config) -> list of names or None`: the columns the transform reads.
reads = None
#: The class of an aggregate plugin, built with `cls(config)`.
aggregate = None


def register_transform(fn=None, *, reads=None):
    """Make `fn(batch)` or `fn(batch, config)` the plugin's transform.

    `@transform(reads=["price"])` declares the only columns it reads (a list,
    or `fn(config)` returning one, or None for every column): only they
    cross into the plugin."""
    if fn is None:
        return lambda fn: register_transform(fn, reads=reads)
    global transform
    if transform is not None or aggregate is not None:
        raise Fatal("a plugin has one @transform or one @aggregate")
    _register_reads(reads)
    params = len(inspect.signature(fn).parameters)
    if params not in (1, 2):
        raise Fatal(f"@transform {fn.__name__} takes (batch) or (batch, config), not {params} arguments")
    transform = fn if params == 2 else (lambda batch, _config: fn(batch))
    return fn


def _register_reads(declared):
    global reads
    if declared is None or callable(declared):
        reads = declared
        return
    names = list(declared)
    if not all(isinstance(name, str) for name in names):
        raise Fatal(f"@transform reads= takes column names, not {declared!r}")
    reads = lambda _config: names  # noqa: E731


def register_aggregate(cls):
    """Make `cls` (with empty, update, merge, finish) the plugin's aggregate."""
    global aggregate
    if transform is not None or aggregate is not None:
        raise Fatal("a plugin has one @transform or one @aggregate")
    missing = [m for m in ("empty", "update", "merge", "finish") if not callable(getattr(cls, m, None))]
    if missing:
        raise Fatal(f"@aggregate {cls.__name__} lacks {', '.join(missing)}")
    aggregate = cls
    return cls
