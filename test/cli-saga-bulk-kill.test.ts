/**
 * `patchbay saga retry|resolve --status failed` killed part-way through hundreds of sagas and run
 * again, and two operators acting on the same sagas at once: each saga is acted on exactly once.
 */
import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { NonRetryableError } from "../src/core/errors.js";
import { defineSaga } from "../src/saga/definition.js";
import { createSagaRunner } from "../src/saga/runner.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");
const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);
const N = 400;

const adapters: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
];

const order = defineSaga("order", {
  version: 1,
  compensateRetry: { maxAttempts: 1 },
  steps: [
    {
      name: "charge",
      run: () => "C",
      compensate: () => Promise.reject(new Error("refund API down")),
    },
    { name: "ship", run: () => Promise.reject(new NonRetryableError("no courier")) },
  ],
});

for (const [name, makeDb, reachable] of adapters) {
  describe.skipIf(!reachable)(`saga bulk actions killed and raced on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    const storeArgs = () =>
      db.adapter === "sqlite"
        ? ["--sqlite", String(db.config.file)]
        : ["--pg", String(db.config.url), "--schema", String(db.config.schema)];
    const statuses = async () => {
      const { rows } = await store.query<{ status: string; n: number }>(
        `SELECT status, COUNT(*) AS n FROM ${store.dialect.table("saga_instances")} GROUP BY status ORDER BY status`,
      );
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    };
    const claims = async () => {
      const { rows } = await store.query<{ claim: number; n: number }>(
        `SELECT claim, COUNT(*) AS n FROM ${store.dialect.table("saga_instances")} GROUP BY claim`,
      );
      return rows.map((r) => [Number(r.claim), Number(r.n)]);
    };

    beforeEach(async () => {
      db = makeDb();
      store = db.make();
      const runner = createSagaRunner({ store, sagas: [order], pollInterval: 20, concurrency: 16 });
      await runner.start();
      for (let i = 0; i < N; i++) await runner.saga(order).start({}, { id: `o-${i}` });
      const deadline = Date.now() + 90_000;
      while ((await statuses()).failed !== N) {
        if (Date.now() > deadline) throw new Error(`sagas not failed: ${JSON.stringify(await statuses())}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await runner.stop();
    }, 120_000);
    afterEach(async () => {
      await store.close();
      await db.cleanup();
    });

    it("a bulk resolve killed part-way and run again resolves each saga once", async () => {
      const before = await claims();
      expect(before).toHaveLength(1);
      const child = spawn(
        process.execPath,
        ["--import", "tsx", CLI, "saga", "resolve", "--status", "failed", "--batch", "10", ...storeArgs()],
        { stdio: "ignore" },
      );
      const exited = new Promise((r) => child.on("exit", r));
      const deadline = Date.now() + 60_000;
      while (((await statuses()).resolved ?? 0) < N / 5 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill("SIGKILL");
      await exited;
      const first = await statuses();
      expect(first.resolved! > 0 && first.resolved! < N).toBe(true);
      const { stdout } = await run(process.execPath, [
        "--import",
        "tsx",
        CLI,
        "saga",
        "resolve",
        "--status",
        "failed",
        "--json",
        ...storeArgs(),
      ]);
      const report = JSON.parse(stdout) as { matched: number; acted: number; skipped: number };
      expect(report).toMatchObject({ matched: first.failed, acted: first.failed, skipped: 0 });
      expect(await statuses()).toEqual({ resolved: N });
      // Each saga was changed once: its claim moved on by exactly one.
      expect(await claims()).toEqual([[before[0]![0]! + 1, N]]);
    }, 120_000);

    it("two operators, one retrying and one resolving every failed saga, act on each once between them", async () => {
      const bulk = (action: string) =>
        run(process.execPath, [
          "--import",
          "tsx",
          CLI,
          "saga",
          action,
          "--status",
          "failed",
          "--batch",
          "10",
          "--json",
          ...storeArgs(),
        ]).then(({ stdout }) => JSON.parse(stdout) as { acted: number; skipped: number });
      const before = await claims();
      const [retried, resolved] = await Promise.all([bulk("retry"), bulk("resolve")]);
      const after = await statuses();
      expect({
        acted: retried.acted + resolved.acted,
        retried: after.compensating ?? 0,
        resolved: after.resolved ?? 0,
      }).toEqual({ acted: N, retried: retried.acted, resolved: resolved.acted });
      expect(await claims()).toEqual([[before[0]![0]! + 1, N]]);
    }, 120_000);
  });
}
