/**
 * The fidelity matrix (issue 20): one fixture of hostile values — JSON of every shape, 64-bit
 * integers at the edges, decimals of 20+ significant digits, instants and wall-clock times at
 * microsecond precision before 1970 and after 2038, NULL beside empty, control characters,
 * binary — sent through every source × destination pair (PostgreSQL, MariaDB, SQLite) and read
 * back value by value. Each pair runs twice:
 * - plain: no transform (PostgreSQL → PostgreSQL is a COPY pass-through), the adapters' own pools;
 * - transformed: a transform copies each row, and the connections come from the user's pools.
 * The sessions are never in UTC: the PostgreSQL database's default zone is America/New_York
 * (`ALTER DATABASE … SET timezone`, as a server default would be), and the user's MariaDB pool
 * opens its sessions at +02:00.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { mysqlDestination, mysqlSource } from "../src/adapters/mysql/index.js";
import { postgresDestination, postgresSource } from "../src/adapters/postgres/index.js";
import { sqlite, sqliteDestination, sqliteSource } from "../src/adapters/sqlite/index.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { mysqlSyncDb, postgresSyncDb, sqliteSyncDb, type SyncDb } from "./support/sync-dbs.js";
import type { Row, SyncDestination, SyncSource } from "../src/sync/contracts.js";
import { pipeline } from "../src/sync/pipeline.js";
import {
  COLUMNS,
  FIXTURE,
  JSON_VALUES,
  comparable,
  differences,
  expected,
  instant,
  mysqlReadSql,
  mysqlTableSql,
  postgresFixtureParams,
  postgresInsertSql,
  postgresReadSql,
  postgresTableSql,
  sqliteReadSql,
  sqliteTableSql,
  type Comparable,
  type Kind,
  createHostileDatabase,
  EXACT_READER_OPTIONS,
  HOSTILE_OUTPUT,
} from "./support/fidelity.js";

const services = inject("services");

// ---------------------------------------------------------------------------------------------
// The three databases: a fixture table `src` in each, destination tables made per test.

type Variant = "plain" | "transformed";

interface Db {
  kind: Kind;
  ready: boolean;
  createTable(name: string): Promise<void>;
  insertFixture(name: string): Promise<void>;
  /** The table's rows in the comparable form, by id. */
  read(name: string): Promise<Comparable[]>;
  source(variant: Variant): SyncSource;
  destination(variant: Variant, table: string): SyncDestination;
  /** The zones of the user's pooled sessions (each taken at once), after a sync used them. */
  userZones(): Promise<string[]>;
  close(): Promise<void>;
}

const handles: Array<{ close(): Promise<void> }> = [];
const track = <T extends { close(): Promise<void> }>(h: T) => (handles.push(h), h);

function postgresDb(baseUrl: string): Db {
  const database = `pb_fid_${randomBytes(4).toString("hex")}`;
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  const dbUrl = url.toString();
  let pool: pg.Pool | undefined;
  /** The user's own pool: sessions in the database's default zone. */
  let userPool: pg.Pool | undefined;
  const q = async (sql: string, params: unknown[] = []) => {
    if (!pool) {
      // Defaults that change how values are written as text: the adapters' own sessions must
      // not depend on them.
      await createHostileDatabase(baseUrl, database, HOSTILE_OUTPUT);
      // The test's reader writes values the standard way (it compares them as text).
      const readerUrl = new URL(dbUrl);
      readerUrl.searchParams.set("options", EXACT_READER_OPTIONS);
      pool = new pg.Pool({ connectionString: readerUrl.toString(), max: 2 });
      pool.on("error", () => undefined);
      await pool.query("CREATE SCHEMA fid");
    }
    return (await pool.query(sql, params)).rows as Record<string, unknown>[];
  };
  return {
    kind: "postgres",
    ready: services.postgres.reachable,
    async createTable(name) {
      await q(postgresTableSql(`fid.${name}`));
    },
    async insertFixture(name) {
      const [zone] = await q("SHOW timezone");
      expect(zone?.TimeZone).toBe("America/New_York");
      for (const r of FIXTURE) {
        await q(postgresInsertSql(`fid.${name}`), postgresFixtureParams(r));
      }
    },
    async read(name) {
      const rows = await q(postgresReadSql(`fid.${name}`));
      return rows.map((r) => comparable(r, true));
    },
    source(variant) {
      return track(
        postgresSource({
          table: "fid.src",
          key: "id",
          ...(variant === "plain" ? { url: dbUrl } : { pool: userPoolOf() }),
        }),
      );
    },
    destination(variant, table) {
      return track(
        postgresDestination({
          table: `fid.${table}`,
          key: "id",
          ...(variant === "plain" ? { url: dbUrl } : { pool: userPoolOf() }),
        }),
      );
    },
    async userZones() {
      const clients = await Promise.all([1, 2, 3].map(() => userPoolOf().connect()));
      try {
        return await Promise.all(
          clients.map(
            async (c) => (await c.query<{ TimeZone: string }>("SHOW TimeZone")).rows[0]?.TimeZone ?? "",
          ),
        );
      } finally {
        for (const c of clients) c.release();
      }
    },
    async close() {
      await userPool?.end();
      await pool?.end();
      const admin = new pg.Client({ connectionString: baseUrl });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    },
  };
  function userPoolOf() {
    if (!userPool) {
      userPool = new pg.Pool({ connectionString: dbUrl, max: 3 });
      userPool.on("error", () => undefined);
    }
    return userPool;
  }
}

