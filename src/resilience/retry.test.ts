import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { FakeClock } from "../testing/fake-clock.js";
import { constant, exponential } from "./backoff.js";
import { circuitBreaker } from "./breaker.js";
import { retryBudget } from "./budget.js";
import { consecutive } from "./consecutive.js";
import { CircuitOpenError, TimeoutError } from "./errors.js";
import { retry, type GiveUpEvent, type RetryEvent } from "./retry.js";

const http = (status: number, retryAfterMs?: number) =>
  Object.assign(new Error(`HTTP ${status}`), {
    status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
const reset = () => Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });

/** Settles `promise` into a value/error record without letting it reject unhandled. */
function observe<T>(promise: Promise<T>) {
  const seen: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => Object.assign(seen, { done: true, value }),
    (error: unknown) => Object.assign(seen, { done: true, error }),
  );
  return seen;
}

/** A seeded uniform generator (mulberry32). */
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

describe("retry", () => {
  it("retries transient errors until success, counting attempts and passing the caller's signal unchanged", async () => {
    const clock = new FakeClock(0);
    const caller = new AbortController();
    const seen: { attempt: number; signal: AbortSignal; at: number }[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant("1s"), clock });
    const result = observe(
      policy.execute(({ attempt, signal }) => {
        seen.push({ attempt, signal, at: clock.now() });
        if (attempt < 3) throw reset();
        return "ok";
      }, caller.signal),
    );
    await clock.advance("10s");
    expect(result).toEqual({ done: true, value: "ok" });
    expect(seen.map((s) => [s.attempt, s.at])).toEqual([
      [1, 0],
      [2, 1_000],
      [3, 2_000],
    ]);
    expect(seen.every((s) => s.signal === caller.signal)).toBe(true);
  });

  it("gives every attempt a never-aborting signal when the caller passed none", async () => {
    const signals: AbortSignal[] = [];
    await retry().execute(({ signal }) => void signals.push(signal));
    expect(signals[0]?.aborted).toBe(false);
  });

  it("does not retry a TypeError (a programming error)", async () => {
    const clock = new FakeClock(0);
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 5, clock });
    policy.onGiveUp((e) => giveUps.push(e));
    const bug = new TypeError("Cannot read properties of undefined (reading 'id')");
    let calls = 0;
    await expect(
      policy.execute(() => {
        calls++;
        throw bug;
      }),
    ).rejects.toBe(bug);
    expect(calls).toBe(1);
    expect(giveUps).toEqual([{ error: bug, attempts: 1, reason: "not-retryable" }]);
    expect(clock.pendingSleepers).toBe(0);
  });

  it("does not retry an abort error thrown by the callee", async () => {
    let calls = 0;
    const abort = new DOMException("This operation was aborted", "AbortError");
    await expect(
      retry({ maxAttempts: 5, clock: new FakeClock() }).execute(() => {
        calls++;
        throw abort;
      }),
    ).rejects.toBe(abort);
    expect(calls).toBe(1);
  });

  it("stops a backoff wait at once when the caller aborts, rejecting with the signal's reason", async () => {
    const clock = new FakeClock(0);
    const caller = new AbortController();
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 5, backoff: constant("1h"), clock });
    policy.onGiveUp((e) => giveUps.push(e));
    const failure = http(503);
    let calls = 0;
    const result = observe(
      policy.execute(() => {
        calls++;
        throw failure;
      }, caller.signal),
    );
    await clock.advance(0);
    expect(clock.pendingSleepers).toBe(1);
    const reason = new Error("user navigated away");
    caller.abort(reason);
    await clock.advance(0);
    expect(result).toEqual({ done: true, error: reason });
    expect(clock.now()).toBe(0);
    expect(clock.pendingSleepers).toBe(0);
    expect(calls).toBe(1);
    expect(giveUps).toEqual([{ error: failure, attempts: 1, reason: "aborted" }]);
  });

  it("does not retry when the caller aborted during the attempt, and never starts with an aborted signal", async () => {
    const caller = new AbortController();
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 5, clock: new FakeClock() });
    policy.onGiveUp((e) => giveUps.push(e));
    let calls = 0;
    await expect(
      policy.execute(() => {
        calls++;
        caller.abort();
        throw reset();
      }, caller.signal),
    ).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(calls).toBe(1);
    expect(giveUps[0]?.reason).toBe("aborted");
    await expect(policy.execute(() => calls++, caller.signal)).rejects.toBe(caller.signal.reason);
    expect(calls).toBe(1);
  });

  it.each([429, 408])("retries HTTP %d", async (status) => {
    let calls = 0;
    const value = await retry({ backoff: constant(0), clock: new FakeClock() }).execute(() => {
      if (++calls < 3) throw http(status);
      return calls;
    });
    expect(value).toBe(3);
  });

  it("waits exactly the Retry-After of the error (7 s) before the next attempt", async () => {
    const clock = new FakeClock(0);
    const retries: RetryEvent[] = [];
    const policy = retry({ backoff: constant("1s"), clock });
    policy.onRetry((e) => retries.push(e));
    const at: number[] = [];
    const result = observe(
      policy.execute(() => {
        at.push(clock.now());
        if (at.length === 1) throw http(429, 7_000);
        return "ok";
      }),
    );
    await clock.advance(6_999);
    expect(at).toEqual([0]);
    await clock.advance(1);
    expect(at).toEqual([0, 7_000]);
    expect(result.value).toBe("ok");
    expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([[1, 7_000]]);
  });

  it("never lets a Retry-After shorter than the backoff (or in the past) shorten the wait", async () => {
    const clock = new FakeClock(0);
    const delays: number[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant("2s"), clock });
    policy.onRetry((e) => delays.push(e.delayMs));
    let calls = 0;
    const result = observe(
      policy.execute(() => {
        calls++;
        if (calls === 1) throw http(503, -2_000);
        if (calls === 2) throw http(429, 500);
        return clock.now();
      }),
    );
    await clock.advance(4_000);
    expect(result.value).toBe(4_000);
    expect(delays).toEqual([2_000, 2_000]);
  });

  it("waits the backoff, not 0, after a half-open breaker's refusal that retryOn accepts", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ clock, halfOpenAfter: "1s", strategy: consecutive({ threshold: 1 }) });
    // Open the breaker, let it turn half-open, and hold its only probe slot with a call that hangs.
    await breaker.execute(() => Promise.reject(new Error("down"))).catch(() => undefined);
    await clock.advance(1_000);
    let release!: () => void;
    const probe = breaker.execute(() => new Promise<void>((r) => (release = r)));
    const at: number[] = [];
    const policy = retry({
      maxAttempts: 4,
      backoff: constant("3s"),
      clock,
      retryOn: (e) => isPatchbayError(e, "CIRCUIT_OPEN"),
    });
    const result = observe(
      policy.execute(() =>
        breaker.execute(() => {
          at.push(clock.now());
          return "charged";
        }),
      ),
    );
    await clock.advance(2_999);
    expect(result.done).toBe(false);
    release();
    await probe;
    await clock.advance(1);
    expect(result.value).toBe("charged");
    expect(at).toEqual([4_000]);
  });

  it("does not make two clients with the same backoff retry at the same instants", async () => {
    const run = async (seed: number) => {
      const clock = new FakeClock(0);
      const policy = retry({
        maxAttempts: 8,
        backoff: exponential({ initial: "1s", max: "10s" }),
        clock,
        random: seeded(seed),
      });
      const instants: number[] = [];
      const done = observe(
        policy.execute(() => {
          instants.push(clock.now());
          throw http(503);
        }),
      );
      await clock.advance("10m");
      expect(done.done).toBe(true);
      return instants;
    };
    const a = await run(1);
    const b = await run(2);
    expect(a).toHaveLength(8);
    expect(b).toHaveLength(8);
    expect(a.slice(1).filter((t, i) => t === b[i + 1])).toEqual([]);
  });

  it("spreads the delays of clients at the cap across [0, max) instead of all waiting max", async () => {
    const delays: number[] = [];
    for (let client = 0; client < 50; client++) {
      const clock = new FakeClock(0);
      // Attempt 10 is far past the cap: 100 ms * 2^9 = 51.2 s > 10 s.
      const policy = retry({
        maxAttempts: 11,
        backoff: exponential({ max: "10s" }),
        clock,
        random: seeded(client),
      });
      policy.onRetry(({ attempt, delayMs }) => {
        if (attempt === 10) delays.push(delayMs);
      });
      const done = observe(
        policy.execute(() => {
          throw http(503);
        }),
      );
      await clock.advance("5m");
      expect(done.done).toBe(true);
    }
    expect(delays).toHaveLength(50);
    expect(Math.max(...delays)).toBeLessThan(10_000);
    expect(new Set(delays).size).toBeGreaterThan(45);
    expect(delays.filter((d) => d < 5_000).length).toBeGreaterThan(10);
    expect(delays.filter((d) => d >= 5_000).length).toBeGreaterThan(10);
  });

  it("stops retrying at the overall deadline, without waiting, rethrowing the last error", async () => {
    const clock = new FakeClock(0);
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 100, backoff: constant(400), deadline: "1s", clock });
    policy.onGiveUp((e) => giveUps.push(e));
    const errors: Error[] = [];
    const result = observe(
      policy.execute(() => {
        const e = http(503);
        errors.push(e);
        throw e;
      }),
    );
    await clock.advance(800);
    // Attempts at 0, 400, 800; the next wait would end at 1200 > 1000: it gives up at 800.
    expect(result.done).toBe(true);
    expect(result.error).toBe(errors[2]);
    expect(clock.pendingSleepers).toBe(0);
    expect(giveUps).toEqual([{ error: errors[2], attempts: 3, reason: "deadline" }]);
  });

  it("gives up at once when a Retry-After exceeds the remaining deadline", async () => {
    const clock = new FakeClock(0);
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ deadline: "30s", clock });
    policy.onGiveUp((e) => giveUps.push(e));
    const limited = http(429, 60_000);
    await expect(
      policy.execute(() => {
        throw limited;
      }),
    ).rejects.toBe(limited);
    expect(clock.now()).toBe(0);
    expect(giveUps[0]?.reason).toBe("deadline");
  });

  it("gives up on an endless Retry-After instead of hanging", async () => {
    const clock = new FakeClock(0);
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ clock });
    policy.onGiveUp((e) => giveUps.push(e));
    await expect(
      policy.execute(() => {
        throw http(503, Number.POSITIVE_INFINITY);
      }),
    ).rejects.toMatchObject({ status: 503 });
    expect(giveUps[0]?.reason).toBe("deadline");
  });

  it("stops after maxAttempts with the last error unchanged", async () => {
    const clock = new FakeClock(0);
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    policy.onGiveUp((e) => giveUps.push(e));
    const errors: Error[] = [];
    const result = observe(
      policy.execute(() => {
        const e = new TimeoutError(50);
        errors.push(e);
        throw e;
      }),
    );
    await clock.advance(1_000);
    expect(errors).toHaveLength(3);
    expect(result.error).toBe(errors[2]);
    expect(giveUps).toEqual([{ error: errors[2], attempts: 3, reason: "attempts" }]);
  });

  it("never retries an open circuit", async () => {
    let calls = 0;
    await expect(
      retry({ clock: new FakeClock() }).execute(() => {
        calls++;
        throw new CircuitOpenError(5_000, "open");
      }),
    ).rejects.toSatisfy((e) => isPatchbayError(e, "CIRCUIT_OPEN"));
    expect(calls).toBe(1);
  });

  it("uses a custom retryOn and never retries what it refuses", async () => {
    const clock = new FakeClock(0);
    const policy = retry({
      retryOn: (e) => e instanceof Error && e.message === "busy",
      backoff: constant(0),
      clock,
    });
    let calls = 0;
    const value = await policy.execute(() => {
      if (++calls < 3) throw new Error("busy");
      return calls;
    });
    expect(value).toBe(3);
    await expect(
      policy.execute(() => {
        throw http(503);
      }),
    ).rejects.toMatchObject({ status: 503 });
  });

  it("a shared budget stops retries after enough failures and allows them again after successes", async () => {
    const clock = new FakeClock(0);
    const budget = retryBudget({ maxTokens: 10, tokenRatio: 0.5 });
    const a = retry({ maxAttempts: 3, backoff: constant(0), budget, clock });
    const b = retry({ maxAttempts: 3, backoff: constant(0), budget, clock });
    const giveUps: GiveUpEvent[] = [];
    a.onGiveUp((e) => giveUps.push(e));
    b.onGiveUp((e) => giveUps.push(e));
    let calls = 0;
    const failing = () => {
      calls++;
      throw http(503);
    };
    // Each call spends 3 tokens (3 failed attempts): 10 -> 7 -> 4; the second stops after 2 attempts.
    await expect(a.execute(failing)).rejects.toMatchObject({ status: 503 });
    expect(calls).toBe(3);
    await expect(b.execute(failing)).rejects.toMatchObject({ status: 503 });
    expect(calls).toBe(5);
    expect(budget.tokens).toBe(5);
    expect(giveUps.map((g) => [g.reason, g.attempts])).toEqual([
      ["attempts", 3],
      ["budget", 2],
    ]);
    // Exhausted: no call gets a retry now.
    calls = 0;
    await expect(a.execute(failing)).rejects.toMatchObject({ status: 503 });
    expect(calls).toBe(1);
    expect(giveUps.at(-1)?.reason).toBe("budget");
    // Successes earn tokens back (0.5 each) until retries are allowed again.
    for (let i = 0; i < 10; i++) await b.execute(() => "ok");
    expect(budget.tokens).toBe(9);
    calls = 0;
    await expect(a.execute(failing)).rejects.toMatchObject({ status: 503 });
    expect(calls).toBe(3);
  });

  it("does not spend budget on errors it would not retry", async () => {
    const budget = retryBudget();
    await expect(
      retry({ budget, clock: new FakeClock() }).execute(() => {
        throw new TypeError("bug");
      }),
    ).rejects.toBeInstanceOf(TypeError);
    expect(budget.tokens).toBe(10);
  });

  it("reports each retry with the failed attempt and the wait, and unsubscribes", async () => {
    const clock = new FakeClock(0);
    const policy = retry({ maxAttempts: 3, backoff: exponential({ initial: 100, jitter: "none" }), clock });
    const events: RetryEvent[] = [];
    const off = policy.onRetry((e) => events.push(e));
    const failure = reset();
    const done = observe(
      policy.execute(() => {
        throw failure;
      }),
    );
    await clock.advance(1_000);
    expect(done.error).toBe(failure);
    expect(events).toEqual([
      { error: failure, attempt: 1, delayMs: 100 },
      { error: failure, attempt: 2, delayMs: 200 },
    ]);
    off();
    off();
    const again = observe(
      policy.execute(() => {
        throw failure;
      }),
    );
    await clock.advance(1_000);
    expect(again.done).toBe(true);
    expect(events).toHaveLength(2);
  });

  it("rejects bad options with INVALID_ARGUMENT or DURATION_INVALID", () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isPatchbayError(e) ? e.code : "untyped";
      }
      return "none";
    };
    expect(codeOf(() => retry({ maxAttempts: 0 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => retry({ maxAttempts: 1.5 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => retry({ maxAttempts: Number.POSITIVE_INFINITY, deadline: "1m" }))).toBe("none");
    expect(codeOf(() => retry({ deadline: "later" }))).toBe("DURATION_INVALID");
    expect(codeOf(() => retry({ retryOn: "yes" as never }))).toBe("INVALID_ARGUMENT");
  });
});
