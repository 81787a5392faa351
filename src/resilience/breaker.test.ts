import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { FakeClock } from "../testing/fake-clock.js";
import {
  circuitBreaker,
  type CircuitBreakerPolicy,
  type CircuitBreakerSnapshot,
  type CircuitStateChange,
} from "./breaker.js";
import { consecutive } from "./consecutive.js";
import { failureRate } from "./failure-rate.js";

const boom = () => Promise.reject(new Error("boom"));
const ok = () => Promise.resolve("ok");

/** Settles once `signal` aborts, rejecting with its reason (a callee that honours its signal). */
const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())).then((): never => {
    throw signal.reason;
  });

/** Runs `fn` through the breaker and returns the error, or undefined on success. */
async function outcome(breaker: CircuitBreakerPolicy, fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await breaker.execute(fn);
    return undefined;
  } catch (e) {
    return e;
  }
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function openIt(breaker: CircuitBreakerPolicy, failures = 5) {
  for (let i = 0; i < failures; i++) await outcome(breaker, boom);
  expect(breaker.state).toBe("open");
}

describe("circuitBreaker (consecutive)", () => {
  it("opens after `threshold` consecutive failures and then rejects at once with CIRCUIT_OPEN", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 3 }), halfOpenAfter: "30s", clock });
    for (let i = 0; i < 2; i++) await outcome(breaker, boom);
    expect(breaker.state).toBe("closed");
    await outcome(breaker, boom);
    expect(breaker.state).toBe("open");
    await clock.advance("10s");
    let calls = 0;
    const error = await outcome(breaker, () => Promise.resolve(void calls++));
    expect(calls).toBe(0);
    expect(isPatchbayError(error, "CIRCUIT_OPEN")).toBe(true);
    if (isPatchbayError(error, "CIRCUIT_OPEN")) {
      expect(error.retryAfterMs).toBe(20_000);
      expect(error.retryable).toBe(false);
    }
  });

  it("resets the count on a success", async () => {
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 3 }), clock: new FakeClock() });
    for (let round = 0; round < 5; round++) {
      await outcome(breaker, boom);
      await outcome(breaker, boom);
      await outcome(breaker, ok);
    }
    expect(breaker.state).toBe("closed");
  });

  it("forgets failures older than the window, even with no success in between", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 5, window: "1m" }), clock });
    for (let day = 0; day < 7; day++) {
      await outcome(breaker, boom);
      await clock.advance("1d");
    }
    expect(breaker.state).toBe("closed");
    for (let i = 0; i < 4; i++) await outcome(breaker, boom);
    await clock.advance("61s");
    for (let i = 0; i < 4; i++) await outcome(breaker, boom);
    expect(breaker.state).toBe("closed");
    await outcome(breaker, boom);
    expect(breaker.state).toBe("open");
  });
});

describe("circuitBreaker (failureRate)", () => {
  it("opens when the failure share reaches the threshold over at least minimumCalls", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({
      strategy: failureRate({ threshold: 0.5, minimumCalls: 10, window: "10s", buckets: 10 }),
      clock,
    });
    for (let i = 0; i < 4; i++) await outcome(breaker, boom);
    expect(breaker.state).toBe("closed"); // 100 % failures, but only 4 calls
    for (let i = 0; i < 5; i++) await outcome(breaker, ok);
    await outcome(breaker, boom); // 5 of 10
    expect(breaker.state).toBe("open");
  });

  it("stays closed below the threshold", async () => {
    const breaker = circuitBreaker({
      strategy: failureRate({ threshold: 0.5, minimumCalls: 10 }),
      clock: new FakeClock(),
    });
    for (let i = 0; i < 30; i++) await outcome(breaker, i % 3 === 0 ? boom : ok);
    expect(breaker.state).toBe("closed");
  });

  it("lets old buckets drop out of the window (failures decay)", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({
      strategy: failureRate({ threshold: 0.5, minimumCalls: 6, window: "10s", buckets: 10 }),
      clock,
    });
    for (let i = 0; i < 5; i++) await outcome(breaker, boom);
    await clock.advance("10s");
    for (let i = 0; i < 5; i++) await outcome(breaker, boom);
    expect(breaker.state).toBe("closed"); // only the last 5 are in the window
    await outcome(breaker, boom);
    expect(breaker.state).toBe("open");
  });
});

