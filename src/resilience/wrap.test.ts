import { describe, expect, expectTypeOf, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { FakeClock } from "../testing/fake-clock.js";
import { constant } from "./backoff.js";
import { circuitBreaker } from "./breaker.js";
import { bulkhead } from "./bulkhead.js";
import { consecutive } from "./consecutive.js";
import { fallback } from "./fallback.js";
import type { Policy, PolicyContext, PolicyFn } from "./policy.js";
import { retry, type GiveUpEvent } from "./retry.js";
import { timeout } from "./timeout.js";
import { wrap } from "./wrap.js";

/** Settles `promise` into a record without letting it reject unhandled. */
function observe<T>(promise: Promise<T>) {
  const seen: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => Object.assign(seen, { done: true, value }),
    (error: unknown) => Object.assign(seen, { done: true, error }),
  );
  return seen;
}

/** A policy that records when calls enter and leave it. */
function tracer(name: string, log: string[]): Policy {
  return {
    async execute<T>(fn: PolicyFn<T>, signal?: AbortSignal): Promise<T> {
      log.push(`${name}>`);
      try {
        return await fn({ signal: signal ?? new AbortController().signal, attempt: 1 });
      } finally {
        log.push(`<${name}`);
      }
    },
  };
}

/** A callee that hangs until its signal aborts, then rejects with the abort reason. */
const hang = ({ signal }: PolicyContext): Promise<never> =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())).then((): never => {
    throw signal.reason;
  });

describe("wrap", () => {
  it("runs the first policy outermost and the last innermost", async () => {
    const log: string[] = [];
    const value = await wrap(tracer("a", log), tracer("b", log), tracer("c", log)).execute(() => {
      log.push("fn");
      return "v";
    });
    expect(value).toBe("v");
    expect(log).toEqual(["a>", "b>", "c>", "fn", "<c", "<b", "<a"]);
  });

  it("with no policy, just runs the function", async () => {
    expect(await wrap().execute(({ attempt }) => attempt)).toBe(1);
  });

  it("hands the function the innermost signal and the retry's attempt number through inner policies", async () => {
    const clock = new FakeClock(0);
    const seen: PolicyContext[] = [];
    const caller = new AbortController();
    const policy = wrap(
      retry({ backoff: constant(0), clock }),
      circuitBreaker({ clock }),
      timeout("1s", { clock }),
    );
    const value = await policy.execute((ctx) => {
      seen.push(ctx);
      if (ctx.attempt < 3) throw Object.assign(new Error("503"), { status: 503 });
      return "done";
    }, caller.signal);
    expect(value).toBe("done");
    expect(seen.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(new Set(seen.map((c) => c.signal)).size).toBe(3); // a fresh timeout signal per attempt
    expect(seen.some((c) => c.signal === caller.signal)).toBe(false);
  });

  it("keeps the retry's attempt number through a foreign policy that reports attempt 1", async () => {
    const log: string[] = [];
    const attempts: number[] = [];
    await wrap(retry({ backoff: constant(0), clock: new FakeClock() }), tracer("foreign", log)).execute(
      (ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw Object.assign(new Error("503"), { status: 503 });
      },
    );
    expect(attempts).toEqual([1, 2, 3]);
    expect(log).toHaveLength(6);
  });

  it("recommended order: per-attempt timeouts count as breaker failures, then CIRCUIT_OPEN stops the retry", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 3 }), halfOpenAfter: "30s", clock });
    const retries = retry({ maxAttempts: 10, backoff: constant("100ms"), clock });
    const giveUps: GiveUpEvent[] = [];
    retries.onGiveUp((e) => giveUps.push(e));
    const policy = wrap(
      bulkhead({ limit: 5 }),
      timeout("10s", { clock }),
      retries,
      breaker,
      timeout("1s", { clock }),
    );
    const attempts: number[] = [];
    let settledAt = -1;
    const result = observe(
      policy
        .execute((ctx) => {
          attempts.push(ctx.attempt);
          return hang(ctx);
        })
        .finally(() => (settledAt = clock.now())),
    );
    await clock.advance("5s");
    expect(attempts).toEqual([1, 2, 3]);
    expect(breaker.state).toBe("open");
    expect(isPatchbayError(result.error, "CIRCUIT_OPEN")).toBe(true);
    expect(giveUps.map((g) => [g.reason, g.attempts])).toEqual([["not-retryable", 4]]);
    // Three 1 s attempt timeouts and three 100 ms waits: it gave up at 3.3 s, not at the overall 10 s.
    expect(settledAt).toBe(3_300);
    expect(clock.pendingSleepers).toBe(0);
  });

  it("the overall timeout outside the retry bounds attempts and waits together", async () => {
    const clock = new FakeClock(0);
    const giveUps: GiveUpEvent[] = [];
    const retries = retry({ maxAttempts: 100, backoff: constant("100ms"), clock });
    retries.onGiveUp((e) => giveUps.push(e));
    const policy = wrap(timeout("2500ms", { clock }), retries, timeout("1s", { clock }));
    const attempts: number[] = [];
    let settledAt = -1;
    const result = observe(
      policy
        .execute((ctx) => {
          attempts.push(ctx.attempt);
          return hang(ctx);
        })
        .finally(() => (settledAt = clock.now())),
    );
    await clock.advance("10s");
    expect(attempts).toEqual([1, 2, 3]);
    expect(isPatchbayError(result.error, "TIMEOUT") && result.error.timeoutMs).toBe(2_500);
    expect(settledAt).toBe(2_500);
    expect(giveUps[0]?.reason).toBe("aborted");
  });

  it("carries a fallback's type into the composed result and answers for the whole chain", async () => {
    const clock = new FakeClock(0);
    const policy = wrap(fallback("cached" as const), retry({ maxAttempts: 2, backoff: constant(0), clock }));
    let calls = 0;
    const value = await policy.execute(() => {
      calls++;
      return Promise.reject(Object.assign(new Error("503"), { status: 503 }));
    });
    expect(value).toBe("cached");
    expect(calls).toBe(2);
    expectTypeOf(policy.execute(() => 1)).toEqualTypeOf<Promise<number | "cached">>();
    // Without a fallback the composition is a plain Policy.
    expectTypeOf(wrap(retry(), circuitBreaker())).toExtend<Policy>();
    expectTypeOf(wrap(retry()).execute(() => 1)).toEqualTypeOf<Promise<number>>();
  });
});
