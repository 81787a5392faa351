import { afterEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "./clock.js";

describe("systemClock.sleep", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("waits the full time for delays beyond setTimeout's 2^31-1 ms limit", async () => {
    vi.useFakeTimers();
    let done = false;
    const thirtyDays = 30 * 86_400_000;
    const sleeping = systemClock.sleep(thirtyDays).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(25 * 86_400_000);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(5 * 86_400_000);
    await sleeping;
    expect(done).toBe(true);
  });

  it("rejects with the signal's reason as soon as it aborts", async () => {
    const controller = new AbortController();
    const sleeping = systemClock.sleep(60_000, controller.signal);
    controller.abort(new Error("stop"));
    await expect(sleeping).rejects.toThrow("stop");
  });
});