describe.each([
  ["consecutive", () => consecutive()],
  ["failureRate", () => failureRate({ minimumCalls: 5, window: "1h" })],
])("circuitBreaker decay (%s)", (_name, strategy) => {
  it("stays closed with 5 failures spread over 7 days of successes", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: strategy(), clock });
    const changes: CircuitStateChange[] = [];
    breaker.onStateChange((c) => changes.push(c));
    let failures = 0;
    // A success every 10 minutes for 7 days (1008 calls), a failure about every 33 hours.
    for (let tick = 0; tick < 7 * 24 * 6; tick++) {
      if (tick % 200 === 100) {
        failures++;
        await outcome(breaker, boom);
      }
      await outcome(breaker, ok);
      await clock.advance("10m");
    }
    expect(failures).toBe(5);
    expect(clock.now()).toBe(7 * 86_400_000);
    expect(breaker.state).toBe("closed");
    expect(changes).toEqual([]);
  });
});

describe("circuitBreaker half-open", () => {
  it("lets exactly one of 100 concurrent calls through as the probe; the other 99 get CIRCUIT_OPEN at once", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ halfOpenAfter: "30s", halfOpenProbes: 1, clock });
    await openIt(breaker);
    await clock.advance("30s");
    const probe = deferred<string>();
    let reached = 0;
    const calls = Array.from({ length: 100 }, () =>
      breaker
        .execute(() => {
          reached++;
          return probe.promise;
        })
        .then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        ),
    );
    const early = await Promise.all(calls.slice(1));
    expect(reached).toBe(1);
    expect(early.every((r) => "error" in r && isPatchbayError(r.error, "CIRCUIT_OPEN"))).toBe(true);
    expect(breaker.state).toBe("half-open");
    probe.resolve("fine");
    expect(await calls[0]).toEqual({ value: "fine" });
    expect(breaker.state).toBe("closed");
    expect(await breaker.execute(ok)).toBe("ok");
  });

  it("reports half-open (and retryAfterMs 0) for calls refused while the probe runs", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ clock });
    await openIt(breaker);
    await clock.advance("30s");
    const probe = deferred();
    const running = breaker.execute(() => probe.promise);
    const refused = await outcome(breaker, ok);
    expect(isPatchbayError(refused, "CIRCUIT_OPEN") && [refused.state, refused.retryAfterMs]).toEqual([
      "half-open",
      0,
    ]);
    probe.resolve();
    await running;
  });

  it("re-opens on a probe failure, restarting the halfOpenAfter wait", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ halfOpenAfter: "30s", clock });
    await openIt(breaker);
    await clock.advance("30s");
    expect(breaker.state).toBe("half-open");
    await outcome(breaker, boom);
    expect(breaker.state).toBe("open");
    const refused = await outcome(breaker, ok);
    expect(isPatchbayError(refused, "CIRCUIT_OPEN") && refused.retryAfterMs).toBe(30_000);
    await clock.advance("29999ms");
    expect(breaker.state).toBe("open");
    await clock.advance(1);
    expect(breaker.state).toBe("half-open");
  });

  it("lets halfOpenProbes calls through at once and closes after successThreshold probe successes", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ halfOpenProbes: 3, successThreshold: 4, clock });
    await openIt(breaker);
    await clock.advance("30s");
    const gate = deferred();
    let reached = 0;
    const probes = Array.from({ length: 5 }, () =>
      outcome(breaker, async () => {
        reached++;
        await gate.promise;
      }),
    );
    await clock.advance(0);
    expect(reached).toBe(3);
    gate.resolve();
    const results = await Promise.all(probes);
    expect(results.filter((e) => isPatchbayError(e, "CIRCUIT_OPEN"))).toHaveLength(2);
    expect(breaker.state).toBe("half-open"); // 3 successes, 4 needed
    await outcome(breaker, ok);
    expect(breaker.state).toBe("closed");
  });

  it("frees the probe slot when the caller aborts the probe, without judging the dependency", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ clock });
    await openIt(breaker);
    await clock.advance("30s");
    const caller = new AbortController();
    const probe = breaker.execute(({ signal }) => untilAborted(signal), caller.signal);
    caller.abort(new Error("user left"));
    await expect(probe).rejects.toThrow("user left");
    expect(breaker.state).toBe("half-open");
    expect(await breaker.execute(ok)).toBe("ok");
    expect(breaker.state).toBe("closed");
  });
});

