/**
 * The MariaDB statement sets (src/adapters/mysql/roles.ts) on the real MariaDB: what the bus,
 * sagas and webhooks ask of a store's roles holds there too — concurrent claims never share a
 * row and never wait on each other's, updates read back what they changed, ignored duplicates
 * count as nothing inserted, the inbox records an id once. A database of its own per run.
 */
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { mysqlRoles as roles } from "../src/adapters/mysql/roles.js";
import type { QueryResult, SqlExecutor, Transactor } from "../src/store/contracts.js";
import { render, raw, sql } from "../src/store/sql.js";

const { mysql: service } = inject("services");

/** A store-shaped executor over a mysql2 pool: autocommit queries, and transactions on one connection. */
function executor(pool: mysql.Pool): SqlExecutor & Transactor {
  const on = (c: mysql.Pool | mysql.PoolConnection): SqlExecutor => ({
    async query<Row>(text: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const [result] = await c.query(text, params as unknown[]);
      return Array.isArray(result)
        ? { rows: result as Row[], rowCount: result.length }
        : { rows: [], rowCount: (result as mysql.ResultSetHeader).affectedRows };
    },
  });
  return {
    ...on(pool),
    async transaction(fn) {
      const c = await pool.getConnection();
      try {
        await c.query("BEGIN");
        const result = await fn(on(c) as never);
        await c.query("COMMIT");
        return result;
      } catch (e) {
        await c.query("ROLLBACK");
        throw e;
      } finally {
        c.release();
      }
    },
  };
}
const exec = (ex: SqlExecutor, statement: ReturnType<typeof sql>) => {
  const { text, params } = render(statement, "question");
  return ex.query<Record<string, unknown>>(text, params);
};

