import { StoreQueryError, StoreUnavailableError } from "../../store/errors.js";

// SQLSTATE classes and codes that mean "the same statement may succeed if tried again".
const TRANSIENT_CODES = new Set(["40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300", "53400"]);
const TRANSIENT_CLASSES = new Set(["08"]);
const NETWORK = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND"]);

/** Wraps a `pg` error as a `StoreQueryError` whose `sqlState` is the SQLSTATE. */
export function toStoreError(e: unknown, text: string): StoreQueryError {
  const code = (e as { code?: unknown }).code;
  const sqlState = typeof code === "string" ? code : undefined;
  const retryable =
    sqlState !== undefined &&
    (TRANSIENT_CODES.has(sqlState) || TRANSIENT_CLASSES.has(sqlState.slice(0, 2)) || NETWORK.has(sqlState));
  const first = text.trim().split("\n")[0]?.slice(0, 120) ?? "";
  return new StoreQueryError(`PostgreSQL: ${(e as Error).message} (in: ${first})`, sqlState, {
    cause: e,
    retryable: retryable || /Connection terminated|connection timeout/i.test((e as Error).message ?? ""),
  });
}

/** Wraps a failure to connect. */
export function toUnavailable(e: unknown, location: string): StoreUnavailableError {
  return new StoreUnavailableError(`cannot connect to PostgreSQL at ${location}: ${(e as Error).message}`, {
    cause: e,
  });
}
