/**
 * Saga benchmark: a 4-step saga (steps that return a small JSON result) run to completion
 * through the durable runner, beside the limit — the raw driver committing the same number of
 * single-row transactions the runner commits per saga. Two ways in: sagas started in the
 * process that runs them (handed straight to a worker), and a backlog drained by claiming.
 * Store work is counted through a wrapper: commits per saga, row writes per step.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import mysql2 from "mysql2/promise";
import pg from "pg";
import { mysql } from "../src/adapters/mysql/index.js";
import { postgres } from "../src/adapters/postgres/index.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { createSagaRunner, defineSaga } from "../src/saga/index.js";
import type { QueryOptions } from "../src/store/contracts.js";
import type { SqlStore } from "../src/store/sql-store.js";

const SAGAS = Number(process.env.BENCH_SAGAS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_URL = process.env.PATCHBAY_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
const STEPS = 4;
/** Which backends to measure (`BENCH_SAGA_BACKENDS=mariadb,postgres`): all by default. */
const BACKENDS = new Set(
  (process.env.BENCH_SAGA_BACKENDS ?? "sqlite,postgres,mariadb")
    .split(",")
    .map((b) => b.trim().toLowerCase())
    .filter(Boolean),
);

const order = defineSaga("bench-order", {
  version: 1,
  steps: ["reserve", "charge", "ship", "confirm"].map((name) => ({
    name,
    run: (input: { orderId: string }) => ({ ref: `${name}-${input.orderId}` }),
    ...(name === "confirm" ? {} : { compensate: () => undefined }),
  })),
});

/** Counts commits: each transaction, and each write statement run on its own (autocommit). */
function counting(store: SqlStore): { store: SqlStore; commits: () => number; reset(): void } {
  let commits = 0;
  const writes = /^\s*(INSERT|UPDATE|DELETE|WITH)/i;
  const wrapped: SqlStore = {
    ...store,
    query: async <Row>(text: string, params?: readonly unknown[], options?: QueryOptions) => {
      if (writes.test(text)) commits++;
      return store.query<Row>(text, params, options); // options too: the prepare hint
    },
    transaction: (fn, options) => {
      commits++;
      return store.transaction(fn, options);
    },
  };
  return { store: wrapped, commits: () => commits, reset: () => void (commits = 0) };
}

/** Rows inserted, updated or deleted so far, as the database counts them. */
type RowCounter = (store: SqlStore) => Promise<number>;

const sqliteRows: RowCounter = async (store) =>
  Number((await store.query<{ n: unknown }>("SELECT total_changes() AS n")).rows[0]?.n);

/** PostgreSQL's table statistics; a backend reports them when it ends, so read after closing the store. */
const pgRows =
  (admin: pg.Client, schema: string): RowCounter =>
  async () => {
    await new Promise((r) => setTimeout(r, 300));
    await admin.query("SELECT pg_stat_clear_snapshot()");
    const { rows } = await admin.query<{ n: string }>(
      "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname LIKE 'saga%'",
      [schema],
    );
    return Number(rows[0]?.n);
  };

/** MariaDB counts rows written only server-wide (other clients' too): not reported. */
const unknownRows: RowCounter = () => Promise.resolve(NaN);

async function pool(n: number, concurrency: number, op: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) await op(i);
    }),
  );
}

interface Result {
  rate: number;
  commitsPerSaga: number;
  writesPerStep: number;
}

/**
 * One measured phase on a fresh store: `run` gets the counting store and returns the seconds it
 * timed; commits and rows written cover everything `run` did, the sagas' starts included.
 */
async function phase(
  makeStore: () => SqlStore,
  rows: RowCounter,
  run: (store: SqlStore) => Promise<number>,
): Promise<Result> {
  const base = makeStore();
  await base.open();
  const before = await rows(base);
  const counted = counting(base);
  const seconds = await run(counted.store);
  const commits = counted.commits();
  const sqliteAfter = base.dialect.name === "sqlite" ? await rows(base) : undefined;
  await base.close();
  const after = sqliteAfter ?? (await rows(base));
  return {
    rate: SAGAS / seconds,
    commitsPerSaga: commits / SAGAS,
    writesPerStep: (after - before) / (SAGAS * STEPS),
  };
}

