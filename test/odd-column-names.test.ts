/**
 * Columns named like JavaScript's own object properties (`__proto__`, `constructor`,
 * `hasOwnProperty`) are columns like any other: a row that carried them through a sync or a
 * change capture must arrive with every one of them, not lose the one an assignment cannot make.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { pipeline } from "../src/sync/pipeline.js";
import { cdcFixture, cdcSuiteProblem, eventually, type CdcFixture } from "./support/cdc.js";
import { mysqlSyncDb, postgresSyncDb, sqliteSyncDb } from "./support/sync-dbs.js";

const { postgres: service, mysql: maria } = inject("services");
const problem = await cdcSuiteProblem(service);

const ODD = `"__proto__" text, "constructor" text, "hasOwnProperty" text`;
// As JSON text: an object literal's `__proto__:` sets the prototype, not a property.
const want = [1, 2].map(
  (i) => `{"id":${i},"__proto__":"p${i}","constructor":"c${i}","hasOwnProperty":"h${i}"}`,
);

const fixtures: CdcFixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.cleanup();
});

describe("columns named __proto__, constructor, hasOwnProperty", () => {
  it("a SQLite source into SQLite keeps each one", async () => {
    const from = sqliteSyncDb();
    const to = sqliteSyncDb();
    try {
      await from.exec(`CREATE TABLE odd (id INTEGER PRIMARY KEY, ${ODD})`);
      await from.exec(
        `INSERT INTO odd (id, "__proto__", "constructor", "hasOwnProperty") VALUES (1, 'p1', 'c1', 'h1'), (2, 'p2', 'c2', 'h2')`,
      );
      await to.exec(`CREATE TABLE odd (id INTEGER PRIMARY KEY, ${ODD})`);
      const report = await pipeline("odd_sqlite", {
        store: to.store(),
        source: from.source({ table: "odd", key: "id" }),
        destination: to.destination({ table: "odd", key: "id" }),
        mode: "full",
      }).run();
      expect(report.rowsWritten).toBe(2);
      const rows = await to.exec(
        `SELECT id, "__proto__", "constructor", "hasOwnProperty" FROM odd ORDER BY id`,
      );
      expect(rows.map((r) => JSON.stringify(r))).toEqual(want);
    } finally {
      await from.cleanup();
      await to.cleanup();
    }
  });

  it.skipIf(!service.reachable)("a PostgreSQL source into SQLite keeps each one", async () => {
    const from = postgresSyncDb(service.url);
    const to = sqliteSyncDb();
    try {
      await from.exec(`CREATE TABLE ${from.sqlName("odd")} (id int PRIMARY KEY, ${ODD})`);
      await from.exec(
        `INSERT INTO ${from.sqlName("odd")} VALUES (1, 'p1', 'c1', 'h1'), (2, 'p2', 'c2', 'h2')`,
      );
      await to.exec(`CREATE TABLE odd (id INTEGER PRIMARY KEY, ${ODD})`);
      await pipeline("odd_pg", {
        store: to.store(),
        source: from.source({ table: from.table("odd"), key: "id" }),
        destination: to.destination({ table: "odd", key: "id" }),
        mode: "full",
      }).run();
      const rows = await to.exec(
        `SELECT id, "__proto__", "constructor", "hasOwnProperty" FROM odd ORDER BY id`,
      );
      expect(rows.map((r) => JSON.stringify(r))).toEqual(want);
    } finally {
      await from.cleanup();
      await to.cleanup();
    }
  });

  // mysql2 refuses to read a column named __proto__: the run fails, typed and visible, instead.
  it.skipIf(!maria.reachable)(
    "a MariaDB source fails the run typed, naming the column, writing nothing",
    async () => {
      const from = mysqlSyncDb(maria.url);
      const to = mysqlSyncDb(maria.url);
      const MARIA_ODD = ODD.replaceAll('"', "`");
      try {
        await from.exec(`CREATE TABLE odd (id int PRIMARY KEY, ${MARIA_ODD})`);
        await from.exec(`INSERT INTO odd VALUES (1, 'p1', 'c1', 'h1'), (2, 'p2', 'c2', 'h2')`);
        await to.exec(`CREATE TABLE odd (id int PRIMARY KEY, ${MARIA_ODD})`);
        const failed = await pipeline("odd_maria", {
          store: to.store(),
          source: from.source({ table: "odd", key: "id" }),
          destination: to.destination({ table: "odd", key: "id" }),
          mode: "full",
        })
          .run()
          .then(
            () => undefined,
            (e: unknown) => e as { code?: string; message?: string },
          );
        expect(failed?.code).toBe("QUERY_FAILED");
        expect(failed?.message).toMatch(/__proto__/);
        expect(await to.exec("SELECT COUNT(*) AS n FROM odd")).toEqual([{ n: 0 }]);
      } finally {
        await from.cleanup();
        await to.cleanup();
      }
    },
  );

  it.skipIf(problem !== undefined)(
    "a change capture keeps each one, in the initial copy and in the stream",
    { timeout: 120_000 },
    async () => {
      const f = await cdcFixture(service.url);
      fixtures.push(f);
      await f.sql(`CREATE TABLE ${f.src}.odd (id int PRIMARY KEY, ${ODD})`);
      await f.sql(`CREATE TABLE ${f.dst}.odd (id int PRIMARY KEY, ${ODD})`);
      await f.sql(`INSERT INTO ${f.src}.odd VALUES (1, 'p1', 'c1', 'h1')`);
      const c = f.capture("odd");
      c.start();
      try {
        // Row 1 through the copy; row 2 through the stream once the copy is in.
        await eventually(
          async () => (await f.sql(`SELECT 1 FROM ${f.dst}.odd`)).length === 1,
          60_000,
          "the copy",
        );
        await f.sql(`INSERT INTO ${f.src}.odd VALUES (2, 'p2', 'c2', 'h2')`);
        await eventually(
          async () => (await f.sql(`SELECT 1 FROM ${f.dst}.odd`)).length === 2,
          60_000,
          "the stream",
        );
      } finally {
        await c.stop();
      }
      const rows = await f.sql(
        `SELECT id, "__proto__", "constructor", "hasOwnProperty" FROM ${f.dst}.odd ORDER BY id`,
      );
      expect(rows.map((r) => JSON.stringify(r))).toEqual(want);
    },
  );
});
