/**
 * The runner's time logic on a fake clock (and a real SQLite file) that the shipped saga suite
 * does not cover: step timeouts, a half-open breaker's backoff, its own lease passed by a fake
 * jump, and an unknown definition version. Durable retry times, the deadline, leases of dead
 * workers and stop() are in `src/adapter/conformance/saga-clock.ts`, run on every store.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqlite } from "../adapters/sqlite/index.js";
import { silentLogger, type Logger } from "../core/logger.js";
import { constant } from "../resilience/backoff.js";
import { CircuitOpenError } from "../resilience/errors.js";
import type { SqlStore } from "../store/sql-store.js";
import { FakeClock } from "../testing/fake-clock.js";
import { defineSaga } from "./definition.js";
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
  it("a direct start whose id exists gives back its reserved slot: a saga waiting for it runs without the poll", async () => {
    const s = defineSaga("dup", { version: 1, steps: [{ name: "only", run: () => "ok" }] });
    // One slot and a poll far beyond the test: only a wake-up or a freed slot makes it claim.
    const r = await runner({ sagas: [s], concurrency: 1, pollInterval: "10m" });
    await r.saga(s).start(null, { id: "a" });
    await until(async () => (await statusOf(r, "a")) === "completed", "a completed");
    // Together: "a" again (the free slot is reserved for it while it inserts and reads the
    // existing row) and "x" (no slot free: stored for the claim loop, which is woken but finds
    // the slot reserved). When "a" turns out to exist, its slot is free again and the loop must
    // hear of it (it once did not: "x" waited for the 10-minute poll).
    const [dup, x] = await Promise.all([
      r.saga(s).start(null, { id: "a" }),
      r.saga(s).start(null, { id: "x" }),
    ]);
    expect(dup.created).toBe(false);
    expect(x.created).toBe(true);
    await until(async () => (await statusOf(r, "x")) === "completed", "x completed", 3000);
  });
});
