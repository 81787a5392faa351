/**
 * Commit order cannot beat the cursor (issue 20, items 5 and 6): writers hold transactions open
 * across runs and commit out of order while runs loop, on the real PostgreSQL and MariaDB; after
 * quiescence the destination equals the source, compared by checksum. Sequence cursors (a value
 * taken before another's commit) and timestamp cursors (a transaction open longer than the lag).
 */
import { createHash } from "node:crypto";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { pipeline, type Pipeline } from "../src/sync/pipeline.js";
import type { SqlSourceOptions } from "../src/sync/keyset.js";
import { mysqlSyncDb, postgresSyncDb, type SyncDb } from "./support/sync-dbs.js";

const services = inject("services");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One connection that can hold a transaction open. */
interface Writer {
  query(sql: string, params?: unknown[]): Promise<void>;
  close(): Promise<void>;
}

interface Backend {
  name: string;
  reachable: boolean;
  skipWhy: string;
  fresh(): SyncDb;
  writer(db: SyncDb): Promise<Writer>;
  /** `(id <auto sequence> PRIMARY KEY, name, amount, updated_at <now() default>)`. */
  sequenceTable(db: SyncDb, name: string): Promise<void>;
  /** Inserts one row, taking the next sequence value and the transaction's clock. */
  insertSql(db: SyncDb, table: string): string;
  /** Moves one row's name and stamp to the transaction's clock. */
  updateSql(db: SyncDb, table: string): string;
}

const backends: Backend[] = [
  {
    name: "PostgreSQL",
    reachable: services.postgres.reachable,
    skipWhy: `PostgreSQL unreachable at ${services.postgres.where}`,
    fresh: () => postgresSyncDb(services.postgres.url),
    async writer(db) {
      const client = new pg.Client({ connectionString: db.config.location });
      client.on("error", () => undefined);
      await client.connect();
      return {
        query: async (sql, params = []) => void (await client.query(sql, params)),
        close: () => client.end(),
      };
    },
    async sequenceTable(db, name) {
      await db.exec(
        `CREATE TABLE ${db.sqlName(name)} (id bigserial PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz NOT NULL DEFAULT now())`,
      );
      await db.exec(`CREATE INDEX ON ${db.sqlName(name)} (updated_at, id)`);
    },
    insertSql: (db, table) => `INSERT INTO ${db.sqlName(table)} (name, amount) VALUES ($1, $2)`,
    updateSql: (db, table) => `UPDATE ${db.sqlName(table)} SET name = $1, updated_at = now() WHERE id = $2`,
  },
  {
    name: "MariaDB",
    reachable: services.mysql.reachable,
    skipWhy: `MariaDB unreachable at ${services.mysql.where}`,
    fresh: () => mysqlSyncDb(services.mysql.url),
    async writer(db) {
      const conn = await mysql.createConnection({ uri: db.config.location });
      conn.on("error", () => undefined);
      return {
        query: async (sql, params = []) => void (await conn.query(sql, params)),
        close: () => conn.end(),
      };
    },
    async sequenceTable(db, name) {
      await db.exec(
        `CREATE TABLE ${db.sqlName(name)} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200), amount DECIMAL(12,2), updated_at DATETIME(6) NOT NULL DEFAULT NOW(6), INDEX (updated_at, id)) ENGINE=InnoDB`,
      );
    },
    insertSql: (db, table) => `INSERT INTO ${db.sqlName(table)} (name, amount) VALUES (?, ?)`,
    updateSql: (db, table) => `UPDATE ${db.sqlName(table)} SET name = ?, updated_at = NOW(6) WHERE id = ?`,
  },
];

/** A checksum of a table's rows as read back (id order), and how many there are. */
async function checksum(db: SyncDb, table: string) {
  // ids as numbers: a bigserial source reads back as text, an integer destination as a number.
  const rows = (await db.rows(table)).map((r) => ({ ...r, id: Number(r.id) }));
  return { count: rows.length, sha256: createHash("sha256").update(JSON.stringify(rows)).digest("hex") };
}

/**
 * Runs until `table` equals the source: a run may be held back (delayed, never skipped) by a
 * transaction of another test in the same database, or by MariaDB's innodb_trx cache.
 */
async function catchUp(db: SyncDb, p: Pipeline, table: string) {
  for (let i = 0; i < 40; i++) {
    await p.run();
    if ((await checksum(db, table)).sha256 === (await checksum(db, "src")).sha256) return;
    await sleep(250);
  }
}

