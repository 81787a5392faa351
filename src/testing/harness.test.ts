import { describe, expect, it } from "vitest";
import { z } from "zod";
import { constant } from "../resilience/backoff.js";
import { defineEvent } from "../core/events.js";
import { isPatchbayError } from "../core/errors.js";
import { httpClient } from "../http/client.js";
import { defineSaga } from "../saga/definition.js";
import type { WebhookConnector } from "../webhooks/connector.js";
import { sqlite } from "../adapters/sqlite/index.js";
import type { Row, SyncDestination, SyncSource } from "../sync/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import {
  createFault,
  createHarness,
  FakeClock,
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

const DAY = 86_400_000;
const realSleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `store` whose queries matching `pattern` resolve `delayMs` of real time after they ran; counts every query. */
function slowStore(store: SqlStore, pattern: RegExp, delayMs: number) {
  const counts = { queries: 0 };
  const slow = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (prop === "query" && typeof value === "function") {
        return async (text: string, ...rest: unknown[]) => {
          counts.queries++;
          const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).call(
            target,
            text,
            ...rest,
          );
          if (pattern.test(text)) await realSleep(delayMs);
          return result;
        };
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: slow, counts };
}

describe("settled() and advance() know when the work is done", () => {
  it("settled() waits for a claim that takes long to return (a slow store), with no quiet window to outlast", async () => {
    const clock = new FakeClock();
    // The queue's claim runs (the row is leased) and its result comes back 60 ms later.
    const { store } = slowStore(sqlite({ file: ":memory:", clock }), /attempt \+ 1/, 60);
    const h = createHarness({ events: [Ping], clock, store });
    h.pb.subscribe(Ping, { group: "g" }, () => undefined);
    await h.start();
    try {
      await h.settled();
      await h.pb.publish(Ping, { n: 1 });
      await h.settled();
      expect(h.consumed({ group: "g" }).map((c) => c.event.data)).toEqual([{ n: 1 }]);
    } finally {
      await h.stop();
    }
  });

  it("one advance('3d') runs each daily retry of a handler at its due time, then dead-letters it", async () => {
    const h = createHarness({ events: [Ping] });
    const start = h.clock.now();
    const attempts: number[] = [];
    h.pb.subscribe(
      Ping,
      { group: "ledger", retry: { immediate: 0, attempts: 4, backoff: constant("1d") } },
      () => {
        attempts.push((h.clock.now() - start) / DAY);
        throw new Error("ledger down");
      },
    );
    await h.start();
    try {
      await h.pb.publish(Ping, { n: 1 });
      await h.advance("3d");
      expect(attempts).toEqual([0, 1, 2, 3]);
      expect((await h.deadLettered("ledger")).map((d) => d.attempts)).toEqual([4]);
    } finally {
      await h.stop();
    }
  });

  it("one advance('2d') runs each 12-hour retry of a saga step at its due time", async () => {
    const h = createHarness();
    const start = h.clock.now();
    const tries: number[] = [];
    const saga = h.sagas.saga(
      defineSaga<{ id: string }>("retrying", {
        version: 1,
        steps: [
          {
            name: "charge",
            retry: { maxAttempts: 5, backoff: constant("12h") },
            run: () => {
              tries.push((h.clock.now() - start) / DAY);
              if (tries.length < 4) throw new Error("provider down");
              return {};
            },
          },
        ],
      }),
    );
    await h.start();
    try {
      await saga.start({ id: "s-1" }, { id: "s-1" });
      await h.advance("2d");
      expect(tries).toEqual([0, 0.5, 1, 1.5]);
      expect((await h.sagas.get("s-1"))?.status).toBe("completed");
    } finally {
      await h.stop();
    }
  });

  it("advance() moves on past a handler that itself sleeps on the harness's clock", async () => {
    const h = createHarness({ events: [Ping] });
    const woke: number[] = [];
    h.pb.subscribe(Ping, { group: "sleepy" }, async () => {
      await h.clock.sleep(3_600_000);
      woke.push(h.clock.now());
    });
    await h.start();
    try {
      const start = h.clock.now();
      await h.pb.publish(Ping, { n: 1 });
      await h.advance("2h");
      expect(woke).toEqual([start + 3_600_000]);
      expect(h.consumed({ group: "sleepy" })).toHaveLength(1);
    } finally {
      await h.stop();
    }
  });

  it("an idle harness does not poll its store every few ms of real time", async () => {
    const clock = new FakeClock();
    const { store, counts } = slowStore(sqlite({ file: ":memory:", clock }), /^$/, 0);
    const h = createHarness({ events: [Ping], clock, store });
    h.pb.subscribe(Ping, { group: "g" }, () => undefined);
    h.sagas.saga(defineSaga<{ id: string }>("idle", { version: 1, steps: [{ name: "a", run: () => ({}) }] }));
    await h.start();
    try {
      await h.settled();
      const before = counts.queries;
      await realSleep(500);
      // Two workers (the group's consumer, the saga runner), each polling every 100 ms: ~20 queries.
      expect(counts.queries - before).toBeLessThan(40);
    } finally {
      await h.stop();
    }
  });
});

