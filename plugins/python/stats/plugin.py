"""Count, sum, average, minimum and maximum of a numeric column per group,
as the Rust `stats` aggregate computes them.

Config: `column` (numeric; without it, rows are only counted).
"""

import sluice

NUMERIC = ("int32", "int64", "uint32", "uint64", "float32", "float64")


@sluice.aggregate
class Stats:
    def __init__(self, config):
        self.column = config.get("column")

    def empty(self):
        return [0, 0.0, None, None]  # count, sum, min, max

    def update(self, states, batch, groups):
        if self.column is None:
            for g in groups:
                states[g][0] += 1
            return
        column = batch.get(self.column)
        if column is None:
            raise sluice.Fatal(f"stats: no column `{self.column}` in the input")
        if column.type not in NUMERIC:
            raise sluice.Fatal(f"stats: column `{self.column}` is not numeric")
        for value, g in zip(column.values, groups):
            if value is None:
                continue
            value = float(value)
            state = states[g]
            state[0] += 1
            state[1] += value
            state[2] = value if state[2] is None else min(state[2], value)
            state[3] = value if state[3] is None else max(state[3], value)

    def merge(self, state, other):
        pick = lambda f, a, b: b if a is None else a if b is None else f(a, b)
        return [state[0] + other[0], state[1] + other[1],
                pick(min, state[2], other[2]), pick(max, state[3], other[3])]

    def finish(self, states):
        seen = [self.column is not None and s[0] > 0 for s in states]
        return sluice.Batch([
            sluice.Column("count", "int64", [s[0] for s in states], nullable=False),
            sluice.Column("sum", "float64", [s[1] if ok else None for s, ok in zip(states, seen)]),
            sluice.Column("avg", "float64", [s[1] / s[0] if ok else None for s, ok in zip(states, seen)]),
            sluice.Column("min", "float64", [s[2] for s in states]),
            sluice.Column("max", "float64", [s[3] for s in states]),
        ])
