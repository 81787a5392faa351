/**
 * Isolated databases for the sync suites, one per test: a PostgreSQL schema, a MariaDB database
 * or a folder of SQLite files, each with the same helpers (create the test tables, insert rows
 * with timestamps taken from the database's own clock, read rows back in a comparable form) and
 * the sync source/destination/store built on it. Also used by the SIGKILL child process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import mysql from "mysql2/promise";
import pg from "pg";
import { mysqlDestination, mysqlSource } from "../../src/adapters/mysql/index.js";
import { postgres, postgresDestination, postgresSource } from "../../src/adapters/postgres/index.js";
import { sqlite, sqliteDestination, sqliteSource } from "../../src/adapters/sqlite/index.js";
import type { SqlStore } from "../../src/store/sql-store.js";
import type { StoredRow, SyncDatabase, TestRow } from "../../src/adapter/conformance/sync.js";

/** How the sync conformance suite's SIGKILL child rebuilds a database: {@link syncDbFromConfig}. */
const child = { module: fileURLToPath(import.meta.url), export: "syncDbFromConfig" };

export type SyncDbKind = "postgres" | "mysql" | "sqlite";

export type { StoredRow, TestRow };

/** JSON config that rebuilds the same database handles in another process. */
export interface SyncDbConfig {
  kind: SyncDbKind;
  /** PostgreSQL/MariaDB URL, or the SQLite folder. */
  location: string;
  /** PostgreSQL: the schema. */
  schema?: string;
  /** MariaDB: the folder of the pipeline's SQLite store. */
  storeDir?: string;
}

