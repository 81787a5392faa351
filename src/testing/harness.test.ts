import { describe, expect, it } from "vitest";
import { z } from "zod";
import { constant } from "../resilience/backoff.js";
import { defineEvent } from "../core/events.js";
import { isPatchbayError } from "../core/errors.js";
import { httpClient } from "../http/client.js";
import { defineSaga } from "../saga/definition.js";
import { sqlite } from "../adapters/sqlite/index.js";
import {
  createFault,
  createHarness,
  httpFaultServer,
  withFault,
  withStoreFaults,
  withTransportFaults,
} from "./index.js";

const Ping = defineEvent("test.ping", { version: 1, source: "/test", schema: z.object({ n: z.number() }) });

describe("createHarness", () => {
  it("records published and consumed events and settles when every group is done", async () => {
    const h = createHarness({ events: [Ping] });
    const seen: number[] = [];
    h.pb.subscribe(Ping, { group: "a" }, (e) => void seen.push(e.data.n));
    h.pb.subscribe(Ping, { group: "b" }, () => undefined);
    await h.start();
    try {
      for (let n = 0; n < 3; n++) await h.pb.publish(Ping, { n });
      await h.settled();
      expect(seen.sort()).toEqual([0, 1, 2]);
      expect(h.published("test.ping")).toHaveLength(3);
      expect(h.consumed({ group: "b" })).toHaveLength(3);
    } finally {
      await h.stop();
    }
  });

  it("retries a failing handler on the fake clock for 3 days, then dead-letters it, in well under a second", async () => {
    const h = createHarness({ events: [Ping] });
    const fault = createFault("handler:ledger").failWithProbability(1);
    h.pb.subscribe(
      Ping,
      { group: "ledger", retry: { immediate: 0, attempts: 4, backoff: constant("1d") } },
      withFault(fault, () => undefined),
    );
    await h.start();
    const started = performance.now();
    try {
      await h.pb.publish(Ping, { n: 1 });
      await h.settled();
      expect(fault.injected).toBe(1);
      await h.advance("1d");
      await h.advance("1d");
      expect(await h.deadLettered("ledger")).toEqual([]);
      await h.advance("1d");
      const dead = await h.deadLettered("ledger");
      expect(dead.map((d) => [d.type, d.attempts, d.error.code])).toEqual([
        ["test.ping", 4, "FAULT_INJECTED"],
      ]);
      expect(h.consumed({ group: "ledger" })).toEqual([]);
      expect(performance.now() - started).toBeLessThan(5000); // a loaded machine; typically ~100 ms
    } finally {
      await h.stop();
    }
  });

  it("a handler failing its next 2 calls succeeds on the third delivery", async () => {
    const h = createHarness({ events: [Ping] });
    const fault = createFault("handler").failNext(2);
    h.pb.subscribe(
      Ping,
      { group: "g", retry: { immediate: 0, attempts: 5, backoff: constant("10m") } },
      withFault(fault, () => undefined),
    );
    await h.start();
    try {
      await h.pb.publish(Ping, { n: 1 });
      await h.settled();
      await h.advance("10m");
      await h.advance("10m");
      expect(h.consumed({ group: "g" }).map((c) => c.attempt)).toEqual([3]);
      expect(fault.calls).toBe(3);
    } finally {
      await h.stop();
    }
  });

  it("a saga whose step fails non-retryably is compensated", async () => {
    const h = createHarness();
    const undone: string[] = [];
    const saga = h.sagas.saga(
      defineSaga<{ id: string }>("order", {
        version: 1,
        steps: [
          { name: "reserve", run: () => ({ ok: true }), compensate: () => void undone.push("reserve") },
          {
            name: "charge",
            run: withFault(createFault("charge", { retryable: false }).failNext(1), () => ({})),
          },
        ],
      }),
    );
    await h.start();
    try {
      await saga.start({ id: "o-1" }, { id: "o-1" });
      await h.settled();
      expect(await h.compensated("order")).toEqual(["o-1"]);
      expect(undone).toEqual(["reserve"]);
    } finally {
      await h.stop();
    }
  });

  it("transport and store faults surface as FAULT_INJECTED to the caller", async () => {
    const storeFault = createFault("store");
    const transportFault = createFault("transport").failNext(1);
    const h = createHarness({
      events: [Ping],
      store: withStoreFaults(sqlite({ file: ":memory:" }), storeFault),
      transport: (t) => withTransportFaults(t, transportFault),
    });
    await h.start();
    try {
      const first = await h.pb.publish(Ping, { n: 1 }).catch((e: unknown) => e);
      expect(isPatchbayError(first, "FAULT_INJECTED") && first.target).toBe("transport");
      storeFault.failNext(1);
      const second = await h.pb.transaction(() => Promise.resolve()).catch((e: unknown) => e);
      expect(isPatchbayError(second, "FAULT_INJECTED") && second.target).toBe("store");
      await expect(h.pb.publish(Ping, { n: 2 })).resolves.toMatchObject({ type: "test.ping" });
    } finally {
      await h.stop();
    }
  });
});

describe("httpFaultServer", () => {
  it("answers 429 with Retry-After, a reset, then the handler; the resilient client rides it out", async () => {
    const upstream = await httpFaultServer(() => ({ body: { id: "ch_1" } }));
    try {
      upstream.failNext(1, { status: 429, retryAfter: 0 }).failNext(1, { reset: true });
      const client = httpClient({ baseUrl: upstream.url, retry: { maxAttempts: 3 }, breaker: false });
      const { data } = await client.post<{ id: string }>("charges", {
        json: { amount: 5 },
        idempotencyKey: "charge-1",
      });
      expect(data).toEqual({ id: "ch_1" });
      expect(upstream.requests.map((r) => r.fault?.status ?? (r.fault?.reset ? "reset" : "ok"))).toEqual([
        429,
        "reset",
        "ok",
      ]);
    } finally {
      await upstream.close();
    }
  });
});
