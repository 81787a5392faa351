/**
 * The saga conformance suite: what a store must do for the durable saga runner — compensation in
 * reverse order and its retries, the pivot, idempotent start by id, a start that commits with the
 * business transaction, exactly-once `ctx.tx` effects, operators' actions, several runners sharing
 * one store without running a step twice, and (on a fake clock) durable retry times, the saga
 * deadline and the lease a dead runner leaves. An adapter's test file calls
 * {@link defineSagaConformance} inside a vitest run (vitest is the adapter author's dev dependency).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEventBus, type EventBus } from "../../bus/bus.js";
import { isPatchbayError, NonRetryableError } from "../../core/errors.js";
import { defineEvent } from "../../core/events.js";
import { constant } from "../../resilience/backoff.js";
import { defineSaga, type SagaStep } from "../../saga/definition.js";
import { SagaFailed, type SagaFailedData } from "../../saga/events.js";
import {
  createSagaRunner,
  type SagaRunner,
  type SagaRunnerOptions,
  type StartedSaga,
} from "../../saga/runner.js";
import type { SqlStore } from "../../store/sql-store.js";
import { objectSchema, string } from "./events.js";
import { defineSagaClockCases } from "./saga-clock.js";
import type { ConformanceDatabase } from "./store.js";
import { until } from "./transport.js";

/** How {@link defineSagaConformance} reaches an adapter: a fresh, isolated, empty database per test. */
export interface SagaHarness {
  name: string;
  fresh(): Promise<ConformanceDatabase> | ConformanceDatabase;
  /** The column type of a text key in a test's own table (default `TEXT`; MySQL needs a length). */
  keyText?: string;
}

const fast = { backoff: constant(10) };

interface Order {
  orderId: string;
  failAt?: string;
}