/** A source of `rows` read whole each run, counting its reads, and a destination that keeps them in memory. */
function memorySync(rows: Row[]) {
  const state = { reads: 0, rows: new Map<unknown, Row>() };
  const source: SyncSource = {
    description: "memory",
    capabilities: { modes: ["full", "incremental"], streaming: false },
    async *read() {
      state.reads++;
      await Promise.resolve();
      yield { rows, cursor: rows.length };
    },
    close: () => Promise.resolve(),
  };
  const destination: SyncDestination = {
    description: "memory",
    write: "merge",
    key: ["id"],
    capabilities: { transactional: true, columns: false },
    close: () => Promise.resolve(),
    open: () =>
      Promise.resolve({
        claim: () => Promise.resolve(undefined),
        readCheckpoint: () => Promise.resolve(undefined),
        columns: () => Promise.resolve(undefined),
        evolve: () => Promise.resolve(),
        beginReplace: () => Promise.resolve(false),
        write(batch) {
          for (const r of batch.rows) state.rows.set(r.id, r);
          return Promise.resolve({ written: batch.rows.length, deleted: 0 });
        },
        commitReplace: () => Promise.resolve({ written: 0, deleted: 0 }),
        reset: () => Promise.resolve(),
        close: () => Promise.resolve(),
      }),
  };
  return { source, destination, state };
}

describe("the harness's clock drives every loop", () => {
  it("a webhook delivery retried over 3 fake days succeeds on the 4th attempt; settled() waits for the attempt in flight", async () => {
    const receiver = await httpFaultServer();
    const h = createHarness({ events: [Ping] });
    try {
      const webhooks = h.pb.webhooks({
        allow: ["127.0.0.1/32"],
        retry: { delays: [0, "1d", "1d", "1d"], jitter: 0 },
      });
      await h.start();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url, events: ["test.*"] });
      // Down for three attempts; the fourth answers 200, slowly (real time).
      receiver.failNext(3, { status: 503 }).failNext(1, { status: 200, delayMs: 300 });
      const started = performance.now();
      const event = await h.pb.publish(Ping, { n: 1 });
      await h.settled();
      const delivery = () => webhooks.deliveries.get(endpoint.id, event.id);
      expect(await delivery()).toMatchObject({ status: "pending", attempts: 1 });
      await h.advance("1d");
      await h.advance("1d");
      expect(await delivery()).toMatchObject({ status: "pending", attempts: 3 });
      await h.advance("1d");
      // settled() returned only once the slow 4th attempt was answered and recorded.
      expect(await delivery()).toMatchObject({ status: "delivered", attempts: 4 });
      expect(receiver.requests.map((r) => r.fault?.status)).toEqual([503, 503, 503, 200]);
      expect(JSON.parse(receiver.requests[3]!.body)).toMatchObject({ type: "test.ping", data: { n: 1 } });
      expect(performance.now() - started).toBeLessThan(10_000); // a loaded machine; measured in docs/testing.md
    } finally {
      await h.stop();
      await receiver.close();
    }
  });

  it("a cron pipeline registered on pb runs once per interval advanced, and settled() waits for its run", async () => {
    const h = createHarness();
    const sync = memorySync([{ id: 1, v: "a" }]);
    const p = h.pb.pipeline("hourly", { ...sync, mode: "full", schedule: "0 * * * *" });
    await h.start();
    try {
      await h.advance("59m");
      expect(sync.state.reads).toBe(0);
      await h.advance("1m");
      expect(sync.state.reads).toBe(1);
      for (let n = 2; n <= 24; n++) await h.advance("1h");
      expect(sync.state.reads).toBe(24);
      const runs = (await p.status({ runs: 30 })).runs;
      expect(runs.map((r) => r.status)).toEqual(Array(24).fill("succeeded"));
      expect(sync.state.rows.size).toBe(1);
    } finally {
      await h.stop();
    }
  });

  it("the inbox purge runs on the fake clock: a processed id is forgotten 7 days (the retention) after", async () => {
    const h = createHarness({ events: [Ping] });
    h.pb.subscribe(Ping, { group: "writer" }, async (_event, ctx) => {
      await ctx.tx.query("SELECT 1");
    });
    await h.start();
    const inbox = async () =>
      Number(
        (
          await h.store.query<{ n: unknown }>(
            `SELECT COUNT(*) AS n FROM ${h.store.dialect.table("bus_inbox")}`,
          )
        ).rows[0]?.n,
      );
    try {
      await h.pb.publish(Ping, { n: 1 });
      await h.settled();
      expect(await inbox()).toBe(1);
      await h.advance("7d");
      expect(await inbox()).toBe(1); // exactly 7 days old: kept
      await h.advance("1h"); // the next hourly purge
      expect(await inbox()).toBe(0);
    } finally {
      await h.stop();
    }
  });
});