describe("circuitBreaker with an isFailure that throws", () => {
  // A classifier such as `(e) => e.response.status >= 500` throws on an error without a response.
  const fragile = (e: unknown) => (e as { response: { status: number } }).response.status >= 500;
  const noResponse = () => Promise.reject(new Error("ECONNRESET"));

  it("counts the call as a failure and rejects with the call's own error: the circuit still opens", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ clock, isFailure: fragile });
    for (let i = 0; i < 5; i++)
      expect(await outcome(breaker, noResponse)).toMatchObject({ message: "ECONNRESET" });
    expect(breaker.state).toBe("open");
  });

  it("a probe whose classification throws frees its slot (re-opens), never leaves the circuit half-open and refusing forever", async () => {
    const clock = new FakeClock(0);
    const trip = new Error("trip");
    const breaker = circuitBreaker({ clock, isFailure: (e) => (e === trip ? true : fragile(e)) });
    for (let i = 0; i < 5; i++) await outcome(breaker, () => Promise.reject(trip));
    expect(breaker.state).toBe("open");
    await clock.advance("30s");
    expect(await outcome(breaker, noResponse)).toMatchObject({ message: "ECONNRESET" });
    expect(breaker.state).toBe("open");
    await clock.advance("30s");
    expect(await breaker.execute(ok)).toBe("ok");
    expect(breaker.state).toBe("closed");
  });
});

describe("circuitBreaker events, failures and isolation", () => {
  it("emits every state change and unsubscribes", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 1 }), halfOpenAfter: "1s", clock });
    const changes: CircuitStateChange[] = [];
    const off = breaker.onStateChange((c) => changes.push(c));
    await outcome(breaker, boom);
    await clock.advance("1s");
    await outcome(breaker, ok);
    expect(changes).toEqual([
      { state: "open", previous: "closed" },
      { state: "half-open", previous: "open" },
      { state: "closed", previous: "half-open" },
    ]);
    off();
    await outcome(breaker, boom);
    expect(changes).toHaveLength(3);
  });

  it("does not count calls the caller aborted", async () => {
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 2 }), clock: new FakeClock() });
    for (let i = 0; i < 10; i++) {
      const caller = new AbortController();
      await expect(
        breaker.execute(() => {
          caller.abort();
          return Promise.reject(caller.signal.reason as Error);
        }, caller.signal),
      ).rejects.toMatchObject({ name: "AbortError" });
    }
    expect(breaker.state).toBe("closed");
  });

  it("counts an error isFailure rejects as a success (the dependency answered)", async () => {
    const notFound = () => Promise.reject(Object.assign(new Error("404"), { status: 404 }));
    const breaker = circuitBreaker({
      strategy: consecutive({ threshold: 3 }),
      isFailure: (e) => (e as { status?: number }).status !== 404,
      clock: new FakeClock(),
    });
    for (let i = 0; i < 10; i++) {
      await outcome(breaker, boom);
      await outcome(breaker, boom);
      await outcome(breaker, notFound);
    }
    expect(breaker.state).toBe("closed");
  });

  it("ignores the results of calls that started before the state changed", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 2 }), clock });
    const slow = deferred();
    const late = outcome(breaker, () => slow.promise);
    await openIt(breaker, 2);
    await clock.advance("30s");
    expect(breaker.state).toBe("half-open");
    slow.reject(new Error("late failure"));
    await late;
    expect(breaker.state).toBe("half-open"); // the late failure is not a probe
  });

  it("isolate() holds the circuit open until every handle is released", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ clock });
    const changes: CircuitStateChange[] = [];
    breaker.onStateChange((c) => changes.push(c));
    const first = breaker.isolate();
    const second = breaker.isolate();
    expect(breaker.state).toBe("isolated");
    let calls = 0;
    const refused = await outcome(breaker, () => Promise.resolve(void calls++));
    expect(calls).toBe(0);
    expect(isPatchbayError(refused, "CIRCUIT_OPEN") && refused.state).toBe("isolated");
    await clock.advance("1d");
    expect(breaker.state).toBe("isolated");
    first.release();
    first.release();
    expect(breaker.state).toBe("isolated");
    second.release();
    expect(breaker.state).toBe("closed");
    expect(await breaker.execute(ok)).toBe("ok");
    expect(changes).toEqual([
      { state: "isolated", previous: "closed" },
      { state: "closed", previous: "isolated" },
    ]);
  });

  it("reset() closes an open circuit at once, forgets the counts and ignores calls started before", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 2 }), clock });
    const changes: CircuitStateChange[] = [];
    breaker.onStateChange((c) => changes.push(c));
    const slow = deferred();
    const late = outcome(breaker, () => slow.promise);
    await openIt(breaker, 2);
    expect(breaker.state).toBe("open");
    breaker.reset();
    expect(breaker.state).toBe("closed");
    expect(await breaker.execute(ok)).toBe("ok");
    slow.reject(new Error("late failure"));
    await late;
    // One failure after the reset does not open it: the counts before it are gone.
    await outcome(breaker, boom);
    expect(breaker.state).toBe("closed");
    await outcome(breaker, boom);
    expect(breaker.state).toBe("open");
    expect(changes).toEqual([
      { state: "open", previous: "closed" },
      { state: "closed", previous: "open" },
      { state: "open", previous: "closed" },
    ]);
  });

  it("reset() on a closed circuit forgets its counts; on an isolated one it keeps the isolation", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 2 }), clock });
    await outcome(breaker, boom);
    breaker.reset();
    await outcome(breaker, boom);
    expect(breaker.state).toBe("closed");
    const handle = breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe("isolated");
    handle.release();
    expect(breaker.state).toBe("closed");
  });

  it("rejects an already aborted call with the signal's reason without counting it", async () => {
    const breaker = circuitBreaker({ strategy: consecutive({ threshold: 1 }), clock: new FakeClock() });
    const reason = new Error("gone");
    await expect(breaker.execute(ok, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(breaker.state).toBe("closed");
  });
});

