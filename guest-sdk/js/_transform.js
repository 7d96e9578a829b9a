// The `transformer` export of a JavaScript transform plugin.

import { counterAdd, log } from "sluice:plugin/host@0.2.0";
import { Config, registered, setHost } from "./sluice.js";
import { guarded, lift, lower } from "./_columnar.js";

setHost({ counterAdd, log });
let config = new Config();

export const transformer = {
  init(entries) {
    config = new Config(entries);
  },
  reads() {
    if (!registered.reads) return undefined;
    try {
      const names = registered.reads(config);
      return names === null || names === undefined ? undefined : Array.from(names);
    } catch {
      // Read everything; `process` will say what is wrong.
      return undefined;
    }
  },
  process(input) {
    return guarded(() => {
      const { batch, rows, columns } = lower(
        registered.transform(lift(input), config),
        input.numRows,
        Boolean(registered.reads),
      );
      return { batch, rows, columns, routed: [] };
    });
  },
  snapshot() {
    return undefined;
  },
  restore() {},
};
