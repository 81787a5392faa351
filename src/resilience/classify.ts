/**
 * The default answer to "should this error be retried?": only failures that are likely transient.
 * Retrying anything else wastes time at best and repeats a side effect at worst.
 */
import { isPatchbayError } from "../core/errors.js";

/** HTTP statuses that mean "try again later": timeout, too early, rate limit, server trouble. */
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Socket and DNS failures of Node and undici (fetch) that a later attempt may not meet. */
const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
]);

/** How deep to follow `cause` (fetch wraps the socket error once; proxies may wrap again). */
const MAX_CAUSE_DEPTH = 5;

/**
 * True when `e` is a transient failure worth retrying; the default `retryOn` of {@link retry}.
 *
 * - Patchbay errors: their `retryable` flag (so `TIMEOUT`, `BULKHEAD_FULL` yes; `SCHEMA_INVALID`,
 *   `CIRCUIT_OPEN`, `NON_RETRYABLE` no).
 * - Aborts (`name === "AbortError"`): never; the caller asked to stop.
 * - A numeric `status` or `statusCode` of 408, 425, 429, 500, 502, 503 or 504.
 * - Network errors: `code` ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPIPE, EAI_AGAIN, ENETUNREACH,
 *   EHOSTUNREACH, UND_ERR_SOCKET, UND_ERR_CONNECT_TIMEOUT, UND_ERR_HEADERS_TIMEOUT, on the error or
 *   on its `cause` chain (undici's `TypeError("fetch failed")` carries it in `cause`).
 * - A `TimeoutError` DOMException from `AbortSignal.timeout()`: yes, it is a timeout like ours.
 * - Everything else, including programming errors (`TypeError`, `ReferenceError`, `SyntaxError`,
 *   `RangeError` with no network cause): no.
 *
 * @example retry({ retryOn: (e) => isRetryableError(e) || (e as { status?: number }).status === 409 })
 */
export function isRetryableError(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  if (isPatchbayError(e)) return e.retryable;
  const error = e as { name?: unknown; status?: unknown; statusCode?: unknown };
  if (error.name === "AbortError") return false;
  if (error.name === "TimeoutError") return true;
  const status = typeof error.status === "number" ? error.status : error.statusCode;
  if (typeof status === "number") return RETRYABLE_STATUS.has(status);
  return hasNetworkCode(e, 0);
}

function hasNetworkCode(e: object, depth: number): boolean {
  const { code, cause, errors } = e as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
  if (depth >= MAX_CAUSE_DEPTH) return false;
  // Happy-eyeballs connects (Node 20 autoSelectFamily) fail with an AggregateError of attempts.
  if (Array.isArray(errors)) {
    for (const inner of errors as unknown[]) {
      if (typeof inner === "object" && inner !== null && hasNetworkCode(inner, depth + 1)) return true;
    }
  }
  if (typeof cause !== "object" || cause === null || isPatchbayError(cause)) return false;
  if ((cause as { name?: unknown }).name === "AbortError") return false;
  return hasNetworkCode(cause, depth + 1);
}

/**
 * The wait an error asks for before the next attempt, in ms: its numeric `retryAfterMs` field
 * (an HTTP client sets it from a `Retry-After` header, a circuit breaker from its open time), or
 * `undefined`. May be negative for a `Retry-After` date in the past, and 0 from a half-open
 * breaker: read it through {@link retryWait}, which never lets a hint shorten the backoff.
 */
export function retryAfterMsOf(e: unknown): number | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const value = (e as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof value === "number" && !Number.isNaN(value) ? value : undefined;
}

/**
 * The wait before the next attempt: the backoff's own delay, stretched to the hint when the hint
 * asks for longer — the one rule every retry loop follows (`retry()`, saga steps, bus redeliveries,
 * webhook attempts, the HTTP client).
 *
 * A hint is a floor, never a shortcut. A half-open breaker refuses with `retryAfterMs: 0` ("a probe
 * is in flight, no telling when it ends"), and a `Retry-After` in the past reads as 0 or less: a
 * loop that obeyed those would retry at once, and a busy one would spend every attempt in seconds.
 * An open breaker's hint (the time until it lets a probe through) keeps the caller away until the
 * breaker can admit a call.
 *
 * Returns `Infinity` for an endless hint (a breaker isolated by hand): the caller decides whether
 * that means giving up or falling back to the backoff. A missing, NaN or non-positive hint leaves
 * the backoff as it is.
 *
 * @example retryWait(backoff.delay(attempt, previous, random), retryAfterMsOf(error))
 */
export function retryWait(backoffMs: number, hintMs: number | undefined): number {
  const backoff = Number.isFinite(backoffMs) && backoffMs > 0 ? backoffMs : 0;
  return hintMs !== undefined && hintMs > backoff ? hintMs : backoff;
}
