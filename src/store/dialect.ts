import type { QueryOptions, QueryResult, SqlExecutor } from "./contracts.js";
import type { StoreRoles } from "./roles.js";
import { raw, render, type RawSql, type SqlStatement } from "./sql.js";

/**
 * What Patchbay's shared repositories need to know about a backend. Adapters provide one;
 * it is internal to adapter authors, not part of the user API.
 */
export interface SqlDialect {
  /** The backend's name, for logs and `Transport.name` (`sqlite`, `postgres`); never branched on. */
  readonly name: string;
  readonly placeholders: "numbered" | "question";
  /** Quoted, qualified name of one of Patchbay's own tables (`"patchbay"."state"`, `"patchbay_state"`). */
  table(name: string): string;
  /**
   * A column name, quoted: for Patchbay's columns that are reserved words somewhere (`key` in
   * MySQL). Optional: without it, names are double-quoted (standard SQL, PostgreSQL, SQLite).
   */
  quote?(name: string): string;
  /** The statements of each role the backend plays (claims, inbox, notifications…). */
  readonly roles: StoreRoles;
  /** A JSON value as a statement parameter. */
  encodeJson(value: unknown): unknown;
  /** A JSON column as read back from the driver. */
  decodeJson(raw: unknown): unknown;
}

/** One of Patchbay's column names, quoted in the dialect's way (see {@link SqlDialect.quote}). */
export function quoteColumn(dialect: SqlDialect, name: string): string {
  return dialect.quote ? dialect.quote(name) : `"${name}"`;
}

/** {@link quoteColumn} as a fragment for {@link sql}. */
export function column(dialect: SqlDialect, name: string): RawSql {
  return raw(quoteColumn(dialect, name));
}

/** Runs a {@link SqlStatement} on an executor in the dialect's placeholder style. */
export async function run<Row = Record<string, unknown>>(
  executor: SqlExecutor,
  dialect: SqlDialect,
  statement: SqlStatement,
  options?: QueryOptions,
): Promise<QueryResult<Row>> {
  const { text, params } = render(statement, dialect.placeholders);
  return executor.query<Row>(text, params, options);
}

/**
 * For {@link run}: a statement that runs for every message and whose text does not change (array
 * parameters, not one placeholder per row) — kept prepared where the backend can (PostgreSQL).
 */
export const PREPARED: QueryOptions = { prepare: true };

/** Reads an integer column that drivers may return as string (PostgreSQL int8) or bigint. */
export function int(value: unknown): number {
  return typeof value === "number" ? value : Number(value);
}
