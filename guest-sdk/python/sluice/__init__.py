"""Write Sluice plugins in Python: one function over a batch of named columns.

    import sluice

    @sluice.transform
    def shout(batch, config):
        return batch.replace("name", [v and v.upper() for v in batch["name"]])

See README.md beside this package.
"""

from .batch import Batch, Column
from .config import Config
from .errors import Fatal, InvalidInput, PluginError, Transient
from .host import counter_add, log
from .registry import register_aggregate as aggregate
from .registry import register_transform as transform

__all__ = [
    "Batch", "Column", "Config", "Fatal", "InvalidInput", "PluginError", "Transient",
    "aggregate", "counter_add", "log", "transform",
]
