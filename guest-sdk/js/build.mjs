// Packages a JavaScript plugin into a component with componentize-js.
// Usage: node build.mjs NODE_MODULES SOURCE WIT_DIR WORLD OUT
// (`sluice plugin build` runs this; SOURCE is the generated entry module.)

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, sourcePath, witPath, worldName, out] = process.argv.slice(2);
const entry = join(modules, "@bytecodealliance/componentize-js/src/componentize.js");
const { componentize } = await import(pathToFileURL(entry));
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName,
  // Without these the component would import wasi:http.
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
