/**
 * The event bus's semantics on a transport and store: validation, groups, retries, dead letters
 * and replay, the outbox and the inbox (exactly-once effects counted in rows). Run for every
 * transport by `test/bus*.test.ts`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createEventBus, type EventBus, type EventBusOptions } from "../../src/bus/bus.js";
import type { Transport } from "../../src/bus/transport.js";
import { defineEvent } from "../../src/core/events.js";
import { isPatchbayError, NonRetryableError } from "../../src/core/errors.js";
import { silentLogger, type Logger } from "../../src/core/logger.js";
import { constant } from "../../src/resilience/backoff.js";
import { CircuitOpenError } from "../../src/resilience/errors.js";
import type { SqlStore } from "../../src/store/sql-store.js";
import type { IsolatedDatabase } from "../support/stores.js";
import { until } from "./transport.js";

const OrderCreated = defineEvent("order.created", {
  version: 1,
  schema: z.object({ orderId: z.string(), qty: z.number().int().positive() }),
});
const OrderPaid = defineEvent("order.paid", { version: 1, schema: z.object({ orderId: z.string() }) });

const fastRetry = { immediate: 1, attempts: 3, backoff: constant(50) };

/** One configuration the bus scenarios run on. */
export interface BusHarness {
  name: string;
  /** A fresh isolated database for one test. */
  database(): IsolatedDatabase;
  /** Per test: makes transports (several buses of one test share their queues) and cleans up. */
  transports(): { make(store: SqlStore): Transport; cleanup(): Promise<void> };
}

