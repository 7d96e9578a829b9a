// Write Sluice plugins in JavaScript: one function over a batch of named
// columns, whose values are typed arrays. See README.md beside this file.

/** The job must stop. */
export class Fatal extends Error {}

/** A retry of the same batch may succeed. */
export class Transient extends Error {}

/** The input is bad: its rows (indexes; none = the whole batch) go to the
 * dead-letter output. */
export class InvalidInput extends Error {
  constructor(message, rows = []) {
    super(message);
    this.rows = rows;
  }
}

/** The plugin's settings from the job file, as key/value strings. */
export class Config {
  constructor(entries = []) {
    this.entries = Array.isArray(entries) ? entries : Object.entries(entries);
  }

  /** The value of `key`, or `fallback` when unset. */
  get(key, fallback = undefined) {
    const entry = this.entries.find(([k]) => k === key);
    return entry === undefined ? fallback : entry[1];
  }

  /** The value of `key`, or a fatal error naming it. */
  require(key) {
    const value = this.get(key);
    if (value === undefined) throw new Fatal(`missing config key \`${key}\``);
    return value;
  }

  /** The value of `key` as a comma-separated list (empty if unset). */
  list(key) {
    const value = this.get(key);
    if (value === undefined) return [];
    return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }
}

const ARRAYS = {
  int32: Int32Array, int64: BigInt64Array, uint32: Uint32Array, uint64: BigUint64Array,
  float32: Float32Array, float64: Float64Array,
};
const TYPES = [...Object.keys(ARRAYS), "bool", "utf8", "binary", "timestamp"];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Flags (one truthy/falsy per row) as a bitmap, least significant bit first. */
export function packBits(flags) {
  const out = new Uint8Array((flags.length + 7) >> 3);
  for (let i = 0; i < flags.length; i++) if (flags[i]) out[i >> 3] |= 1 << (i & 7);
  return out;
}

function bit(bits, i) {
  return (bits[i >> 3] >> (i & 7)) & 1;
}

function pick(values, keep) {
  const out = new values.constructor(keep.length);
  keep.forEach((row, i) => { out[i] = values[row]; });
  return out;
}

function pickVar(val, keep) {
  const offsets = new Int32Array(keep.length + 1);
  keep.forEach((row, i) => { offsets[i + 1] = offsets[i] + val.offsets[row + 1] - val.offsets[row]; });
  const bytes = new Uint8Array(offsets[keep.length]);
  keep.forEach((row, i) => bytes.set(val.bytes.subarray(val.offsets[row], val.offsets[row + 1]), offsets[i]));
  return { offsets, bytes };
}

/** Row `i` of the contract's array `arrays[index]` as a JavaScript value:
 * an array per list row, an object per struct row, null for a null. */
function nestedValue(arrays, index, i) {
  const array = arrays[index];
  if (array.validity && !bit(array.validity, i)) return null;
  const { tag, val } = array.data;
  switch (tag) {
    case "list": {
      const out = [];
      for (let j = val.offsets[i]; j < val.offsets[i + 1]; j++) out.push(nestedValue(arrays, val.child, j));
      return out;
    }
    case "struct":
      return Object.fromEntries(val.map((f) => [f.name, nestedValue(arrays, f.child, i)]));
    case "boolean":
      return bit(val, i) === 1;
    case "utf8":
      return decoder.decode(val.bytes.subarray(val.offsets[i], val.offsets[i + 1]));
    case "binary":
      return val.bytes.subarray(val.offsets[i], val.offsets[i + 1]);
    case "timestamp":
      return val.values[i];
    default:
      return val[i];
  }
}

/** Appends to `out` the rows `keep` of the contract's array `arrays[index]`
 * and of its children; returns the new array's index. */
function takeNested(arrays, index, keep, out) {
  const array = arrays[index];
  const { tag, val } = array.data;
  let data;
  switch (tag) {
    case "boolean":
      data = { tag, val: packBits(keep.map((i) => bit(val, i))) };
      break;
    case "utf8":
    case "binary":
      data = { tag, val: pickVar(val, keep) };
      break;
    case "timestamp":
      data = { tag, val: { ...val, values: pick(val.values, keep) } };
      break;
    case "list": {
      const items = [];
      const offsets = new Int32Array(keep.length + 1);
      keep.forEach((row, i) => {
        for (let j = val.offsets[row]; j < val.offsets[row + 1]; j++) items.push(j);
        offsets[i + 1] = items.length;
      });
      data = { tag, val: { ...val, offsets, child: takeNested(arrays, val.child, items, out) } };
      break;
    }
    case "struct":
      data = { tag, val: val.map((f) => ({ ...f, child: takeNested(arrays, f.child, keep, out) })) };
      break;
    default:
      data = { tag, val: pick(val, keep) };
  }
  const validity = array.validity ? packBits(keep.map((i) => bit(array.validity, i))) : undefined;
  out.push({ len: keep.length, validity, data });
  return out.length - 1;
}

