import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { every } from "./every.js";

describe("every", () => {
  it("on a fake clock, calls once per period that one advance() passes, and not after the abort", async () => {
    const clock = new FakeClock();
    const calls: number[] = [];
    const stop = new AbortController();
    every(clock, 1000, () => void calls.push(clock.now() - 1_735_689_600_000), stop.signal);
    await clock.advance(999);
    expect(calls).toEqual([]);
    await clock.advance(2001);
    expect(calls).toEqual([1000, 2000, 3000]);
    stop.abort();
    await clock.advance(5000);
    expect(calls).toHaveLength(3);
    expect(clock.pendingSleepers).toBe(0);
  });
});
