/**
 * Table and column names from configuration or from row keys are names, never SQL: each part is
 * checked against a plain-name pattern (via the store's `quoteIdentifier`) before it is quoted.
 */
import { InvalidArgumentError } from "../core/errors.js";
import { quoteIdentifier } from "../store/sql.js";

/** How a dialect quotes a checked name: `"name"` (PostgreSQL, SQLite) or `` `name` `` (MySQL). */
export type QuoteStyle = "double" | "backtick";

/** A validated, possibly schema-qualified table name. */
export interface TableName {
  /** Schema (PostgreSQL), database (MySQL) or attached database (SQLite); undefined = the default. */
  readonly schema: string | undefined;
  readonly name: string;
  /** `schema.name` as given, for messages. */
  readonly display: string;
}

/** Quotes a plain name (letters, digits, `_`; at most 63 chars); anything else throws `INVALID_ARGUMENT`. */
export function quoteName(name: string, style: QuoteStyle, what = "identifier"): string {
  const quoted = quoteIdentifier(name, what);
  return style === "double" ? quoted : `\`${quoted.slice(1, -1)}\``;
}

/** True when `name` would pass {@link quoteName}. */
export function isPlainName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name);
}

/**
 * Parses `"table"` or `"schema.table"`, checking each part. A hostile name such as
 * `x"; DROP TABLE y; --` throws `INVALID_ARGUMENT` before any SQL exists.
 */
export function parseTableName(value: unknown, what = "table"): TableName {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(
      `${what} must be a table name such as "orders" or "warehouse.orders"`,
      what,
    );
  }
  const parts = value.split(".");
  if (parts.length > 2) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(value)} has more than two parts; use "table" or "schema.table"`,
      what,
    );
  }
  for (const part of parts) quoteIdentifier(part, what);
  const [first, second] = parts as [string, string | undefined];
  return second === undefined
    ? { schema: undefined, name: first, display: value }
    : { schema: first, name: second, display: value };
}

/** The quoted, qualified name: `"warehouse"."orders"`. */
export function quoteTable(table: TableName, style: QuoteStyle): string {
  const name = quoteName(table.name, style);
  return table.schema === undefined ? name : `${quoteName(table.schema, style)}.${name}`;
}

/** A table in the same schema as `table`, e.g. the checkpoint table beside the destination. */
export function sibling(table: TableName, name: string): TableName {
  quoteIdentifier(name, "table");
  return {
    schema: table.schema,
    name,
    display: table.schema === undefined ? name : `${table.schema}.${name}`,
  };
}

/** Checks a list of column names (one or more, no duplicates); returns it as an array. */
export function parseColumns(value: unknown, what: string, { allowEmpty = false } = {}): string[] {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || (!allowEmpty && list.length === 0)) {
    throw new InvalidArgumentError(`${what} must be a column name or a non-empty array of them`, what);
  }
  for (const column of list) quoteIdentifier(column as string, what);
  if (new Set(list).size !== list.length) {
    throw new InvalidArgumentError(`${what} names a column twice`, what);
  }
  return list as string[];
}
