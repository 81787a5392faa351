import { describe, expect, it } from "vitest";
import { NonRetryableError } from "../core/errors.js";
import { constant, exponential } from "../resilience/backoff.js";
import { CircuitOpenError } from "../resilience/errors.js";
import {
  COMPENSATE_RETRY,
  decideAfterFailure,
  forever,
  retryAt,
  retrySettings,
  STEP_RETRY,
} from "./policy.js";

describe("saga retry policy", () => {
  const settings = retrySettings({ maxAttempts: 3, backoff: constant("2s") }, STEP_RETRY, "retry");

  it("retries a plain error with the backoff's delay until the attempts are used up", () => {
    expect(decideAfterFailure(settings, 1, new Error("boom"), undefined)).toEqual({
      kind: "retry",
      delayMs: 2000,
    });
    expect(decideAfterFailure(settings, 2, new Error("boom"), 2000)).toEqual({
      kind: "retry",
      delayMs: 2000,
    });
    expect(decideAfterFailure(settings, 3, new Error("boom"), 2000)).toEqual({
      kind: "give-up",
      reason: "attempts",
    });
  });

  it("gives up at once on a non-retryable error", () => {
    expect(decideAfterFailure(settings, 1, new NonRetryableError("declined"), undefined)).toEqual({
      kind: "give-up",
      reason: "not-retryable",
    });
  });

  it("waits what an error's retryAfterMs asks (Retry-After) when longer than the backoff, and ignores an endless one", () => {
    const hinted = Object.assign(new Error("429"), { retryAfterMs: 7000 });
    expect(decideAfterFailure(settings, 1, hinted, undefined)).toEqual({ kind: "retry", delayMs: 7000 });
    const endless = Object.assign(new Error("429"), { retryAfterMs: Number.POSITIVE_INFINITY });
    expect(decideAfterFailure(settings, 1, endless, undefined)).toEqual({ kind: "retry", delayMs: 2000 });
  });

  it("never lets a circuit breaker's refusal shorten the backoff: half-open waits the backoff, open until it admits a call", () => {
    // A step that keeps trying through refusals (the shop's charge does). Half-open with its probe
    // in flight, the breaker says 0 ("no telling when"); obeying it burnt every attempt.
    const settings = retrySettings(
      { maxAttempts: 3, backoff: constant("2s"), retryOn: () => true },
      STEP_RETRY,
      "retry",
    );
    expect(decideAfterFailure(settings, 1, new CircuitOpenError(0, "half-open"), undefined)).toEqual({
      kind: "retry",
      delayMs: 2000,
    });
    expect(decideAfterFailure(settings, 1, new CircuitOpenError(250, "open"), undefined)).toEqual({
      kind: "retry",
      delayMs: 2000,
    });
    expect(decideAfterFailure(settings, 1, new CircuitOpenError(9000, "open"), undefined)).toEqual({
      kind: "retry",
      delayMs: 9000,
    });
    const past = Object.assign(new Error("503"), { retryAfterMs: -3000 });
    expect(decideAfterFailure(settings, 1, past, undefined)).toEqual({ kind: "retry", delayMs: 2000 });
  });

  it("grows exponentially with jitter drawn from the random source", () => {
    const s = retrySettings(
      { maxAttempts: 10, backoff: exponential({ initial: "1s", max: "8s" }) },
      STEP_RETRY,
      "retry",
    );
    const half = () => 0.5;
    expect([1, 2, 3, 4, 5].map((a) => decideAfterFailure(s, a, new Error("x"), undefined, half))).toEqual(
      [500, 1000, 2000, 4000, 4000].map((delayMs) => ({ kind: "retry", delayMs })),
    );
  });

  it("after the pivot, retries without limit", () => {
    const f = forever(settings);
    expect(decideAfterFailure(f, 1_000_000, new Error("x"), 2000)).toEqual({ kind: "retry", delayMs: 2000 });
    expect(decideAfterFailure(f, 5, new NonRetryableError("x"), 2000).kind).toBe("give-up");
  });

  it("never schedules a retry past the saga's deadline", () => {
    expect(retryAt(1000, 5000, undefined)).toBe(6000);
    expect(retryAt(1000, 5000, 3000)).toBe(3000);
  });

  it("checks the options and keeps the defaults it is not given", () => {
    expect(retrySettings({ maxAttempts: 5 }, COMPENSATE_RETRY, "x").backoff).toBe(COMPENSATE_RETRY.backoff);
    expect(() => retrySettings({ maxAttempts: 0 }, STEP_RETRY, "retry")).toThrow(/maxAttempts/);
    expect(() => retrySettings({ backoff: {} as never }, STEP_RETRY, "retry")).toThrow(/backoff/);
    expect(() => retrySettings({ retryOn: 1 as never }, STEP_RETRY, "retry")).toThrow(/retryOn/);
  });
});
