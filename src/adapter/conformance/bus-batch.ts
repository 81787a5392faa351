/**
 * Batch subscriptions (`subscribe(..., { batch })`) in the bus conformance suite: several
 * deliveries' handlers share one transaction, and every exactly-once guarantee of a lone delivery
 * still holds — effects counted in rows, none twice, none lost, a failing member isolated.
 */
import { expect, it } from "vitest";
import type { EventBus, EventBusOptions } from "../../bus/bus.js";
import { isPatchbayError } from "../../core/errors.js";
import { constant } from "../../resilience/backoff.js";
import type { StoreTx } from "../../store/contracts.js";
import type { SqlStore } from "../../store/sql-store.js";
import { OrderCreated } from "./events.js";
import { until } from "./transport.js";

/** What the batch scenarios borrow from the suite's test context. */
export interface BatchScenarioContext {
  bus(options?: Partial<EventBusOptions>): EventBus;
  store(): SqlStore;
  count(sql: string): Promise<number>;
  /** The n-th placeholder of the store's dialect. */
  p(n: number): string;
}

/** Defines the batch scenarios inside the suite's `describe` (its beforeEach made `effects`). */
export function defineBatchScenarios(t: BatchScenarioContext): void {
  const insertEffect = (tx: StoreTx, eventId: string, orderId: string) =>
    tx.query(`INSERT INTO effects (event_id, order_id) VALUES (${t.p(1)}, ${t.p(2)})`, [eventId, orderId]);
  const effects = () => t.count("SELECT COUNT(*) AS n FROM effects");
  const distinctEffects = () => t.count("SELECT COUNT(DISTINCT event_id) AS n FROM effects");

  it("batch: deliveries share one transaction; each ctx.tx write commits exactly once", async () => {
    const b = t.bus();
    const transactions = new Set<StoreTx>();
    let runs = 0;
    b.subscribe(OrderCreated, { group: "batched", concurrency: 2, batch: { size: 16 } }, async (e, ctx) => {
      runs++;
      transactions.add(ctx.tx);
      await insertEffect(ctx.tx, e.id, e.data.orderId);
    });
    await b.start();
    await Promise.all(
      Array.from({ length: 80 }, (_, i) => b.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 })),
    );
    await until(async () => (await effects()) >= 80, 15_000, "80 effects");
    await new Promise((r) => setTimeout(r, 300));
    expect(await effects()).toBe(80);
    expect(await distinctEffects()).toBe(80);
    expect(runs).toBe(80);
    // Fewer transactions than deliveries: some of them shared one.
    expect(transactions.size).toBeLessThan(80);
    expect(await b.deadLetters.count()).toBe(0);
  });

  it("batch: a failing handler rolls its batch back; the others still commit once, it alone retries and dead-letters", async () => {
    const b = t.bus();
    const runs = new Map<string, number>();
    b.subscribe(
      OrderCreated,
      {
        group: "mixed",
        concurrency: 1,
        batch: { size: 10, maxWait: 20 },
        retry: { immediate: 1, maxAttempts: 2, backoff: constant(50) },
      },
      async (e, ctx) => {
        runs.set(e.data.orderId, (runs.get(e.data.orderId) ?? 0) + 1);
        await insertEffect(ctx.tx, e.id, e.data.orderId); // rolled back with its batch
        if (e.data.orderId === "bad") throw new Error("this one always fails");
      },
    );
    await b.start();
    await Promise.all(
      ["o-1", "o-2", "bad", "o-3", "o-4", "o-5"].map((orderId) =>
        b.publish(OrderCreated, { orderId, qty: 1 }),
      ),
    );
    await until(async () => (await b.deadLetters.count()) === 1, 15_000, "the failing one dead-lettered");
    await until(async () => (await effects()) >= 5, 10_000, "5 effects");
    await new Promise((r) => setTimeout(r, 300));
    expect(await effects()).toBe(5);
    expect(await distinctEffects()).toBe(5);
    const orders = (await t.store().query<{ order_id: string }>("SELECT order_id FROM effects")).rows;
    expect(orders.map((r) => r.order_id).sort()).toEqual(["o-1", "o-2", "o-3", "o-4", "o-5"]);
    const [letter] = await b.deadLetters.list();
    expect(letter?.attempts).toBe(2);
    // The failing one ran in no batch after its first: 1 + 1 alone + 1 immediate retry + 2 later.
    expect(runs.get("bad")).toBeGreaterThanOrEqual(4);
  });

  it("batch: copies of a message, at once or after its effect committed, apply it once", async () => {
    const b = t.bus();
    let runs = 0;
    b.subscribe(OrderCreated, { group: "copies", concurrency: 2, batch: { size: 8 } }, async (e, ctx) => {
      runs++;
      await insertEffect(ctx.tx, e.id, e.data.orderId);
    });
    await b.start();
    const sent = await Promise.all(
      Array.from({ length: 12 }, (_, i) => b.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 })),
    );
    // The broker delivers each again (at-least-once): same id, same body, some while the first
    // is in flight (a store queue refuses a copy of a message it holds), some after.
    const copies = sent.map((event) => ({
      id: event.id,
      type: event.type,
      body: JSON.stringify({ ...event, data: event.data }),
      headers: {},
    }));
    await b.transport.publish(copies, { group: "copies" });
    await until(async () => (await effects()) >= 12, 10_000, "12 effects");
    await new Promise((r) => setTimeout(r, 300));
    await b.transport.publish(copies.slice(0, 4), { group: "copies" });
    await new Promise((r) => setTimeout(r, 700));
    expect(await effects()).toBe(12);
    expect(await distinctEffects()).toBe(12);
    expect(runs).toBeGreaterThanOrEqual(12);
    expect(await b.deadLetters.count()).toBe(0);
  });

  it("batch: refused without a transaction (SUBSCRIPTION_INVALID) or with a size below 1 (INVALID_ARGUMENT)", () => {
    const b = t.bus();
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const noTx = refusal(() =>
      b.subscribe(OrderCreated, { group: "a", transaction: false, batch: { size: 4 } }, () => undefined),
    );
    expect(isPatchbayError(noTx, "SUBSCRIPTION_INVALID")).toBe(true);
    const zero = refusal(() =>
      b.subscribe(OrderCreated, { group: "b", batch: { size: 0 } }, () => undefined),
    );
    expect(isPatchbayError(zero, "INVALID_ARGUMENT")).toBe(true);
  });
}