for (const backend of backends) {
  describe(`Sync commit order: ${backend.name}`, () => {
    if (!backend.reachable) {
      it.skip(`skipped: ${backend.skipWhy}`, () => {});
      return;
    }
    let db: SyncDb;
    const pipelines: Pipeline[] = [];
    const writers: Writer[] = [];
    beforeEach(() => {
      db = backend.fresh();
    });
    afterEach(async () => {
      await Promise.allSettled(writers.splice(0).map((w) => w.close()));
      await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
      await db.cleanup();
    });
    const writer = async () => {
      const w = await backend.writer(db);
      writers.push(w);
      return w;
    };
    const sequencePipeline = () => {
      const p = pipeline("by_sequence", {
        store: db.store(),
        source: db.source({ table: "src", cursor: "id", key: "id", cursorType: "sequence" }),
        destination: db.destination({ table: "dst_seq", key: "id", write: "append" }),
        mode: "append",
        batchSize: 50,
      });
      pipelines.push(p);
      return p;
    };
    const timestampPipeline = (src: Partial<SqlSourceOptions> = {}) => {
      const p = pipeline("by_timestamp", {
        store: db.store(),
        source: db.source({ table: "src", cursor: "updated_at", key: "id", safetyLag: "1s", ...src }),
        destination: db.destination({ table: "dst_ts", key: "id", version: "updated_at" }),
        mode: "incremental",
        batchSize: 50,
      });
      pipelines.push(p);
      return p;
    };
    const tables = async () => {
      await backend.sequenceTable(db, "src");
      await db.createTable("dst_seq");
      await db.createTable("dst_ts");
    };

    it("sequence cursor: a value taken before a later one commits is not skipped (T1 takes 11, T2 takes 12 and commits first)", async () => {
      await tables();
      const w = await writer();
      for (let i = 1; i <= 10; i++) await w.query(backend.insertSql(db, "src"), [`row ${i}`, "1.00"]);
      const t1 = await writer();
      await t1.query("BEGIN");
      await t1.query(backend.insertSql(db, "src"), ["late 11", "11.00"]); // takes 11, uncommitted
      await w.query(backend.insertSql(db, "src"), ["early 12", "12.00"]); // takes 12, commits
      const p = sequencePipeline();
      await p.run(); // between the two commits
      await t1.query("COMMIT");
      await catchUp(db, p, "dst_seq");
      const source = await db.rows("src");
      expect(source.map((r) => Number(r.id))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(await checksum(db, "dst_seq")).toEqual(await checksum(db, "src"));
    });

    it("timestamp cursor: a transaction open longer than the safety lag does not lose its row", async () => {
      await tables();
      const w = await writer();
      for (let i = 1; i <= 10; i++) await w.query(backend.insertSql(db, "src"), [`row ${i}`, "1.00"]);
      const t1 = await writer();
      await t1.query("BEGIN");
      await t1.query(backend.insertSql(db, "src"), ["slow 11", "11.00"]); // stamped now: its start
      await sleep(1500);
      await w.query(backend.insertSql(db, "src"), ["quick 12", "12.00"]); // stamped later, commits first
      await sleep(1200); // past the 1 s lag for row 12
      const p = timestampPipeline();
      await p.run();
      await t1.query("COMMIT");
      await catchUp(db, p, "dst_ts");
      expect(await db.count("src")).toBe(12);
      expect(await checksum(db, "dst_ts")).toEqual(await checksum(db, "src"));
    });

    it("writers holding transactions open across runs, committing out of order while runs loop: nothing skipped", async () => {
      await tables();
      const w = await writer();
      for (let i = 1; i <= 20; i++) await w.query(backend.insertSql(db, "src"), [`row ${i}`, "1.00"]);
      const bySequence = sequencePipeline();
      const byTimestamp = timestampPipeline({ safetyLag: 0 });
      // First runs one after the other: they create the checkpoint tables.
      await bySequence.run();
      await byTimestamp.run();
      let writing = true;
      let seed = 20201;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      // One loop, runs spaced: MariaDB refreshes its innodb_trx cache only after 0.1 s without a
      // read of it (see docs/sync.md), so back-to-back readers would keep it stale.
      const loop = async () => {
        let runs = 0;
        while (writing) {
          await bySequence.run();
          await sleep(150);
          await byTimestamp.run();
          await sleep(150);
          runs++;
        }
        return runs;
      };
      const write = async (n: number) => {
        const conn = await writer();
        for (let round = 0; writing; round++) {
          await conn.query("BEGIN");
          await conn.query(backend.insertSql(db, "src"), [`w${n} r${round}`, `${n}.${round % 100}`]);
          if (random() < 0.5) {
            const id = 1 + Math.floor(random() * 20);
            await conn.query(backend.updateSql(db, "src"), [`w${n} moved ${id} r${round}`, id]);
          }
          await sleep(Math.floor(random() * 1200)); // open across runs
          await conn.query(random() < 0.1 ? "ROLLBACK" : "COMMIT");
        }
      };
      const looping = loop();
      const writing4 = [1, 2, 3, 4].map(write);
      await sleep(5000);
      writing = false;
      await Promise.all(writing4);
      expect(await looping).toBeGreaterThanOrEqual(3);
      // Quiescence: run until both caught up (a transaction of another session, even of another
      // test in this database, can hold a run back for a while: delayed, never skipped). A row
      // skipped for good would keep them apart until the deadline.
      const caughtUp = async () =>
        (await db.count("dst_seq")) === (await db.count("src")) &&
        (await checksum(db, "dst_ts")).sha256 === (await checksum(db, "src")).sha256;
      for (let i = 0; i < 40; i++) {
        await bySequence.run();
        await byTimestamp.run();
        if (await caughtUp()) break;
        await sleep(250);
      }
      expect(await db.count("src")).toBeGreaterThan(30);
      expect(await checksum(db, "dst_ts")).toEqual(await checksum(db, "src"));
      // The append destination holds each row as first copied; rows never updated after insert compare.
      const source = await db.rows("src");
      const appended = await db.rows("dst_seq");
      expect(appended.map((r) => Number(r.id))).toEqual(source.map((r) => Number(r.id)));
    }, 60_000);
  });
}
