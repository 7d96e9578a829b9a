// The `aggregator` export of a JavaScript aggregate plugin; states cross the
// boundary as JSON.

import { counterAdd, log } from "sluice:plugin/host@0.2.0";
import { Config, Fatal, registered, setHost } from "./sluice.js";
import { guarded, lift, lowerAll } from "./_columnar.js";

setHost({ counterAdd, log });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const plugin = () => registered.aggregate;
const states = (blobs) => blobs.map((b) => (b.length === 0 ? plugin().empty() : JSON.parse(decoder.decode(b))));
const blobs = (values) => values.map((v) => encoder.encode(JSON.stringify(v)));

export const aggregator = {
  init(entries) {
    guarded(() => plugin().init?.(new Config(entries)));
  },
  update(current, input, groups) {
    return guarded(() => {
      const values = states(current);
      plugin().update(values, lift(input), groups);
      return blobs(values);
    });
  },
  merge(left, right) {
    return guarded(() => {
      const rights = states(right);
      return blobs(states(left).map((state, i) => plugin().merge(state, rights[i])));
    });
  },
  finish(current) {
    return guarded(() => {
      const batch = plugin().finish(states(current));
      if (batch.numRows !== current.length) {
        throw new Fatal(`finish returned ${batch.numRows} rows for ${current.length} states`);
      }
      return { batch: lowerAll(batch), groups: new Uint32Array(0) };
    });
  },
};
