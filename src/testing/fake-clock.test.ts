import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { FakeClock } from "./fake-clock.js";

describe("FakeClock", () => {
  it("starts at the given time (default 2025-01-01) and only moves when told", async () => {
    expect(new FakeClock().now()).toBe(Date.UTC(2025, 0, 1));
    const clock = new FakeClock(1_000);
    expect(clock.now()).toBe(1_000);
    await clock.advance(500);
    expect(clock.now()).toBe(1_500);
    await clock.advance("2s");
    expect(clock.now()).toBe(3_500);
  });

  it("resolves a sleep only once time reaches its due time", async () => {
    const clock = new FakeClock(0);
    let woke = false;
    const sleeping = clock.sleep(1_000).then(() => (woke = true));
    expect(clock.pendingSleepers).toBe(1);
    await clock.advance(999);
    expect(woke).toBe(false);
    await clock.advance(1);
    await sleeping;
    expect(woke).toBe(true);
    expect(clock.pendingSleepers).toBe(0);
  });

  it("wakes sleepers in due order, each at its own due time", async () => {
    const clock = new FakeClock(0);
    const seen: [string, number][] = [];
    const sleep = (name: string, ms: number) =>
      clock.sleep(ms).then(() => void seen.push([name, clock.now()]));
    const all = Promise.all([sleep("c", 300), sleep("a", 100), sleep("b", 200), sleep("a2", 100)]);
    await clock.advance(1_000);
    await all;
    expect(seen).toEqual([
      ["a", 100],
      ["a2", 100],
      ["b", 200],
      ["c", 300],
    ]);
    expect(clock.now()).toBe(1_000);
  });

  it("fires sleeps chained by woken code inside the advanced window", async () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 5; i++) {
        await clock.sleep(100);
        await Promise.resolve(); // more async work between sleeps
        ticks.push(clock.now());
      }
    })();
    await clock.advance(350);
    expect(ticks).toEqual([100, 200, 300]);
    await clock.advance(1_000);
    await loop;
    expect(ticks).toEqual([100, 200, 300, 400, 500]);
  });

  it("resolves sleep(0) at once", async () => {
    const clock = new FakeClock(0);
    await clock.sleep(0);
    expect(clock.pendingSleepers).toBe(0);
  });

  it("rejects a sleep with the signal's reason when aborted, and forgets it", async () => {
    const clock = new FakeClock(0);
    const controller = new AbortController();
    const sleeping = clock.sleep(1_000, controller.signal);
    const reason = new Error("stopping");
    controller.abort(reason);
    await expect(sleeping).rejects.toBe(reason);
    expect(clock.pendingSleepers).toBe(0);

    const already = AbortSignal.abort(new Error("already"));
    await expect(clock.sleep(10, already)).rejects.toThrow("already");
  });

  it("set() jumps forward waking due sleepers, and back without waking any", async () => {
    const clock = new FakeClock(0);
    let woke = 0;
    const a = clock.sleep(100).then(() => woke++);
    const b = clock.sleep(5_000).then(() => woke++);
    clock.set(1_000);
    await a;
    expect(woke).toBe(1);
    clock.set(500);
    expect(clock.now()).toBe(500);
    expect(clock.pendingSleepers).toBe(1);
    await clock.advance(4_500);
    await b;
    expect(woke).toBe(2);
  });

  it("with `between`, wakes the sleepers of one instant together and awaits it before time moves on", async () => {
    const clock = new FakeClock(0);
    const log: string[] = [];
    for (const [name, ms] of [
      ["a", 100],
      ["b", 100],
      ["c", 300],
    ] as const)
      void clock.sleep(ms).then(() => log.push(`${name}@${clock.now()}`));
    // Slow work woken at 100 ms (several turns of the event loop) schedules more at 200 ms.
    const between = async () => {
      await new Promise((r) => setImmediate(r)); // the woken code's own callbacks first
      log.push(`between@${clock.now()}`);
      if (clock.now() === 100) {
        await new Promise((r) => setTimeout(r, 20));
        void clock.sleep(100).then(() => log.push(`late@${clock.now()}`));
      }
    };
    await clock.advance(400, { between });
    expect(log).toEqual([
      "between@0",
      "a@100",
      "b@100",
      "between@100",
      "late@200",
      "between@200",
      "c@300",
      "between@300",
    ]);
    expect(clock.now()).toBe(400);
  });

  it("runs concurrent advances one after the other", async () => {
    const clock = new FakeClock(0);
    await Promise.all([clock.advance(100), clock.advance(200)]);
    expect(clock.now()).toBe(300);
  });

  it("rejects negative durations and non-finite times with a typed error", async () => {
    let caught: unknown;
    try {
      new FakeClock(Number.NaN);
    } catch (e) {
      caught = e;
    }
    expect(isPatchbayError(caught, "INVALID_ARGUMENT")).toBe(true);
    const advancing = new FakeClock(0).advance(-1);
    await expect(advancing).rejects.toSatisfy((e: unknown) => isPatchbayError(e, "DURATION_INVALID"));
  });
});
