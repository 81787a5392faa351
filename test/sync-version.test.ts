/**
 * The `version` option with `updated_at` stamped by PostgreSQL's now() (issue 20, item 4). now() is
 * the transaction's start, so a later commit can carry an older stamp: T3 starts, T1 updates row A
 * and commits, T3 updates A and commits with an earlier `updated_at`. The merge's version guard
 * compares versions, not commits, so a destination that had copied T1's A would refuse T3's for
 * good. What prevents it is the run's read bound (items 5, 6): while T3 is open, no row stamped
 * after T3's start is passed, so T1's A is never copied before T3 commits. On the real PostgreSQL,
 * and on MariaDB with a stamp T3 took early (its NOW() is the statement's start, not the
 * transaction's, so the inversion needs a stamp kept from an earlier statement).
 */
import mysql from "mysql2/promise";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { pipeline, type Pipeline } from "../src/sync/pipeline.js";
import { mysqlSyncDb, postgresSyncDb, type SyncDb } from "./support/sync-dbs.js";

const services = inject("services");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Sync version guard with now() stamps: PostgreSQL", () => {
  if (!services.postgres.reachable) {
    it.skip(`skipped: PostgreSQL unreachable at ${services.postgres.where}`, () => {});
    return;
  }
  let db: SyncDb;
  const pipelines: Pipeline[] = [];
  const clients: pg.Client[] = [];
  beforeEach(() => {
    db = postgresSyncDb(services.postgres.url);
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.end()));
    await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
    await db.cleanup();
  });

  const session = async () => {
    const c = new pg.Client({ connectionString: db.config.location });
    c.on("error", () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  /** The docs' setup: incremental on updated_at, a lookback window, merge guarded by updated_at. */
  const setup = async () => {
    await db.createTable("src");
    await db.createTable("dst");
    await db.insert("src", [{ id: 1, name: "original", amount: "1.00", age: 60 }]);
    const p = pipeline("orders", {
      store: db.store(),
      source: db.source({ table: "src", cursor: "updated_at", key: "id", safetyLag: 0, lookback: "5m" }),
      destination: db.destination({ table: "dst", key: "id", version: "updated_at" }),
      mode: "incremental",
    });
    pipelines.push(p);
    await p.run();
    expect(await db.rows("dst")).toEqual(await db.rows("src"));
    return p;
  };
  const update = (name: string) =>
    `UPDATE ${db.sqlName("src")} SET name = '${name}', updated_at = now() WHERE id = 1 RETURNING updated_at::text AS stamp`;

  it("T3 starts, T1 updates A and commits, a run, T3 updates A with an older stamp and commits: the destination ends equal to the source", async () => {
    const p = await setup();
    const t3 = await session();
    await t3.query("BEGIN");
    await t3.query("SELECT now()"); // T3's now() is fixed here
    await sleep(20);
    const t1 = await session();
    const { rows: s1 } = await t1.query<{ stamp: string }>(update("T1")); // autocommit
    await sleep(20);
    // The run between T1's commit and T3's update: T1's A is stamped after T3's start, and T3 is
    // open, so the run's bound leaves A for later (delayed, not copied and then refused).
    await p.run();
    const betweenCommits = (await db.rows("dst"))[0]?.name;
    const { rows: s3 } = await t3.query<{ stamp: string }>(update("T3"));
    await t3.query("COMMIT");
    // The source ends with T3's value and the older stamp: the inversion the issue describes.
    const source = await db.rows("src");
    expect(source[0]?.name).toBe("T3");
    expect(Date.parse(s3[0]?.stamp ?? "")).toBeLessThan(Date.parse(s1[0]?.stamp ?? ""));
    // Runs until caught up (another session's open transaction in this database only delays).
    for (let i = 0; i < 20; i++) {
      await p.run();
      if (JSON.stringify(await db.rows("dst")) === JSON.stringify(source)) break;
      await sleep(200);
    }
    expect(await db.rows("dst")).toEqual(source);
    // How: the run between the commits had left A for later instead of copying T1's version.
    expect(betweenCommits).toBe("original");
  });

  it("what the guard itself does: a stored version newer than the source's is kept, even over the lookback re-read", async () => {
    const p = await setup();
    // As if something the bound cannot see (another database's writer, an application clock)
    // had put a later stamp in the destination: the guard compares versions, so it stays.
    await db.exec(
      `UPDATE ${db.sqlName("dst")} SET name = 'from the future', updated_at = now() + interval '1 hour' WHERE id = 1`,
    );
    await db.exec(`UPDATE ${db.sqlName("src")} SET name = 'newer commit', updated_at = now() WHERE id = 1`);
    await sleep(20);
    await p.run();
    expect((await db.rows("dst"))[0]?.name).toBe("from the future");
  });
});