/** A {@link SyncDatabase} of one of this repository's backends. */
export interface SyncDb extends SyncDatabase {
  kind: SyncDbKind;
  config: SyncDbConfig;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
/** µs since epoch → `YYYY-MM-DD HH:MM:SS.ffffff` (UTC parts). */
function utcText(micros: number, sep = " "): string {
  const ms = Math.floor(micros / 1000);
  const d = new Date(ms);
  const frac = pad(Math.round(micros - ms * 1000) + (ms % 1000) * 1000, 6);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}${sep}${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${frac}`;
}

const stamp = (now: number, r: TestRow) => r.at ?? now - Math.round((r.age ?? 0) * 1_000_000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function poll(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * One database per test worker. A PostgreSQL source bounds its read below the transactions still
 * open in its database, so a transaction another test file holds open (on purpose, or for the
 * moment a crash test takes) would hold back this worker's runs; files in one worker run one after
 * another, so its own database sees only its own transactions.
 */
const workerDatabases = new Map<string, Promise<void>>();
function workerDatabase(baseUrl: string): { url: string; ready: () => Promise<void> } {
  const name = `pb_sync_w${process.env.VITEST_POOL_ID ?? process.pid}`;
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const ready = () => {
    let done = workerDatabases.get(url);
    if (!done) {
      done = (async () => {
        const admin = new pg.Client({ connectionString: baseUrl });
        await admin.connect();
        try {
          await admin.query(`CREATE DATABASE "${name}"`);
        } catch (e) {
          if ((e as { code?: string }).code !== "42P04") throw e; // it exists: a previous run left it
        } finally {
          await admin.end();
        }
      })();
      workerDatabases.set(url, done);
    }
    return done;
  };
  return { url, ready };
}

export function postgresSyncDb(baseUrl: string, existing?: SyncDbConfig): SyncDb {
  const schema = existing?.schema ?? `pb_sync_${randomBytes(5).toString("hex")}`;
  const own = existing ? undefined : workerDatabase(baseUrl);
  const location = own?.url ?? baseUrl;
  const config: SyncDbConfig = { kind: "postgres", location, schema };
  const pool = new pg.Pool({ connectionString: location, max: 3 });
  pool.on("error", () => undefined);
  let created: Promise<void> | undefined;
  const ready = () =>
    (created ??= (own?.ready() ?? Promise.resolve())
      .then(() => pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`))
      .then(() => undefined));
  const exec = async (text: string, params: unknown[] = []) => {
    await ready();
    return (await pool.query(text, params)).rows as Record<string, unknown>[];
  };
  const t = (name: string) => `"${schema}"."${name}"`;
  // The child's URL: the server notices a killed client even in the middle of a statement.
  const childUrl = (() => {
    const u = new URL(location);
    u.searchParams.set("options", "-c client_connection_check_interval=200");
    return u.toString();
  })();
  const stores: SqlStore[] = [];
  const handles: Array<{ close(): Promise<void> }> = [];
  return {
    kind: "postgres",
    config,
    child,
    table: (name) => `${schema}.${name}`,
    sqlName: (name) => t(name),
    exec,
    async createTable(name, options = {}) {
      await exec(
        `CREATE TABLE ${t(name)} (id integer ${options.primaryKey === false ? "NOT NULL" : "PRIMARY KEY"}, name text, amount numeric(12,2), updated_at timestamptz NOT NULL)`,
      );
      await exec(`CREATE INDEX ON ${t(name)} (updated_at, id)`);
    },
    async nowMicros() {
      const [r] = await exec("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text AS v");
      return Number(r?.v);
    },
    async insert(table, rows) {
      const now = await this.nowMicros();
      for (let i = 0; i < rows.length; i += 2000) {
        const data = rows.slice(i, i + 2000).map((r) => ({ ...r, ts: `${utcText(stamp(now, r))}+00` }));
        await exec(
          `INSERT INTO ${t(table)} (id, name, amount, updated_at)
           SELECT x.id, x.name, x.amount, x.ts FROM json_to_recordset($1::json) AS x(id int, name text, amount numeric, ts timestamptz)`,
          [JSON.stringify(data)],
        );
      }
    },
    async update(table, ids, name, age = 0) {
      await exec(
        `UPDATE ${t(table)} SET name = $1, updated_at = clock_timestamp() - $2::float8 * interval '1 second' WHERE id = ANY($3::int[])`,
        [name, age, ids],
      );
    },
    async remove(table, ids) {
      await exec(`DELETE FROM ${t(table)} WHERE id = ANY($1::int[])`, [ids]);
    },
    async rows(table) {
      const rows = await exec(
        `SELECT id, name, amount::text AS amount, updated_at::text AS updated_at FROM ${t(table)} ORDER BY id`,
      );
      return rows as unknown as StoredRow[];
    },
    async count(table) {
      const [r] = await exec(`SELECT count(*)::int AS n FROM ${t(table)}`);
      return Number(r?.n);
    },
    source(options) {
      const s = postgresSource({
        ...options,
        url: childUrl,
        table: options.table.includes(".") ? options.table : `${schema}.${options.table}`,
      });
      handles.push(s);
      return s;
    },
    destination(options) {
      const d = postgresDestination({
        ...options,
        url: childUrl,
        table: options.table.includes(".") ? options.table : `${schema}.${options.table}`,
      });
      handles.push(d);
      return d;
    },
    store() {
      const s = postgres({ url: location, schema: `${schema}_pb`, max: 3 });
      stores.push(s);
      return s;
    },
    async stallOn(table, id) {
      await exec(
        `CREATE OR REPLACE FUNCTION "${schema}".pb_stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$`,
      );
      await exec(
        `CREATE TRIGGER pb_stall BEFORE INSERT ON ${t(table)} FOR EACH ROW WHEN (NEW.id = ${Number(id)}) EXECUTE FUNCTION "${schema}".pb_stall()`,
      );
    },
    async waitForStall() {
      await poll("a writer stalled in pg_sleep", async () => {
        const [r] = await exec(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND pid <> pg_backend_pid()`,
        );
        return Number(r?.n) > 0;
      });
    },
    async clearStall(table) {
      await exec(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database() AND pid <> pg_backend_pid()`,
      );
      await exec(`DROP TRIGGER IF EXISTS pb_stall ON ${t(table)}`);
    },
    async cleanup() {
      await Promise.allSettled(handles.map((h) => h.close()));
      await Promise.allSettled(stores.map((s) => s.close()));
      await exec(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database() AND pid <> pg_backend_pid()`,
      ).catch(() => undefined);
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}_pb" CASCADE`);
      await pool.end();
    },
  };
}

export function mysqlSyncDb(baseUrl: string, existing?: SyncDbConfig): SyncDb {
  const database = existing
    ? new URL(existing.location).pathname.slice(1)
    : `pb_sync_${randomBytes(5).toString("hex")}`;
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  // Create and drop through a connection without a database: the URL's own may not exist yet.
  const serverUrl = new URL(baseUrl);
  serverUrl.pathname = "/";
  const server = serverUrl.toString();
  const dir = existing?.storeDir ?? mkdtempSync(join(tmpdir(), "patchbay-sync-my-"));
  const config: SyncDbConfig = { kind: "mysql", location: url.toString(), storeDir: dir };
  let pool: mysql.Pool | undefined;
  const ready = async () => {
    if (pool) return pool;
    if (!existing) {
      const admin = await mysql.createConnection({ uri: server });
      await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
      await admin.end();
    }
    pool = mysql.createPool({
      uri: config.location,
      connectionLimit: 3,
      dateStrings: true,
      multipleStatements: true,
    });
    return pool;
  };
  const exec = async (text: string, params: unknown[] = []) => {
    const [rows] = await (await ready()).query(text, params);
    return (Array.isArray(rows) ? rows : []) as Record<string, unknown>[];
  };
  const t = (name: string) => `\`${name}\``;
  const stores: SqlStore[] = [];
  const handles: Array<{ close(): Promise<void> }> = [];
  return {
    kind: "mysql",
    config,
    child,
    table: (name) => name,
    sqlName: (name) => t(name),
    exec,
    async createTable(name, options = {}) {
      await exec(
        `CREATE TABLE ${t(name)} (id INT NOT NULL${options.primaryKey === false ? "" : " PRIMARY KEY"}, name VARCHAR(200), amount DECIMAL(12,2), updated_at DATETIME(6) NOT NULL, INDEX (updated_at, id)) ENGINE=InnoDB`,
      );
    },
    async nowMicros() {
      const [r] = await exec("SELECT CAST(NOW(6) AS CHAR) AS v");
      const text = String(r?.v);
      const [date, time] = text.split(" ") as [string, string];
      const [y, m, d] = date.split("-").map(Number) as [number, number, number];
      const [hms, frac = "0"] = time.split(".") as [string, string?];
      const [hh, mm, ss] = hms.split(":").map(Number) as [number, number, number];
      return Date.UTC(y, m - 1, d, hh, mm, ss) * 1000 + Number(frac.padEnd(6, "0"));
    },
    async insert(table, rows) {
      const now = await this.nowMicros();
      for (let i = 0; i < rows.length; i += 2000) {
        const values = rows.slice(i, i + 2000).map((r) => [r.id, r.name, r.amount, utcText(stamp(now, r))]);
        await exec(`INSERT INTO ${t(table)} (id, name, amount, updated_at) VALUES ?`, [values]);
      }
    },
    async update(table, ids, name, age = 0) {
      await exec(
        `UPDATE ${t(table)} SET name = ?, updated_at = NOW(6) - INTERVAL ? MICROSECOND WHERE id IN (?)`,
        [name, Math.round(age * 1_000_000), ids],
      );
    },
    async remove(table, ids) {
      await exec(`DELETE FROM ${t(table)} WHERE id IN (?)`, [ids]);
    },
    async rows(table) {
      const rows = await exec(
        `SELECT id, name, CAST(amount AS CHAR) AS amount, CAST(updated_at AS CHAR) AS updated_at FROM ${t(table)} ORDER BY id`,
      );
      return rows.map((r) => ({ ...r, id: Number(r.id) })) as unknown as StoredRow[];
    },
    async count(table) {
      const [r] = await exec(`SELECT COUNT(*) AS n FROM ${t(table)}`);
      return Number(r?.n);
    },
    source(options) {
      const s = mysqlSource({ ...options, url: config.location });
      handles.push(s);
      return s;
    },
    destination(options) {
      const d = mysqlDestination({ ...options, url: config.location });
      handles.push(d);
      return d;
    },
    store() {
      const s = sqlite({ file: join(dir, "store.db") });
      stores.push(s);
      return s;
    },
    async stallOn(table, id) {
      await exec(
        `CREATE TRIGGER pb_stall BEFORE INSERT ON ${t(table)} FOR EACH ROW BEGIN IF NEW.id = ${Number(id)} THEN DO SLEEP(60); END IF; END`,
      );
    },
    async waitForStall() {
      await poll("a writer stalled in SLEEP", async () => {
        const [r] = await exec(
          `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE = 'User sleep'`,
          [database],
        );
        return Number(r?.n) > 0;
      });
    },
    async clearStall(table) {
      const sleeping = await exec(
        `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE = 'User sleep'`,
        [database],
      );
      for (const s of sleeping) await exec(`KILL ${Number(s.id)}`).catch(() => undefined);
      await exec(`DROP TRIGGER IF EXISTS pb_stall`);
      void table;
    },
    async cleanup() {
      await Promise.allSettled(handles.map((h) => h.close()));
      await Promise.allSettled(stores.map((s) => s.close()));
      const admin = await mysql.createConnection({ uri: server });
      const sleeping = await admin.query(
        `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE = 'User sleep'`,
        [database],
      );
      for (const s of sleeping[0] as Array<{ id: number }>)
        await admin.query(`KILL ${Number(s.id)}`).catch(() => undefined);
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
      await pool?.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function sqliteSyncDb(existing?: SyncDbConfig): SyncDb {
  const dir = existing?.location ?? mkdtempSync(join(tmpdir(), "patchbay-sync-"));
  const config: SyncDbConfig = { kind: "sqlite", location: dir };
  const file = join(dir, "data.db");
  const db = new DatabaseSync(file, { timeout: 5000 });
  db.exec("PRAGMA journal_mode = WAL");
  const exec = (text: string, params: unknown[] = []) => {
    const stmt = db.prepare(text);
    const args = params as Parameters<typeof stmt.run>;
    return Promise.resolve(
      stmt.columns().length > 0 ? (stmt.all(...args) as Record<string, unknown>[]) : (stmt.run(...args), []),
    );
  };
  const t = (name: string) => `"${name}"`;
  /** Runs `fn` in one transaction (node:sqlite has no transaction helper). */
  const inTransaction = (fn: () => void) => {
    db.exec("BEGIN IMMEDIATE");
    try {
      fn();
      db.exec("COMMIT");
    } catch (e) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw e;
    }
  };
  const nowMicros = () => {
    const row = db
      .prepare("SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS v")
      .get() as { v: number };
    return Promise.resolve(row.v * 1000);
  };
  const iso = (micros: number) => new Date(Math.floor(micros / 1000)).toISOString();
  const stores: SqlStore[] = [];
  const handles: Array<{ close(): Promise<void> }> = [];
  return {
    kind: "sqlite",
    config,
    child,
    table: (name) => name,
    sqlName: (name) => t(name),
    exec,
    async createTable(name, options = {}) {
      db.exec(
        `CREATE TABLE ${t(name)} (id INTEGER NOT NULL${options.primaryKey === false ? "" : " PRIMARY KEY"}, name TEXT, amount TEXT, updated_at TEXT NOT NULL);
         CREATE INDEX ${t(`${name}_cursor`)} ON ${t(name)} (updated_at, id);`,
      );
      return Promise.resolve();
    },
    nowMicros,
    async insert(table, rows) {
      const now = await nowMicros();
      const stmt = db.prepare(`INSERT INTO ${t(table)} (id, name, amount, updated_at) VALUES (?, ?, ?, ?)`);
      inTransaction(() => {
        for (const r of rows) stmt.run(r.id, r.name, r.amount, iso(stamp(now, r)));
      });
    },
    async update(table, ids, name, age = 0) {
      const ts = iso((await nowMicros()) - Math.round(age * 1_000_000));
      const stmt = db.prepare(`UPDATE ${t(table)} SET name = ?, updated_at = ? WHERE id = ?`);
      inTransaction(() => {
        for (const id of ids) stmt.run(name, ts, id);
      });
    },
    remove(table, ids) {
      const stmt = db.prepare(`DELETE FROM ${t(table)} WHERE id = ?`);
      inTransaction(() => {
        for (const id of ids) stmt.run(id);
      });
      return Promise.resolve();
    },
    rows: (table) =>
      Promise.resolve(
        db
          .prepare(`SELECT id, name, amount, updated_at FROM ${t(table)} ORDER BY id`)
          .all() as unknown as StoredRow[],
      ),
    count: (table) =>
      Promise.resolve((db.prepare(`SELECT count(*) AS n FROM ${t(table)}`).get() as { n: number }).n),
    source(options) {
      const s = sqliteSource({ ...options, file });
      handles.push(s);
      return s;
    },
    destination(options) {
      const d = sqliteDestination({ ...options, file });
      handles.push(d);
      return d;
    },
    store() {
      const s = sqlite({ file: join(dir, "store.db") });
      stores.push(s);
      return s;
    },
    stallOn(table, id) {
      // A trigger that burns CPU inside the writer's transaction (SQLite cannot sleep in SQL).
      db.exec(`CREATE TABLE IF NOT EXISTS pb_burn (n INTEGER);
        CREATE TRIGGER pb_stall AFTER INSERT ON ${t(table)} WHEN NEW.id = ${Number(id)} BEGIN
          INSERT INTO pb_burn SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT x FROM c);
        END;`);
      return Promise.resolve();
    },
    async waitForStall() {
      // The stalled writer holds the write lock: a write transaction of ours cannot start.
      // Busy on 20 probes in a row (a second): the stalled writer, not an ordinary batch passing
      // by (on a loaded machine a batch's commit can wait on the disk for a few hundred ms).
      const probe = new DatabaseSync(file, { timeout: 0 });
      let busy = 0;
      try {
        await poll("a writer inside a transaction", () => {
          try {
            probe.exec("BEGIN IMMEDIATE; ROLLBACK;");
            busy = 0;
          } catch {
            busy++;
          }
          return Promise.resolve(busy >= 20);
        });
      } finally {
        probe.close();
      }
    },
    clearStall() {
      db.exec("DROP TRIGGER IF EXISTS pb_stall");
      return Promise.resolve();
    },
    async cleanup() {
      await Promise.allSettled(handles.map((h) => h.close()));
      await Promise.allSettled(stores.map((s) => s.close()));
      db.close();
      if (!existing) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Rebuilds a database's handles from its config (in the SIGKILL child). */
export function syncDbFromConfig(config: SyncDbConfig): SyncDb {
  if (config.kind === "postgres") return postgresSyncDb(config.location, config);
  if (config.kind === "mysql") return mysqlSyncDb(config.location, config);
  return sqliteSyncDb(config);
}
