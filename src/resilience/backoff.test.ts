import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { constant, decorrelatedJitter, exponential } from "./backoff.js";

/** A seeded uniform generator (mulberry32), so "random" delays are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const never = () => {
  throw new Error("random() must not be called");
};

describe("constant", () => {
  it("waits the same delay before every retry, from a number or a string", () => {
    expect([1, 2, 9].map((n) => constant("2s").delay(n, undefined, never))).toEqual([2_000, 2_000, 2_000]);
    expect(constant(250).delay(1, undefined, never)).toBe(250);
  });
});

describe("exponential", () => {
  it("grows by the factor up to the cap (no jitter)", () => {
    const b = exponential({ initial: "100ms", max: "1s", factor: 2, jitter: "none" });
    expect([1, 2, 3, 4, 5, 6, 50, 5_000].map((n) => b.delay(n, undefined, never))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000,
    ]);
  });

  it("defaults to 100 ms doubling to 30 s with full jitter", () => {
    const b = exponential();
    expect(b.delay(1, undefined, () => 0.5)).toBe(50);
    expect(b.delay(3, undefined, () => 0.5)).toBe(200);
    expect(b.delay(30, undefined, () => 0.5)).toBe(15_000);
  });

  it("applies full jitter AFTER the cap: at the cap delays spread over [0, max), not all equal to max", () => {
    const b = exponential({ initial: "100ms", max: "10s" });
    const random = seeded(42);
    // Attempts 20..219 are all far past the cap (100 ms * 2^19 > 10 s).
    const delays = Array.from({ length: 200 }, (_, i) => b.delay(20 + i, undefined, random));
    expect(Math.max(...delays)).toBeLessThan(10_000);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(new Set(delays).size).toBeGreaterThan(150);
    // Spread across the whole range: some in each quarter.
    for (let q = 0; q < 4; q++) {
      expect(delays.filter((d) => d >= q * 2_500 && d < (q + 1) * 2_500).length).toBeGreaterThan(20);
    }
    expect(b.delay(20, undefined, () => 0)).toBe(0);
    expect(b.delay(20, undefined, () => 0.999_999)).toBe(9_999);
  });

  it("stays finite and at the cap for huge attempt numbers, and 0 stays 0", () => {
    expect(exponential({ jitter: "none", max: "1m" }).delay(1e9, undefined, never)).toBe(60_000);
    expect(exponential({ initial: 0, jitter: "none" }).delay(1e9, undefined, never)).toBe(0);
  });

  it("rejects bad options with typed errors", () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isPatchbayError(e) ? e.code : "untyped";
      }
      return "none";
    };
    expect(codeOf(() => exponential({ initial: "soon" }))).toBe("DURATION_INVALID");
    expect(codeOf(() => exponential({ max: -1 }))).toBe("DURATION_INVALID");
    expect(codeOf(() => exponential({ factor: 0.5 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => exponential({ factor: Number.NaN }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => exponential({ jitter: "half" as "full" }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => constant("1 fortnight"))).toBe("DURATION_INVALID");
    expect(codeOf(() => decorrelatedJitter({ initial: "10s", max: "1s" }))).toBe("INVALID_ARGUMENT");
  });
});

describe("decorrelatedJitter", () => {
  it("picks a delay between initial and 3x the previous one, capped at max", () => {
    const b = decorrelatedJitter({ initial: "100ms", max: "1s" });
    expect(b.delay(1, undefined, () => 0)).toBe(100);
    expect(b.delay(1, undefined, () => 0.999_999)).toBe(299);
    expect(b.delay(2, 200, () => 0.5)).toBe(350);
    expect(b.delay(5, 900, () => 0.999_999)).toBe(1_000);
  });

  it("keeps a chain of delays within [initial, max] and spread out", () => {
    const b = decorrelatedJitter({ initial: 50, max: 5_000 });
    const random = seeded(7);
    let previous: number | undefined;
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 100; attempt++) {
      previous = b.delay(attempt, previous, random);
      delays.push(previous);
    }
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...delays)).toBeLessThanOrEqual(5_000);
    expect(new Set(delays).size).toBeGreaterThan(50);
  });
});
