"""The `transformer` export of a Python transform plugin."""

from wit_world import exports
from wit_world.imports import types as wit

from . import registry
from ._columnar import guarded, lift, lower
from .batch import Batch
from .config import Config
from .errors import Fatal


# The instance's configuration (module state: componentize-py may create
# a new `Transformer` for every call).
_config = Config()


class Transformer(exports.Transformer):
    """The `transformer` export over the registered transform function."""

    def init(self, config):
        global _config
        _config = Config(config)

    def process(self, input):
        def call():
            out = registry.transform(lift(input), _config)
            if not isinstance(out, Batch):
                raise Fatal(f"the transform returned {type(out).__name__}, not a Batch")
            return wit.Transformed(lower(out), [])
        return guarded(call)

    def snapshot(self):
        return None

    def restore(self, state):
        pass
