import { afterEach, describe, expect, it, vi } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { FakeClock } from "../testing/fake-clock.js";
import { timeout } from "./timeout.js";

/** Settles `promise` into a record without letting it reject unhandled. */
function observe<T>(promise: Promise<T>) {
  const seen: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => Object.assign(seen, { done: true, value }),
    (error: unknown) => Object.assign(seen, { done: true, error }),
  );
  return seen;
}

/** A callee that ignores its signal and settles only when the fake clock reaches `ms`. */
const stubborn =
  (clock: FakeClock, ms: number, value = "late") =>
  () =>
    clock.sleep(ms).then(() => value);

/** Settles once `signal` aborts, rejecting with its reason (a callee that honours its signal). */
const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())).then((): never => {
    throw signal.reason;
  });

describe("timeout", () => {
  it("returns the callee's result within the time and leaves no timer behind", async () => {
    const clock = new FakeClock(0);
    const policy = timeout("1s", { clock });
    expect(await policy.execute(() => 42)).toBe(42);
    expect(await policy.execute(() => Promise.resolve("async"))).toBe("async");
    await clock.advance(0);
    expect(clock.pendingSleepers).toBe(0);
    expect(policy.timeoutMs).toBe(1_000);
  });

  it("aborts the call's signal at the deadline with a TimeoutError reason", async () => {
    const clock = new FakeClock(0);
    let signal: AbortSignal | undefined;
    const result = observe(
      timeout("1s", { clock }).execute((ctx) => {
        signal = ctx.signal;
        return untilAborted(ctx.signal);
      }),
    );
    await clock.advance(999);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    expect(signal?.aborted).toBe(true);
    expect(isPatchbayError(signal?.reason, "TIMEOUT")).toBe(true);
    expect(result.error).toBe(signal?.reason);
    expect(isPatchbayError(result.error, "TIMEOUT") && result.error.timeoutMs).toBe(1_000);
  });

  it("cooperative: waits for the callee to settle, then rejects with TIMEOUT since the deadline passed", async () => {
    const clock = new FakeClock(0);
    const result = observe(timeout("1s", { clock }).execute(stubborn(clock, 1_500)));
    await clock.advance(1_000);
    expect(result.done).toBe(false);
    await clock.advance(500);
    expect(result.done).toBe(true);
    expect(isPatchbayError(result.error, "TIMEOUT")).toBe(true);
  });

  it("cooperative: a callee error after the deadline becomes a TimeoutError with that cause", async () => {
    const clock = new FakeClock(0);
    const driverError = new Error("query canceled");
    const result = observe(
      timeout("1s", { clock }).execute(
        ({ signal }) =>
          new Promise((_, reject) => signal.addEventListener("abort", () => reject(driverError))),
      ),
    );
    await clock.advance("1s");
    expect(isPatchbayError(result.error, "TIMEOUT") && result.error.cause).toBe(driverError);
  });

  it("aggressive: rejects with TIMEOUT at the deadline without waiting; the late result is dropped", async () => {
    const clock = new FakeClock(0);
    let callSignal: AbortSignal | undefined;
    const late = stubborn(clock, 5_000);
    const result = observe(
      timeout("1s", { strategy: "aggressive", clock }).execute(({ signal }) => {
        callSignal = signal;
        return late();
      }),
    );
    await clock.advance(1_000);
    expect(result.done).toBe(true);
    expect(isPatchbayError(result.error, "TIMEOUT")).toBe(true);
    expect(callSignal?.aborted).toBe(true);
    await clock.advance(4_000);
    expect(result.value).toBeUndefined();
  });

  it("aggressive: a late rejection of the callee is dropped, not unhandled", async () => {
    const clock = new FakeClock(0);
    const result = observe(
      timeout(100, { strategy: "aggressive", clock }).execute(() =>
        clock.sleep(200).then(() => Promise.reject(new Error("too late"))),
      ),
    );
    await clock.advance(300);
    expect(isPatchbayError(result.error, "TIMEOUT")).toBe(true);
  });

  it.each(["cooperative", "aggressive"] as const)(
    "%s: passes results and errors through",
    async (strategy) => {
      const clock = new FakeClock(0);
      const policy = timeout("1s", { strategy, clock });
      expect(await policy.execute(() => Promise.resolve("v"))).toBe("v");
      const sync = new Error("sync");
      await expect(
        policy.execute(() => {
          throw sync;
        }),
      ).rejects.toBe(sync);
      await expect(policy.execute(() => Promise.reject(new Error("async")))).rejects.toThrow("async");
      await clock.advance(0);
      expect(clock.pendingSleepers).toBe(0);
    },
  );

  it("gives each call its own signal, distinct from the caller's and from other calls'", async () => {
    const clock = new FakeClock(0);
    const policy = timeout("1s", { clock });
    const caller = new AbortController();
    const signals: AbortSignal[] = [];
    const first = observe(
      policy.execute(({ signal }) => {
        signals.push(signal);
        return clock.sleep(2_000);
      }, caller.signal),
    );
    await clock.advance(500);
    const second = observe(
      policy.execute(({ signal }) => {
        signals.push(signal);
        return clock.sleep(100).then(() => "quick");
      }, caller.signal),
    );
    expect(signals).toHaveLength(2);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals[0]).not.toBe(caller.signal);
    await clock.advance(500);
    expect(signals[0]?.aborted).toBe(true); // the first call's deadline
    expect(signals[1]?.aborted).toBe(false); // does not touch the second
    expect(caller.signal.aborted).toBe(false);
    expect(second.value).toBe("quick");
    await clock.advance(1_000);
    expect(isPatchbayError(first.error, "TIMEOUT")).toBe(true);
  });

  it.each(["cooperative", "aggressive"] as const)(
    "%s: the caller's abort reaches the call's signal with the caller's reason",
    async (strategy) => {
      const clock = new FakeClock(0);
      const caller = new AbortController();
      const result = observe(
        timeout("1m", { strategy, clock }).execute(({ signal }) => untilAborted(signal), caller.signal),
      );
      const reason = new Error("shutdown");
      caller.abort(reason);
      await clock.advance(0);
      expect(result.error).toBe(reason);
      await expect(timeout("1s", { strategy, clock }).execute(() => 1, caller.signal)).rejects.toBe(reason);
    },
  );

  it("a signal first read after the deadline is already aborted with the TimeoutError", async () => {
    const clock = new FakeClock(0);
    let late: AbortSignal | undefined;
    const result = observe(
      timeout("1s", { clock }).execute(async (ctx) => {
        await clock.sleep(2_000);
        late = ctx.signal;
      }),
    );
    await clock.advance("2s");
    expect(late?.aborted).toBe(true);
    expect(isPatchbayError(late?.reason, "TIMEOUT")).toBe(true);
    expect(result.error).toBe(late?.reason);
  });

  it("a signal first read after the caller aborted is already aborted with the caller's reason", async () => {
    const clock = new FakeClock(0);
    const caller = new AbortController();
    let late: AbortSignal | undefined;
    const result = observe(
      timeout("1m", { clock }).execute(async (ctx) => {
        await clock.sleep(10);
        late = ctx.signal;
        return "finished anyway";
      }, caller.signal),
    );
    const reason = new Error("cancelled");
    caller.abort(reason);
    await clock.advance(10);
    expect(late?.reason).toBe(reason);
    expect(result.value).toBe("finished anyway"); // cooperative: the callee decides
  });

  it("aggressive: rejects on the caller's abort even when the callee never reads its signal", async () => {
    const clock = new FakeClock(0);
    const caller = new AbortController();
    const result = observe(
      timeout("1m", { strategy: "aggressive", clock }).execute(() => clock.sleep(60_000), caller.signal),
    );
    const reason = new Error("stop");
    caller.abort(reason);
    await clock.advance(0);
    expect(result.error).toBe(reason);
  });

  it("works on the system clock (real timers, faked by vitest here)", async () => {
    vi.useFakeTimers();
    const result = observe(timeout(1_000).execute(({ signal }) => untilAborted(signal)));
    await vi.advanceTimersByTimeAsync(999);
    expect(result.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(isPatchbayError(result.error, "TIMEOUT")).toBe(true);
    expect(await timeout(1_000).execute(() => "ok")).toBe("ok");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects a bad duration or strategy with typed errors", () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isPatchbayError(e) ? e.code : "untyped";
      }
      return "none";
    };
    expect(codeOf(() => timeout("soon"))).toBe("DURATION_INVALID");
    expect(codeOf(() => timeout(-1))).toBe("DURATION_INVALID");
    expect(codeOf(() => timeout(1, { strategy: "eager" as never }))).toBe("INVALID_ARGUMENT");
  });

  afterEach(() => {
    vi.useRealTimers();
  });
});