/** The saga runner's guarantees, checked on one store. */
export function defineSagaConformance(harness: SagaHarness): void {
  describe(`Saga conformance: ${harness.name}`, () => {
    let db: ConformanceDatabase;
    let store: SqlStore;
    const runners: SagaRunner[] = [];
    const buses: EventBus[] = [];
    const stores: SqlStore[] = [];
    const runner = async (options: Partial<SagaRunnerOptions> = {}) => {
      const r = createSagaRunner({ store, pollInterval: 20, lease: "5s", ...options });
      runners.push(r);
      await r.start();
      return r;
    };
    const count = async (text: string, params: unknown[] = []) =>
      Number((await store.query<{ n: number | string }>(text, params)).rows[0]?.n ?? 0);
    /** The n-th placeholder of the store's dialect. */
    const p = (n: number) => (store.dialect.placeholders === "numbered" ? `$${n}` : "?");

    /** Order steps: reserve (in the store, exactly once), charge, ship (calls out), confirm. */
    const orderSteps = (log: string[], overrides: Partial<Record<string, Partial<SagaStep<Order>>>> = {}) => {
      const failIf = (step: string, input: Order) => {
        if (input.failAt === step) throw new NonRetryableError(`${step} refused`);
      };
      const steps: Array<SagaStep<Order>> = [
        {
          name: "reserve",
          transaction: true,
          run: async (input, ctx) => {
            failIf("reserve", input);
            await ctx.tx.query(`INSERT INTO reservations (order_id) VALUES (${p(1)})`, [input.orderId]);
            return { reservation: `R-${input.orderId}` };
          },
          compensate: async (r: { reservation: string }, ctx) => {
            await ctx.tx.query(`DELETE FROM reservations WHERE order_id = ${p(1)}`, [ctx.sagaId]);
            log.push(`${ctx.sagaId}:undo reserve ${r.reservation}`);
          },
        },
        {
          name: "charge",
          run: (input) => {
            failIf("charge", input);
            return `C-${input.orderId}`;
          },
          compensate: (charge: string, ctx) => void log.push(`${ctx.sagaId}:refund ${charge}`),
        },
        {
          name: "ship",
          run: (input) => {
            failIf("ship", input);
            return `S-${input.orderId}`;
          },
          compensate: (shipment: string, ctx) => void log.push(`${ctx.sagaId}:cancel ${shipment}`),
        },
        {
          name: "confirm",
          run: (input) => {
            failIf("confirm", input);
          },
        },
      ];
      return steps.map((s) => ({ ...s, ...overrides[s.name] }));
    };

    beforeEach(async () => {
      db = await harness.fresh();
      store = db.make();
      await store.open();
      await store.query("CREATE TABLE reservations (order_id TEXT NOT NULL)");
      await store.query(`CREATE TABLE orders (id ${harness.keyText ?? "TEXT"} PRIMARY KEY)`);
      await store.query("CREATE TABLE effects (saga_id TEXT NOT NULL, step TEXT NOT NULL)");
    });
    afterEach(async () => {
      await Promise.all(runners.splice(0).map((r) => r.stop({ timeout: "2s" })));
      await Promise.all(buses.splice(0).map((b) => b.stop({ timeout: "2s" })));
      await Promise.all(stores.splice(0).map((s) => s.close()));
      await store.close();
      await db.cleanup();
    });

    it("each step failing in turn: the completed steps are compensated in reverse and the saga ends compensated", async () => {
      const log: string[] = [];
      const order = defineSaga("order", { version: 1, retry: fast, steps: orderSteps(log) });
      const r = await runner({ sagas: [order] });
      const failAt = ["reserve", "charge", "ship", "confirm"];
      for (const step of failAt) await r.saga(order).start({ orderId: step, failAt: step }, { id: step });
      for (const step of failAt) expect((await r.wait(step)).status).toBe("compensated");

      const undo = (id: string) =>
        log.filter((l) => l.startsWith(`${id}:`)).map((l) => l.slice(id.length + 1));
      expect(undo("reserve")).toEqual([]);
      expect(undo("charge")).toEqual(["undo reserve R-charge"]);
      expect(undo("ship")).toEqual(["refund C-ship", "undo reserve R-ship"]);
      expect(undo("confirm")).toEqual(["cancel S-confirm", "refund C-confirm", "undo reserve R-confirm"]);
      for (const step of failAt) {
        const details = await r.get(step);
        expect(details?.reason).toMatchObject({ step, phase: "run", error: { code: "NON_RETRYABLE" } });
        expect(details?.steps.find((s) => s.phase === "run" && s.name === step)?.status).toBe("failed");
      }
      // The timeline of the last one: four runs, then the compensations newest first.
      const timeline = (await r.get("confirm"))!.steps.map((s) => `${s.phase} ${s.name} ${s.status}`);
      expect(timeline).toEqual([
        "run reserve succeeded",
        "run charge succeeded",
        "run ship succeeded",
        "run confirm failed",
        "compensate ship succeeded",
        "compensate charge succeeded",
        "compensate reserve succeeded",
      ]);
      expect(await count("SELECT COUNT(*) AS n FROM reservations")).toBe(0);
    });

    it("a compensation that fails twice, then succeeds: compensated", async () => {
      const log: string[] = [];
      let refunds = 0;
      const order = defineSaga("order", {
        version: 1,
        retry: fast,
        compensateRetry: fast,
        steps: orderSteps(log, {
          charge: {
            compensate: (charge: string, ctx) => {
              if (++refunds <= 2) throw new Error(`payment provider down (${refunds})`);
              log.push(`${ctx.sagaId}:refund ${charge} on attempt ${ctx.attempt}`);
            },
          },
        }),
      });
      const r = await runner({ sagas: [order] });
      await r.saga(order).start({ orderId: "o-1", failAt: "ship" }, { id: "o-1" });
      expect((await r.wait("o-1")).status).toBe("compensated");
      expect(log).toEqual(["o-1:refund C-o-1 on attempt 3", "o-1:undo reserve R-o-1"]);
      const refund = (await r.get("o-1"))?.steps.find((s) => s.phase === "compensate" && s.name === "charge");
      expect(refund).toMatchObject({ status: "succeeded", attempts: 3 });
    });

    it("a compensation that always fails: failed with the event published; retried after the fix: compensated", async () => {
      const log: string[] = [];
      let fixed = false;
      const bus = createEventBus({ store });
      buses.push(bus);
      const alerts: SagaFailedData[] = [];
      bus.subscribe(SagaFailed, { group: "oncall" }, (event) => void alerts.push(event.data));
      await bus.start();
      const order = defineSaga("order", {
        version: 1,
        retry: fast,
        compensateRetry: { maxAttempts: 2, ...fast },
        steps: orderSteps(log, {
          charge: {
            compensate: (charge: string, ctx) => {
              if (!fixed) throw new Error("refund endpoint returns 500");
              log.push(`${ctx.sagaId}:refund ${charge}`);
            },
          },
        }),
      });
      const r = await runner({ sagas: [order], bus });
      await r.saga(order).start({ orderId: "o-2", failAt: "confirm" }, { id: "o-2" });
      const failed = await r.wait("o-2");
      expect(failed).toMatchObject({
        status: "failed",
        failure: { step: "charge", phase: "compensate", error: { message: "refund endpoint returns 500" } },
      });
      expect(log).toEqual(["o-2:cancel S-o-2"]);
      await until(() => alerts.length === 1, 10_000, "the patchbay.saga.failed event");
      expect(alerts[0]).toMatchObject({
        sagaId: "o-2",
        name: "order",
        version: 1,
        step: "charge",
        phase: "compensate",
        error: { message: "refund endpoint returns 500" },
      });
      expect(
        (await r.get("o-2"))?.steps.find((s) => s.phase === "compensate" && s.name === "charge"),
      ).toMatchObject({
        status: "failed",
        attempts: 2,
      });

      fixed = true;
      expect((await r.retry("o-2")).status).toBe("compensating");
      expect((await r.wait("o-2")).status).toBe("compensated");
      expect(log).toEqual(["o-2:cancel S-o-2", "o-2:refund C-o-2", "o-2:undo reserve R-o-2"]);
      expect(alerts).toHaveLength(1);
      await expect(r.retry("o-2")).rejects.toMatchObject({ code: "SAGA_STATE_INVALID" });
    });

    it("a failure after the pivot is retried until it succeeds, never compensated", async () => {
      const log: string[] = [];
      let confirms = 0;
      const order = defineSaga("order", {
        version: 1,
        retry: { maxAttempts: 2, ...fast },
        steps: orderSteps(log, {
          ship: { pivot: true, compensate: undefined },
          confirm: {
            run: () => {
              if (++confirms < 5) throw new Error("mail server down");
              return "sent";
            },
          },
        }),
      });
      const r = await runner({ sagas: [order] });
      await r.saga(order).start({ orderId: "o-3" }, { id: "o-3" });
      expect((await r.wait("o-3")).status).toBe("completed");
      expect(log).toEqual([]);
      expect((await r.get("o-3"))?.steps.find((s) => s.name === "confirm")).toMatchObject({
        status: "succeeded",
        attempts: 5,
        result: "sent",
      });
    });

    it("start is idempotent by id; an id of another saga is refused", async () => {
      const log: string[] = [];
      let charges = 0;
      const order = defineSaga("order", {
        version: 1,
        steps: orderSteps(log, { charge: { run: () => `C-${++charges}` } }),
      });
      const other = defineSaga("other", { version: 1, steps: [{ name: "x", run: () => 1 }] });
      const r = await runner({ sagas: [order, other] });
      const first = await r.saga(order).start({ orderId: "o-4" }, { id: "o-4" });
      const second = await r.saga("order").start({ orderId: "something else" }, { id: "o-4" });
      expect([first.created, second.created]).toEqual([true, false]);
      expect(second).toMatchObject({ id: "o-4", input: { orderId: "o-4" }, createdAt: first.createdAt });
      await r.wait("o-4");
      expect((await r.saga(order).start({ orderId: "o-4" }, { id: "o-4" })).status).toBe("completed");
      expect(charges).toBe(1);
      const conflict = await r
        .saga(other)
        .start(null, { id: "o-4" })
        .catch((e: unknown) => e);
      expect(isPatchbayError(conflict, "SAGA_ID_CONFLICT")).toBe(true);
      expect(await r.count()).toBe(1);
    });

    it("the same id started 12 times at once, with different inputs, on two runners: one instance, created once, run once", async () => {
      let runs = 0;
      const def = defineSaga("race", {
        version: 1,
        steps: [{ name: "only", run: (input: { n: number }) => (runs++, input.n) }],
      });
      const [a, b] = [await runner({ sagas: [def] }), await runner({ sagas: [def] })];
      const starts = await Promise.allSettled(
        Array.from({ length: 12 }, (_, n) => (n % 2 ? a : b).saga(def).start({ n }, { id: "same" })),
      );
      const rejected = starts.filter((x) => x.status === "rejected");
      expect(rejected).toEqual([]);
      const results = starts.map((x) => (x as PromiseFulfilledResult<StartedSaga>).value);
      const created = results.filter((x) => x.created);
      expect(created).toHaveLength(1);
      // Every caller sees the one stored input, never its own when it did not create it.
      for (const x of results) expect(x.input).toEqual(created[0]!.input);
      expect((await a.wait("same")).status).toBe("completed");
      expect(runs).toBe(1);
      expect(await a.count()).toBe(1);
    });

    it("started in a repeatable-read transaction whose snapshot predates another start of the id: never reported created for an instance it did not write", async () => {
      if (!store.capabilities.concurrentWriters) return; // writers queue: no such interleaving
      const def = defineSaga("rr", {
        version: 1,
        steps: [{ name: "only", run: (input: { who: string }) => input.who }],
      });
      const r = await runner({ sagas: [def] });
      // Another process: its own store (own connections).
      const other = db.make();
      stores.push(other);
      const elsewhere = await runner({ sagas: [def], store: other });
      const outcome = await store
        .transaction(
          async (tx) => {
            await tx.query("SELECT COUNT(*) AS n FROM orders"); // the snapshot is taken here
            await elsewhere.saga(def).start({ who: "outside" }, { id: "rr-1" }); // commits meanwhile
            return r.saga(def).start({ who: "inside" }, { id: "rr-1", tx });
          },
          { isolation: "repeatable read" },
        )
        .then(
          (started) => ({ created: started.created, input: started.input }),
          (e: unknown) => ({ error: isPatchbayError(e) ? e.code : String(e) }),
        );
      // Either the stored instance (not created by this call), or a typed refusal of the transaction.
      if ("error" in outcome) expect(outcome.error).toMatch(/^(TRANSACTION_ROLLED_BACK|QUERY_FAILED)$/);
      else expect(outcome).toEqual({ created: false, input: { who: "outside" } });
      expect((await r.wait("rr-1")).status).toBe("completed");
      expect((await r.get("rr-1"))?.input).toEqual({ who: "outside" });
    });

    it("started inside a business transaction: exists exactly when it commits", async () => {
      const order = defineSaga("order", { version: 1, steps: orderSteps([]) });
      const r = await runner({ sagas: [order] });
      await store.transaction(async (tx) => {
        await tx.query(`INSERT INTO orders (id) VALUES (${p(1)})`, ["o-5"]);
        await r.saga(order).start({ orderId: "o-5" }, { id: "o-5", tx });
      });
      const rolledBack = store.transaction(async (tx) => {
        await tx.query(`INSERT INTO orders (id) VALUES (${p(1)})`, ["o-6"]);
        await r.saga(order).start({ orderId: "o-6" }, { id: "o-6", tx });
        throw new Error("business rule says no");
      });
      await expect(rolledBack).rejects.toThrow("business rule says no");
      expect((await r.wait("o-5")).status).toBe("completed");
      expect(await r.get("o-6")).toBeUndefined();
      expect(await count("SELECT COUNT(*) AS n FROM orders")).toBe(1);
    });

    it("a ctx.tx step's writes roll back with a failed attempt and apply once with the successful one", async () => {
      let attempts = 0;
      const s = defineSaga("book", {
        version: 1,
        steps: [
          {
            name: "write",
            transaction: true,
            retry: fast,
            run: async (_input, ctx) => {
              await ctx.tx.query(`INSERT INTO effects (saga_id, step) VALUES (${p(1)}, ${p(2)})`, [
                ctx.sagaId,
                "write",
              ]);
              if (++attempts < 3) throw new Error("after the write");
              return ctx.idempotencyKey;
            },
          },
          {
            name: "outside",
            run: (_input, ctx) => {
              expect(() => ctx.tx).toThrow(/transaction: true/);
              return ctx.results;
            },
          },
        ],
      });
      const r = await runner({ sagas: [s] });
      await r.saga(s).start(null, { id: "b-1" });
      expect((await r.wait("b-1")).status).toBe("completed");
      expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(1);
      const steps = (await r.get("b-1"))!.steps;
      expect(steps[0]).toMatchObject({ status: "succeeded", attempts: 3, result: "b-1:write" });
      expect(steps[1]?.result).toEqual({ write: "b-1:write" });
    });

    it("a transactional step publishes with its checkpoint (ctx.tx.publish); without a bus it says so", async () => {
      const Reserved = defineEvent("stock.reserved", {
        version: 1,
        schema: objectSchema<{ orderId: string }>({ orderId: string }),
      });
      const bus = createEventBus({ store });
      buses.push(bus);
      const seen: string[] = [];
      bus.subscribe(Reserved, { group: "stock" }, (event) => void seen.push(event.data.orderId));
      await bus.start();
      let attempts = 0;
      const s = defineSaga("publishing", {
        version: 1,
        steps: [
          {
            name: "reserve",
            transaction: true,
            retry: fast,
            run: async (input: { orderId: string }, ctx) => {
              await ctx.tx.publish(Reserved, { orderId: input.orderId });
              if (++attempts === 1) throw new Error("rolled back, and the event with it");
            },
          },
        ],
      });
      const r = await runner({ sagas: [s], bus });
      await r.saga(s).start({ orderId: "o-9" }, { id: "o-9" });
      expect((await r.wait("o-9")).status).toBe("completed");
      await until(() => seen.length > 0, 10_000, "the event");
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(seen).toEqual(["o-9"]);

      const lonely = defineSaga("no-bus", {
        version: 1,
        steps: [
          { name: "x", transaction: true, run: (_input, ctx) => ctx.tx.publish(Reserved, { orderId: "x" }) },
        ],
      });
      const alone = await runner({ sagas: [lonely] });
      await alone.saga(lonely).start(null, { id: "nb" });
      expect(await alone.wait("nb")).toMatchObject({
        status: "compensated",
        reason: { error: { code: "SAGA_NO_BUS" } },
      });
    });

    it("a step error whose message holds NUL or a lone surrogate is recorded (U+FFFD), not lost: the step ran once and the saga compensated", async () => {
      let charged = 0;
      let shipped = 0;
      const def = defineSaga("odd-error", {
        version: 1,
        steps: [
          { name: "charge", run: () => ++charged, compensate: () => void charged-- },
          {
            name: "ship",
            retry: { maxAttempts: 2, backoff: { delay: () => 10 } },
            run: () => {
              shipped++;
              throw new NonRetryableError("refused: a\u0000b 😀 \ud800");
            },
          },
        ],
      });
      const r = await runner({ sagas: [def] });
      await r.saga(def).start(null, { id: "nul-1" });
      const done = await r.wait("nul-1", { timeout: "10s" });
      expect({ status: done.status, charged, shipped }).toEqual({
        status: "compensated",
        charged: 0,
        shipped: 1,
      });
      const details = await r.get("nul-1");
      expect(details?.reason?.error).toMatchObject({
        code: "NON_RETRYABLE",
        message: "refused: a\ufffdb 😀 \ufffd",
      });
      expect(details?.steps.find((s) => s.name === "ship")?.error?.message).toBe(
        "refused: a\ufffdb 😀 \ufffd",
      );
    });

    for (const [label, value] of [
      ["a NUL", "a\u0000b"],
      ["a lone surrogate", "a\ud800b"],
    ] as const) {
      it(`a step result holding ${label}: stored exactly, or refused by the store (a typed failure, compensated) — the step runs once either way`, async () => {
        let runs = 0;
        let after = 0;
        const def = defineSaga("odd-result", {
          version: 1,
          steps: [
            { name: "first", run: () => "ok", compensate: () => undefined },
            {
              name: "odd",
              retry: { maxAttempts: 3, backoff: { delay: () => 10 } },
              run: () => (runs++, { value }),
            },
            { name: "last", run: () => void after++ },
          ],
        });
        const r = await runner({ sagas: [def], lease: "1s" });
        await r.saga(def).start(null, { id: "odd-1" });
        const done = await r.wait("odd-1", { timeout: "15s" });
        const details = await r.get("odd-1");
        const step = details?.steps.find((s) => s.name === "odd" && s.phase === "run");
        if (done.status === "completed") {
          expect(step?.result).toEqual({ value });
          expect(after).toBe(1);
        } else {
          expect(done.status).toBe("compensated");
          expect(step).toMatchObject({ status: "failed", error: { code: "QUERY_FAILED" } });
          expect(after).toBe(0);
        }
        expect(runs).toBe(1);
      });
    }

    it("refuses an input that fails the saga's schema, storing nothing", async () => {
      const s = defineSaga("typed", {
        version: 1,
        input: objectSchema<{ orderId: string }>({
          orderId: (v) => (typeof v === "string" && v.length > 0 ? undefined : "expected a non-empty string"),
        }),
        steps: [{ name: "x", run: (input) => input.orderId }],
      });
      const r = await runner({ sagas: [s] });
      await expect(r.saga(s).start({ orderId: "" }, { id: "t-1" })).rejects.toMatchObject({
        code: "SCHEMA_INVALID",
      });
      expect(await r.count()).toBe(0);
      await r.saga(s).start({ orderId: "o-1" }, { id: "t-2" });
      expect((await r.wait("t-2")).status).toBe("completed");
    });

    it("operators skip a compensation and resolve a stuck saga; list and count by status and name", async () => {
      const log: string[] = [];
      const order = defineSaga("order", {
        version: 1,
        retry: fast,
        compensateRetry: { maxAttempts: 1 },
        steps: orderSteps(log, {
          charge: {
            compensate: () => {
              throw new Error("card network offline");
            },
          },
        }),
      });
      const r = await runner({ sagas: [order] });
      await r.saga(order).start({ orderId: "a", failAt: "ship" }, { id: "a" });
      await r.saga(order).start({ orderId: "b", failAt: "ship" }, { id: "b" });
      await r.saga(order).start({ orderId: "c" }, { id: "c" });
      for (const id of ["a", "b", "c"]) await r.wait(id);

      expect((await r.list({ status: "failed" })).map((i) => i.id).sort()).toEqual(["a", "b"]);
      expect(await r.count({ status: ["failed", "completed"], name: "order" })).toBe(3);
      expect(await r.count({ name: "nothing" })).toBe(0);

      // a: the refund was made by hand; the saga goes on compensating the steps before.
      await r.skip("a", { note: "refunded in the dashboard" });
      expect((await r.wait("a")).status).toBe("compensated");
      expect(log).toContain("a:undo reserve R-a");
      expect(
        (await r.get("a"))?.steps.find((s) => s.phase === "compensate" && s.name === "charge"),
      ).toMatchObject({
        status: "skipped",
        note: "refunded in the dashboard",
      });
      // b: settled by hand altogether.
      expect(await r.resolve("b", { note: "customer kept the goods" })).toMatchObject({
        status: "resolved",
        note: "customer kept the goods",
      });
      expect(log).not.toContain("b:undo reserve R-b");
      await expect(r.resolve("c")).rejects.toMatchObject({ code: "SAGA_STATE_INVALID" });
      await expect(r.skip("nope")).rejects.toMatchObject({ code: "SAGA_NOT_FOUND" });
      expect((await r.list({ status: "failed" })).length).toBe(0);
      expect((await r.list({ limit: 2 })).map((i) => i.id)).toEqual(["c", "b"]);
    });

    it("bulk actions act on exactly the sagas that matched when they began, count the ones that changed, and are safe twice", async () => {
      const log: string[] = [];
      let refundWorks = false;
      const steps = orderSteps(log, {
        charge: {
          compensate: (charge: string, ctx) => {
            if (!refundWorks) throw new Error("card network offline");
            log.push(`${ctx.sagaId}:refund ${charge}`);
          },
        },
      });
      const order = defineSaga("order", {
        version: 1,
        retry: fast,
        compensateRetry: { maxAttempts: 1 },
        steps,
      });
      const other = defineSaga("other", {
        version: 1,
        retry: fast,
        compensateRetry: { maxAttempts: 1 },
        steps,
      });
      const r = await runner({ sagas: [order, other] });
      const began = Date.now();
      const ids = ["o-1", "o-2", "o-3", "o-4", "o-5"];
      for (const id of ids) await r.saga(order).start({ orderId: id, failAt: "ship" }, { id });
      await r.saga(other).start({ orderId: "x-1", failAt: "ship" }, { id: "x-1" });
      await r.saga(order).start({ orderId: "ok" }, { id: "ok" });
      for (const id of [...ids, "x-1"]) expect((await r.wait(id)).status).toBe("failed");
      expect((await r.wait("ok")).status).toBe("completed");

      const dry = await r.bulk(
        "retry",
        { status: "failed", name: "order", since: began },
        { dryRun: true, sampleSize: 3 },
      );
      expect(dry).toMatchObject({ action: "retry", dryRun: true, matched: 5, acted: 0, skipped: 0 });
      expect(dry.sample.map((i) => i.id)).toEqual(["o-1", "o-2", "o-3"]);
      expect(await r.count({ status: "failed" })).toBe(6);
      expect(
        (await r.bulk("retry", { status: "failed", since: Date.now() + 60_000 }, { dryRun: true })).matched,
      ).toBe(0);
      await expect(r.bulk("retry", { status: [] })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });

      // o-5 is resolved by someone else after the snapshot, while the first batch runs.
      const progress: number[] = [];
      const first = await r.bulk(
        "retry",
        { status: "failed", name: "order" },
        {
          batchSize: 2,
          onProgress: async (p) => {
            progress.push(p.done);
            if (p.done === 2) await r.resolve("o-5", { note: "written off" });
          },
        },
      );
      expect(progress).toEqual([2, 4, 5]);
      expect(first).toMatchObject({ matched: 5, skipped: 1, acted: 4 });
      expect(first.skips).toEqual([expect.objectContaining({ id: "o-5", reason: "changed" })]);
      expect((await r.get("o-5"))?.status).toBe("resolved");
      // Retried without a working refund: failed again (each compensation attempt ran once more).
      for (const id of ids.slice(0, 4)) expect((await r.wait(id)).status).toBe("failed");

      refundWorks = true;
      const second = await r.bulk("retry", { status: "failed", name: "order" });
      expect(second).toMatchObject({ matched: 4, acted: 4, skipped: 0 });
      for (const id of ids.slice(0, 4)) expect((await r.wait(id)).status).toBe("compensated");
      for (const id of ids.slice(0, 4))
        expect(log.filter((l) => l === `${id}:refund C-${id}`)).toHaveLength(1);
      // Safe twice: nothing matches any more, nothing is touched.
      expect(await r.bulk("retry", { status: "failed", name: "order" })).toMatchObject({
        matched: 0,
        acted: 0,
      });
      expect((await r.get("x-1"))?.status).toBe("failed");

      const skipped = await r.bulk("skip", { status: "failed", name: "other" }, { note: "refunded by hand" });
      expect(skipped).toMatchObject({ action: "skip", matched: 1, acted: 1 });
      expect((await r.wait("x-1")).status).toBe("compensated");
      const resolved = await r.bulk(
        "resolve",
        { status: ["compensated"], name: "order" },
        { note: "checked" },
      );
      expect(resolved).toMatchObject({ matched: 4, acted: 0, skipped: 4 });
      expect(resolved.skips.map((s) => s.reason)).toEqual(Array(4).fill("SAGA_STATE_INVALID"));
    });

    it("two runners share the work and run every step once", async () => {
      const s = defineSaga("bulk", {
        version: 1,
        steps: ["one", "two", "three"].map((step): SagaStep => ({
          name: step,
          transaction: true,
          run: async (_input, ctx) => {
            await ctx.tx.query(`INSERT INTO effects (saga_id, step) VALUES (${p(1)}, ${p(2)})`, [
              ctx.sagaId,
              step,
            ]);
          },
        })),
      });
      const a = await runner({ sagas: [s], concurrency: 3 });
      const otherStore = db.make();
      stores.push(otherStore);
      await runner({ sagas: [s], concurrency: 3, store: otherStore });
      const idle = createSagaRunner({ store, sagas: [s] });
      for (let i = 0; i < 30; i++) await idle.saga(s).start(null, { id: `bulk-${i}` });
      await until(async () => (await a.count({ status: "completed" })) === 30, 30_000, "30 completed sagas");
      expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(90);
      expect(await count("SELECT COUNT(*) AS n FROM (SELECT DISTINCT saga_id, step FROM effects) x")).toBe(
        90,
      );
    });

    it("a slot freed beside long steps is claimed at once: waiting sagas run while the other slots stay busy", async () => {
      const gates = new Map<string, () => void>();
      const job = defineSaga("job", {
        version: 1,
        steps: [
          {
            name: "work",
            run: async (input: { hold: boolean }, ctx) => {
              if (input.hold) await new Promise<void>((resolve) => gates.set(ctx.sagaId, resolve));
            },
          },
        ],
      });
      // A poll far beyond the test: only a finishing saga can make this runner claim again.
      const r = await runner({ sagas: [job], concurrency: 4, pollInterval: "10m" });
      for (let i = 0; i < 4; i++) await r.saga(job).start({ hold: true }, { id: `hold-${i}` });
      await until(() => Promise.resolve(gates.size === 4), 10_000, "4 held steps");
      // Every slot is busy: these wait in the store.
      for (let i = 0; i < 3; i++) await r.saga(job).start({ hold: false }, { id: `quick-${i}` });
      gates.get("hold-0")!();
      const started = Date.now();
      for (let i = 0; i < 3; i++)
        expect((await r.wait(`quick-${i}`, { timeout: "20s" })).status).toBe("completed");
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await r.count({ status: "running" })).toBe(3); // hold-1..3 still hold their slots
      for (const id of ["hold-1", "hold-2", "hold-3"]) gates.get(id)!();
      for (let i = 1; i < 4; i++) expect((await r.wait(`hold-${i}`)).status).toBe("completed");
    });

    it("a step's retry runs when it falls due, not at the runner's next poll", async () => {
      let tries = 0;
      const flaky = defineSaga("flaky", {
        version: 1,
        steps: [
          {
            name: "call",
            retry: { maxAttempts: 5, backoff: constant(100) },
            run: () => {
              if (++tries < 4) throw new Error("try again");
              return tries;
            },
          },
        ],
      });
      // A poll far beyond the test: only the runner knowing when each retry falls due runs it.
      const r = await runner({ sagas: [flaky], pollInterval: "10m" });
      const started = Date.now();
      await r.saga(flaky).start(null, { id: "flaky-1" });
      expect((await r.wait("flaky-1", { timeout: "20s" })).status).toBe("completed");
      expect(tries).toBe(4);
      // Three retries 100 ms apart; at the poll it would take 30 minutes.
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it("a saga started by another runner is taken up without waiting for the poll where the store notifies", async () => {
      const s = defineSaga("woken", { version: 1, steps: [{ name: "only", run: () => "done" }] });
      // With notifications the worker polls only every 10 minutes; without, at the suite's 20 ms.
      const r = await runner({ sagas: [s], ...(store.listen ? { pollInterval: "10m" } : {}) });
      const otherStore = db.make();
      stores.push(otherStore);
      const starter = createSagaRunner({ store: otherStore, sagas: [s] });
      for (let i = 0; i < 20; i++) await starter.saga(s).start(null, { id: `w-${i}` });
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) =>
          expect((await r.wait(`w-${i}`, { timeout: "20s" })).status).toBe("completed"),
        ),
      );
    });
  });
  defineSagaClockCases(harness);
}
