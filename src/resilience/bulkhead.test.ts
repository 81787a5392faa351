import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { bulkhead } from "./bulkhead.js";

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("bulkhead", () => {
  it("runs at most `limit` calls, queues up to `queue`, and rejects the rest at once with BULKHEAD_FULL", async () => {
    const policy = bulkhead({ limit: 2, queue: 1 });
    const gates = [deferred(), deferred(), deferred()];
    const started: number[] = [];
    const calls = gates.map((gate, i) =>
      policy.execute(async () => {
        started.push(i);
        await gate.promise;
        return i;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect([policy.executing, policy.queued]).toEqual([2, 1]);
    let reached = false;
    const rejected = await policy.execute(() => (reached = true)).catch((e: unknown) => e);
    expect(reached).toBe(false);
    expect(isPatchbayError(rejected, "BULKHEAD_FULL") && [rejected.limit, rejected.queue]).toEqual([2, 1]);
    gates[0]?.resolve();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    expect([policy.executing, policy.queued]).toEqual([2, 0]);
    gates[1]?.resolve();
    gates[2]?.resolve();
    expect(await Promise.all(calls)).toEqual([0, 1, 2]);
    expect([policy.executing, policy.queued]).toEqual([0, 0]);
  });

  it("admits queued calls first in, first out, and no newcomer jumps the queue", async () => {
    const policy = bulkhead({ limit: 1, queue: 10 });
    const order: string[] = [];
    const first = deferred();
    const running = policy.execute(() => first.promise);
    const queued = ["a", "b", "c"].map((name) => policy.execute(() => void order.push(name)));
    // Arrives right after the first call released its slot, before "a" has run: it must not take
    // the slot (handed to "a") and must wait behind "b" and "c".
    const late = running.then(() => {
      expect([policy.executing, policy.queued]).toEqual([1, 2]);
      return policy.execute(() => void order.push("late"));
    });
    first.resolve();
    await Promise.all([running, ...queued, late]);
    expect(order).toEqual(["a", "b", "c", "late"]);
  });

  it("frees the slot when a call fails", async () => {
    const policy = bulkhead({ limit: 1 });
    await expect(policy.execute(() => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(policy.executing).toBe(0);
    expect(await policy.execute(() => "next")).toBe("next");
  });

  it("removes a queued call whose signal aborts, rejecting it with the reason", async () => {
    const policy = bulkhead({ limit: 1, queue: 2 });
    const gate = deferred();
    const running = policy.execute(() => gate.promise);
    const caller = new AbortController();
    let ran = false;
    const waiting = policy.execute(() => (ran = true), caller.signal).catch((e: unknown) => e);
    const other = policy.execute(() => "other");
    expect(policy.queued).toBe(2);
    const reason = new Error("gave up waiting");
    caller.abort(reason);
    expect(await waiting).toBe(reason);
    expect(policy.queued).toBe(1);
    gate.resolve();
    await running;
    expect(await other).toBe("other");
    expect(ran).toBe(false);
    expect([policy.executing, policy.queued]).toEqual([0, 0]);
  });

  it("rejects a call whose signal is already aborted without taking a slot", async () => {
    const policy = bulkhead({ limit: 1 });
    const reason = new Error("already gone");
    await expect(policy.execute(() => 1, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(policy.executing).toBe(0);
  });

  it("rejects bad options with INVALID_ARGUMENT", () => {
    for (const options of [{ limit: 0 }, { limit: 1.5 }, { limit: 1, queue: -1 }]) {
      let error: unknown;
      try {
        bulkhead(options);
      } catch (e) {
        error = e;
      }
      expect(isPatchbayError(error, "INVALID_ARGUMENT")).toBe(true);
    }
  });
});
