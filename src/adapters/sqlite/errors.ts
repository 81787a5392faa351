import { StoreQueryError } from "../../store/errors.js";

const TRANSIENT = new Set(["SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_TIMEOUT"]);

/** SQLite's primary result codes (the low byte of an extended code), by number. */
const PRIMARY: Record<number, string> = {
  1: "ERROR",
  2: "INTERNAL",
  3: "PERM",
  4: "ABORT",
  5: "BUSY",
  6: "LOCKED",
  7: "NOMEM",
  8: "READONLY",
  9: "INTERRUPT",
  10: "IOERR",
  11: "CORRUPT",
  12: "NOTFOUND",
  13: "FULL",
  14: "CANTOPEN",
  15: "PROTOCOL",
  16: "EMPTY",
  17: "SCHEMA",
  18: "TOOBIG",
  19: "CONSTRAINT",
  20: "MISMATCH",
  21: "MISUSE",
  22: "NOLFS",
  23: "AUTH",
  24: "FORMAT",
  25: "RANGE",
  26: "NOTADB",
};

/** The extended codes callers branch on (https://sqlite.org/rescode.html), by number. */
const EXTENDED: Record<number, string> = {
  261: "BUSY_RECOVERY",
  517: "BUSY_SNAPSHOT",
  773: "BUSY_TIMEOUT",
  262: "LOCKED_SHAREDCACHE",
  275: "CONSTRAINT_CHECK",
  531: "CONSTRAINT_COMMITHOOK",
  787: "CONSTRAINT_FOREIGNKEY",
  1043: "CONSTRAINT_FUNCTION",
  1299: "CONSTRAINT_NOTNULL",
  1555: "CONSTRAINT_PRIMARYKEY",
  1811: "CONSTRAINT_TRIGGER",
  2067: "CONSTRAINT_UNIQUE",
  2323: "CONSTRAINT_VTAB",
  2579: "CONSTRAINT_ROWID",
  3091: "CONSTRAINT_DATATYPE",
  1032: "READONLY_DBMOVED",
};

/**
 * SQLite's own name for the error (`SQLITE_CONSTRAINT_UNIQUE`, `SQLITE_BUSY`), from the numeric
 * extended code `node:sqlite` reports; the driver's own code (`ERR_INVALID_ARG_TYPE`) otherwise.
 */
export function sqliteCode(e: unknown): string | undefined {
  const { errcode, code } = (e ?? {}) as { errcode?: unknown; code?: unknown };
  if (typeof errcode === "number") {
    const name = EXTENDED[errcode] ?? PRIMARY[errcode & 0xff];
    return name ? `SQLITE_${name}` : `SQLITE_${errcode}`;
  }
  return typeof code === "string" ? code : undefined;
}

/** Wraps a `node:sqlite` error as a `StoreQueryError`; busy/locked databases are retryable. */
export function toStoreError(e: unknown, text: string): StoreQueryError {
  const sqlState = sqliteCode(e);
  const first = text.trim().split("\n")[0]?.slice(0, 120) ?? "";
  return new StoreQueryError(`SQLite: ${(e as Error).message} (in: ${first})`, sqlState, {
    cause: e,
    retryable: sqlState !== undefined && TRANSIENT.has(sqlState),
  });
}