/** Sagas started here, each caller waiting for its saga to finish (the runner's hot path). */
async function direct(store: SqlStore, prefix: string): Promise<number> {
  const runner = createSagaRunner({ store, sagas: [order], concurrency: CONCURRENCY });
  await runner.start();
  const handle = runner.saga(order);
  const started = performance.now();
  await pool(SAGAS, CONCURRENCY, async (i) => {
    const s = await handle.start({ orderId: String(i) }, { id: `${prefix}${i}` });
    await runner.wait(s.id);
  });
  const seconds = (performance.now() - started) / 1000;
  await runner.stop();
  return seconds;
}

/** A backlog: sagas started while no worker runs (elsewhere, or before a restart), then drained by claiming. */
async function backlog(store: SqlStore, prefix: string): Promise<number> {
  const started = performance.now();
  const starter = createSagaRunner({ store, sagas: [order] });
  await pool(SAGAS, CONCURRENCY, async (i) => {
    await starter.saga(order).start({ orderId: String(i) }, { id: `${prefix}${i}` });
  });
  const runner = createSagaRunner({ store, sagas: [order], concurrency: CONCURRENCY, pollInterval: "20ms" });
  await runner.start();
  while ((await runner.count({ status: "running", name: order.name })) > 0) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const seconds = (performance.now() - started) / 1000;
  await runner.stop();
  return seconds;
}

/** A few sagas first, so the first measured ones do not pay for warming up. */
async function warmUp(store: SqlStore): Promise<number> {
  const runner = createSagaRunner({ store, sagas: [order], concurrency: CONCURRENCY });
  await runner.start();
  await pool(
    100,
    CONCURRENCY,
    async (i) => void (await runner.wait((await runner.saga(order).start({ orderId: `w${i}` })).id)),
  );
  await runner.stop();
  return 1;
}