describe("circuitBreaker toJSON / initialState", () => {
  it("round-trips an open circuit through JSON, keeping the time it turns half-open", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ halfOpenAfter: "30s", clock });
    await openIt(breaker);
    await clock.advance("10s");
    const saved = JSON.parse(JSON.stringify(breaker)) as ReturnType<typeof breaker.toJSON>;
    expect(saved).toMatchObject({ version: 1, state: "open", openUntil: 30_000 });
    const restored = circuitBreaker({ halfOpenAfter: "30s", clock, initialState: saved });
    expect(restored.state).toBe("open");
    const refused = await outcome(restored, ok);
    expect(isPatchbayError(refused, "CIRCUIT_OPEN") && refused.retryAfterMs).toBe(20_000);
    await clock.advance("20s");
    expect(restored.state).toBe("half-open");
  });

  it("round-trips consecutive counts: 4 saved failures + 1 more open it", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ clock });
    for (let i = 0; i < 4; i++) await outcome(breaker, boom);
    const restored = circuitBreaker({
      clock,
      initialState: JSON.parse(JSON.stringify(breaker.toJSON())) as CircuitBreakerSnapshot,
    });
    expect(restored.state).toBe("closed");
    await outcome(restored, boom);
    expect(restored.state).toBe("open");
  });

  it("round-trips failureRate buckets", async () => {
    const clock = new FakeClock(0);
    const strategy = failureRate({ threshold: 0.5, minimumCalls: 10, window: "10s" });
    const breaker = circuitBreaker({ strategy, clock });
    for (let i = 0; i < 5; i++) await outcome(breaker, ok);
    await clock.advance("1s");
    for (let i = 0; i < 4; i++) await outcome(breaker, boom);
    const restored = circuitBreaker({
      strategy,
      clock,
      initialState: JSON.parse(JSON.stringify(breaker)) as CircuitBreakerSnapshot,
    });
    await outcome(restored, boom);
    expect(restored.state).toBe("open");
    expect(breaker.state).toBe("closed"); // the strategy value is shared, the counts are not
  });

  it("saves an isolated circuit as closed (isolation belongs to the handle's holder) and a half-open one as half-open", async () => {
    const clock = new FakeClock(0);
    const breaker = circuitBreaker({ clock });
    const handle = breaker.isolate();
    expect(breaker.toJSON().state).toBe("closed");
    handle.release();
    await openIt(breaker);
    await clock.advance("30s");
    const restored = circuitBreaker({ clock, initialState: breaker.toJSON() });
    expect(restored.state).toBe("half-open");
  });

  it("rejects an unreadable initialState with INVALID_ARGUMENT", () => {
    for (const initialState of [
      { version: 2, state: "closed", counts: { failures: [] } },
      { version: 1, state: "open", counts: { failures: [] } },
      { version: 1, state: "closed", counts: { failures: ["x"] } },
      null,
    ]) {
      let error: unknown;
      try {
        circuitBreaker({ initialState: initialState as never });
      } catch (e) {
        error = e;
      }
      expect(isPatchbayError(error, "INVALID_ARGUMENT")).toBe(true);
    }
  });

  it("rejects bad options with typed errors", () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isPatchbayError(e) ? e.code : "untyped";
      }
      return "none";
    };
    expect(codeOf(() => circuitBreaker({ halfOpenProbes: 0 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => circuitBreaker({ halfOpenAfter: "soon" }))).toBe("DURATION_INVALID");
    expect(codeOf(() => consecutive({ threshold: 0 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => failureRate({ threshold: 1.5 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => failureRate({ window: 5, buckets: 10 }))).toBe("INVALID_ARGUMENT");
  });
});
