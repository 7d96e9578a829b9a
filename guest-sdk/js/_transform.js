// The `transformer` export of a JavaScript transform plugin.

import { counterAdd, log } from "sluice:plugin/host@0.1.0";
import { Config, registered, setHost } from "./sluice.js";
import { guarded, lift, lower } from "./_columnar.js";

setHost({ counterAdd, log });
let config = new Config();

export const transformer = {
  init(entries) {
    config = new Config(entries);
  },
  process(input) {
    return guarded(() => ({ batch: lower(registered.transform(lift(input), config)), routed: [] }));
  },
  snapshot() {
    return undefined;
  },
  restore() {},
};
