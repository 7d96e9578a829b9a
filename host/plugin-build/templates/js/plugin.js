import { Column, transform } from "sluice";

/** Upper-case the configured column (default `name`). */
export const process = transform((batch, config) => {
  const column = batch.column(config.get("column", "name"));
  const values = Array.from({ length: column.length }, (_, i) => column.get(i)?.toUpperCase() ?? null);
  return batch.replace(Column.of(column.name, "utf8", values));
});