/** What the user's MariaDB sessions are set to besides their zone (+02:00), as MariaDB reads them back. */
const MYSQL_USER_SETTINGS = {
  sql_mode:
    "REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI,NO_BACKSLASH_ESCAPES,PAD_CHAR_TO_FULL_LENGTH,EMPTY_STRING_IS_NULL",
  autocommit: 0,
  results: "latin1",
};
const MYSQL_USER_SESSION = `time_zone = '+02:00', sql_mode = '${MYSQL_USER_SETTINGS.sql_mode}', autocommit = 0, character_set_results = 'latin1'`;

function mysqlDb(baseUrl: string): Db {
  const database = `pb_fid_${randomBytes(4).toString("hex")}`;
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  const dbUrl = url.toString();
  const server = new URL(baseUrl);
  server.pathname = "/";
  let pool: mysql.Pool | undefined;
  let userPool: mysql.Pool | undefined;
  const q = async (sql: string, params: unknown[] = []) => {
    if (!pool) {
      const admin = await mysql.createConnection({ uri: server.toString() });
      await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
      await admin.end();
      // The test's own reader and writer: UTC sessions, exact text for everything.
      pool = mysql.createPool({
        uri: dbUrl,
        connectionLimit: 2,
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
        jsonStrings: true,
      });
      pool.pool.on("connection", (c) => c.query("SET time_zone = '+00:00'"));
    }
    const [rows] = await pool.query(sql, params);
    return (Array.isArray(rows) ? rows : []) as Record<string, unknown>[];
  };
  const utc = (instant: string | null) => instant && instant.replace("T", " ").replace("Z", "");
  /** An instant's UTC wall-clock text, from its µs. */
  const utcWall = (text: string | null) => {
    if (text === null) return null;
    const micros = BigInt(instant(text));
    const seconds = micros >= 0n ? micros / 1_000_000n : -((-micros + 999_999n) / 1_000_000n);
    const date = new Date(Number(seconds) * 1000);
    const fraction = String(micros - seconds * 1_000_000n).padStart(6, "0");
    return `${date.toISOString().slice(0, 19).replace("T", " ")}.${fraction}`;
  };
  return {
    kind: "mysql",
    ready: services.mysql.reachable,
    async createTable(name) {
      await q(mysqlTableSql(name));
    },
    async insertFixture(name) {
      for (const r of FIXTURE) {
        await q(`INSERT INTO ${name} (${COLUMNS.join(", ")}) VALUES (?)`, [
          [
            r.id,
            r.j,
            r.jb,
            r.i64,
            r.num,
            r.dbl,
            utc(r.ts),
            utc(r.tsx),
            r.dt,
            utcWall(r.utc_wall),
            r.txt,
            r.flag,
            r.bin,
          ],
        ]);
      }
    },
    async read(name) {
      const rows = await q(mysqlReadSql(name));
      return rows.map((r) => comparable(r, false));
    },
    source(variant) {
      return track(
        mysqlSource({
          table: "src",
          key: "id",
          ...(variant === "plain" ? { url: dbUrl } : { pool: userPoolOf() }),
        }),
      );
    },
    destination(variant, table) {
      return track(
        mysqlDestination({
          table,
          key: "id",
          ...(variant === "plain" ? { url: dbUrl } : { pool: userPoolOf() }),
        }),
      );
    },
    async userZones() {
      const conns = await Promise.all([1, 2, 3].map(() => userPoolOf().getConnection()));
      try {
        return await Promise.all(
          conns.map(async (c) => {
            const [rows] = await c.query(
              "SELECT @@session.time_zone AS tz, @@session.sql_mode AS sql_mode, @@session.autocommit AS autocommit, @@session.character_set_results AS results",
            );
            // The settings as the user's pool left them, apart from the zone.
            const settings = (rows as Array<Record<string, unknown>>)[0];
            const { tz, ...rest } = settings ?? {};
            expect(rest).toEqual(MYSQL_USER_SETTINGS);
            return String(tz);
          }),
        );
      } finally {
        for (const c of conns) c.release();
      }
    },
    async close() {
      await userPool?.end();
      await pool?.end();
      const admin = await mysql.createConnection({ uri: server.toString() });
      await admin.query(`DROP DATABASE IF EXISTS ${database}`);
      await admin.end();
    },
  };
  /**
   * The user's own pool, made the way mysql2's README makes one, its sessions set the way an
   * application (or a server's defaults) might: at +02:00, with the SQL modes that change what a
   * statement means, autocommit off, results in latin1.
   */
  function userPoolOf() {
    if (!userPool) {
      userPool = mysql.createPool({ uri: dbUrl, connectionLimit: 3 });
      userPool.pool.on("connection", (c) => c.query(`SET ${MYSQL_USER_SESSION}`));
    }
    return userPool;
  }
}

