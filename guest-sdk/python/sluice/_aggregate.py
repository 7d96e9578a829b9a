"""The `aggregator` export of a Python aggregate plugin."""

import pickle

from wit_world import exports
from wit_world.exports import aggregator

from . import registry
from ._columnar import guarded, lift, lower_all
from .batch import Batch
from .config import Config
from .errors import Fatal


# The plugin object (module state: componentize-py may create a new
# `Aggregator` for every call).
_plugin = None


class Aggregator(exports.Aggregator):
    """The `aggregator` export over the registered aggregate class; states
    cross the boundary pickled."""

    def _states(self, blobs):
        return [_plugin.empty() if not b else pickle.loads(b) for b in blobs]

    def init(self, config):
        def call():
            global _plugin
            _plugin = registry.aggregate(Config(config))
        guarded(call)

    def update(self, states, input, group_ids):
        def call():
            values = self._states(states)
            _plugin.update(values, lift(input), list(group_ids))
            return [pickle.dumps(v) for v in values]
        return guarded(call)

    def merge(self, left, right):
        def call():
            return [pickle.dumps(_plugin.merge(a, b))
                    for a, b in zip(self._states(left), self._states(right))]
        return guarded(call)

    def finish(self, states):
        def call():
            out = _plugin.finish(self._states(states))
            if not isinstance(out, Batch):
                raise Fatal(f"finish returned {type(out).__name__}, not a Batch")
            if out.num_rows != len(states):
                raise Fatal(f"finish returned {out.num_rows} rows for {len(states)} states")
            return aggregator.Finished(lower_all(out), [])
        return guarded(call)
