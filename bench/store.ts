/**
 * Store benchmark: durable checkpoint writes (one state.set per committed transaction) through
 * Patchbay's Store, beside the raw driver doing the same upsert in the same kind of transaction.
 * The raw driver is the limit: Patchbay adds validation, JSON encoding, the transaction guards
 * and (on SQLite) the connection lock on top of it. The same database, settings and row shape.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { postgres } from "../src/adapters/postgres/index.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import type { SqlStore } from "../src/store/sql-store.js";

const OPS = Number(process.env.BENCH_OPS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** SQLite's `synchronous`: FULL (the default, an fsync per commit) or NORMAL (none: the drivers' own cost shows). */
const SYNC = process.env.BENCH_SQLITE_SYNC === "normal" ? "normal" : "full";
const value = { cursor: "2026-11-26T10:00:00.000Z", id: 123456, note: "x".repeat(100) };

async function timed(ops: number, concurrency: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < ops; i = next++) await op(i);
    }),
  );
  return ops / ((performance.now() - started) / 1000);
}

async function ours(store: SqlStore, concurrency: number): Promise<number> {
  await store.open();
  await timed(200, concurrency, (i) =>
    store.transaction(async (tx) => void (await tx.state.set(`w/${i}`, value))),
  );
  return timed(OPS, concurrency, (i) =>
    store.transaction(async (tx) => void (await tx.state.set(`k/${i % 500}`, value))),
  );
}

/** The calls of a synchronous SQLite driver this bench uses (node:sqlite and better-sqlite3 share them). */
interface RawSqlite {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): unknown; all(...params: unknown[]): unknown };
  close(): unknown;
}

/**
 * better-sqlite3, when `BENCH_BETTER_SQLITE3` names a folder where it is installed (it is not a
 * dependency: it compiles from source here, for minutes). Measured to decide the default driver.
 */
function betterSqlite3(): ((file: string) => RawSqlite) | undefined {
  const from = process.env.BENCH_BETTER_SQLITE3;
  if (!from) return undefined;
  const Database = createRequire(join(from, "package.json"))("better-sqlite3") as new (
    file: string,
  ) => RawSqlite;
  return (file) => new Database(file);
}

async function sqliteRaw(db: RawSqlite): Promise<number> {
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${SYNC.toUpperCase()}`);
  db.exec(
    "CREATE TABLE IF NOT EXISTS raw_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID",
  );
  const upsert = db.prepare(
    "INSERT INTO raw_state AS s (key, value, version, updated_at) VALUES (?, ?, 1, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = s.version + 1, updated_at = excluded.updated_at RETURNING key, value, version, updated_at",
  );
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const write = (key: string) => {
    begin.run();
    upsert.all(key, JSON.stringify(value), Date.now());
    commit.run();
    return Promise.resolve();
  };
  await timed(200, 1, (i) => write(`w/${i}`));
  const rate = await timed(OPS, 1, (i) => write(`k/${i % 500}`));
  db.close();
  return rate;
}

async function pgRaw(schema: string, concurrency: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: concurrency });
  await pool.query(
    `CREATE TABLE ${schema}.raw_state (key text COLLATE "C" PRIMARY KEY, value jsonb NOT NULL, version integer NOT NULL, updated_at bigint NOT NULL)`,
  );
  const write = async (key: string) => {
    const c = await pool.connect();
    try {
      await c.query("BEGIN");
      await c.query(
        `INSERT INTO ${schema}.raw_state AS s (key, value, version, updated_at) VALUES ($1, $2, 1, $3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = s.version + 1, updated_at = excluded.updated_at RETURNING key, value, version, updated_at`,
        [key, JSON.stringify(value), Date.now()],
      );
      await c.query("COMMIT");
    } finally {
      c.release();
    }
  };
  await timed(200, concurrency, (i) => write(`w/${i}`));
  const rate = await timed(OPS, concurrency, (i) => write(`k/${i % 500}`));
  await pool.end();
  return rate;
}

function row(name: string, rate: number, limit: number): string {
  return `| ${name.padEnd(58)} | ${rate.toFixed(0).padStart(9)} | ${(rate / limit).toFixed(2).padStart(7)}× |`;
}

export async function main(): Promise<void> {
  const lines = [
    `Store: committed checkpoint writes (state.set in a transaction), ${OPS} ops, ${value.note.length + 60}-byte JSON`,
    "",
    `| ${"what".padEnd(58)} | ${"writes/s".padStart(9)} | vs limit |`,
    `| ${"-".repeat(58)} | ${"-".repeat(9)} | -------- |`,
  ];

  const dir = mkdtempSync(join(tmpdir(), "patchbay-bench-"));
  try {
    const limit = await sqliteRaw(new DatabaseSync(join(dir, "raw.db")));
    const openBetter = betterSqlite3();
    const better = openBetter ? await sqliteRaw(openBetter(join(dir, "raw-better.db"))) : undefined;
    const store = sqlite({ file: join(dir, "ours.db"), synchronous: SYNC });
    const rate = await ours(store, 1);
    await store.close();
    const sync = `sync=${SYNC.toUpperCase()}`;
    lines.push(row(`SQLite limit: raw node:sqlite (${sync})`, limit, limit));
    if (better !== undefined) lines.push(row(`SQLite raw better-sqlite3 13 (${sync})`, better, limit));
    lines.push(row(`SQLite ours: patchbay/sqlite on node:sqlite (${sync})`, rate, limit));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const schema = `pb_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  try {
    await admin.connect();
  } catch (e) {
    lines.push(
      `| PostgreSQL unreachable at ${PG_URL.replace(/\/\/[^@]*@/, "//")}: ${(e as Error).message} |`,
    );
    process.stdout.write(lines.join("\n") + "\n");
    return;
  }
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    const limit = await pgRaw(schema, CONCURRENCY);
    const store = postgres({ url: PG_URL, schema, max: CONCURRENCY });
    const rate = await ours(store, CONCURRENCY);
    await store.close();
    lines.push(row(`PostgreSQL limit: raw pg, ${CONCURRENCY} concurrent`, limit, limit));
    lines.push(row(`PostgreSQL ours: patchbay/postgres, ${CONCURRENCY} concurrent`, rate, limit));
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
  lines.push(
    "",
    "No peer column: no maintained Node library offers transactional checkpoint state on both SQLite and PostgreSQL to compare with; the raw driver is the ceiling.",
  );
  process.stdout.write(lines.join("\n") + "\n");
}
