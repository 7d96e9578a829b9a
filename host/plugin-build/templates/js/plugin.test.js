// Native tests: `node --test` (node_modules/sluice links to the SDK).

import assert from "node:assert/strict";
import { test } from "node:test";
import { Batch, Column, Config, Fatal } from "sluice";
import { process } from "./plugin.js";

test("upper-cases the column and keeps nulls", () => {
  const batch = new Batch([Column.of("name", "utf8", ["ada", null]), Column.of("n", "int64", [1n, 2n])]);
  const out = process(batch, new Config({ column: "name" }));
  assert.deepEqual([out.column("name").get(0), out.column("name").get(1)], ["ADA", null]);
  assert.equal(out.column("n").get(1), 2n);
});

test("a missing column is a clear error", () => {
  const batch = new Batch([Column.of("n", "int64", [1n])]);
  assert.throws(() => process(batch, new Config()), (e) => e instanceof Fatal && /no column `name`/.test(e.message));
});
