"""The contract's columnar batches to and from `Batch`, and plugin errors
to the contract's typed errors. Only Wasm builds import this module (it
needs the generated `wit_world` bindings)."""

import traceback
from itertools import accumulate

from componentize_py_types import Err
from wit_world.imports import types as wit

from .batch import Batch, Column
from .errors import Fatal, InvalidInput, PluginError, Transient

# Row validity of each byte value of a bitmap, least significant bit first.
_BITS = [tuple(bool((b >> i) & 1) for i in range(8)) for b in range(256)]


def _bits(bitmap, n):
    out = []
    for b in bitmap[: (n + 7) // 8]:
        out.extend(_BITS[b])
    del out[n:]
    return out


def _pack_bits(flags):
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def _with_nulls(values, validity, n):
    if validity is None:
        return values
    return [v if ok else None for v, ok in zip(values, _bits(validity, n))]


def _var(var, n, decode):
    o, data = var.offsets, var.bytes
    if decode:
        return [data[o[i]:o[i + 1]].decode() for i in range(n)]
    return [data[o[i]:o[i + 1]] for i in range(n)]


_TYPES = {
    wit.ArrayData_Boolean: "bool", wit.ArrayData_Int32: "int32", wit.ArrayData_Int64: "int64",
    wit.ArrayData_Uint32: "uint32", wit.ArrayData_Uint64: "uint64",
    wit.ArrayData_Float32: "float32", wit.ArrayData_Float64: "float64",
    wit.ArrayData_Utf8: "utf8", wit.ArrayData_Binary: "binary",
    wit.ArrayData_Timestamp: "timestamp", wit.ArrayData_List: "list", wit.ArrayData_Struct: "struct",
}


def _values(arrays, index):
    """The values of `arrays[index]` as Python values: a list per list row, a
    dict per struct row, None for nulls."""
    array = arrays[index]
    n, data, validity = array.len, array.data, array.validity
    kind = type(data)
    if kind is wit.ArrayData_Boolean:
        values = _bits(data.value, n)
    elif kind is wit.ArrayData_Utf8 or kind is wit.ArrayData_Binary:
        values = _var(data.value, n, kind is wit.ArrayData_Utf8)
    elif kind is wit.ArrayData_Timestamp:
        values = list(data.value.values)
    elif kind is wit.ArrayData_List:
        items, o = _values(arrays, data.value.child), data.value.offsets
        values = [items[o[i]:o[i + 1]] for i in range(n)]
    elif kind is wit.ArrayData_Struct:
        fields = [(f.name, _values(arrays, f.child)) for f in data.value]
        values = [{name: column[i] for name, column in fields} for i in range(n)]
    else:
        values = list(data.value)
    return _with_nulls(values, validity, n)


class _Raw:
    """A column as the host sent it: array `index` of `arrays`, the input
    column `name`, at the input rows `keep` (None: every row)."""

    __slots__ = ("arrays", "index", "name", "keep", "len")

    def __init__(self, arrays, index, name, keep=None):
        self.arrays, self.index, self.name, self.keep = arrays, index, name, keep
        self.len = arrays[index].len if keep is None else len(keep)

    def values(self):
        values = _values(self.arrays, self.index)
        if self.keep is None:
            return values
        return [values[i] for i in self.keep]

    def take(self, keep):
        """The rows `keep` of this column: the host takes them, nothing is
        copied here."""
        rows = keep if self.keep is None else [self.keep[i] for i in keep]
        return _Raw(self.arrays, self.index, self.name, rows)


def lift(batch):
    """The contract's batch as a `Batch` whose columns decode on first use."""
    columns = []
    for c in batch.columns:
        array = batch.arrays[c.array]
        kind = _TYPES[type(array.data)]
        unit = timezone = None
        if kind == "timestamp":
            unit, timezone = array.data.value.unit.name.lower(), array.data.value.timezone
        columns.append(Column._lazy(c.name, kind, c.nullable, _Raw(batch.arrays, c.array, c.name), unit, timezone))
    return Batch(columns, batch.num_rows)


def _encode_var(values):
    parts = [b"" if v is None else v for v in values]
    offsets = [0]
    offsets.extend(accumulate(len(p) for p in parts))
    return wit.VarData(offsets, b"".join(parts))


_UNITS = {u.name.lower(): u for u in wit.TimeUnit}
_NUMERIC = {
    "int32": wit.ArrayData_Int32, "int64": wit.ArrayData_Int64,
    "uint32": wit.ArrayData_Uint32, "uint64": wit.ArrayData_Uint64,
    "float32": wit.ArrayData_Float32, "float64": wit.ArrayData_Float64,
}


def _encode(column, n, out):
    """Append `column`'s values to `out` as one array; returns its index."""
    values = column.values
    if len(values) != n:
        raise Fatal(f"column `{column.name}` has {len(values)} values, the batch {n} rows")
    kind = column.type
    if kind in ("list", "struct"):
        raise Fatal(f"column `{column.name}`: the Python SDK reads {kind} values but cannot "
                    "write new ones yet; pass the column through or filter its rows")
    # `in` compares in C: no Python-level loop for the common case.
    has_nulls = None in values
    validity = _pack_bits([v is not None for v in values]) if has_nulls else None
    if kind == "utf8":
        data = wit.ArrayData_Utf8(_encode_var([None if v is None else v.encode() for v in values]))
    elif kind == "binary":
        data = wit.ArrayData_Binary(_encode_var([None if v is None else bytes(v) for v in values]))
    elif kind == "bool":
        data = wit.ArrayData_Boolean(_pack_bits(values))
    else:
        zero = 0.0 if kind.startswith("float") else 0
        plain = [zero if v is None else v for v in values] if has_nulls else values
        if kind == "timestamp":
            data = wit.ArrayData_Timestamp(wit.TimestampData(_UNITS[column.unit], column.timezone, plain))
        else:
            data = _NUMERIC[kind](plain)
    out.append(wit.Array(n, validity, data))
    return len(out) - 1


def lower(batch, input_rows, read_some):
    """A `Batch` returned for an input of `input_rows` rows, as the
    contract's output: (the made columns as a batch, the input rows the
    output keeps or None, and where each column comes from: ("made", i),
    ("input", name), or, first when the plugin declared what it reads
    (`read_some`), ("in-place", None): the input's columns in input order,
    those it read as it returned them). Input columns returned as they
    came, at the same rows, stay with the host; the others are made."""
    rows = next((c.raw.keep for c in batch.columns if c.raw is not None and c.raw.keep is not None), None)
    # Without a selection, rows other than the input's are the made
    # columns' own, and no input column fits them.
    own_rows = rows is None and batch.num_rows != input_rows

    def kept(column):
        raw = column.raw
        if raw is None or raw.name != column.name or own_rows:
            return False
        return raw.keep is rows or raw.keep == rows

    arrays, columns = [], []
    layout = [("in-place", None)] if read_some and not own_rows else []
    for column in batch.columns:
        if kept(column):
            layout.append(("input", column.name))
            continue
        array = _encode(column, batch.num_rows, arrays)
        columns.append(wit.Column(column.name, column.nullable, array))
        layout.append(("made", len(columns) - 1))
    made = wit.Batch(batch.num_rows, columns, arrays)
    return made, rows, layout


def lower_all(batch):
    """A `Batch` as the contract's batch, every column encoded."""
    arrays, columns = [], []
    for column in batch.columns:
        array = _encode(column, batch.num_rows, arrays)
        columns.append(wit.Column(column.name, column.nullable, array))
    return wit.Batch(batch.num_rows, columns, arrays)


def _error(error):
    if isinstance(error, InvalidInput):
        return wit.PluginError_InvalidInput(wit.InvalidInput(str(error), error.rows))
    if isinstance(error, Transient):
        return wit.PluginError_Transient(str(error))
    if isinstance(error, PluginError):
        return wit.PluginError_Fatal(str(error))
    return wit.PluginError_Fatal("".join(traceback.format_exception_only(error)).strip())


def guarded(call):
    """Run `call`, raising any failure as the contract's typed error."""
    try:
        return call()
    except Err:
        raise
    except Exception as error:  # every failure reaches the host typed
        raise Err(_error(error))
