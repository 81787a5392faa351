import { afterEach, describe, expect, it, vi } from "vitest";
import { settleBy } from "./settle-by.js";

describe("settleBy", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("resolves true when the work settles in time, false at the deadline, and leaves no timer", async () => {
    vi.useFakeTimers();
    const quick = settleBy(new Promise((r) => setTimeout(r, 100)), Date.now() + 1000);
    await vi.advanceTimersByTimeAsync(100);
    expect(await quick).toBe(true);
    expect(vi.getTimerCount()).toBe(0);

    let outcome: boolean | undefined;
    const slow = settleBy(new Promise(() => undefined), Date.now() + 1000).then((v) => (outcome = v));
    await vi.advanceTimersByTimeAsync(999);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await slow;
    expect(outcome).toBe(false);
    const past = settleBy(new Promise(() => undefined), Date.now() - 5); // already past
    await vi.advanceTimersByTimeAsync(0);
    expect(await past).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("passes on a failure that comes in time; one that comes late is not an unhandled rejection", async () => {
    vi.useFakeTimers();
    const failed = settleBy(Promise.reject(new Error("boom")), Date.now() + 1000);
    await expect(failed).rejects.toThrow("boom");
    let fail!: (e: Error) => void;
    const late = settleBy(new Promise((_, reject) => (fail = reject)), Date.now() + 10);
    await vi.advanceTimersByTimeAsync(10);
    expect(await late).toBe(false);
    fail(new Error("too late")); // would fail the run as an unhandled rejection if unobserved
    await vi.advanceTimersByTimeAsync(1);
  });
});
