"""A batch of named columns, each a list of Python values (None = null)."""

from .errors import Fatal

#: The column types a batch may hold.
TYPES = (
    "bool", "int32", "int64", "uint32", "uint64", "float32", "float64",
    "utf8", "binary", "timestamp", "list", "struct",
)


class Column:
    """One named column: `type`, `nullable`, and `values`, a list with
    None for nulls (decoded on first use). Timestamp columns also carry
    `unit` (second, millisecond, microsecond, nanosecond) and `timezone`.
    A list column's values are Python lists, a struct column's dicts (read
    and filtered; not yet written)."""

    __slots__ = ("name", "type", "nullable", "unit", "timezone", "_values", "raw")

    def __init__(self, name, type, values, nullable=True, unit=None, timezone=None):
        if type not in TYPES:
            raise Fatal(f"column `{name}`: unknown type {type!r}; one of {', '.join(TYPES)}")
        if type == "timestamp" and unit not in ("second", "millisecond", "microsecond", "nanosecond"):
            raise Fatal(f"column `{name}`: a timestamp needs a unit, not {unit!r}")
        self.name = name
        self.type = type
        self.nullable = nullable
        self.unit = unit
        self.timezone = timezone
        self._values = list(values)
        #: The column as the host sent it, passed back untouched when unchanged.
        self.raw = None

    @classmethod
    def _lazy(cls, name, type, nullable, raw, unit=None, timezone=None):
        column = cls.__new__(cls)
        column.name, column.type, column.nullable = name, type, nullable
        column.unit, column.timezone = unit, timezone
        column._values, column.raw = None, raw
        return column

    @property
    def values(self):
        """The values as a list; None marks a null."""
        if self._values is None:
            self._values = self.raw.values()
        return self._values

    def __len__(self):
        return len(self.values)

    def __iter__(self):
        return iter(self.values)

    def __getitem__(self, index):
        return self.values[index]

    def with_values(self, values):
        """A column of the same name and type holding `values`."""
        return Column(self.name, self.type, values, self.nullable, self.unit, self.timezone)

    def _take(self, keep):
        """The rows `keep` (indexes, in order) of this column."""
        if self.raw is not None:
            return Column._lazy(self.name, self.type, self.nullable, self.raw.take(keep), self.unit, self.timezone)
        values = self.values
        return self.with_values([values[i] for i in keep])

    def __repr__(self):
        return f"Column({self.name!r}, {self.type!r}, {self.values!r})"


class Batch:
    """Rows as named columns. `batch["email"]` is the list of a column's
    values; `batch.column("email")` the column itself."""

    def __init__(self, columns, num_rows=None):
        self.columns = list(columns)
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise Fatal(f"duplicate column names in {names}")
        if num_rows is None:
            num_rows = len(self.columns[0]) if self.columns else 0
        for column in self.columns:
            if column._values is not None and len(column._values) != num_rows:
                raise Fatal(f"column `{column.name}` has {len(column._values)} values, the batch {num_rows} rows")
        self.num_rows = num_rows

    @classmethod
    def of(cls, **columns):
        """A batch from `name=(type, values)` pairs (handy in tests)."""
        return cls([Column(name, type, values) for name, (type, values) in columns.items()])

    @property
    def names(self):
        """The column names, in order."""
        return [c.name for c in self.columns]

    def get(self, name):
        """The column `name`, or None."""
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def column(self, name):
        """The column `name`, or a fatal error naming it."""
        column = self.get(name)
        if column is None:
            raise Fatal(f"no column `{name}` in the batch")
        return column

    def __getitem__(self, name):
        return self.column(name).values

    def __contains__(self, name):
        return self.get(name) is not None

    def replace(self, name, values):
        """This batch with column `name` holding `values` (same type)."""
        old = self.column(name)
        return Batch([old.with_values(values) if c is old else c for c in self.columns], self.num_rows)

    def filter(self, mask):
        """The rows where `mask` (one truth value per row) is true."""
        mask = list(mask)
        if len(mask) != self.num_rows:
            raise Fatal(f"filter mask has {len(mask)} entries for {self.num_rows} rows")
        keep = [i for i, m in enumerate(mask) if m]
        if len(keep) == self.num_rows:
            # Every row stays: the columns go back as they came.
            return self
        return Batch([c._take(keep) for c in self.columns], len(keep))

    def __repr__(self):
        return f"Batch({self.num_rows} rows, {self.columns!r})"