/** Single-row commits per second through the raw driver: the ceiling of any durable step. */
function sqliteRaw(file: string, transactions: number): number {
  const db = new DatabaseSync(file);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("CREATE TABLE raw (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  // Each statement in autocommit mode: its own transaction and commit (an fsync with sync=FULL).
  const insert = db.prepare("INSERT INTO raw (body) VALUES (?)");
  const started = performance.now();
  for (let i = 0; i < transactions; i++) insert.run(`{"ref":"step-${i}"}`);
  const rate = transactions / ((performance.now() - started) / 1000);
  db.close();
  return rate;
}

async function pgRaw(schema: string, table: string, transactions: number): Promise<number> {
  const p = new pg.Pool({ connectionString: PG_URL, max: CONCURRENCY });
  await p.query(`CREATE TABLE ${schema}.${table} (id bigserial PRIMARY KEY, body jsonb NOT NULL)`);
  // One statement in autocommit mode: its own transaction, one round trip, one commit.
  const write = async (i: number) =>
    void (await p.query(`INSERT INTO ${schema}.${table} (body) VALUES ($1)`, [`{"ref":"step-${i}"}`]));
  await pool(200, CONCURRENCY, write);
  const started = performance.now();
  await pool(transactions, CONCURRENCY, write);
  const rate = transactions / ((performance.now() - started) / 1000);
  await p.end();
  return rate;
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);
function row(what: string, r: Result | { rate: number; commitsPerSaga: number }, limit: number): string {
  const writes = "writesPerStep" in r && Number.isFinite(r.writesPerStep) ? fmt(r.writesPerStep, 2) : "—";
  return `| ${what.padEnd(66)} | ${fmt(r.rate).padStart(7)} | ${fmt(r.commitsPerSaga, 2).padStart(12)} | ${writes.padStart(15)} | ${fmt(r.rate / limit, 2).padStart(7)}× |`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const medianResult = (rs: Result[]): Result => ({
  rate: median(rs.map((r) => r.rate)),
  commitsPerSaga: median(rs.map((r) => r.commitsPerSaga)),
  writesPerStep: median(rs.map((r) => r.writesPerStep)),
});

/**
 * Interleaved rounds of limit, hot path and backlog on one backend (the machine's load drifts;
 * medians of rounds measured side by side compare fairly).
 */
async function backend(
  name: string,
  rawRate: (round: number) => Promise<number>,
  make: () => SqlStore,
  rows: RowCounter,
): Promise<string[]> {
  await phase(make, rows, warmUp);
  const raws: number[] = [];
  const hots: Result[] = [];
  const drains: Result[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raws.push(await rawRate(round));
    hots.push(await phase(make, rows, (store) => direct(store, `d${round}-`)));
    drains.push(await phase(make, rows, (store) => backlog(store, `b${round}-`)));
  }
  const raw = median(raws);
  const hot = medianResult(hots);
  const drained = medianResult(drains);
  const limit = raw / hot.commitsPerSaga;
  return [
    row(
      `${name} limit: raw driver, ${fmt(hot.commitsPerSaga, 2)} single-row commits per saga`,
      { rate: limit, commitsPerSaga: hot.commitsPerSaga },
      limit,
    ),
    row(`${name} ours: started here, run at once`, hot, limit),
    row(`${name} ours: backlog started, then drained by claiming`, drained, raw / drained.commitsPerSaga),
  ];
}

/** The PostgreSQL rows: a schema of its own, dropped after. */
async function postgresql(): Promise<string[]> {
  const schema = `pb_bench_saga_${process.pid}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  try {
    await admin.connect();
  } catch (e) {
    return [`| PostgreSQL unreachable at ${PG_URL.replace(/\/\/[^@]*@/, "//")}: ${(e as Error).message} |`];
  }
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    const rawRate = (round: number) => pgRaw(schema, `raw${round}`, SAGAS * 5);
    const make = () => postgres({ url: PG_URL, schema, max: CONCURRENCY + 2 });
    return await backend("PostgreSQL", rawRate, make, pgRows(admin, schema));
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

/** The MariaDB rows: a database of its own, dropped after. */
async function mariadb(): Promise<string[]> {
  const database = `pb_bench_saga_${process.pid}`;
  let admin: mysql2.Connection;
  try {
    admin = await mysql2.createConnection({ uri: MYSQL_URL });
  } catch (e) {
    return [`| MariaDB unreachable at ${MYSQL_URL.replace(/\/\/[^@]*@/, "//")}: ${(e as Error).message} |`];
  }
  const url = new URL(MYSQL_URL);
  url.pathname = `/${database}`;
  try {
    await admin.query(`CREATE DATABASE \`${database}\``);
    const rawRate = async (round: number) => {
      const p = mysql2.createPool({ uri: url.toString(), connectionLimit: CONCURRENCY });
      await p.query(`CREATE TABLE raw${round} (id BIGINT AUTO_INCREMENT PRIMARY KEY, body JSON NOT NULL)`);
      // One statement in autocommit mode: its own transaction, one round trip, one commit.
      const write = async (i: number) =>
        void (await p.query(`INSERT INTO raw${round} (body) VALUES (?)`, [`{"ref":"step-${i}"}`]));
      await pool(200, CONCURRENCY, write);
      const started = performance.now();
      await pool(SAGAS * 5, CONCURRENCY, write);
      const rate = (SAGAS * 5) / ((performance.now() - started) / 1000);
      await p.end();
      return rate;
    };
    const make = () => mysql({ url: url.toString(), max: CONCURRENCY + 2 });
    return await backend("MariaDB", rawRate, make, unknownRows);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.end();
  }
}

export async function main(): Promise<void> {
  const lines = [
    `Sagas: ${SAGAS} runs of a 4-step saga to completion, ${CONCURRENCY} at once; median of ${ROUNDS} interleaved rounds`,
    "",
    `| ${"what".padEnd(66)} | sagas/s | commits/saga | row writes/step | vs limit |`,
    `| ${"-".repeat(66)} | ------- | ------------ | --------------- | -------- |`,
  ];

  if (BACKENDS.has("sqlite")) {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-bench-saga-"));
    try {
      const file = join(dir, "ours.db");
      const rawRate = (round: number) => Promise.resolve(sqliteRaw(join(dir, `raw${round}.db`), SAGAS * 5));
      lines.push(...(await backend("SQLite", rawRate, () => sqlite({ file }), sqliteRows)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (BACKENDS.has("postgres")) lines.push(...(await postgresql()));
  if (BACKENDS.has("mariadb")) lines.push(...(await mariadb()));
  lines.push(
    "",
    "Limit = raw single-row commits/s (autocommit INSERTs through the driver, same concurrency) ÷ the commits one saga needs. The backlog row's ratio is against its own commit count.",
  );
  process.stdout.write(lines.join("\n") + "\n");
}
