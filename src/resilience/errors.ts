import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/**
 * The circuit breaker refused the call without running it: the circuit is open, half-open with
 * every probe slot taken, or isolated by hand. Not retryable: the retry policy stops at once
 * instead of hammering a dependency the breaker already judged unhealthy.
 */
export class CircuitOpenError extends PatchbayError {
  constructor(
    /**
     * How long until the breaker lets a probe through: the time left until half-open, `0` when
     * it is half-open and the probe slots are taken, `Infinity` while it is isolated by hand.
     */
    readonly retryAfterMs: number,
    /** The breaker's state when it refused the call. */
    readonly state: "open" | "half-open" | "isolated",
  ) {
    super(
      "CIRCUIT_OPEN",
      state === "isolated"
        ? "circuit breaker is isolated: calls are refused until the isolation is released"
        : state === "half-open"
          ? "circuit breaker is half-open and its probe calls are in flight; call refused"
          : `circuit breaker is open; the next probe is allowed in ${retryAfterMs} ms`,
      { retryable: false },
    );
  }
}

/** A call ran past its timeout. Retryable: a slow dependency may answer in time on the next try. */
export class TimeoutError extends PatchbayError {
  constructor(
    /** The timeout that expired, in ms. */
    readonly timeoutMs: number,
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super("TIMEOUT", `operation timed out after ${timeoutMs} ms`, { ...options, retryable: true });
  }
}

/**
 * A bulkhead refused the call: `limit` calls were running and its queue was full. Retryable: a
 * slot may be free a moment later (back off first).
 */
export class BulkheadRejectedError extends PatchbayError {
  constructor(
    /** How many calls the bulkhead runs at once. */
    readonly limit: number,
    /** How many calls may wait in its queue. */
    readonly queue: number,
  ) {
    super("BULKHEAD_FULL", `bulkhead is full: ${limit} calls running and ${queue} queued`, {
      retryable: true,
    });
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    CIRCUIT_OPEN: CircuitOpenError;
    TIMEOUT: TimeoutError;
    BULKHEAD_FULL: BulkheadRejectedError;
  }
}
