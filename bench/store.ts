/**
 * Store benchmark: durable checkpoint writes (one state.set per committed transaction) through
 * Patchbay's Store, beside the raw driver doing the same upsert in the same kind of transaction.
 * The raw driver is the limit: Patchbay adds validation, JSON encoding, the transaction guards
 * and (on SQLite) the connection lock on top of it. The same database, settings and row shape.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { postgres } from "../src/adapters/postgres/index.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import type { SqlStore } from "../src/store/sql-store.js";

const OPS = Number(process.env.BENCH_OPS ?? 3000);
/** Rounds of limit and ours measured side by side (alternating which goes first); medians are printed. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
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

/** Warms the store up; then each call of the returned function times one round. */
async function ours(store: SqlStore, concurrency: number): Promise<() => Promise<number>> {
  await store.open();
  await timed(200, concurrency, (i) =>
    store.transaction(async (tx) => void (await tx.state.set(`w/${i}`, value))),
  );
  return () =>
    timed(OPS, concurrency, (i) =>
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

function sqliteRaw(db: RawSqlite): { round: () => Promise<number>; close: () => void } {
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
  let warm = false;
  return {
    async round() {
      if (!warm) await timed(200, 1, (i) => write(`w/${i}`));
      warm = true;
      return timed(OPS, 1, (i) => write(`k/${i % 500}`));
    },
    close: () => void db.close(),
  };
}

async function pgRaw(
  schema: string,
  concurrency: number,
): Promise<{ round: () => Promise<number>; close: () => Promise<void> }> {
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
  return {
    round: () => timed(OPS, concurrency, (i) => write(`k/${i % 500}`)),
    close: () => pool.end(),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;

/** `ROUNDS` rounds of both, alternating which goes first (the machine's load drifts). */
async function interleaved(
  limit: () => Promise<number>,
  ours: () => Promise<number>,
): Promise<{ limits: number[]; ourRates: number[]; ratios: number[] }> {
  const limits: number[] = [];
  const ourRates: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let a: number, b: number;
    if (r % 2 === 0) {
      a = await limit();
      b = await ours();
    } else {
      b = await ours();
      a = await limit();
    }
    limits.push(a);
    ourRates.push(b);
    ratios.push(b / a);
  }
  return { limits, ourRates, ratios };
}

function row(name: string, rates: number[], ratios: number[]): string {
  const ratio = `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
  return `| ${name.padEnd(58)} | ${median(rates).toFixed(0).padStart(9)} | ${range(rates).padStart(11)} | ${ratio.padStart(19)} |`;
}

export async function main(): Promise<void> {
  const load = () =>
    loadavg()
      .map((n) => n.toFixed(1))
      .join(" ");
  const lines = [
    `Store: committed checkpoint writes (state.set in a transaction), ${OPS} ops, ${value.note.length + 60}-byte JSON; median of ${ROUNDS} interleaved rounds (ratio: median of each round's ratio, and its range)`,
    `Load average at the start: ${load()}`,
    "",
    `| ${"what".padEnd(58)} | ${"writes/s".padStart(9)} | ${"range".padStart(11)} | ${"vs limit".padStart(19)} |`,
    `| ${"-".repeat(58)} | ${"-".repeat(9)} | ${"-".repeat(11)} | ${"-".repeat(19)} |`,
  ];

  const dir = mkdtempSync(join(tmpdir(), "patchbay-bench-"));
  try {
    const raw = sqliteRaw(new DatabaseSync(join(dir, "raw.db")));
    const openBetter = betterSqlite3();
    const better = openBetter ? sqliteRaw(openBetter(join(dir, "raw-better.db"))) : undefined;
    const store = sqlite({ file: join(dir, "ours.db"), synchronous: SYNC });
    const ourRound = await ours(store, 1);
    const r = await interleaved(raw.round, ourRound);
    const betterRates: number[] = [];
    if (better) for (let i = 0; i < ROUNDS; i++) betterRates.push(await better.round());
    raw.close();
    better?.close();
    await store.close();
    const sync = `sync=${SYNC.toUpperCase()}`;
    lines.push(row(`SQLite limit: raw node:sqlite (${sync})`, r.limits, [1]));
    if (better) {
      lines.push(
        row(
          `SQLite raw better-sqlite3 13 (${sync})`,
          betterRates,
          betterRates.map((x) => x / median(r.limits)),
        ),
      );
    }
    lines.push(row(`SQLite ours: patchbay/sqlite on node:sqlite (${sync})`, r.ourRates, r.ratios));
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
    const raw = await pgRaw(schema, CONCURRENCY);
    const store = postgres({ url: PG_URL, schema, max: CONCURRENCY });
    const ourRound = await ours(store, CONCURRENCY);
    const r = await interleaved(raw.round, ourRound);
    await raw.close();
    await store.close();
    lines.push(row(`PostgreSQL limit: raw pg, ${CONCURRENCY} concurrent`, r.limits, [1]));
    lines.push(row(`PostgreSQL ours: patchbay/postgres, ${CONCURRENCY} concurrent`, r.ourRates, r.ratios));
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
  lines.push(
    "",
    `Load average at the end: ${load()}`,
    "Targets: SQLite ours ≥ 0.8× its limit, PostgreSQL ours ≥ 0.95× its limit.",
    "No peer column: no maintained Node library offers transactional checkpoint state on both SQLite and PostgreSQL to compare with; the raw driver is the ceiling.",
  );
  process.stdout.write(lines.join("\n") + "\n");
}
