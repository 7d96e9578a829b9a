"""The plugin's entry point, as registered by `@transform` or `@aggregate`."""

import inspect

from .errors import Fatal

#: `fn(batch, config) -> Batch` of a transform plugin.
transform = None
#: The class of an aggregate plugin, built with `cls(config)`.
aggregate = None


def register_transform(fn):
    """Make `fn(batch)` or `fn(batch, config)` the plugin's transform."""
    global transform
    if transform is not None or aggregate is not None:
        raise Fatal("a plugin has one @transform or one @aggregate")
    params = len(inspect.signature(fn).parameters)
    if params not in (1, 2):
        raise Fatal(f"@transform {fn.__name__} takes (batch) or (batch, config), not {params} arguments")
    transform = fn if params == 2 else (lambda batch, _config: fn(batch))
    return fn


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
