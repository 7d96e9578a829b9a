// The contract's columnar batches to and from `Batch`, and plugin errors to
// the contract's typed errors. Only the component's glue imports this.

import { Batch, Column, Fatal, InvalidInput, Transient, packBits } from "./sluice.js";

function unpackBits(bits, n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bits[i >> 3] >> (i & 7)) & 1;
  return out;
}

/** The contract's batch as a `Batch`. */
export function lift(batch) {
  const columns = batch.columns.map((c) => {
    const array = batch.arrays[c.array];
    const { tag, val } = array.data;
    const fields = {
      nullable: c.nullable,
      length: array.len,
      validity: array.validity ? unpackBits(array.validity, array.len) : null,
      raw: { arrays: batch.arrays, index: c.array, name: c.name, keep: null },
    };
    switch (tag) {
      case "boolean":
        return new Column(c.name, "bool", { ...fields, values: unpackBits(val, array.len) });
      case "utf8":
      case "binary":
        return new Column(c.name, tag, { ...fields, offsets: val.offsets, bytes: val.bytes });
      case "timestamp":
        return new Column(c.name, tag, { ...fields, values: val.values, unit: val.unit, timezone: val.timezone ?? null });
      case "list":
      case "struct":
        return new Column(c.name, tag, fields);
      default:
        return new Column(c.name, tag, { ...fields, values: val });
    }
  });
  return new Batch(columns, batch.numRows);
}

function copy(arrays, index, out) {
  const array = arrays[index];
  let data = array.data;
  if (data.tag === "list") {
    const child = copy(arrays, data.val.child, out);
    data = { tag: "list", val: { ...data.val, child } };
  } else if (data.tag === "struct") {
    data = { tag: "struct", val: data.val.map((f) => ({ ...f, child: copy(arrays, f.child, out) })) };
  }
  out.push({ len: array.len, validity: array.validity, data });
  return out.length - 1;
}

function encode(column) {
  const validity = column.validity && column.validity.includes(0) ? packBits(column.validity) : undefined;
  let data;
  switch (column.type) {
    case "bool":
      data = { tag: "boolean", val: packBits(column.values) };
      break;
    case "utf8":
    case "binary":
      data = { tag: column.type, val: { offsets: column.offsets, bytes: column.bytes } };
      break;
    case "timestamp":
      data = { tag: "timestamp", val: { unit: column.unit, timezone: column.timezone ?? undefined, values: column.values } };
      break;
    default:
      data = { tag: column.type, val: column.values };
  }
  return { len: column.length, validity, data };
}

function sameRows(a, b) {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A `Batch` returned for an input of `inputRows` rows, as the contract's
 * output: the made columns as a batch, the input rows the output keeps
 * (undefined for all), and where each column comes from. Input columns
 * returned as they came, at the same rows, stay with the host; when the
 * plugin declared what it reads (`readSome`), `in-place` first keeps the
 * input's column order, with the others unchanged. */
export function lower(batch, inputRows, readSome) {
  if (!(batch instanceof Batch)) throw new Fatal(`the plugin returned ${batch}, not a Batch`);
  const input = (c) => c.raw !== null && c.raw.name !== undefined;
  const rows = batch.keep ?? batch.columns.find((c) => input(c) && c.raw.keep !== null)?.raw.keep ?? null;
  // Without a selection, rows other than the input's are the made columns'
  // own, and no input column fits them.
  const ownRows = rows === null && batch.numRows !== inputRows;
  const kept = (c) => !ownRows && input(c) && c.raw.name === c.name && sameRows(c.raw.keep, rows);
  const arrays = [];
  const made = [];
  const columns = readSome && !ownRows ? [{ tag: "in-place" }] : [];
  for (const column of batch.columns) {
    if (kept(column)) {
      columns.push({ tag: "input", val: column.name });
      continue;
    }
    made.push({ name: column.name, nullable: column.nullable, array: lowerColumn(column, arrays) });
    columns.push({ tag: "made", val: made.length - 1 });
  }
  return {
    batch: { numRows: batch.numRows, columns: made, arrays },
    rows: rows === null ? undefined : Uint32Array.from(rows),
    columns,
  };
}

/** A `Batch` as the contract's batch, every column in it. */
export function lowerAll(batch) {
  if (!(batch instanceof Batch)) throw new Fatal(`the plugin returned ${batch}, not a Batch`);
  const arrays = [];
  const columns = batch.columns.map((column) => ({
    name: column.name,
    nullable: column.nullable,
    array: lowerColumn(column, arrays),
  }));
  return { numRows: batch.numRows, columns, arrays };
}

/** Appends `column` to `arrays`; returns its index. A column as the host
 * sent it (all its rows) is copied as it is. */
function lowerColumn(column, arrays) {
  if (column.raw && (column.raw.keep ?? null) === null) return copy(column.raw.arrays, column.raw.index, arrays);
  arrays.push(encode(column));
  return arrays.length - 1;
}

/** Run `call`; any failure is thrown as the contract's typed error. */
export function guarded(call) {
  try {
    return call();
  } catch (error) {
    let payload;
    if (error instanceof InvalidInput) {
      payload = { tag: "invalid-input", val: { message: error.message, rows: new Uint32Array(error.rows) } };
    } else if (error instanceof Transient) {
      payload = { tag: "transient", val: error.message };
    } else {
      payload = { tag: "fatal", val: error instanceof Fatal ? error.message : String(error) };
    }
    throw { payload };
  }
}