if (!service.reachable) {
  describe("MariaDB statement sets", () => {
    it.skip(`skipped: MariaDB unreachable at ${service.where} (${service.error}); set PATCHBAY_MYSQL_URL`, () => {});
  });
} else {
  describe("MariaDB statement sets (InnoDB, SKIP LOCKED)", () => {
    const database = `pb_test_${process.pid}_${Date.now() % 100000}`;
    let admin: mysql.Connection;
    let pool: mysql.Pool;
    let store: SqlExecutor & Transactor;
    const jobs = raw("jobs");
    const inbox = raw("inbox");

    beforeAll(async () => {
      const url = new URL(service.url);
      admin = await mysql.createConnection({ uri: `${url.protocol}//${url.username}@${url.host}/` });
      await admin.query(`CREATE DATABASE ${database}`);
      url.pathname = `/${database}`;
      pool = mysql.createPool({ uri: url.toString(), connectionLimit: 6 });
      store = executor(pool);
      await pool.query(`CREATE TABLE jobs (id BIGINT AUTO_INCREMENT PRIMARY KEY, grp VARCHAR(100) NOT NULL,
        message_id VARCHAR(100) NOT NULL, run_at BIGINT NOT NULL, attempt INT NOT NULL,
        UNIQUE KEY (grp, message_id)) ENGINE=InnoDB`);
      await pool.query(`CREATE TABLE inbox (grp VARCHAR(100) NOT NULL, message_id VARCHAR(100) NOT NULL,
        processed_at BIGINT NOT NULL, PRIMARY KEY (grp, message_id)) ENGINE=InnoDB`);
    });
    afterAll(async () => {
      await pool?.end();
      await admin?.query(`DROP DATABASE IF EXISTS ${database}`);
      await admin?.end();
    });

    it("ignored duplicates count as nothing inserted; upserts overwrite the named columns", async () => {
      const rows = Array.from({ length: 5 }, (_, i) => sql`(${"g"}, ${`m-${i}`}, ${i}, 0)`);
      const first = await exec(
        store,
        roles.rows.insertIgnore(jobs, "grp, message_id, run_at, attempt", rows, "grp, message_id"),
      );
      const again = await exec(
        store,
        roles.rows.insertIgnore(jobs, "grp, message_id, run_at, attempt", rows, "grp, message_id"),
      );
      expect([first.rowCount, again.rowCount]).toEqual([5, 0]);
      await exec(
        store,
        roles.rows.upsert(
          jobs,
          "grp, message_id, run_at, attempt",
          sql`(${"g"}, ${"m-0"}, ${77}, ${9})`,
          "grp, message_id",
          ["run_at"],
        ),
      );
      const { rows: after } = await exec(
        store,
        sql`SELECT run_at, attempt FROM jobs WHERE message_id = ${"m-0"}`,
      );
      expect(after.map((r) => [Number(r.run_at), Number(r.attempt)])).toEqual([[77, 0]]);
      await pool.query("DELETE FROM jobs");
    });

    it("four concurrent claimers take 200 due rows in batches: each row claimed exactly once, none past its limit", async () => {
      const rows = Array.from({ length: 200 }, (_, i) => sql`(${"q"}, ${`m-${i}`}, ${i}, 0)`);
      await exec(
        store,
        roles.rows.insertIgnore(jobs, "grp, message_id, run_at, attempt", rows, "grp, message_id"),
      );
      const claimedBy: number[][] = [[], [], [], []];
      await Promise.all(
        claimedBy.map(async (mine) => {
          for (;;) {
            const got = await roles.rows.claim<{ id: unknown; attempt: unknown; run_at: unknown }>(store, {
              table: jobs,
              key: "id",
              where: sql`grp = ${"q"} AND run_at <= ${1000}`,
              orderBy: "run_at, id",
              limit: 7,
              set: sql`run_at = ${5000}, attempt = attempt + 1`,
            });
            expect(got.length).toBeLessThanOrEqual(7);
            for (const r of got) expect([Number(r.attempt), Number(r.run_at)]).toEqual([1, 5000]);
            if (got.length === 0) return;
            mine.push(...got.map((r) => Number(r.id)));
          }
        }),
      );
      const all = claimedBy.flat();
      expect(new Set(all).size).toBe(200);
      expect(all.length).toBe(200);
      // The batched ack deletes exactly the rows whose claim (attempt) still holds.
      const refs = all.slice(0, 50).map((id) => ({ id, attempt: 1 }));
      const stale = all.slice(50, 60).map((id) => ({ id, attempt: 0 }));
      const acked = await exec(store, roles.queue.ack(jobs, [...refs, ...stale]));
      expect(acked.rowCount).toBe(50);
      const released = await exec(
        store,
        roles.queue.release(
          jobs,
          all.slice(60, 70).map((id) => ({ id, attempt: 1 })),
          1,
        ),
      );
      expect(released.rowCount).toBe(10);
      await pool.query("DELETE FROM jobs");
    });

    it("a claim skips rows another transaction holds instead of waiting for them", async () => {
      await exec(
        store,
        roles.rows.insertIgnore(
          jobs,
          "grp, message_id, run_at, attempt",
          [sql`(${"s"}, ${"a"}, 1, 0)`, sql`(${"s"}, ${"b"}, 2, 0)`],
          "grp, message_id",
        ),
      );
      const holder = await pool.getConnection();
      try {
        await holder.query("BEGIN");
        // By primary key: the holder locks exactly that row (a scan would lock every row it reads).
        const [[row]] = await holder.query<mysql.RowDataPacket[]>(
          "SELECT id FROM jobs WHERE message_id = 'a'",
        );
        await holder.query("SELECT id FROM jobs WHERE id = ? FOR UPDATE", [row!.id]);
        const started = Date.now();
        const got = await roles.rows.claim<{ message_id: string }>(store, {
          table: jobs,
          key: "id",
          where: sql`grp = ${"s"}`,
          orderBy: "run_at, id",
          limit: 2,
          set: sql`attempt = attempt + 1`,
        });
        expect(got.map((r) => r.message_id)).toEqual(["b"]);
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        await holder.query("ROLLBACK");
        holder.release();
      }
      await pool.query("DELETE FROM jobs");
    });

    it("updateReturning reads back the changed rows; the inbox records an id once", async () => {
      await exec(
        store,
        roles.rows.insertIgnore(
          jobs,
          "grp, message_id, run_at, attempt",
          [sql`(${"u"}, ${"x"}, 1, 3)`, sql`(${"u"}, ${"y"}, 2, 4)`],
          "grp, message_id",
        ),
      );
      const changed = await store.transaction((tx) =>
        roles.rows.updateReturning<{ message_id: string; attempt: unknown }>(tx, {
          table: jobs,
          key: "id",
          set: sql`attempt = attempt * 10`,
          where: sql`grp = ${"u"} AND run_at >= ${2}`,
          columns: "message_id, attempt",
        }),
      );
      expect(changed.map((r) => [r.message_id, Number(r.attempt)])).toEqual([["y", 40]]);
      const first = await exec(store, roles.inbox.record(inbox, "g", "m-1", 1));
      const again = await exec(store, roles.inbox.record(inbox, "g", "m-1", 2));
      expect([first.rows.length, again.rows.length]).toEqual([1, 0]);
      const { rows } = await exec(store, roles.inbox.processed(inbox, "g", ["m-1", "m-2"]));
      expect(rows.map((r) => r.message_id)).toEqual(["m-1"]);
    });
  });
}
