/**
 * The saga conformance cases on a fake clock: a retry's due time kept across a restart, the saga
 * deadline (while a step waits for its retry, and while one runs), the lease a dead runner left,
 * retries after the pivot, a stop that releases the instance to the next runner, and a lease
 * renewed by a step that outlasted half of it. Part of `defineSagaConformance`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NonRetryableError } from "../../core/errors.js";
import { constant } from "../../resilience/backoff.js";
import { defineSaga, type SagaOptions } from "../../saga/definition.js";
import { createSagaRunner, type SagaRunner, type SagaRunnerOptions } from "../../saga/runner.js";
import type { SqlStore } from "../../store/sql-store.js";
import { FakeClock } from "../../testing/fake-clock.js";
import type { SagaHarness } from "./saga.js";
import type { ConformanceDatabase } from "./store.js";
import { until } from "./transport.js";

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function defineSagaClockCases(harness: SagaHarness): void {
  describe(`Saga conformance on a fake clock: ${harness.name}`, () => {
    let db: ConformanceDatabase;
    let store: SqlStore;
    let clock: FakeClock;
    const runners: SagaRunner[] = [];
    const runner = async (options: Partial<SagaRunnerOptions> = {}, start = true) => {
      const r = createSagaRunner({ store, clock, pollInterval: 10, lease: "30s", ...options });
      runners.push(r);
      if (start) await r.start();
      return r;
    };
    const statusOf = async (r: SagaRunner, id: string) => (await r.get(id))?.status;
    const p = (n: number) => (store.dialect.placeholders === "numbered" ? `$${n}` : "?");
    const eventually = (predicate: () => boolean | Promise<boolean>, what: string) =>
      until(predicate, 10_000, what);

    beforeEach(async () => {
      db = await harness.fresh();
      store = db.make();
      await store.open();
      clock = new FakeClock();
    });
    afterEach(async () => {
      await Promise.all(runners.splice(0).map((r) => r.stop({ timeout: 1000 })));
      await store.close();
      await db.cleanup();
    });

    it("keeps a retry's due time and attempt count across a restart, and runs it only when due", async () => {
      let calls = 0;
      const def = defineSaga("flaky", {
        version: 1,
        steps: [
          {
            name: "call",
            retry: { maxAttempts: 5, backoff: constant("1m") },
            run: () => {
              calls++;
              if (calls < 3) throw new Error(`flaky ${calls}`);
              return "ok";
            },
          },
        ],
      });
      const first = await runner({ sagas: [def] });
      const t0 = clock.now();
      await first.saga(def).start(null, { id: "x" });
      await eventually(
        async () => (await first.get("x"))?.steps[0]?.status === "retrying",
        "the first failure",
      );
      expect(await first.get("x")).toMatchObject({ status: "running", attempt: 1, runAt: t0 + 60_000 });
      await pause(100);
      expect(calls).toBe(1);
      await first.stop();

      const second = await runner({ sagas: [def] });
      await pause(100);
      expect(calls).toBe(1);
      expect(await second.get("x")).toMatchObject({ attempt: 1, runAt: t0 + 60_000 });

      await clock.advance("1m");
      await eventually(() => calls === 2, "the second attempt");
      await eventually(async () => (await second.get("x"))?.runAt === t0 + 120_000, "the next due time");
      expect(await second.get("x")).toMatchObject({ status: "running", attempt: 2 });
      await clock.advance("1m");
      await eventually(async () => (await statusOf(second, "x")) === "completed", "completion");
      const done = await second.get("x");
      expect(done?.steps).toMatchObject([{ name: "call", status: "succeeded", attempts: 3, result: "ok" }]);
      expect(done?.steps[0]?.error).toBeUndefined();
    });

    it("compensates when the deadline passes while a step waits for its retry", async () => {
      const undone: string[] = [];
      const def = defineSaga("slow", {
        version: 1,
        timeout: "10m",
        steps: [
          { name: "reserve", run: () => "r-1", compensate: (r: string) => void undone.push(r) },
          {
            name: "charge",
            retry: { maxAttempts: 10, backoff: constant("1h") },
            run: () => Promise.reject(new Error("503")),
          },
        ],
      });
      const r = await runner({ sagas: [def] });
      const t0 = clock.now();
      await r.saga(def).start(null, { id: "d" });
      await eventually(
        async () => (await r.get("d"))?.steps.some((s) => s.status === "retrying") === true,
        "a retry",
      );
      // The retry is capped at the deadline: the saga wakes to compensate, not an hour later.
      expect(await r.get("d")).toMatchObject({ runAt: t0 + 600_000, deadline: t0 + 600_000 });
      await clock.advance("10m");
      await eventually(async () => (await statusOf(r, "d")) === "compensated", "compensation");
      expect(undone).toEqual(["r-1"]);
      expect((await r.get("d"))?.reason?.error.code).toBe("SAGA_DEADLINE");
    });

    it("aborts a running step's signal at the deadline and compensates", async () => {
      const undone: string[] = [];
      let running = false;
      const def = defineSaga("hang", {
        version: 1,
        timeout: "5m",
        steps: [
          { name: "a", run: () => 1, compensate: () => void undone.push("a") },
          {
            name: "b",
            run: (_input, ctx) => {
              running = true;
              return new Promise((_resolve, reject) =>
                ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)),
              );
            },
          },
        ],
      });
      const r = await runner({ sagas: [def] });
      await r.saga(def).start(null, { id: "h" });
      // Step b running (not merely the runner's poll asleep on the clock).
      await eventually(() => running && clock.pendingSleepers > 0, "step b to be running");
      await clock.advance("5m");
      await eventually(async () => (await statusOf(r, "h")) === "compensated", "compensation");
      expect(undone).toEqual(["a"]);
      const details = await r.get("h");
      expect(details?.steps.find((s) => s.name === "b" && s.phase === "run")).toMatchObject({
        status: "failed",
        error: { code: "SAGA_DEADLINE" },
      });
    });

    it("waits for a dead worker's lease to expire, then takes over; a step that used up its attempts that way is abandoned", async () => {
      let ran = 0;
      const options: SagaOptions = {
        version: 1,
        steps: [{ name: "poison", retry: { maxAttempts: 2 }, run: () => void ran++ }],
      };
      const def = defineSaga("lease", options);
      const idle = await runner({ sagas: [def] }, false);
      await idle.saga(def).start(null, { id: "l" });
      // As if a worker claimed it twice and died each time, the second time holding the lease.
      await store.query(
        `UPDATE ${store.dialect.table("saga_instances")} SET attempt = 2, claim = 2, owner = 'dead@1', run_at = ${p(1)} WHERE id = 'l'`,
        [clock.now() + 30_000],
      );
      const r = await runner({ sagas: [def] });
      await pause(100);
      expect(await r.get("l")).toMatchObject({ status: "running", owner: "dead@1" });
      await clock.advance("30s");
      await eventually(async () => (await statusOf(r, "l")) === "compensated", "takeover");
      expect(ran).toBe(0);
      expect((await r.get("l"))?.reason?.error.code).toBe("SAGA_STEP_ABANDONED");
    });

    it("after the pivot, retries a failing step past its attempts instead of compensating", async () => {
      let shipped = 0;
      const undone: string[] = [];
      const def = defineSaga("pivoted", {
        version: 1,
        steps: [
          { name: "charge", run: () => "c", compensate: () => void undone.push("charge") },
          { name: "ship", pivot: true, run: () => "s" },
          {
            name: "notify",
            retry: { maxAttempts: 2, backoff: constant("1s") },
            run: () => {
              if (++shipped < 5) throw new Error("mail down");
            },
          },
        ],
      });
      const r = await runner({ sagas: [def] });
      await r.saga(def).start(null, { id: "p" });
      for (let i = 1; i < 5; i++) {
        await eventually(() => shipped === i, `attempt ${i}`);
        await eventually(async () => (await r.get("p"))?.owner === undefined, `attempt ${i} recorded`);
        await clock.advance("1s");
      }
      await eventually(async () => (await statusOf(r, "p")) === "completed", "completion");
      expect(undone).toEqual([]);
      expect((await r.get("p"))?.steps.find((s) => s.name === "notify")?.attempts).toBe(5);
    });

    it("a non-retryable failure after the pivot leaves the saga failed for a person", async () => {
      const def = defineSaga("stuck", {
        version: 1,
        steps: [
          { name: "ship", pivot: true, run: () => "s" },
          { name: "invoice", run: () => Promise.reject(new NonRetryableError("no such customer")) },
        ],
      });
      const r = await runner({ sagas: [def] });
      await r.saga(def).start(null, { id: "s" });
      await eventually(async () => (await statusOf(r, "s")) === "failed", "failure");
      expect((await r.get("s"))?.failure).toMatchObject({
        step: "invoice",
        phase: "run",
        error: { code: "NON_RETRYABLE" },
      });
      await r.skip("s", { note: "invoiced by hand" });
      await eventually(async () => (await statusOf(r, "s")) === "completed", "completion after skip");
      expect((await r.get("s"))?.steps.find((s) => s.name === "invoice")).toMatchObject({
        status: "skipped",
        note: "invoiced by hand",
      });
    });

    it("stop() lets the step in flight finish and record, then releases the instance to the next worker", async () => {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const ran: string[] = [];
      let inside = false;
      const def = defineSaga("drain", {
        version: 1,
        steps: [
          {
            name: "a",
            run: async () => {
              inside = true;
              await gate;
              ran.push("a");
            },
          },
          { name: "b", run: () => void ran.push("b") },
        ],
      });
      const first = await runner({ sagas: [def] });
      await first.saga(def).start(null, { id: "g" });
      await eventually(() => inside, "step a to start");
      const stopping = first.stop();
      open();
      await stopping;
      expect(ran).toEqual(["a"]);
      expect(await first.get("g")).toMatchObject({
        status: "running",
        step: 1,
        attempt: 0,
        owner: undefined,
      });

      const second = await runner({ sagas: [def] });
      await eventually(async () => (await statusOf(second, "g")) === "completed", "completion");
      expect(ran).toEqual(["a", "b"]);
    });

    it("stop() past its timeout aborts the step's signal; that attempt is not counted against it", async () => {
      let calls = 0;
      const def = defineSaga("abort", {
        version: 1,
        steps: [
          {
            name: "slow",
            retry: { maxAttempts: 1 },
            run: (_input, ctx) => {
              if (++calls > 1) return "done";
              return new Promise((_resolve, reject) =>
                ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)),
              );
            },
          },
        ],
      });
      const first = await runner({ sagas: [def] });
      await first.saga(def).start(null, { id: "a" });
      await eventually(() => calls === 1, "the step to start");
      await first.stop({ timeout: 50 });
      const released = await first.get("a");
      expect(released).toMatchObject({ status: "running", step: 0, attempt: 0, owner: undefined });
      expect(released?.steps).toEqual([]);

      const second = await runner({ sagas: [def] });
      await eventually(async () => (await statusOf(second, "a")) === "completed", "completion");
      expect((await second.get("a"))?.steps[0]).toMatchObject({ attempts: 1, result: "done" });
    });

    it("a step that swallows the deadline's abort and returns never completes the saga: its result is compensated with the others", async () => {
      const undone: string[] = [];
      let running = false;
      let charged = 0;
      const def = defineSaga("swallow-deadline", {
        version: 1,
        timeout: "5m",
        steps: [
          { name: "a", run: () => 1, compensate: () => void undone.push("a") },
          {
            name: "charge",
            // Catch-and-continue: the cancelled call is caught and the step "succeeds".
            run: async (_input, ctx) => {
              running = true;
              try {
                await clock.sleep(3_600_000, ctx.signal);
                charged++;
                return "charged";
              } catch {
                return "not charged";
              }
            },
            compensate: () => void undone.push("charge"),
          },
        ],
      });
      const r = await runner({ sagas: [def] });
      await r.saga(def).start(null, { id: "sd" });
      await eventually(() => running && clock.pendingSleepers > 1, "step charge to be running");
      await clock.advance("5m");
      await eventually(async () => {
        const s = await statusOf(r, "sd");
        return s === "compensated" || s === "completed";
      }, "the saga to settle");
      // Whether a step that returned after the abort did its work is unknown: it is compensated
      // (here its compensation has nothing to undo), never forgotten and never completed.
      expect({ status: await statusOf(r, "sd"), charged, undone }).toEqual({
        status: "compensated",
        charged: 0,
        undone: ["charge", "a"],
      });
      expect((await r.get("sd"))?.steps.find((s) => s.name === "charge" && s.phase === "run")).toMatchObject({
        status: "succeeded",
        result: "not charged",
      });
    });

    it("a step that ignores the deadline's abort and charges: the charge is refunded with the others, never forgotten", async () => {
      const undone: string[] = [];
      let running = false;
      let charged = 0;
      const def = defineSaga("ignore-deadline", {
        version: 1,
        timeout: "5m",
        steps: [
          { name: "a", run: () => 1, compensate: () => void undone.push("a") },
          {
            name: "charge",
            // Ignores ctx.signal: its call goes through after the deadline passed.
            run: async () => {
              running = true;
              await clock.sleep(3_600_000);
              charged++;
              return "charged";
            },
            compensate: (result) => void undone.push(`refund ${String(result)}`),
          },
        ],
      });
      const r = await runner({ sagas: [def] });
      await r.saga(def).start(null, { id: "id-1" });
      await eventually(() => running && clock.pendingSleepers > 1, "step charge to be running");
      await clock.advance("5m");
      await clock.advance("1h");
      await eventually(async () => {
        const s = await statusOf(r, "id-1");
        return s === "compensated" || s === "completed";
      }, "the saga to settle");
      expect({ status: await statusOf(r, "id-1"), charged, undone }).toEqual({
        status: "compensated",
        charged: 1,
        undone: ["refund charged", "a"],
      });
    });

    it("a transactional step that swallows the deadline's abort: its ctx.tx writes roll back with the attempt, the saga compensates", async () => {
      await store.query("CREATE TABLE charges_sd (saga_id TEXT NOT NULL)");
      let running = false;
      const def = defineSaga("swallow-deadline-tx", {
        version: 1,
        timeout: "5m",
        steps: [
          {
            name: "charge",
            transaction: true,
            run: async (_input, ctx) => {
              await ctx.tx.query(`INSERT INTO charges_sd (saga_id) VALUES (${p(1)})`, [ctx.sagaId]);
              running = true;
              try {
                await clock.sleep(3_600_000, ctx.signal);
              } catch {
                // swallowed
              }
              return "charged";
            },
          },
        ],
      });
      const r = await runner({ sagas: [def] });
      await r.saga(def).start(null, { id: "sdt" });
      await eventually(() => running && clock.pendingSleepers > 1, "step charge to be running");
      await clock.advance("5m");
      await eventually(async () => {
        const s = await statusOf(r, "sdt");
        return s === "compensated" || s === "completed";
      }, "the saga to settle");
      const { rows } = await store.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM charges_sd");
      expect({ status: await statusOf(r, "sdt"), charges: Number(rows[0]?.n) }).toEqual({
        status: "compensated",
        charges: 0,
      });
    });

    it("a step that swallows stop()'s abort and returns is not recorded done: the next runner runs it again, its work done once", async () => {
      let calls = 0;
      let worked = 0;
      const def = defineSaga("swallow-stop", {
        version: 1,
        steps: [
          {
            name: "slow",
            run: async (_input, ctx) => {
              calls++;
              try {
                if (calls === 1)
                  await new Promise((_resolve, reject) =>
                    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)),
                  );
                worked++;
                return "done";
              } catch {
                return "gave up";
              }
            },
          },
          { name: "after", run: () => "after" },
        ],
      });
      const first = await runner({ sagas: [def] });
      await first.saga(def).start(null, { id: "ss" });
      await eventually(() => calls === 1, "the step to start");
      await first.stop({ timeout: 50 });
      expect((await first.get("ss"))?.steps.filter((s) => s.status === "succeeded")).toEqual([]);

      const second = await runner({ sagas: [def] });
      await eventually(async () => (await statusOf(second, "ss")) === "completed", "completion");
      // Lost: 0 (the work ran), doubled: none (once).
      expect({ calls, worked }).toEqual({ calls: 2, worked: 1 });
      expect((await second.get("ss"))?.steps[0]).toMatchObject({ result: "done" });
    });

    it("renews the lease with the outcome of a step that outlasted half of it", async () => {
      const gate = () => {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        return { promise, resolve };
      };
      const gates = [gate(), gate()];
      const entered = [false, false];
      const def = defineSaga("long", {
        version: 1,
        steps: [0, 1].map((i) => ({
          name: `s${i}`,
          transaction: i === 0,
          run: async () => {
            entered[i] = true;
            await gates[i]!.promise;
          },
        })),
      });
      const r = await runner({ sagas: [def] });
      const t0 = clock.now();
      await r.saga(def).start(null, { id: "long" });
      await eventually(() => entered[0] === true, "the first step");
      await clock.advance("20s");
      gates[0]!.resolve();
      await eventually(() => entered[1] === true, "the second step");
      expect((await r.get("long"))?.runAt).toBe(t0 + 50_000);
      gates[1]!.resolve();
      await eventually(async () => (await statusOf(r, "long")) === "completed", "completion");
    });
  });
}
