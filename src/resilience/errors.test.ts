import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { BulkheadRejectedError, CircuitOpenError, TimeoutError } from "./errors.js";

describe("resilience errors", () => {
  it("CircuitOpenError is CIRCUIT_OPEN, not retryable, and carries retryAfterMs", () => {
    const e: unknown = new CircuitOpenError(1_500, "open");
    expect(isPatchbayError(e, "CIRCUIT_OPEN")).toBe(true);
    if (!isPatchbayError(e, "CIRCUIT_OPEN")) return;
    expect(e.retryable).toBe(false);
    expect(e.retryAfterMs).toBe(1_500);
    expect(e.state).toBe("open");
    expect(e.name).toBe("CircuitOpenError");
    expect(e.message).toContain("1500 ms");
  });

  it("TimeoutError is TIMEOUT, retryable, with timeoutMs and an optional cause", () => {
    const cause = new Error("socket hang up");
    const e: unknown = new TimeoutError(2_000, { cause });
    expect(isPatchbayError(e, "TIMEOUT")).toBe(true);
    if (!isPatchbayError(e, "TIMEOUT")) return;
    expect(e.retryable).toBe(true);
    expect(e.timeoutMs).toBe(2_000);
    expect(e.cause).toBe(cause);
  });

  it("BulkheadRejectedError is BULKHEAD_FULL, retryable, with limit and queue", () => {
    const e: unknown = new BulkheadRejectedError(4, 10);
    expect(isPatchbayError(e, "BULKHEAD_FULL")).toBe(true);
    if (!isPatchbayError(e, "BULKHEAD_FULL")) return;
    expect(e.retryable).toBe(true);
    expect(e.toJSON()).toMatchObject({ code: "BULKHEAD_FULL", limit: 4, queue: 10 });
  });
});