/**
 * One named column of `length` values.
 * - numbers and timestamps: `values`, a typed array (64-bit ones of BigInt);
 * - bool: `values`, a Uint8Array of 0/1;
 * - utf8 and binary: `offsets` (Int32Array) and `bytes` (Uint8Array), value
 *   `i` being `bytes[offsets[i]..offsets[i + 1]]`;
 * - `validity`: a Uint8Array of 0/1 per row, or null when nothing is null.
 */
export class Column {
  constructor(name, type, fields) {
    if (!TYPES.includes(type) && !fields.raw) {
      throw new Fatal(`column \`${name}\`: unknown type ${type}; one of ${TYPES.join(", ")}`);
    }
    this.name = name;
    this.type = type;
    this.nullable = fields.nullable ?? true;
    this.length = fields.length;
    this.values = fields.values ?? null;
    this.offsets = fields.offsets ?? null;
    this.bytes = fields.bytes ?? null;
    this.validity = fields.validity ?? null;
    this.unit = fields.unit ?? null;
    this.timezone = fields.timezone ?? null;
    /** The column as the host sent it (passed back when unchanged). */
    this.raw = fields.raw ?? null;
  }

  /** A column of `values` (numbers, bigints, booleans, strings or
   * Uint8Arrays; null for null). */
  static of(name, type, values, options = {}) {
    const length = values.length;
    const validity = values.some((v) => v === null || v === undefined)
      ? Uint8Array.from(values, (v) => (v === null || v === undefined ? 0 : 1))
      : null;
    if (type === "utf8" || type === "binary") {
      return Column.ofBytes(name, type,
        values.map((v) => (v === null || v === undefined ? null : typeof v === "string" ? encoder.encode(v) : v)),
        options);
    }
    if (type === "bool") {
      return new Column(name, type, { ...options, length, validity, values: Uint8Array.from(values, (v) => (v ? 1 : 0)) });
    }
    const Typed = ARRAYS[type === "timestamp" ? "int64" : type];
    if (!Typed) throw new Fatal(`column \`${name}\`: unknown type ${type}; one of ${TYPES.join(", ")}`);
    const zero = Typed === BigInt64Array || Typed === BigUint64Array ? 0n : 0;
    return new Column(name, type, { ...options, length, validity, values: Typed.from(values, (v) => v ?? zero) });
  }

  /** A utf8 or binary column from one Uint8Array (or null) per row. */
  static ofBytes(name, type, chunks, options = {}) {
    const offsets = new Int32Array(chunks.length + 1);
    let total = 0;
    chunks.forEach((chunk, i) => {
      total += chunk === null ? 0 : chunk.length;
      offsets[i + 1] = total;
    });
    const bytes = new Uint8Array(total);
    chunks.forEach((chunk, i) => chunk !== null && bytes.set(chunk, offsets[i]));
    const validity = chunks.includes(null) ? Uint8Array.from(chunks, (c) => (c === null ? 0 : 1)) : null;
    return new Column(name, type, { ...options, length: chunks.length, offsets, bytes, validity });
  }

  /** Whether value `i` is null. */
  isNull(i) {
    return this.validity !== null && this.validity[i] === 0;
  }

  /** The bytes of value `i` of a utf8 or binary column (a view). */
  bytesAt(i) {
    return this.bytes.subarray(this.offsets[i], this.offsets[i + 1]);
  }

  /** Value `i` (a string for utf8, an array for a list, an object for a
   * struct), or null. */
  get(i) {
    if (this.isNull(i)) return null;
    if (this.type === "list" || this.type === "struct") return nestedValue(this.raw.arrays, this.raw.index, i);
    if (this.type === "utf8") return decoder.decode(this.bytesAt(i));
    if (this.type === "binary") return this.bytesAt(i);
    if (this.type === "bool") return this.values[i] === 1;
    return this.values[i];
  }

