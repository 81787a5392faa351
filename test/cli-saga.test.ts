/** `patchbay saga` against a real SQLite store holding real saga instances. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NonRetryableError } from "../src/core/errors.js";
import { defineSaga } from "../src/saga/definition.js";
import { createSagaRunner, type SagaRunner } from "../src/saga/runner.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("./fixtures/saga-config.ts", import.meta.url));
const run = promisify(execFile);

describe("patchbay saga", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
  let runner: SagaRunner;
  let refundWorks = false;
  const undone: string[] = [];
  const order = defineSaga("order", {
    version: 1,
    compensateRetry: { maxAttempts: 1 },
    steps: [
      { name: "reserve", run: () => "R", compensate: (_r, ctx) => void undone.push(`${ctx.sagaId}:reserve`) },
      {
        name: "charge",
        run: () => ({ charge: "C" }),
        compensate: (_r, ctx) => {
          if (!refundWorks) throw new Error("refund API down");
          undone.push(`${ctx.sagaId}:charge`);
        },
      },
      { name: "ship", run: () => Promise.reject(new NonRetryableError("no courier")) },
    ],
  });
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", CLI, ...args, "--config", CONFIG], {
      env: { ...process.env, PATCHBAY_TEST_SAGA_DB: String(db.config.file) },
    });
    return stdout;
  };

  beforeEach(async () => {
    refundWorks = false;
    undone.length = 0;
    db = sqliteDatabase();
    store = db.make();
    runner = createSagaRunner({ store, sagas: [order], pollInterval: 20 });
    await runner.start();
    for (const id of ["o-1", "o-2", "o-3"]) await runner.saga(order).start({ orderId: id }, { id });
    for (const id of ["o-1", "o-2", "o-3"]) expect((await runner.wait(id)).status).toBe("failed");
    await runner.stop();
  });
  afterEach(async () => {
    await runner.stop();
    await store.close();
    await db.cleanup();
  });

  it("lists and shows stuck sagas, then retries, skips and resolves them", async () => {
    const listed = JSON.parse(await cli("saga", "list", "--status", "failed", "--json")) as Array<{
      id: string;
    }>;
    expect(listed.map((i) => i.id).sort()).toEqual(["o-1", "o-2", "o-3"]);
    const table = await cli("saga", "list", "--name", "order");
    expect(table).toContain("compensate charge: Error: refund API down");
    expect(table.trim().split("\n")).toHaveLength(4);

    const shown = await cli("saga", "show", "o-1");
    expect(shown).toContain("FAILED");
    expect(shown).toMatch(/run\s+ship\s+failed\s+1\s+NON_RETRYABLE: no courier/);
    expect(shown).toMatch(/compensate\s+charge\s+failed\s+1\s+Error: refund API down/);
    expect(shown).toContain("next: patchbay saga retry o-1");

    expect(await cli("saga", "retry", "o-1")).toContain("saga o-1: retrying; now compensating");
    expect(await cli("saga", "skip", "o-2", "--note", "refunded by hand")).toContain("now compensating");
    const resolved = JSON.parse(await cli("saga", "resolve", "o-3", "--note", "written off", "--json")) as {
      status: string;
      note: string;
    };
    expect(resolved).toMatchObject({ status: "resolved", note: "written off" });

    refundWorks = true;
    runner = createSagaRunner({ store, sagas: [order], pollInterval: 20 });
    await runner.start();
    expect((await runner.wait("o-1")).status).toBe("compensated");
    expect((await runner.wait("o-2")).status).toBe("compensated");
    expect(undone.sort()).toEqual(["o-1:charge", "o-1:reserve", "o-2:reserve"]);
    expect(await cli("saga", "show", "o-2")).toMatch(/compensate\s+charge\s+skipped.*refunded by hand/);
  });

  it("shows a compensated saga without a step index of -1", async () => {
    refundWorks = true;
    runner = createSagaRunner({ store, sagas: [order], pollInterval: 20 });
    await runner.start();
    await runner.saga(order).start({ orderId: "o-4" }, { id: "o-4" });
    expect((await runner.wait("o-4")).status).toBe("compensated");
    const shown = await cli("saga", "show", "o-4");
    expect(shown).toContain("COMPENSATED");
    expect(shown).toMatch(/^ {2}step {6}none \(every step compensated\), attempt/m);
    expect(shown).not.toContain("step      -1");
    expect(await cli("saga", "list", "--name", "order")).toMatch(/o-4\s+order v1\s+compensated\s+-\s/);
  });

  it("explains a refused action and usage errors", async () => {
    const refused = await cli("saga", "resolve", "nope").catch((e: { code: number; stderr: string }) => e);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain("SAGA_NOT_FOUND");
    const usage = await cli("saga", "list", "--status", "stuck").catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(usage).toMatchObject({ code: 2 });
    expect((usage as { stderr: string }).stderr).toContain("unknown status");
  });
});
