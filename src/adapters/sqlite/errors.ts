import { StoreQueryError } from "../../store/errors.js";

const TRANSIENT = new Set(["SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_TIMEOUT"]);

/** Wraps a better-sqlite3 error as a `StoreQueryError`; busy/locked databases are retryable. */
export function toStoreError(e: unknown, text: string): StoreQueryError {
  const code = (e as { code?: unknown }).code;
  const sqlState = typeof code === "string" ? code : undefined;
  const first = text.trim().split("\n")[0]?.slice(0, 120) ?? "";
  return new StoreQueryError(`SQLite: ${(e as Error).message} (in: ${first})`, sqlState, {
    cause: e,
    retryable: sqlState !== undefined && TRANSIENT.has(sqlState),
  });
}