describe("a fake advance longer than a lease while work is in progress", () => {
  it("does not hand a queue delivery whose handler is still running to the same process again", async () => {
    const h = createHarness({ events: [Ping] });
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    h.pb.subscribe(Ping, { group: "slow" }, async () => {
      calls++;
      await gate;
    });
    await h.start();
    try {
      await h.pb.publish(Ping, { n: 1 });
      while (calls === 0) await new Promise((r) => setTimeout(r, 2));
      await h.clock.advance("2h"); // far past the harness's queue lease (30 s)
      await new Promise((r) => setTimeout(r, 300)); // 3 polls of the queue
      expect(calls).toBe(1);
      release();
      await h.settled();
      expect(h.consumed({ group: "slow" }).map((c) => c.attempt)).toEqual([1]);
      expect(calls).toBe(1);
    } finally {
      release();
      await h.stop();
    }
  });
});

describe("a fake advance longer than a lease while a webhook attempt is in flight", () => {
  it("does not POST the delivery again from the same process, nor start another beyond the endpoint's concurrency", async () => {
    // A receiver that holds every request until released and does not stop at the timeout's abort
    // (the timeout waits for it): the attempt stays in flight across the whole advance.
    const posts: string[] = [];
    const held: Array<() => void> = [];
    const connector: WebhookConnector = (request) => {
      posts.push(String(request.headers["webhook-id"]));
      return new Promise((resolve) => held.push(() => resolve({ status: 200, headers: {}, body: "" })));
    };
    const releaseAll = () => held.splice(0).forEach((answer) => answer());
    const h = createHarness({ events: [Ping] });
    try {
      const webhooks = h.pb.webhooks({
        allow: ["127.0.0.1/32"],
        connector,
        retry: { delays: [0], jitter: 0 },
      });
      await h.start();
      const endpoint = await webhooks.endpoints.create({
        url: "http://127.0.0.1:9/hooks",
        events: ["test.*"],
        concurrency: 1,
      });
      const first = await h.pb.publish(Ping, { n: 1 });
      while (posts.length === 0) await new Promise((r) => setTimeout(r, 2));
      await h.clock.advance("2m"); // the lease is the 15 s timeout + 30 s
      await new Promise((r) => setTimeout(r, 300)); // 3 polls of the worker
      expect(posts).toEqual([first.id]); // not the held delivery again
      const second = await h.pb.publish(Ping, { n: 2 });
      await h.clock.advance("2m");
      await new Promise((r) => setTimeout(r, 300));
      expect(posts).toEqual([first.id]); // nor the second: the first still counts against concurrency 1
      releaseAll();
      while (posts.length < 2) await new Promise((r) => setTimeout(r, 2));
      releaseAll();
      await h.settled();
      expect(posts).toEqual([first.id, second.id]);
      // The first answered after its timeout: one attempt, failed; the second delivered.
      const outcomes = [];
      for (const e of [first, second]) {
        const attempts = await webhooks.deliveries.attempts(endpoint.id, e.id);
        outcomes.push(attempts.map((a) => [a.attempt, a.outcome, a.error?.code]));
      }
      expect(outcomes).toEqual([[[1, "failed", "WEBHOOK_TIMEOUT"]], [[1, "succeeded", undefined]]]);
      expect(await webhooks.deliveries.get(endpoint.id, first.id)).toMatchObject({
        status: "failed",
        attempts: 1,
      });
    } finally {
      releaseAll();
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
