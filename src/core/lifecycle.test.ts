import { describe, expect, it } from "vitest";
import { isPatchbayError } from "./errors.js";
import { createLifecycle } from "./lifecycle.js";

function part() {
  const calls: string[] = [];
  const life = createLifecycle("thing", {
    start: async () => {
      calls.push("start");
      await new Promise((r) => setTimeout(r, 5));
    },
    stop: async (timeoutMs) => {
      calls.push(`stop ${timeoutMs}`);
      await new Promise((r) => setTimeout(r, 5));
    },
  });
  return { life, calls };
}

describe("createLifecycle", () => {
  it("starts once however often start() is called, and stops once however often stop() is", async () => {
    const { life, calls } = part();
    await Promise.all([life.start(), life.start()]);
    await life.start();
    expect(life.state).toBe("started");
    await Promise.all([life.stop({ timeout: "2s" }), life.stop()]);
    expect(calls).toEqual(["start", "stop 2000"]);
    expect(life.state).toBe("stopped");
  });

  it("refuses start() and new work after stop() with STOPPED, naming the part", async () => {
    const { life } = part();
    await life.start();
    await life.stop();
    const e = await life.start().catch((err: unknown) => err);
    expect(isPatchbayError(e, "STOPPED") && e.part).toBe("thing");
    expect(() => life.assertNotStopped()).toThrow(/thing/);
  });

  it("a stop() during start() waits for the start, then stops", async () => {
    const { life, calls } = part();
    const started = life.start();
    await life.stop({ timeout: 100 });
    await started;
    expect(calls).toEqual(["start", "stop 100"]);
  });

  it("a stop() with a timeout that is not a duration stops nothing; a valid one follows", async () => {
    const { life, calls } = part();
    await life.start();
    const e = await life.stop({ timeout: "soon" }).catch((err: unknown) => err);
    expect(isPatchbayError(e, "DURATION_INVALID")).toBe(true);
    expect(life.state).toBe("started");
    await life.stop();
    expect(calls).toEqual(["start", "stop 30000"]);
  });

  it("a start() that failed may be tried again", async () => {
    let fail = true;
    const life = createLifecycle("flaky", {
      start: () => (fail ? Promise.reject(new Error("down")) : Promise.resolve()),
      stop: () => Promise.resolve(),
    });
    await expect(life.start()).rejects.toThrow("down");
    fail = false;
    await life.start();
    expect(life.state).toBe("started");
  });
});
