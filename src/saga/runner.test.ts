/**
 * The runner's time logic on a fake clock (and a real SQLite file): durable retry times that a
 * restart neither resets nor loses, the saga deadline, step timeouts, leases of dead workers, and
 * an unknown definition version.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqlite } from "../adapters/sqlite/index.js";
import { NonRetryableError } from "../core/errors.js";
import { silentLogger, type Logger } from "../core/logger.js";
import { constant } from "../resilience/backoff.js";
import { CircuitOpenError } from "../resilience/errors.js";
import type { SqlStore } from "../store/sql-store.js";
import { FakeClock } from "../testing/fake-clock.js";
import { defineSaga, type SagaOptions } from "./definition.js";
import { createSagaRunner, type SagaRunner, type SagaRunnerOptions } from "./runner.js";

async function until(predicate: () => boolean | Promise<boolean>, what: string, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("saga runner on a fake clock", () => {
  let dir: string;
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

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "patchbay-saga-unit-"));
    store = sqlite({ file: join(dir, "pb.db") });
    await store.open();
    clock = new FakeClock();
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop({ timeout: 1000 })));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
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
    await until(async () => (await first.get("x"))?.steps[0]?.status === "retrying", "the first failure");
    expect(await first.get("x")).toMatchObject({ status: "running", attempt: 1, runAt: t0 + 60_000 });
    await pause(100);
    expect(calls).toBe(1);
    await first.stop();

    const second = await runner({ sagas: [def] });
    await pause(100);
    expect(calls).toBe(1);
    expect(await second.get("x")).toMatchObject({ attempt: 1, runAt: t0 + 60_000 });

    await clock.advance("1m");
    await until(() => calls === 2, "the second attempt");
    await until(async () => (await second.get("x"))?.runAt === t0 + 120_000, "the next due time");
    expect(await second.get("x")).toMatchObject({ status: "running", attempt: 2 });
    await clock.advance("1m");
    await until(async () => (await statusOf(second, "x")) === "completed", "completion");
    const done = await second.get("x");
    expect(done?.steps).toMatchObject([{ name: "call", status: "succeeded", attempts: 3, result: "ok" }]);
    expect(done?.steps[0]?.error).toBeUndefined();
  });

  it("a step refused by a half-open breaker waits its backoff, not 0, and each such attempt is logged at warn", async () => {
    const warnings: Array<Record<string, unknown>> = [];
    const logger = {
      ...silentLogger,
      warn: (obj: object | string, msg?: string) => {
        if (typeof obj === "object") warnings.push({ ...obj, msg });
      },
      child: () => logger,
    } as Logger;
    let calls = 0;
    const def = defineSaga("guarded", {
      version: 1,
      steps: [
        {
          name: "charge",
          retry: { maxAttempts: 5, backoff: constant("1m"), retryOn: () => true },
          run: () => {
            calls++;
            // What a breaker says while its probe is in flight: retryAfterMs 0.
            throw new CircuitOpenError(0, "half-open");
          },
        },
      ],
    });
    const r = await runner({ sagas: [def], logger });
    const t0 = clock.now();
    await r.saga(def).start(null, { id: "g" });
    await until(async () => (await r.get("g"))?.steps[0]?.status === "retrying", "the first refusal");
    await pause(100);
    expect(calls).toBe(1);
    expect(await r.get("g")).toMatchObject({ status: "running", attempt: 1, runAt: t0 + 60_000 });
    expect(warnings).toContainEqual(
      expect.objectContaining({
        sagaId: "g",
        step: "charge",
        attempt: 1,
        delayMs: 60_000,
        breaker: "half-open",
      }),
    );
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
    await until(
      async () => (await r.get("d"))?.steps.some((s) => s.status === "retrying") === true,
      "a retry",
    );
    // The retry is capped at the deadline: the saga wakes to compensate, not an hour later.
    expect(await r.get("d")).toMatchObject({ runAt: t0 + 600_000, deadline: t0 + 600_000 });
    await clock.advance("10m");
    await until(async () => (await statusOf(r, "d")) === "compensated", "compensation");
    expect(undone).toEqual(["r-1"]);
    expect((await r.get("d"))?.reason?.error.code).toBe("SAGA_DEADLINE");
  });

  it("aborts a running step's signal at the deadline and compensates", async () => {
    const undone: string[] = [];
    const def = defineSaga("hang", {
      version: 1,
      timeout: "5m",
      steps: [
        { name: "a", run: () => 1, compensate: () => void undone.push("a") },
        {
          name: "b",
          run: (_input, ctx) =>
            new Promise((_resolve, reject) =>
              ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)),
            ),
        },
      ],
    });
    const r = await runner({ sagas: [def] });
    await r.saga(def).start(null, { id: "h" });
    await until(() => clock.pendingSleepers > 0, "the step to be running");
    await clock.advance("5m");
    await until(async () => (await statusOf(r, "h")) === "compensated", "compensation");
    expect(undone).toEqual(["a"]);
    const details = await r.get("h");
    expect(details?.steps.find((s) => s.name === "b" && s.phase === "run")).toMatchObject({
      status: "failed",
      error: { code: "SAGA_DEADLINE" },
    });
  });

  it("times an attempt out with the step's timeout and retries it", async () => {
    let attempts = 0;
    const def = defineSaga("timed", {
      version: 1,
      steps: [
        {
          name: "call",
          timeout: "5s",
          retry: { maxAttempts: 2, backoff: constant(0) },
          run: (_input, ctx) => {
            attempts++;
            if (attempts > 1) return "fast";
            return new Promise((_resolve, reject) =>
              ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)),
            );
          },
        },
      ],
    });
    const r = await runner({ sagas: [def] });
    await r.saga(def).start(null, { id: "t" });
    await until(() => clock.pendingSleepers > 0, "the attempt to be running");
    await clock.advance("5s");
    await until(async () => (await statusOf(r, "t")) === "completed", "completion");
    expect((await r.get("t"))?.steps[0]).toMatchObject({ attempts: 2, result: "fast" });
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
      `UPDATE ${store.dialect.table("saga_instances")} SET attempt = 2, claim = 2, owner = 'dead@1', run_at = ? WHERE id = 'l'`,
      [clock.now() + 30_000],
    );
    const r = await runner({ sagas: [def] });
    await pause(100);
    expect(await r.get("l")).toMatchObject({ status: "running", owner: "dead@1" });
    await clock.advance("30s");
    await until(async () => (await statusOf(r, "l")) === "compensated", "takeover");
    expect(ran).toBe(0);
    expect((await r.get("l"))?.reason?.error.code).toBe("SAGA_STEP_ABANDONED");
  });

  it("fails an instance whose definition version this code does not have, once, and resumes it after a retry", async () => {
    const v1 = defineSaga("versioned", { version: 1, steps: [{ name: "a", run: () => "v1" }] });
    const v2 = defineSaga("versioned", { version: 2, steps: [{ name: "a", run: () => "v2" }] });
    const old = await runner({ sagas: [v1] }, false);
    await old.saga(v1).start(null, { id: "v" });
    const current = await runner({ sagas: [v2] });
    await until(async () => (await statusOf(current, "v")) === "failed", "the failure");
    const failed = await current.get("v");
    expect(failed?.failure).toMatchObject({
      step: null,
      phase: "run",
      error: { code: "SAGA_VERSION_UNKNOWN", version: 1 },
    });
    // Never claimed again: no further attempt, nothing rewritten.
    await pause(100);
    expect(await current.get("v")).toEqual(failed);
    expect(failed?.attempt).toBe(1);
    await current.stop();

    const both = await runner({ sagas: [v1, v2] });
    await both.retry("v");
    await until(async () => (await statusOf(both, "v")) === "completed", "completion");
    expect((await both.get("v"))?.steps[0]?.result).toBe("v1");
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
      await until(() => shipped === i, `attempt ${i}`);
      await until(async () => (await r.get("p"))?.owner === undefined, `attempt ${i} recorded`);
      await clock.advance("1s");
    }
    await until(async () => (await statusOf(r, "p")) === "completed", "completion");
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
    await until(async () => (await statusOf(r, "s")) === "failed", "failure");
    expect((await r.get("s"))?.failure).toMatchObject({
      step: "invoice",
      phase: "run",
      error: { code: "NON_RETRYABLE" },
    });
    await r.skip("s", { note: "invoiced by hand" });
    await until(async () => (await statusOf(r, "s")) === "completed", "completion after skip");
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
    await until(() => inside, "step a to start");
    const stopping = first.stop();
    open();
    await stopping;
    expect(ran).toEqual(["a"]);
    expect(await first.get("g")).toMatchObject({ status: "running", step: 1, attempt: 0, owner: undefined });

    const second = await runner({ sagas: [def] });
    await until(async () => (await statusOf(second, "g")) === "completed", "completion");
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
    await until(() => calls === 1, "the step to start");
    await first.stop({ timeout: 50 });
    const released = await first.get("a");
    expect(released).toMatchObject({ status: "running", step: 0, attempt: 0, owner: undefined });
    expect(released?.steps).toEqual([]);

    const second = await runner({ sagas: [def] });
    await until(async () => (await statusOf(second, "a")) === "completed", "completion");
    expect((await second.get("a"))?.steps[0]).toMatchObject({ attempts: 1, result: "done" });
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
    await until(() => entered[0] === true, "the first step");
    await clock.advance("20s");
    gates[0]!.resolve();
    await until(() => entered[1] === true, "the second step");
    expect((await r.get("long"))?.runAt).toBe(t0 + 50_000);
    gates[1]!.resolve();
    await until(async () => (await statusOf(r, "long")) === "completed", "completion");
  });

  it("never takes back a step it is running itself when the clock moves past its lease", async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const def = defineSaga("held", {
      version: 1,
      steps: [{ name: "slow", run: async () => void (calls++, await gate) }],
    });
    const r = await runner({ sagas: [def] });
    await r.saga(def).start(null, { id: "s" });
    await until(() => calls === 1, "the step to be running");
    await clock.advance("2m"); // four leases of 30 s, and no heartbeat in that fake time
    await pause(100); // ten polls
    expect(calls).toBe(1);
    release();
    await until(async () => (await statusOf(r, "s")) === "completed", "completion");
    expect((await r.get("s"))?.steps[0]).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(calls).toBe(1);
  });
});
