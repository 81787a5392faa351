/**
 * Reliability: 50 sagas run by a worker process that is SIGKILLed at random points and
 * restarted until every saga has finished. Every saga ends completed or compensated, none is
 * left running, and no `ctx.tx` effect is applied twice (counted in rows).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { createSagaRunner } from "../src/saga/index.js";
import { crashSaga, crashTables } from "./fixtures/saga-crash-definition.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, mysql: maria } = inject("services");
const WORKER = fileURLToPath(new URL("./fixtures/saga-worker.ts", import.meta.url));
const SAGAS = 50;
const KILLS = 6;

function startWorker(db: IsolatedDatabase) {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", WORKER, JSON.stringify({ adapter: db.adapter, config: db.config })],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let errors = "";
  proc.stderr.on("data", (d: Buffer) => (errors += d.toString()));
  const started = new Promise<void>((resolve) =>
    proc.stdout.on("data", (d: Buffer) => {
      if (d.toString().includes("started")) resolve();
    }),
  );
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return { proc, started, exited, errors: () => errors };
}

const cases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pg.reachable) cases.push(["PostgreSQL", () => postgresDatabase(pg.url)]);
if (maria.reachable) cases.push(["MariaDB", () => mysqlDatabase(maria.url)]);
else
  describe("on MariaDB", () =>
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {}));

for (const [name, makeDb] of cases) {
  describe(`saga crash recovery on ${name}`, () => {
    it(`${SAGAS} sagas, the worker SIGKILLed at random points and restarted: all finish, no effect twice`, async () => {
      const db = makeDb();
      const store = db.make();
      try {
        await store.open();
        for (const ddl of crashTables(db.keyText)) await store.query(ddl);
        const saga = crashSaga(db.adapter, store);
        const starter = createSagaRunner({ store, sagas: [saga] });
        // Every fourth saga fails at its last step and compensates.
        for (let i = 0; i < SAGAS; i++)
          await starter.saga(saga).start({ fail: i % 4 === 0 }, { id: `s-${i}` });
        const unfinished = () => starter.count({ status: ["running", "compensating"] });

        // Unfinished sagas at each kill: the kills must land while there is work in flight.
        const atKill: number[] = [];
        while (atKill.length < KILLS && (await unfinished()) > 0) {
          const before = await unfinished();
          const worker = startWorker(db);
          await worker.started;
          // Kill soon after the worker makes progress (not after a fixed time, which a fast
          // machine could outrun), at a random point within the next few steps.
          const until = Date.now() + 5000;
          while ((await unfinished()) >= before && Date.now() < until)
            await new Promise((r) => setTimeout(r, 10));
          await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 60)));
          worker.proc.kill("SIGKILL");
          await worker.exited;
          atKill.push(await unfinished());
        }
        expect(atKill.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
        const last = startWorker(db);
        const deadline = Date.now() + 120_000;
        while ((await unfinished()) > 0) {
          if (Date.now() > deadline)
            throw new Error(`sagas still unfinished; worker stderr: ${last.errors()}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        last.proc.kill("SIGTERM");
        await last.exited;

        const all = await starter.list({ limit: SAGAS + 1 });
        expect(all).toHaveLength(SAGAS);
        const byStatus = (status: string) => all.filter((s) => s.status === status).map((s) => s.id);
        const failing = Array.from({ length: SAGAS }, (_, i) => i)
          .filter((i) => i % 4 === 0)
          .map((i) => `s-${i}`);
        expect(byStatus("compensated").sort()).toEqual(failing.sort());
        expect(byStatus("completed")).toHaveLength(SAGAS - failing.length);

        const rows = async (text: string) => (await store.query<Record<string, unknown>>(text)).rows;
        // No ctx.tx effect applied twice.
        expect(
          await rows(
            "SELECT saga_id, what, COUNT(*) AS n FROM effects GROUP BY saga_id, what HAVING COUNT(*) > 1",
          ),
        ).toEqual([]);
        const effects = await rows("SELECT what, COUNT(*) AS n FROM effects GROUP BY what ORDER BY what");
        const expected: Record<string, number> = {
          reserve: SAGAS,
          ship: SAGAS,
          confirm: SAGAS - failing.length,
          "undo-ship": failing.length,
          "undo-reserve": failing.length,
        };
        expect(Object.fromEntries(effects.map((r) => [r.what, Number(r.n)]))).toEqual(expected);
        // The external call is at least once; keyed by ctx.idempotencyKey its effect is exactly once.
        const external = await rows("SELECT COUNT(*) AS n FROM external_effects");
        expect(Number(external[0]?.n)).toBe(SAGAS + failing.length);
        const calls = await rows("SELECT COUNT(*) AS n FROM external_calls");
        expect(Number(calls[0]?.n)).toBeGreaterThanOrEqual(SAGAS + failing.length);
      } finally {
        await store.close();
        await db.cleanup();
      }
    }, 240_000);
  });
}
