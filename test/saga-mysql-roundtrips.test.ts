/**
 * Sagas on the real MariaDB, in round trips: a start is one query, a step's outcome one (an
 * atomic script: the fenced instance update and the step row in one transaction), counted as the
 * queries `mysql2` sends. What that must keep: a stale claim writes nothing, a step row that
 * fails leaves the instance update undone too, and a second start of an id is a duplicate.
 */
import mysql2 from "mysql2";
import mysql2p from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createSagaRunner, defineSaga } from "../src/saga/index.js";
import { sagaRepository, type InstanceRow, type StepWrite } from "../src/saga/repository.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { mysqlDatabase } from "./support/stores.js";

const { mysql: maria } = inject("services");

/** Every query `mysql2` sends (one round trip each), as its text. */
const sent: string[] = [];
const proto = (mysql2 as unknown as { Connection: { prototype: { query: (...a: unknown[]) => unknown } } })
  .Connection.prototype;
const original = proto.query;

const order = defineSaga("rt-order", {
  version: 1,
  steps: ["reserve", "charge", "ship", "confirm"].map((name) => ({
    name,
    run: (input: { n: number }) => ({ ref: `${name}-${input.n}` }),
    compensate: () => undefined,
  })),
});

const row = (id: string, claim: number, now: number): InstanceRow => ({
  id,
  name: "rt-order",
  version: 1,
  input: {},
  status: "running",
  step: 0,
  attempt: 1,
  claim,
  owner: "w1",
  runAt: now + 60_000,
  deadline: undefined,
  reason: undefined,
  failure: undefined,
  note: undefined,
  createdAt: now,
  updatedAt: now,
  lastDelay: undefined,
});
const stepWrite = (status: string, now: number): StepWrite => ({
  index: 0,
  name: "reserve",
  phase: "run",
  status: status as StepWrite["status"],
  resultJson: '{"ref":"r-1"}',
  error: null,
  attempts: 1,
  startedAt: now,
  finishedAt: now,
  note: null,
});