function sqliteDb(dir: string): Db {
  const file = join(dir, "data.db");
  const db = new DatabaseSync(file, { timeout: 5000 });
  db.exec("PRAGMA journal_mode = WAL");
  return {
    kind: "sqlite",
    ready: true,
    createTable(name) {
      db.exec(sqliteTableSql(name));
      return Promise.resolve();
    },
    insertFixture(name) {
      const insert = db.prepare(
        `INSERT INTO ${name} (${COLUMNS.join(", ")}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const r of FIXTURE) {
        insert.run(
          r.id,
          r.j,
          r.jb,
          r.i64 === null ? null : BigInt(r.i64),
          r.num,
          r.dbl,
          r.ts,
          r.tsx,
          r.dt,
          r.utc_wall,
          r.txt,
          r.flag === null ? null : r.flag ? 1 : 0,
          r.bin,
        );
      }
      return Promise.resolve();
    },
    read(name) {
      const select = db.prepare(sqliteReadSql(name));
      select.setReadBigInts(true);
      return Promise.resolve(select.all().map((r) => comparable(r as Record<string, unknown>, false)));
    },
    source: () => track(sqliteSource({ file, table: "src", key: "id" })),
    destination: (_variant, table) => track(sqliteDestination({ file, table, key: "id" })),
    userZones: () => Promise.resolve([]),
    close() {
      db.close();
      return Promise.resolve();
    },
  };
}

describe("Sync fidelity matrix: every source × destination, values compared exactly", () => {
  const dir = mkdtempSync(join(tmpdir(), "patchbay-fidelity-"));
  const dbs: Record<Kind, Db> = {
    postgres: postgresDb(services.postgres.url),
    mysql: mysqlDb(services.mysql.url),
    sqlite: sqliteDb(dir),
  };
  const jsonb = new Map<string, string>();
  let store: SqlStore;

  beforeAll(async () => {
    store = sqlite({ file: join(dir, "store.db") });
    for (const db of Object.values(dbs)) {
      if (!db.ready) continue;
      await db.createTable("src");
      await db.insertFixture("src");
    }
    if (services.postgres.reachable) {
      const client = new pg.Client({ connectionString: services.postgres.url });
      await client.connect();
      for (const text of JSON_VALUES) {
        if (text === null) continue;
        const { rows } = await client.query<{ v: string }>("SELECT $1::jsonb::text AS v", [text]);
        jsonb.set(text, rows[0]?.v as string);
      }
      await client.end();
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(handles.splice(0).map((h) => h.close()));
    await store?.close();
    await Promise.allSettled(
      Object.values(dbs)
        .filter((d) => d.ready)
        .map((d) => d.close()),
    );
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  for (const kind of ["postgres", "mysql", "sqlite"] as const) {
    it.skipIf(!dbs[kind].ready)(
      `${kind}: the fixture table holds every value exactly (the readers are exact)`,
      async () => {
        const want = FIXTURE.map((r) =>
          expected(r, jsonb, kind, kind === "postgres" ? "postgres" : "sqlite"),
        );
        expect(differences(await dbs[kind].read("src"), want)).toEqual([]);
      },
    );
  }

  for (const from of ["postgres", "mysql", "sqlite"] as const) {
    for (const to of ["postgres", "mysql", "sqlite"] as const) {
      for (const variant of ["plain", "transformed"] as const) {
        const name = `${from} → ${to}, ${variant === "plain" ? "no transform, own pools" : "a transform, the user's pools"}`;
        it.skipIf(!dbs[from].ready || !dbs[to].ready)(`${name}: every value arrives exactly`, async () => {
          const table = `dst_${from}_${variant}`;
          await dbs[to].createTable(table);
          const p = pipeline(`fidelity_${from}_${to}_${variant}`, {
            store,
            source: dbs[from].source(variant),
            destination: dbs[to].destination(variant, table),
            mode: "full",
            batchSize: 5,
            ...(variant === "transformed" ? { transform: (row: Row) => ({ ...row }) } : {}),
          });
          const report = await p.run();
          expect(report.status).toBe("succeeded");
          expect(report.rowsQuarantined).toBe(0);
          expect(report.rowsWritten).toBe(FIXTURE.length);
          const want = FIXTURE.map((r) => expected(r, jsonb, from, to));
          expect(differences(await dbs[to].read(table), want)).toEqual([]);
          if (variant === "transformed") {
            // The user's sessions got their own zones back.
            const zone = { postgres: "America/New_York", mysql: "+02:00", sqlite: "" };
            for (const kind of new Set([from, to])) {
              const zones = await dbs[kind].userZones();
              expect(zones).toEqual(zones.map(() => zone[kind]));
            }
          }
        });
      }
    }
  }
});

describe("SQLite destination: numbers a numeric column cannot hold exactly", () => {
  it("quarantines the row (SYNC_VALUE_INEXACT) instead of storing a rounded REAL; exact values load", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-fidelity-affinity-"));
    const file = join(dir, "data.db");
    const db = new DatabaseSync(file);
    const store = sqlite({ file: join(dir, "store.db") });
    const source = sqliteSource({ file, table: "src", key: "id" });
    const destination = sqliteDestination({ file, table: "dst", key: "id" });
    try {
      db.exec(`CREATE TABLE src (id INTEGER PRIMARY KEY, num TEXT, r INTEGER);
        CREATE TABLE dst (id INTEGER PRIMARY KEY, num DECIMAL(40,20), r DOUBLE)`);
      const rows: Array<[number, string | null, bigint | null]> = [
        [1, "12345678901234567890.123456789012345678", null],
        [2, "1.5", null],
        [3, "9223372036854775807", null],
        [4, "0.1000000000000000055511151231257827", null],
        [5, "123456789012345.6", null],
        [6, "not a number", null],
        [7, "99999999999999999999", null],
        [8, null, 9007199254740993n],
        [9, "-0.25e2", 9007199254740992n],
      ];
      const insert = db.prepare("INSERT INTO src (id, num, r) VALUES (?, ?, ?)");
      for (const r of rows) insert.run(...r);
      const p = pipeline("fidelity_affinity", { store, source, destination, mode: "full", batchSize: 4 });
      const report = await p.run();
      expect(report.rowsQuarantined).toBe(4);
      expect(report.rowsWritten).toBe(5);

      const loaded = db.prepare("SELECT id, num, typeof(num) AS t, r FROM dst ORDER BY id");
      loaded.setReadBigInts(true);
      expect(loaded.all().map((r) => ({ ...r }))).toEqual([
        { id: 2n, num: 1.5, t: "real", r: null },
        { id: 3n, num: 9223372036854775807n, t: "integer", r: null },
        { id: 5n, num: 123456789012345.6, t: "real", r: null },
        { id: 6n, num: "not a number", t: "text", r: null },
        { id: 9n, num: -25n, t: "integer", r: 9007199254740992 },
      ]);
      const quarantined = db
        .prepare("SELECT reason, error, row_data FROM patchbay_sync_quarantine ORDER BY id")
        .all() as Array<{ reason: string; error: string; row_data: string }>;
      expect(quarantined.map((q) => [q.reason, (JSON.parse(q.error) as { code: string }).code])).toEqual(
        Array.from({ length: 4 }, () => ["value", "SYNC_VALUE_INEXACT"]),
      );
      expect(quarantined.map((q) => (JSON.parse(q.row_data) as { id: number }).id)).toEqual([1, 4, 7, 8]);
      expect(JSON.parse(quarantined[0]?.error ?? "{}")).toEqual({
        code: "SYNC_VALUE_INEXACT",
        message:
          'column "num" (DECIMAL(40,20), NUMERIC affinity) would store 12345678901234567890.123456789012345678 as the REAL 12345678901234567000; declare it TEXT to keep the exact text',
      });
      expect((JSON.parse(quarantined[0]?.row_data ?? "{}") as { num: string }).num).toBe(
        "12345678901234567890.123456789012345678",
      );
    } finally {
      await source.close();
      await destination.close();
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Narrow destination columns: a value the column would round is quarantined, never stored changed", () => {
  const narrow: Record<
    "postgres" | "mysql",
    { ready: boolean; db: () => SyncDb; ddl: string; read: string }
  > = {
    postgres: {
      ready: services.postgres.reachable,
      db: () => postgresSyncDb(services.postgres.url),
      ddl: "(id integer PRIMARY KEY, amount numeric(12,2), at timestamp(3), ratio double precision)",
      read: "SELECT id, amount::text AS amount, to_char(at, 'YYYY-MM-DD HH24:MI:SS.MS') AS at, ratio::text AS ratio FROM {t} ORDER BY id",
    },
    mysql: {
      ready: services.mysql.reachable,
      db: () => mysqlSyncDb(services.mysql.url),
      ddl: "(id INT PRIMARY KEY, amount DECIMAL(12,2), at DATETIME(3), ratio DOUBLE) ENGINE=InnoDB",
      read: "SELECT id, CAST(amount AS CHAR) AS amount, CAST(at AS CHAR) AS at, CAST(ratio AS CHAR) AS ratio FROM {t} ORDER BY id",
    },
  };
  for (const [kind, spec] of Object.entries(narrow)) {
    it.skipIf(!spec.ready)(`${kind}: numeric(12,2), a millisecond timestamp and a double`, async () => {
      const from = sqliteSyncDb();
      const to = spec.db();
      try {
        await from.exec("CREATE TABLE narrow (id INTEGER PRIMARY KEY, amount TEXT, at TEXT, ratio TEXT)");
        const rows: Array<[number, string, string, string | null]> = [
          [1, "1.005", "2026-01-01 00:00:00.123000", null],
          [2, "1.50", "2026-01-01 00:00:00.123400", null],
          [3, "12345678901.5", "2026-01-01 00:00:00", null],
          [4, "-0.25", "2026-01-01 00:00:00.5", "0.1"],
          [5, "3", "1969-12-31 23:59:59.999", null],
          [6, "1", "2026-01-01 00:00:00", "0.1000000000000000055511151231257827"],
          [7, "99999999.99", "2026-01-01 00:00:00", "1234567890123456"],
        ];
        for (const r of rows) await from.exec("INSERT INTO narrow VALUES (?, ?, ?, ?)", r);
        await to.exec(`CREATE TABLE ${to.sqlName("narrow")} ${spec.ddl}`);
        const p = pipeline(`narrow_${kind}`, {
          store: from.store(),
          source: from.source({ table: "narrow", key: "id" }),
          destination: to.destination({ table: "narrow", key: "id" }),
          mode: "full",
        });
        const report = await p.run();
        expect(report.rowsQuarantined).toBe(4);
        expect(report.rowsWritten).toBe(3);
        const loaded = await to.exec(spec.read.replace("{t}", to.sqlName("narrow")));
        expect(
          loaded.map((r) => ({ ...r, id: Number(r.id), ratio: r.ratio === null ? null : Number(r.ratio) })),
        ).toEqual([
          { id: 4, amount: "-0.25", at: "2026-01-01 00:00:00.500", ratio: 0.1 },
          { id: 5, amount: "3.00", at: "1969-12-31 23:59:59.999", ratio: null },
          { id: 7, amount: "99999999.99", at: "2026-01-01 00:00:00.000", ratio: 1234567890123456 },
        ]);
        const quarantined = await to.exec(
          `SELECT row_data, error FROM ${to.sqlName("patchbay_sync_quarantine")} ORDER BY id`,
        );
        expect(
          quarantined.map((q) => [
            (JSON.parse(String(q.row_data)) as { id: number }).id,
            (JSON.parse(String(q.error)) as { code: string; message: string }).code,
            /^column "(\w+)"/.exec((JSON.parse(String(q.error)) as { message: string }).message)?.[1],
          ]),
        ).toEqual([
          [1, "SYNC_VALUE_INEXACT", "amount"],
          [2, "SYNC_VALUE_INEXACT", "at"],
          [3, "SYNC_VALUE_INEXACT", "amount"],
          [6, "SYNC_VALUE_INEXACT", "ratio"],
        ]);
      } finally {
        await from.cleanup();
        await to.cleanup();
      }
    });
  }
});

describe("MariaDB sessions are strict while a sync uses them", () => {
  it.skipIf(!services.mysql.reachable)(
    "a pool whose sessions are not strict: an instant TIMESTAMP cannot hold fails the batch instead of becoming zero",
    async () => {
      const from = sqliteSyncDb();
      const to = mysqlSyncDb(services.mysql.url);
      const userPool = mysql.createPool({ uri: to.config.location, connectionLimit: 2 });
      userPool.pool.on("connection", (c) => c.query("SET sql_mode = ''"));
      const destination = mysqlDestination({ pool: userPool, table: "stamps", key: "id" });
      try {
        await from.exec("CREATE TABLE stamps (id INTEGER PRIMARY KEY, at TEXT)");
        await from.exec("INSERT INTO stamps VALUES (1, '2026-01-01T00:00:00Z'), (2, '1969-07-20T20:17:40Z')");
        await to.exec("CREATE TABLE stamps (id INT PRIMARY KEY, at TIMESTAMP(6) NULL DEFAULT NULL)");
        const p = pipeline("strict_mysql", {
          store: from.store(),
          source: from.source({ table: "stamps", key: "id" }),
          destination,
          mode: "full",
        });
        const error = await p.run().then(
          () => undefined,
          (e: unknown) => e as { code?: string; message?: string },
        );
        expect(error?.code).toBe("QUERY_FAILED");
        expect(error?.message).toMatch(/Incorrect datetime value/);
        expect(await to.exec("SELECT COUNT(*) AS n FROM stamps")).toEqual([{ n: 0 }]);
        // The pool's sessions got their own mode back.
        const [mode] = (await userPool.query("SELECT @@session.sql_mode AS m"))[0] as Array<{ m: string }>;
        expect(mode?.m).toBe("");
      } finally {
        await destination.close();
        await userPool.end();
        await from.cleanup();
        await to.cleanup();
      }
    },
  );
});

describe("MariaDB source in UTC: the upper bound of a zone-less cursor", () => {
  it.skipIf(!services.mysql.reachable)(
    "a DATETIME cursor written in the pool's own zone (-05:00) is bounded by that zone's clock, not UTC's",
    async () => {
      const from = mysqlSyncDb(services.mysql.url);
      await from.exec("SELECT 1"); // creates the database
      const to = sqliteSyncDb();
      const userPool = mysql.createPool({ uri: from.config.location, connectionLimit: 2 });
      userPool.pool.on("connection", (c) => c.query("SET time_zone = '-05:00'"));
      const source = mysqlSource({ pool: userPool, table: "events", cursor: "at", key: "id", safetyLag: 0 });
      try {
        // The application writes local times (NOW() in its -05:00 sessions): one now, one an hour
        // ahead (a clock running ahead, or a transaction's time still to come).
        await userPool.query("CREATE TABLE events (id INT PRIMARY KEY, at DATETIME(6) NOT NULL)");
        await userPool.query(
          // 2 s: the bound also stays 1.1 s behind the clock (innodb_trx's cache and precision).
          "INSERT INTO events VALUES (1, NOW(6) - INTERVAL 2 SECOND), (2, NOW(6) + INTERVAL 1 HOUR)",
        );
        await to.exec("CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT)");
        const p = pipeline("bound_mysql", {
          store: to.store(),
          source,
          destination: to.destination({ table: "events", key: "id" }),
          mode: "incremental",
        });
        const report = await p.run();
        expect(report.rowsRead).toBe(1);
        expect((await to.exec("SELECT id FROM events")).map((r) => Number(r.id))).toEqual([1]);
      } finally {
        await source.close();
        await userPool.end();
        await from.cleanup();
        await to.cleanup();
      }
    },
  );
});

describe("MariaDB source on its own pool", () => {
  it.skipIf(!services.mysql.reachable)(
    "reads in sessions pinned to UTC and one strict SQL mode",
    async () => {
      const from = mysqlSyncDb(services.mysql.url);
      await from.exec("SELECT 1"); // creates the database
      const to = sqliteSyncDb();
      try {
        await to.exec("CREATE TABLE session (id INTEGER PRIMARY KEY, tz TEXT, mode TEXT)");
        const p = pipeline("session_mysql", {
          store: to.store(),
          source: mysqlSource({
            url: from.config.location,
            query: "SELECT 1 AS id, @@session.time_zone AS tz, @@session.sql_mode AS mode",
            key: "id",
          }),
          destination: to.destination({ table: "session", key: "id" }),
          mode: "full",
        });
        await p.run();
        const [row] = await to.exec("SELECT tz, mode FROM session");
        expect(row?.tz).toBe("+00:00");
        // One mode, whatever the server's default: strict, and none that changes what SQL means.
        expect(row?.mode).toBe("STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION");
      } finally {
        await from.cleanup();
        await to.cleanup();
      }
    },
  );
});

describe("maxQuarantined counts the rows a destination refuses", () => {
  it("fails the run with SYNC_QUARANTINE_LIMIT once refused values pass the limit", async () => {
    const db = sqliteSyncDb();
    try {
      await db.exec("CREATE TABLE src (id INTEGER PRIMARY KEY, num TEXT)");
      await db.exec("CREATE TABLE dst (id INTEGER PRIMARY KEY, num NUMERIC)");
      for (let id = 1; id <= 6; id++) {
        await db.exec("INSERT INTO src VALUES (?, ?)", [
          id,
          id % 2 ? `${id}.00000000000000000001` : String(id),
        ]);
      }
      const p = pipeline("limit_value", {
        store: db.store(),
        source: db.source({ table: "src", key: "id" }),
        destination: db.destination({ table: "dst", key: "id" }),
        mode: "full",
        batchSize: 3,
        maxQuarantined: 2,
      });
      const error = await p.run().then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      );
      expect(error?.code).toBe("SYNC_QUARANTINE_LIMIT");
      // The first batch (ids 1-3: 1 and 3 refused) stayed within the limit and committed; the
      // second and last (4-6: 5 refused) passed it: written (the destination refused the row while
      // writing it), and the run failed after it instead of succeeding.
      expect((await db.exec("SELECT id FROM dst ORDER BY id")).map((r) => Number(r.id))).toEqual([2, 4, 6]);
    } finally {
      await db.cleanup();
    }
  });
});
