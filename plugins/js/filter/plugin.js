// Keep the rows where `column OP value` holds, exactly as the Rust `filter`
// plugin does. Config: `column`, `op` (eq, ne, lt, le, gt, ge, is_null,
// is_not_null), `value` (parsed as the column's type) and `on_mismatch`
// (`drop`, the default, or `reject`: the other rows go back as invalid
// input). Null never matches a comparison; floats compare in IEEE total
// order, as Arrow does.

import { Fatal, InvalidInput, transform } from "sluice";

const TESTS = {
  eq: (c) => c === 0, ne: (c) => c !== 0, lt: (c) => c < 0,
  le: (c) => c <= 0, gt: (c) => c > 0, ge: (c) => c >= 0,
};
const INTEGER = /^[+-]?[0-9]+$/;
const UNSIGNED = /^\+?[0-9]+$/;
const FLOAT = /^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$/i;
const RANGES = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint32: [0n, 2n ** 32n - 1n], uint64: [0n, 2n ** 64n - 1n],
};
const ARROW_NAMES = {
  int32: "Int32", int64: "Int64", uint32: "UInt32", uint64: "UInt64",
  float32: "Float32", float64: "Float64", bool: "Boolean", utf8: "Utf8",
};

const view = new DataView(new ArrayBuffer(8));

/** A key that orders floats like IEEE 754 totalOrder (Arrow's order). */
function totalOrder(x, float32) {
  if (float32) {
    view.setFloat32(0, x);
    const bits = view.getInt32(0);
    return BigInt(bits ^ ((bits >> 31) & 0x7fffffff));
  }
  view.setFloat64(0, x);
  const bits = view.getBigInt64(0);
  return bits ^ ((bits >> 63n) & 0x7fffffffffffffffn);
}

function parseFloatText(text) {
  const lower = text.toLowerCase().replace(/^\+/, "");
  if (lower === "inf" || lower === "infinity") return Infinity;
  if (lower === "-inf" || lower === "-infinity") return -Infinity;
  if (lower === "nan" || lower === "-nan") return lower === "nan" ? NaN : -NaN;
  return Number(text);
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** `text` as a comparable value of the column type `type`. */
function scalar(type, text) {
  if (!(type in ARROW_NAMES)) throw new Fatal(`cannot filter on a ${type} column`);
  const bad = new Fatal(`value ${JSON.stringify(text)} is not a ${ARROW_NAMES[type]}`);
  if (type in RANGES) {
    if (!(type.startsWith("u") ? UNSIGNED : INTEGER).test(text)) throw bad;
    const value = BigInt(text);
    const [low, high] = RANGES[type];
    if (value < low || value > high) throw bad;
    return value;
  }
  if (type.startsWith("float")) {
    if (!FLOAT.test(text)) throw bad;
    const f32 = type === "float32";
    return totalOrder(f32 ? Math.fround(parseFloatText(text)) : parseFloatText(text), f32);
  }
  if (type === "bool") {
    if (text !== "true" && text !== "false") throw bad;
    return text === "true" ? 1n : 0n;
  }
  return new TextEncoder().encode(text);
}

/** The value of row `i` as `scalar` gives it. */
function rowKey(column, i) {
  switch (column.type) {
    case "utf8":
      return column.bytesAt(i);
    case "float32":
    case "float64":
      return totalOrder(column.values[i], column.type === "float32");
    default:
      return BigInt(column.values[i]);
  }
}

/** Per row, 1 where `column op value` holds. */
function matches(column, op, config) {
  const mask = new Uint8Array(column.length);
  if (op === "is_null" || op === "is_not_null") {
    for (let i = 0; i < mask.length; i++) mask[i] = column.isNull(i) === (op === "is_null") ? 1 : 0;
    return mask;
  }
  const value = scalar(column.type, config.require("value"));
  const test = TESTS[op];
  if (test === undefined) throw new Fatal(`unknown op \`${op}\``);
  const order = column.type === "utf8" ? compareBytes : (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  for (let i = 0; i < mask.length; i++) {
    mask[i] = !column.isNull(i) && test(order(rowKey(column, i), value)) ? 1 : 0;
  }
  return mask;
}

export const filterRows = transform((batch, config) => {
  const name = config.require("column");
  const op = config.require("op");
  const mask = matches(batch.column(name), op, config);
  const mismatch = config.get("on_mismatch", "drop");
  if (mismatch === "drop") return batch.filter(mask);
  if (mismatch !== "reject") throw new Fatal(`on_mismatch ${JSON.stringify(mismatch)} is not \`drop\` or \`reject\``);
  const rejected = [];
  mask.forEach((keep, row) => keep || rejected.push(row));
  if (rejected.length === 0) return batch;
  throw new InvalidInput(`\`${name}\` ${op} ${config.get("value", "")} does not hold`, rejected);
}, { reads: (config) => [config.require("column")] });