if (!maria.reachable) {
  describe("saga round trips on MariaDB", () =>
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {}));
} else {
  describe("saga round trips on MariaDB", () => {
    const db = mysqlDatabase(maria.url);
    let store: SqlStore;
    const instance = async (id: string) =>
      (
        await store.query<{ step: unknown; updated_at: unknown; claim: unknown }>(
          `SELECT step, updated_at, claim FROM ${store.dialect.table("saga_instances")} WHERE id = ?`,
          [id],
        )
      ).rows[0];
    const steps = async (id: string) =>
      (
        await store.query<{ status: string }>(
          `SELECT status FROM ${store.dialect.table("saga_steps")} WHERE saga_id = ?`,
          [id],
        )
      ).rows;

    beforeAll(async () => {
      proto.query = function (this: unknown, ...args: unknown[]) {
        const first = args[0] as string | { sql: string };
        sent.push(typeof first === "string" ? first : first.sql);
        return original.apply(this, args);
      };
      store = db.make();
      await store.open();
    });
    afterAll(async () => {
      proto.query = original;
      await store.close();
      await db.cleanup();
    });

    it("a start is one round trip and each step's outcome one: 5 for a 4-step saga", async () => {
      const runner = createSagaRunner({ store, sagas: [order], pollInterval: "1h" });
      await runner.start();
      try {
        // Warm: both pools have a connection (their session settings are sent when they open).
        await runner.wait((await runner.saga(order).start({ n: 0 }, { id: "warm" })).id);
        await new Promise((r) => setTimeout(r, 100));
        sent.length = 0;
        const s = await runner.saga(order).start({ n: 1 }, { id: "rt-1" });
        expect(sent).toHaveLength(1);
        expect(sent[0]).toMatch(/^INSERT INTO `patchbay_saga_instances`/);
        sent.length = 0;
        const done = await runner.wait(s.id);
        expect(done.status).toBe("completed");
        expect(sent).toHaveLength(4);
        for (const text of sent)
          expect(text).toMatch(/^START TRANSACTION;\nUPDATE .*;\nINSERT INTO .*;\nCOMMIT$/s);
        expect((await steps("rt-1")).map((r) => r.status)).toEqual(Array(4).fill("succeeded"));
      } finally {
        await runner.stop();
      }
    });

    it("a stale claim's outcome writes nothing, in one round trip, and says so", async () => {
      const repo = sagaRepository(store);
      const now = Date.now();
      expect(await repo.insert(store, row("fence-1", 2, now), "{}")).toBe(true);
      sent.length = 0;
      const stale = await repo.writeOutcome(
        store,
        "fence-1",
        1,
        { step: 1 },
        now + 5,
        stepWrite("succeeded", now),
      );
      expect(stale).toBe(false);
      expect(sent).toHaveLength(1);
      expect(await instance("fence-1")).toMatchObject({ step: 0, updated_at: now, claim: 2 });
      expect(await steps("fence-1")).toEqual([]);
      // The claim that holds writes both.
      expect(
        await repo.writeOutcome(store, "fence-1", 2, { step: 1 }, now + 6, stepWrite("succeeded", now)),
      ).toBe(true);
      expect(await instance("fence-1")).toMatchObject({ step: 1, updated_at: now + 6 });
      expect(await steps("fence-1")).toEqual([{ status: "succeeded" }]);
    });

    it("a step row the database refuses leaves the instance update undone too, and no lock held", async () => {
      const repo = sagaRepository(store);
      const now = Date.now();
      await repo.insert(store, row("atomic-1", 1, now), "{}");
      // The step table's CHECK refuses the status: the second statement fails after the update ran.
      await expect(
        repo.writeOutcome(store, "atomic-1", 1, { step: 1 }, now + 5, stepWrite("bogus", now)),
      ).rejects.toMatchObject({ code: "QUERY_FAILED" });
      expect(await instance("atomic-1")).toMatchObject({ step: 0, updated_at: now });
      expect(await steps("atomic-1")).toEqual([]);
      // Rolled back, not left open: another session updates the row at once.
      const other = await mysql2p.createConnection({ uri: (db.config as { url: string }).url });
      try {
        await other.query("SET SESSION innodb_lock_wait_timeout = 2");
        const [result] = await other.query(
          `UPDATE ${store.dialect.table("saga_instances")} SET note = 'x' WHERE id = 'atomic-1'`,
        );
        expect((result as mysql2p.ResultSetHeader).affectedRows).toBe(1);
      } finally {
        await other.end();
      }
      // And the script's connection goes on working.
      for (let i = 0; i < 12; i++) {
        expect(
          await repo.writeOutcome(
            store,
            "atomic-1",
            1,
            { step: 1 },
            now + 10 + i,
            stepWrite("succeeded", now),
          ),
        ).toBe(true);
      }
      expect(await instance("atomic-1")).toMatchObject({ step: 1, updated_at: now + 21 });
      expect(await steps("atomic-1")).toEqual([{ status: "succeeded" }]);
    });

    it("values that look like SQL or break text travel through the script exactly", async () => {
      // The script is several statements in one query, its values written in by the client:
      // a value holding `;`, a newline, quotes, `?`, a NUL or an emoji must stay one value.
      const repo = sagaRepository(store);
      const now = Date.now();
      const hostile = `a;\nCOMMIT;\nDROP TABLE x; -- ' " \\ ? \u0000 😀`;
      const result = { s: hostile, big: "12345678901234567890", n: 9007199254740993n.toString() };
      await repo.insert(store, row("hostile-1", 1, now), "{}");
      expect(
        await repo.writeOutcome(store, "hostile-1", 1, { step: 1 }, now + 5, {
          ...stepWrite("succeeded", now),
          resultJson: JSON.stringify(result),
          note: hostile,
        }),
      ).toBe(true);
      const [step] = await repo.steps(store, "hostile-1");
      expect(step).toMatchObject({ status: "succeeded", result, note: hostile });
      expect(await instance("hostile-1")).toMatchObject({ step: 1, updated_at: now + 5 });
    });

    it("a second start of an id is a duplicate: nothing written, the first kept", async () => {
      const runner = createSagaRunner({ store, sagas: [order] });
      const first = await runner.saga(order).start({ n: 1 }, { id: "dup-1" });
      const second = await runner.saga(order).start({ n: 2 }, { id: "dup-1" });
      expect(first.created).toBe(true);
      expect(second.created).toBe(false);
      expect(second.input).toEqual({ n: 1 });
      const repo = sagaRepository(store);
      expect(await repo.insert(store, row("dup-1", 0, Date.now()), "{}")).toBe(false);
      const { rows } = await store.query<{ n: unknown }>(
        `SELECT COUNT(*) AS n FROM ${store.dialect.table("saga_instances")} WHERE id = 'dup-1'`,
      );
      expect(Number(rows[0]?.n)).toBe(1);
      expect(await runner.get("dup-1")).toMatchObject({ input: { n: 1 } });
    });

    it("a value too long for its column is refused, not stored cut short", async () => {
      // The runner refuses such ids and names itself; the store refuses them too.
      const repo = sagaRepository(store);
      const long = "k".repeat(300);
      await expect(
        repo.insert(store, { ...row("long-1", 0, Date.now()), name: long }, "{}"),
      ).rejects.toMatchObject({ code: "QUERY_FAILED", sqlState: "22001" });
      await expect(repo.insert(store, row(long, 0, Date.now()), "{}")).rejects.toMatchObject({
        code: "QUERY_FAILED",
        sqlState: "22001",
      });
      const { rows } = await store.query<{ n: unknown }>(
        `SELECT COUNT(*) AS n FROM ${store.dialect.table("saga_instances")} WHERE id LIKE 'kkkk%' OR id = 'long-1'`,
      );
      expect(Number(rows[0]?.n)).toBe(0);
    });
  });
}