/** The event bus's semantics, checked on one transport and store. */
export function defineBusConformance(harness: BusHarness): void {
  const { name } = harness;
  describe(`event bus: ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    let transports: ReturnType<BusHarness["transports"]>;
    const buses: EventBus[] = [];
    const bus = (options: Partial<EventBusOptions> = {}) => {
      const b = createEventBus({
        store,
        transport: transports.make(store),
        events: [OrderCreated, OrderPaid],
        ...options,
      });
      buses.push(b);
      return b;
    };
    const count = async (sql: string) =>
      Number((await store.query<{ n: number | string }>(sql)).rows[0]?.n ?? 0);

    beforeEach(async () => {
      transports = harness.transports();
      db = harness.database();
      store = db.make();
      await store.open();
      await store.query("CREATE TABLE effects (event_id TEXT NOT NULL, order_id TEXT NOT NULL)");
      await store.query("CREATE TABLE orders (id TEXT PRIMARY KEY)");
    });
    afterEach(async () => {
      await Promise.all(buses.splice(0).map((b) => b.stop({ timeout: "5s" })));
      await store.close();
      await db.cleanup();
      await transports.cleanup();
    });

    it("validates on publish: a payload failing its schema is refused and nothing is published", async () => {
      const b = bus();
      const seen: unknown[] = [];
      b.subscribe(OrderCreated, { group: "g" }, (e) => void seen.push(e));
      await b.start();
      const error = await b.publish(OrderCreated, { orderId: "o-1", qty: -1 }).catch((e: unknown) => e);
      expect(isPatchbayError(error, "SCHEMA_INVALID")).toBe(true);
      await b.publish(OrderCreated, { orderId: "o-2", qty: 1 });
      await until(() => seen.length === 1, 10_000, "valid event");
      await new Promise((r) => setTimeout(r, 100));
      expect(seen).toHaveLength(1);
    });

    it("a handler's context: attempt, group, one logger per delivery, and no ctx.tx without a transaction", async () => {
      const b = bus();
      const seen: Array<{ attempt: number; group: string; sameLogger: boolean; tx: unknown }> = [];
      b.subscribe(OrderCreated, { group: "plain", transaction: false }, (_e, ctx) => {
        let tx: unknown;
        try {
          tx = ctx.tx;
        } catch (e) {
          tx = isPatchbayError(e, "SUBSCRIPTION_INVALID") ? "SUBSCRIPTION_INVALID" : e;
        }
        const { attempt, group } = ctx; // destructuring reads the context like any object
        seen.push({ attempt, group, sameLogger: ctx.logger === ctx.logger, tx });
      });
      b.subscribe(OrderCreated, { group: "with-tx" }, async (_e, ctx) => {
        const { tx } = ctx;
        await tx.query("SELECT 1");
        seen.push({
          attempt: ctx.attempt,
          group: ctx.group,
          sameLogger: ctx.logger === ctx.logger,
          tx: typeof tx.query,
        });
      });
      await b.start();
      await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      await until(() => seen.length === 2, 10_000, "both groups");
      expect(seen.sort((x, y) => x.group.localeCompare(y.group))).toEqual([
        { attempt: 1, group: "plain", sameLogger: true, tx: "SUBSCRIPTION_INVALID" },
        { attempt: 1, group: "with-tx", sameLogger: true, tx: "function" },
      ]);
    });

    it("each group gets every matching event, with its data validated and typed", async () => {
      const b = bus();
      const inventory: string[] = [];
      const audit: string[] = [];
      b.subscribe(OrderCreated, { group: "inventory" }, (e) => void inventory.push(e.data.orderId));
      b.subscribe("order.*", { group: "audit" }, (e) => void audit.push(e.type));
      await b.start();
      await b.publish(OrderCreated, { orderId: "o-1", qty: 2 }, { key: "o-1" });
      await b.publish(OrderPaid, { orderId: "o-1" }, { key: "o-1" });
      await until(() => inventory.length === 1 && audit.length === 2, 10_000, "fan-out");
      expect(inventory).toEqual(["o-1"]);
      expect(audit.sort()).toEqual(["order.created", "order.paid"]);
    });

    it("a handler's ctx.tx writes commit exactly once with the inbox record", async () => {
      const b = bus();
      b.subscribe(OrderCreated, { group: "writer", concurrency: 4 }, async (e, { tx }) => {
        await tx.query(`INSERT INTO effects (event_id, order_id) VALUES (${db.p(1)}, ${db.p(2)})`, [
          e.id,
          e.data.orderId,
        ]);
      });
      await b.start();
      for (let i = 0; i < 30; i++) await b.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 });
      await until(
        async () => (await count("SELECT COUNT(*) AS n FROM effects")) === 30,
        15_000,
        "30 effects",
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(30);
      expect(await count("SELECT COUNT(DISTINCT event_id) AS n FROM effects")).toBe(30);
    });

    it("a redelivered message whose effect committed is not applied again (inbox)", async () => {
      const b = bus();
      let runs = 0;
      b.subscribe(OrderCreated, { group: "once" }, async (e, { tx }) => {
        runs++;
        await tx.query(`INSERT INTO effects (event_id, order_id) VALUES (${db.p(1)}, ${db.p(2)})`, [
          e.id,
          e.data.orderId,
        ]);
      });
      await b.start();
      const event = await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      // Its effect committed (a copy arriving while it is still in flight is the concurrent
      // case, tested below: applied once, though the handler may start twice).
      await until(
        async () => (await count("SELECT COUNT(*) AS n FROM effects")) === 1,
        10_000,
        "first effect",
      );
      // The broker delivers the very same message again (at-least-once): same id, same body.
      const body = JSON.stringify({ ...event, data: event.data });
      await b.transport.publish([{ id: event.id, type: event.type, body, headers: {} }], { group: "once" });
      await new Promise((r) => setTimeout(r, 500));
      expect(runs).toBe(1);
      expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(1);
    });

    it("a handler that never touches ctx.tx records nothing: a redelivery runs it again (at least once)", async () => {
      const b = bus();
      const runs: string[] = [];
      b.subscribe(OrderCreated, { group: "notify", concurrency: 4 }, (e) => void runs.push(e.id));
      await b.start();
      const events = [];
      for (let i = 0; i < 20; i++) events.push(await b.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 }));
      await until(() => runs.length === 20, 10_000, "20 runs");
      const inbox = store.dialect.table("bus_inbox");
      expect(await count(`SELECT COUNT(*) AS n FROM ${inbox}`)).toBe(0); // no effect to protect
      for (const event of events.slice(0, 5)) {
        const body = JSON.stringify({ ...event, data: event.data });
        await b.transport.publish([{ id: event.id, type: event.type, body, headers: {} }], {
          group: "notify",
        });
      }
      await until(() => runs.length === 25, 10_000, "the 5 copies run too");
      expect(new Set(runs).size).toBe(20);
    });

    it("the first delivery of an event published once costs the inbox nothing: with it gone, such handlers go on", async () => {
      const b = bus();
      const runs: string[] = [];
      b.subscribe(
        OrderCreated,
        { group: "api-caller", concurrency: 4 },
        (e) => void runs.push(e.data.orderId),
      );
      await b.start();
      // Every inbox statement now fails: the table is not there.
      const bare = (name: string) => store.dialect.table(name).split(".").pop()!;
      await store.query(
        `ALTER TABLE ${store.dialect.table("bus_inbox")} RENAME TO ${bare("bus_inbox_away")}`,
      );
      try {
        for (let i = 0; i < 10; i++) await b.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 });
        await until(() => runs.length === 10, 10_000, "10 runs without the inbox");
        expect(runs.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `o-${i}`).sort());
        expect(await b.deadLetters.list()).toHaveLength(0);
      } finally {
        await store.query(
          `ALTER TABLE ${store.dialect.table("bus_inbox_away")} RENAME TO ${bare("bus_inbox")}`,
        );
      }
    });

    it("a handler's transaction opens where it first uses ctx.tx; two deliveries of one message at once apply it once", async () => {
      const b = bus();
      let runs = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      b.subscribe(OrderCreated, { group: "slow", concurrency: 4 }, async (e, { tx }) => {
        runs++;
        await gate; // both deliveries are past the inbox check before either writes
        await tx.query(`INSERT INTO effects (event_id, order_id) VALUES (${db.p(1)}, ${db.p(2)})`, [
          e.id,
          e.data.orderId,
        ]);
      });
      await b.start();
      const event = await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      await until(() => runs === 1, 10_000, "first delivery");
      const body = JSON.stringify({ ...event, data: event.data });
      await b.transport.publish([{ id: event.id, type: event.type, body, headers: {} }], { group: "slow" });
      if (b.transport.capabilities.sharesStore) {
        // A store queue holds one row per group and message id: the copy is refused while the
        // first is in flight, so only the broker transports reach two runs at once.
        await new Promise((r) => setTimeout(r, 300));
        expect(runs).toBe(1);
      } else {
        await until(() => runs === 2, 10_000, "second delivery of the same message");
      }
      release();
      await new Promise((r) => setTimeout(r, 500));
      expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(1);
      expect(await b.deadLetters.list()).toHaveLength(0);
    });

    it("runs at most `concurrency` handlers at once however many deliveries it prefetched", async () => {
      const b = bus();
      let running = 0;
      let most = 0;
      let done = 0;
      b.subscribe(OrderCreated, { group: "bounded", concurrency: 2, prefetch: 6 }, async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        done++;
      });
      await b.start();
      for (let i = 0; i < 12; i++) await b.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 });
      await until(() => done === 12, 10_000, "12 handlers");
      expect(most).toBe(2);
      const refused = (() => {
        try {
          bus().subscribe(OrderCreated, { group: "x", concurrency: 4, prefetch: 2 }, () => undefined);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(isPatchbayError(refused, "INVALID_ARGUMENT")).toBe(true);
    });

    it("failures retry (immediately, then later) and succeed without a duplicate effect", async () => {
      const b = bus();
      const attempts: number[] = [];
      b.subscribe(
        OrderCreated,
        { group: "flaky", retry: { immediate: 1, attempts: 5, backoff: constant(100) } },
        async (e, ctx) => {
          attempts.push(ctx.attempt);
          await ctx.tx.query(`INSERT INTO effects (event_id, order_id) VALUES (${db.p(1)}, ${db.p(2)})`, [
            e.id,
            "x",
          ]);
          if (attempts.length < 4) throw new Error("database hiccup"); // rolls its insert back
        },
      );
      await b.start();
      await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      await until(() => attempts.length === 4, 10_000, "4 runs");
      // two runs per delivery (1 immediate retry), then a delayed redelivery
      expect(attempts).toEqual([1, 1, 2, 2]);
      await until(async () => (await count("SELECT COUNT(*) AS n FROM effects")) === 1, 5_000, "one effect");
      expect(await b.deadLetters.count()).toBe(0);
    });

    it("a delayed retry waits at least what the error asks (an open breaker's time to half-open), and says so at warn", async () => {
      const warnings: Array<Record<string, unknown>> = [];
      const logger = {
        ...silentLogger,
        warn: (obj: object | string, msg?: string) => {
          if (typeof obj === "object") warnings.push({ ...obj, msg });
        },
        child: () => logger,
      } as Logger;
      const b = bus({ logger });
      const at: number[] = [];
      b.subscribe(
        OrderCreated,
        {
          group: "guarded",
          retry: { immediate: 0, attempts: 3, backoff: constant(50), retryOn: () => true },
        },
        () => {
          at.push(Date.now());
          if (at.length === 1) throw new CircuitOpenError(1500, "open");
        },
      );
      await b.start();
      await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      await until(() => at.length === 2, 10_000, "the redelivery");
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1450);
      expect(warnings).toContainEqual(
        expect.objectContaining({ group: "guarded", attempt: 1, delayMs: 1500, breaker: "open" }),
      );
      expect(await b.deadLetters.count()).toBe(0);
    });

    it("a poison message goes to dead letters after its attempts while others flow; replay processes it", async () => {
      const b = bus();
      const processed: string[] = [];
      let healed = false;
      b.subscribe(OrderCreated, { group: "poison", retry: fastRetry }, (e) => {
        if (e.data.orderId === "bad" && !healed) throw new Error("cannot handle bad");
        processed.push(e.data.orderId);
      });
      await b.start();
      await b.publish(OrderCreated, { orderId: "bad", qty: 1 }, { key: "bad" });
      for (let i = 0; i < 5; i++) await b.publish(OrderCreated, { orderId: `ok-${i}`, qty: 1 });
      await until(async () => (await b.deadLetters.count()) === 1, 15_000, "a dead letter");
      await until(() => processed.length === 5, 10_000, "the others");
      const [letter] = await b.deadLetters.list({ group: "poison" });
      expect(letter).toMatchObject({ group: "poison", type: "order.created", key: "bad", attempts: 3 });
      expect(letter!.error.message).toBe("cannot handle bad");
      expect(letter!.firstFailedAt).toBeLessThanOrEqual(letter!.lastFailedAt);
      expect(letter!.event?.data).toEqual({ orderId: "bad", qty: 1 });
      healed = true;
      expect(await b.deadLetters.replay({ group: "poison" })).toBe(1);
      await until(() => processed.includes("bad"), 10_000, "replayed message processed");
      expect(await b.deadLetters.count()).toBe(0);
    });

    it("non-retryable failures and undecodable messages go to dead letters at once", async () => {
      const b = bus();
      let runs = 0;
      b.subscribe("order.#", { group: "strict", retry: { immediate: 3, attempts: 8 } }, () => {
        runs++;
        throw new NonRetryableError("refused for good");
      });
      await b.start();
      await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      // A producer that bypassed validation, and one that sent garbage.
      const invalid = JSON.stringify({
        specversion: "1.0",
        id: "bad-1",
        source: "/x",
        type: "order.created",
        data: { qty: "two" },
      });
      await b.transport.publish([{ id: "bad-1", type: "order.created", body: invalid, headers: {} }]);
      await b.transport.publish([{ id: "bad-2", type: "order.weird", body: "{not json", headers: {} }]);
      await until(
        async () => (await b.deadLetters.count({ group: "strict" })) === 3,
        10_000,
        "3 dead letters",
      );
      expect(runs).toBe(1);
      const codes = (await b.deadLetters.list()).map((l) => l.error.code).sort();
      expect(codes).toEqual(["ENVELOPE_INVALID", "NON_RETRYABLE", "SCHEMA_INVALID"]);
      expect(await b.deadLetters.purge({ type: "order.weird" })).toBe(1);
      expect(await b.deadLetters.count()).toBe(2);
    });

    it("a message routed as one type whose envelope says another never reaches a handler: dead letter, ENVELOPE_INVALID", async () => {
      const b = bus();
      const seen: unknown[] = [];
      b.subscribe(OrderCreated, { group: "inventory" }, (e) => void seen.push(e.data));
      await b.start();
      // Routed as order.created, but the envelope (which picks the schema) says evil.other.
      const forged = JSON.stringify({
        specversion: "1.0",
        id: "forged-1",
        source: "/x",
        type: "evil.other",
        data: { drop: "tables", qty: "lots" },
      });
      await b.transport.publish([{ id: "forged-1", type: "order.created", body: forged, headers: {} }]);
      await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      await until(
        async () => (await b.deadLetters.count({ group: "inventory" })) === 1,
        10_000,
        "a dead letter",
      );
      await until(() => seen.length === 1, 10_000, "the valid event");
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toEqual([{ orderId: "o-1", qty: 1 }]);
      const [letter] = await b.deadLetters.list({ group: "inventory" });
      expect(letter).toMatchObject({ messageId: "forged-1", type: "order.created", attempts: 1 });
      expect(letter!.error).toMatchObject({ code: "ENVELOPE_INVALID", attribute: "type" });
    });

    it("refuses a message over the size limit with MESSAGE_TOO_LARGE (publish and tx.publish), nothing published", async () => {
      const b = bus({ maxMessageBytes: 4096 });
      const seen: string[] = [];
      b.subscribe(OrderCreated, { group: "g" }, (e) => void seen.push(e.data.orderId.slice(0, 5)));
      await b.start();
      const big = { orderId: `big-${"x".repeat(5000)}`, qty: 1 };
      const error = await b.publish(OrderCreated, big).catch((e: unknown) => e);
      expect(isPatchbayError(error, "MESSAGE_TOO_LARGE")).toBe(true);
      expect(error).toMatchObject({ limit: 4096, type: "order.created", retryable: false });
      expect((error as { size: number }).size).toBeGreaterThan(5000);
      const inTx = await b
        .transaction(async (tx) => {
          await tx.query(`INSERT INTO orders (id) VALUES (${db.p(1)})`, ["with-big-event"]);
          await tx.publish(OrderCreated, big);
        })
        .catch((e: unknown) => e);
      expect(isPatchbayError(inTx, "MESSAGE_TOO_LARGE")).toBe(true);
      expect(await count("SELECT COUNT(*) AS n FROM orders")).toBe(0);
      // Just under the limit goes through.
      await b.publish(OrderCreated, { orderId: `small${"y".repeat(3000)}`, qty: 1 });
      await until(() => seen.length === 1, 10_000, "the small event");
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toEqual(["small"]);
    });

    it("refuses a 2 MiB message by default (the limit is 1 MiB)", async () => {
      const b = bus();
      await b.start();
      const error = await b
        .publish(OrderCreated, { orderId: "z".repeat(2 * 1024 * 1024), qty: 1 })
        .catch((e: unknown) => e);
      expect(isPatchbayError(error, "MESSAGE_TOO_LARGE") && error.limit).toBe(1024 * 1024);
    });

    it("tx.publish commits with the business write, or not at all", async () => {
      const b = bus();
      const seen: string[] = [];
      b.subscribe(OrderCreated, { group: "g" }, (e) => void seen.push(e.data.orderId));
      await b.start();
      await b
        .transaction(async (tx) => {
          await tx.query(`INSERT INTO orders (id) VALUES (${db.p(1)})`, ["rolled-back"]);
          await tx.publish(OrderCreated, { orderId: "rolled-back", qty: 1 });
          throw new Error("payment declined");
        })
        .catch(() => undefined);
      await b.transaction(async (tx) => {
        await tx.query(`INSERT INTO orders (id) VALUES (${db.p(1)})`, ["kept"]);
        await tx.publish(OrderCreated, { orderId: "kept", qty: 1 });
      });
      await until(() => seen.length === 1, 10_000, "the committed event");
      await new Promise((r) => setTimeout(r, 300));
      expect(seen).toEqual(["kept"]);
      expect(await count("SELECT COUNT(*) AS n FROM orders")).toBe(1);
    });

    it("stop drains handlers in flight and is safe to call twice", async () => {
      const b = bus();
      let finished = 0;
      b.subscribe(OrderCreated, { group: "slow" }, async () => {
        await new Promise((r) => setTimeout(r, 300));
        finished++;
      });
      await b.start();
      await b.publish(OrderCreated, { orderId: "o-1", qty: 1 });
      await new Promise((r) => setTimeout(r, 150));
      await Promise.all([b.stop(), b.stop()]);
      expect(finished).toBe(1);
      expect(
        isPatchbayError(
          await b.publish(OrderCreated, { orderId: "x", qty: 1 }).catch((e: unknown) => e),
          "BUS_STOPPED",
        ),
      ).toBe(true);
    });
  });
}
