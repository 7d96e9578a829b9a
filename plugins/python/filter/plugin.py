"""Keep the rows where `column OP value` holds, exactly as the Rust `filter`
plugin does.

Config: `column`, `op` (eq, ne, lt, le, gt, ge, is_null, is_not_null),
`value` (parsed as the column's type) and `on_mismatch` (`drop`, the default,
or `reject`: the other rows go back as invalid input). Null never matches a
comparison; floats compare in IEEE total order, as Arrow does.
"""

import operator
import re
import struct

import sluice

OPS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
       "le": operator.le, "gt": operator.gt, "ge": operator.ge}
INTEGER = re.compile(r"[+-]?[0-9]+\Z")
UNSIGNED = re.compile(r"\+?[0-9]+\Z")
FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z", re.I)
RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1),
          "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1)}
ARROW_NAMES = {"int32": "Int32", "int64": "Int64", "uint32": "UInt32", "uint64": "UInt64",
               "float32": "Float32", "float64": "Float64", "bool": "Boolean", "utf8": "Utf8"}


def total_order(x, float32):
    """A key that orders floats like IEEE 754 totalOrder (Arrow's order)."""
    if float32:
        bits = struct.unpack("<i", struct.pack("<f", x))[0]
        return bits ^ ((bits >> 31) & 0x7FFFFFFF)
    bits = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits ^ ((bits >> 63) & 0x7FFFFFFFFFFFFFFF)


def scalar(kind, text):
    """`text` parsed as a value of the column type `kind`."""
    if kind not in ARROW_NAMES:
        raise sluice.Fatal(f"cannot filter on a {kind} column")
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    bad = sluice.Fatal(f"value {quoted} is not a {ARROW_NAMES[kind]}")
    if kind in RANGES:
        if not (UNSIGNED if kind.startswith("u") else INTEGER).match(text):
            raise bad
        value = int(text)
        low, high = RANGES[kind]
        if not low <= value <= high:
            raise bad
        return value
    if kind.startswith("float"):
        if not FLOAT.match(text):
            raise bad
        return total_order(float(text), kind == "float32")
    if kind == "bool":
        if text not in ("true", "false"):
            raise bad
        return text == "true"
    return text


def matches(column, op, config):
    """Per row, whether `column op value` holds."""
    if op == "is_null":
        return [v is None for v in column.values]
    if op == "is_not_null":
        return [v is not None for v in column.values]
    value = scalar(column.type, config.require("value"))
    compare = OPS.get(op)
    if compare is None:
        raise sluice.Fatal(f"unknown op `{op}`")
    values = column.values
    if column.type.startswith("float"):
        f32 = column.type == "float32"
        values = [None if v is None else total_order(v, f32) for v in values]
    return [v is not None and compare(v, value) for v in values]


@sluice.transform(reads=lambda config: [config.require("column")])
def filter_rows(batch, config):
    name = config.require("column")
    op = config.require("op")
    keep = matches(batch.column(name), op, config)
    mismatch = config.get("on_mismatch", "drop")
    if mismatch == "drop":
        return batch.filter(keep)
    if mismatch != "reject":
        raise sluice.Fatal(f'on_mismatch "{mismatch}" is not `drop` or `reject`')
    rejected = [row for row, k in enumerate(keep) if not k]
    if not rejected:
        return batch
    raise sluice.InvalidInput(f"`{name}` {op} {config.get('value', '')} does not hold", rejected)
