import { afterEach, describe, expect, it, vi } from "vitest";
import { wakeableSleep } from "./wakeable-sleep.js";

describe("wakeableSleep", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("resolves after its time, or at once when woken, and a wake with no sleep is forgotten", async () => {
    vi.useFakeTimers();
    const idle = wakeableSleep();
    idle.wake(); // nothing sleeping: no effect on the next sleep
    let done = false;
    const first = idle.sleep(1000).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await first;
    expect(done).toBe(true);

    let woken = false;
    const second = idle.sleep(60_000).then(() => (woken = true));
    await vi.advanceTimersByTimeAsync(10);
    expect(woken).toBe(false);
    idle.wake();
    await second;
    expect(woken).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