  /** The rows at `indexes`. Of a column as the host sent it, the host
   * takes them; its values here are taken only when read. */
  select(indexes) {
    const raw = this.raw;
    if (raw === null || raw.name === undefined || this.type === "list" || this.type === "struct") {
      return this.take(indexes);
    }
    const keep = raw.keep === null ? indexes : Array.from(indexes, (i) => raw.keep[i]);
    const options = { nullable: this.nullable, unit: this.unit, timezone: this.timezone };
    const column = new Column(this.name, this.type, { ...options, length: indexes.length, raw: { ...raw, keep } });
    let taken = null;
    for (const key of ["values", "offsets", "bytes", "validity"]) {
      Object.defineProperty(column, key, {
        get: () => (taken ??= this.take(indexes))[key],
        configurable: true,
        enumerable: true,
      });
    }
    return column;
  }

  /** The rows at `indexes`, as a new column. */
  take(indexes) {
    const options = { nullable: this.nullable, unit: this.unit, timezone: this.timezone };
    const validity = this.validity && Uint8Array.from(indexes, (i) => this.validity[i]);
    if (this.type === "list" || this.type === "struct") {
      const arrays = [];
      const index = takeNested(this.raw.arrays, this.raw.index, Array.from(indexes), arrays);
      return new Column(this.name, this.type, { ...options, length: indexes.length, validity, raw: { arrays, index } });
    }
    if (this.offsets !== null) {
      return Column.ofBytes(this.name, this.type, Array.from(indexes, (i) => (this.isNull(i) ? null : this.bytesAt(i))), options);
    }
    const values = new this.values.constructor(indexes.length);
    indexes.forEach((row, i) => { values[i] = this.values[row]; });
    return new Column(this.name, this.type, { ...options, length: indexes.length, values, validity });
  }
}

/** Rows as named columns. */
export class Batch {
  /** `keep`: the input rows this batch's rows are, after a filter (null:
   * every input row, or rows of its own). */
  constructor(columns, numRows = columns.length ? columns[0].length : 0, keep = null) {
    for (const column of columns) {
      if (column.length !== numRows) {
        throw new Fatal(`column \`${column.name}\` has ${column.length} values, the batch ${numRows} rows`);
      }
    }
    this.columns = columns;
    this.numRows = numRows;
    this.keep = keep;
  }

  /** The column `name`, or undefined. */
  get(name) {
    return this.columns.find((c) => c.name === name);
  }

  /** The column `name`, or a fatal error naming it. */
  column(name) {
    const column = this.get(name);
    if (column === undefined) throw new Fatal(`no column \`${name}\` in the batch`);
    return column;
  }

  /** This batch with `column` in place of the column of the same name. */
  replace(column) {
    this.column(column.name);
    return new Batch(this.columns.map((c) => (c.name === column.name ? column : c)), this.numRows, this.keep);
  }

  /** The rows where `mask[i]` is truthy. */
  filter(mask) {
    if (mask.length !== this.numRows) {
      throw new Fatal(`filter mask has ${mask.length} entries for ${this.numRows} rows`);
    }
    const keep = [];
    for (let i = 0; i < mask.length; i++) if (mask[i]) keep.push(i);
    // Every row stays: the columns go back as they came.
    if (keep.length === this.numRows) return this;
    const rows = this.keep === null ? keep : keep.map((i) => this.keep[i]);
    return new Batch(this.columns.map((c) => c.select(keep)), keep.length, rows);
  }
}

let host = { counterAdd() {}, log(level, message) { console.error(`[${level}] ${message}`); } };

/** Used by the component's glue to reach the host. */
export function setHost(imports) {
  host = imports;
}

/** Add `delta` to the plugin's counter `name`. */
export function counterAdd(name, delta) {
  host.counterAdd(name, BigInt(delta));
}

/** Write a structured log record (trace, debug, info, warn, error). */
export function log(level, message, fields = {}) {
  host.log(level, message, Object.entries(fields).map(([k, v]) => [k, String(v)]));
}

/** The registered entry point: `{ transform }` or `{ aggregate }`. */
export const registered = {};

/** Make `fn(batch, config)` the plugin's transform. `{ reads }` declares the
 * only columns it reads (an array of names, or `config => names`): only they
 * cross into the plugin. */
export function transform(fn, { reads } = {}) {
  if (registered.transform || registered.aggregate) throw new Fatal("a plugin has one transform or one aggregate");
  registered.transform = fn;
  if (reads !== undefined && reads !== null) {
    registered.reads = typeof reads === "function" ? reads : () => reads;
  }
  return fn;
}

/** Make `{ init(config), empty(), update(states, batch, groups), merge(a, b),
 * finish(states) }` the plugin's aggregate. */
export function aggregate(plugin) {
  if (registered.transform || registered.aggregate) throw new Fatal("a plugin has one transform or one aggregate");
  registered.aggregate = plugin;
  return plugin;
}
