"""The `transformer` export of a Python transform plugin."""

from wit_world import exports
from wit_world.exports import transformer

from . import registry
from ._columnar import guarded, lift, lower
from .batch import Batch
from .config import Config
from .errors import Fatal


# The instance's configuration (module state: componentize-py may create
# a new `Transformer` for every call).
_config = Config()


def _output_column(source):
    kind, value = source
    if kind == "made":
        return transformer.OutputColumn_Made(value)
    if kind == "input":
        return transformer.OutputColumn_Input(value)
    return transformer.OutputColumn_InPlace()


class Transformer(exports.Transformer):
    """The `transformer` export over the registered transform function."""

    def init(self, config):
        global _config
        _config = Config(config)

    def reads(self):
        if registry.reads is None:
            return None
        try:
            return list(registry.reads(_config))
        except Exception:  # noqa: BLE001 - read everything; `process` will say what is wrong
            return None

    def process(self, input):
        def call():
            out = registry.transform(lift(input), _config)
            if not isinstance(out, Batch):
                raise Fatal(f"the transform returned {type(out).__name__}, not a Batch")
            made, rows, layout = lower(out, input.num_rows, registry.reads is not None)
            return transformer.Output(made, rows, [_output_column(s) for s in layout], [])
        return guarded(call)

    def snapshot(self):
        return None

    def restore(self, state):
        pass