describe("Sync version guard with a stamp taken early: MariaDB", () => {
  if (!services.mysql.reachable) {
    it.skip(`skipped: MariaDB unreachable at ${services.mysql.where}`, () => {});
    return;
  }
  let db: SyncDb;
  const pipelines: Pipeline[] = [];
  const connections: mysql.Connection[] = [];
  beforeEach(() => {
    db = mysqlSyncDb(services.mysql.url);
  });
  afterEach(async () => {
    await Promise.allSettled(connections.splice(0).map((c) => c.end()));
    await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
    await db.cleanup();
  });

  it("T3 touches InnoDB and takes its stamp, T1 updates A and commits, a run, T3 updates A with the older stamp: the destination ends equal to the source", async () => {
    await db.createTable("src");
    await db.createTable("dst");
    await db.insert("src", [
      { id: 1, name: "original", amount: "1.00", age: 60 },
      { id: 2, name: "other", amount: "1.00", age: 60 },
    ]);
    const p = pipeline("orders", {
      store: db.store(),
      source: db.source({ table: "src", cursor: "updated_at", key: "id", safetyLag: 0, lookback: "5m" }),
      destination: db.destination({ table: "dst", key: "id", version: "updated_at" }),
      mode: "incremental",
    });
    pipelines.push(p);
    await p.run();
    const session = async () => {
      const c = await mysql.createConnection({ uri: db.config.location, dateStrings: true });
      c.on("error", () => undefined);
      connections.push(c);
      return c;
    };
    const t3 = await session();
    await t3.query("BEGIN");
    await t3.query(`SELECT id FROM ${db.sqlName("src")} WHERE id = 2 FOR UPDATE`); // in innodb_trx now
    await t3.query("SET @t = NOW(6)");
    await sleep(50);
    const t1 = await session();
    await t1.query(`UPDATE ${db.sqlName("src")} SET name = 'T1', updated_at = NOW(6) WHERE id = 1`);
    const [[s1]] = (await t1.query(
      `SELECT CAST(updated_at AS CHAR) AS stamp FROM ${db.sqlName("src")} WHERE id = 1`,
    )) as unknown as [[{ stamp: string }]];
    await sleep(1300); // past the source's 1.1 s floor for T1's stamp
    await p.run();
    const betweenCommits = (await db.rows("dst"))[0]?.name;
    await t3.query(`UPDATE ${db.sqlName("src")} SET name = 'T3', updated_at = @t WHERE id = 1`);
    await t3.query("COMMIT");
    const source = await db.rows("src");
    expect(source[0]?.name).toBe("T3");
    expect(String(source[0]?.updated_at) < s1.stamp).toBe(true);
    for (let i = 0; i < 20; i++) {
      await p.run();
      if (JSON.stringify(await db.rows("dst")) === JSON.stringify(source)) break;
      await sleep(300); // MariaDB refreshes innodb_trx only after 0.1 s without a read
    }
    expect(await db.rows("dst")).toEqual(source);
    expect(betweenCommits).toBe("original");
  }, 60_000);
});
