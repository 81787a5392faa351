import { StoreQueryError } from "../../store/errors.js";

// Deadlock, lock wait timeout, too many connections, server gone / lost connection.
const TRANSIENT_ERRNO = new Set([1205, 1213, 1040, 2006, 2013]);
const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
]);

/**
 * Wraps a `mysql2` error as a `StoreQueryError`; `sqlState` is MySQL's error code name
 * (`ER_DUP_ENTRY`), or with `standard` the SQLSTATE (`23000`) as the other stores report it (the
 * store's errors), falling back to the name for client errors that have none.
 */
export function toStoreError(e: unknown, text: string, standard = false): StoreQueryError {
  const err = e as { code?: unknown; errno?: unknown; message?: string; sqlState?: unknown; fatal?: unknown };
  const name = typeof err.code === "string" ? err.code : undefined;
  const code = standard && typeof err.sqlState === "string" ? err.sqlState : name;
  // `fatal`: the connection is gone (killed, reset, a server restart); `mysql2` says so without a
  // code when a statement is sent on a connection it already knows is closed.
  const retryable =
    err.fatal === true ||
    (typeof err.errno === "number" && TRANSIENT_ERRNO.has(err.errno)) ||
    (name !== undefined && NETWORK.has(name));
  const first = text.trim().split("\n")[0]?.slice(0, 120) ?? "";
  return new StoreQueryError(`MySQL: ${err.message ?? String(e)} (in: ${first})`, code, {
    cause: e,
    retryable,
  });
}
