import { describe, expect, it } from "vitest";
import { retrySchedule } from "./schedule.js";

const mid = () => 0.5; // no jitter at the middle of the range

describe("retry schedule", () => {
  it("defaults to at once, 5 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h, then gives up", () => {
    const s = retrySchedule();
    expect(s.attempts).toBe(8);
    expect(s.firstDelay(mid)).toBe(0);
    const waits = [1, 2, 3, 4, 5, 6, 7].map((n) => s.nextDelay(n, mid));
    expect(waits).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(s.nextDelay(8, mid)).toBeUndefined();
  });

  it("jitters each wait by up to ±10 % by default, never below zero", () => {
    const s = retrySchedule();
    expect(s.nextDelay(1, () => 0)).toBe(4_500);
    expect(s.nextDelay(1, () => 0.999999)).toBe(5_500);
    expect(retrySchedule({ jitter: 0 }).nextDelay(1, () => 0)).toBe(5_000);
  });

  it("waits at least what Retry-After asks, up to maxRetryAfter", () => {
    const s = retrySchedule({ jitter: 0 });
    expect(s.nextDelay(1, mid, 60_000)).toBe(60_000);
    expect(s.nextDelay(2, mid, 60_000)).toBe(300_000);
    expect(s.nextDelay(1, mid, 7 * 86_400_000)).toBe(86_400_000);
    expect(s.nextDelay(8, mid, 1000)).toBeUndefined();
  });

  it("takes a schedule of its own and refuses a bad one", () => {
    expect(retrySchedule({ delays: ["1s", "1m"], jitter: 0 }).nextDelay(1, mid)).toBe(60_000);
    expect(() => retrySchedule({ delays: [] })).toThrow(/1 to 100/);
    expect(() => retrySchedule({ jitter: 2 })).toThrow(/jitter/);
    expect(() => retrySchedule({ delays: ["soon"] })).toThrow(/duration/);
  });
});
