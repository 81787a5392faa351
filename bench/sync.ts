/**
 * Sync benchmark: PostgreSQL → PostgreSQL, ROWS rows (default 1,000,000) of a 7-column orders table.
 *
 * - limit: the raw `COPY src TO STDOUT | COPY dst FROM STDIN` pipe (pg-copy-streams), no parsing at all;
 * - ours: a Patchbay pipeline, incremental mode, merge write with a version guard (keyset pages
 *   over (updated_at, id), COPY into a temp stage, INSERT ... ON CONFLICT, checkpoint per batch);
 * - article: the article's approach: `ORDER BY updated_at OFFSET n LIMIT 1000` pages and one
 *   multi-row `INSERT ... ON CONFLICT DO UPDATE` per page. OFFSET makes it quadratic, so it is run
 *   on the first ARTICLE_ROWS rows (default 200,000) of the same table, and its full time
 *   extrapolated from the page times it measured (page = c + k·offset, summed over all pages).
 *
 * Each approach runs in its own child process on an empty target table, so its peak RSS is its own.
 */
import { spawn } from "node:child_process";

import { pipeline as pump } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import { postgres, postgresDestination, postgresSource } from "../src/adapters/postgres/index.js";
import { pipeline } from "../src/sync/pipeline.js";

const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const ARTICLE_ROWS = Number(process.env.BENCH_ARTICLE_ROWS ?? 200_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 10_000);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const COLUMNS = "id, customer_id, status, total, email, created_at, updated_at";

interface Measure {
  rows: number;
  seconds: number;
  maxRssMb: number;
  /** Article only: page time = c + k·offset, fitted over the pages measured. */
  fit?: { c: number; k: number };
}

/** Least squares of y = c + k·x. */
function linearFit(points: Array<[number, number]>): { c: number; k: number } {
  const n = points.length;
  const sx = points.reduce((a, [x]) => a + x, 0);
  const sy = points.reduce((a, [, y]) => a + y, 0);
  const sxx = points.reduce((a, [x]) => a + x * x, 0);
  const sxy = points.reduce((a, [x, y]) => a + x * y, 0);
  const k = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  return { c: (sy - k * sx) / n, k };
}

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const freshTarget = (schema: string, name: string) =>
  withClient(async (c) => {
    await c.query(`DROP TABLE IF EXISTS ${schema}.${name}`);
    await c.query(`CREATE TABLE ${schema}.${name} (LIKE ${schema}.src INCLUDING ALL)`);
  });

/** Runs one approach in a child process; it prints a JSON Measure. */
function child(approach: string, rows: number, schema: string): Promise<Measure> {
  const file = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", file, "child", approach, String(rows), schema], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.once("exit", (code) => {
      const line = out.trim().split("\n").at(-1) ?? "";
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as Measure);
      else reject(new Error(`${approach} child exited ${code}: ${out}`));
    });
  });
}

async function rawCopy(schema: string, rows: number): Promise<void> {
  const src = new pg.Client({ connectionString: PG_URL });
  const dst = new pg.Client({ connectionString: PG_URL });
  await Promise.all([src.connect(), dst.connect()]);
  try {
    const select = rows >= ROWS ? `${schema}.src` : `(SELECT * FROM ${schema}.src WHERE id <= ${rows})`;
    const out = src.query(copyTo(`COPY ${select} TO STDOUT`));
    const into = dst.query(copyFrom(`COPY ${schema}.dst_raw (${COLUMNS}) FROM STDIN`));
    await pump(out, into);
  } finally {
    await Promise.all([src.end(), dst.end()]);
  }
}

async function ours(schema: string, rows: number): Promise<void> {
  const store = postgres({ url: PG_URL, schema: `${schema}_pb`, max: 2 });
  const p = pipeline(`bench_${rows}_${process.pid}`, {
    store,
    source: postgresSource({
      url: PG_URL,
      ...(rows >= ROWS
        ? { table: `${schema}.src` }
        : { query: `SELECT * FROM ${schema}.src WHERE id <= ${rows}` }),
      cursor: "updated_at",
      key: "id",
      safetyLag: 0,
    }),
    destination: postgresDestination({
      url: PG_URL,
      table: `${schema}.dst_ours`,
      key: "id",
      version: "updated_at",
    }),
    mode: "incremental",
    batchSize: BATCH,
  });
  const report = await p.run();
  if (report.rowsWritten !== rows) throw new Error(`ours wrote ${report.rowsWritten} of ${rows}`);
  await p.close();
  await store.close();
}

async function article(schema: string, rows: number): Promise<{ c: number; k: number }> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  const timings: Array<[number, number]> = [];
  try {
    const page = 1000;
    const since = "1970-01-01";
    for (let offset = 0; offset < rows; offset += page) {
      const started = performance.now();
      const { rows: batch } = await pool.query<Record<string, unknown>>(
        `SELECT ${COLUMNS} FROM ${schema}.src WHERE updated_at > $1 ORDER BY updated_at OFFSET $2 LIMIT $3`,
        [since, offset, Math.min(page, rows - offset)],
      );
      if (batch.length === 0) break;
      const cols = COLUMNS.split(", ");
      const values: unknown[] = [];
      const tuples = batch.map((r, i) => {
        for (const c of cols) values.push(r[c]);
        return `(${cols.map((_, j) => `$${i * cols.length + j + 1}`).join(", ")})`;
      });
      await pool.query(
        `INSERT INTO ${schema}.dst_article (${COLUMNS}) VALUES ${tuples.join(", ")}
         ON CONFLICT (id) DO UPDATE SET ${cols
           .filter((c) => c !== "id")
           .map((c) => `${c} = EXCLUDED.${c}`)
           .join(", ")}`,
        values,
      );
      timings.push([offset, (performance.now() - started) / 1000]);
    }
  } finally {
    await pool.end();
  }
  return linearFit(timings.slice(5)); // the first pages warm caches and connections
}

async function runChild(approach: string, rows: number, schema: string): Promise<void> {
  const started = performance.now();
  let fit: Measure["fit"];
  if (approach === "raw") await rawCopy(schema, rows);
  else if (approach === "ours") await ours(schema, rows);
  else fit = await article(schema, rows);
  const seconds = (performance.now() - started) / 1000;
  const measure: Measure = {
    rows,
    seconds,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    ...(fit ? { fit } : {}),
  };
  process.stdout.write(JSON.stringify(measure) + "\n");
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export async function main(): Promise<void> {
  const schema = `pb_bench_sync_${process.pid}`;
  const started = performance.now();
  await withClient(async (c) => {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`);
    await c.query(
      `CREATE TABLE ${schema}.src (id bigint PRIMARY KEY, customer_id integer NOT NULL, status text NOT NULL,
         total numeric(12,2) NOT NULL, email text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)`,
    );
    await c.query(
      `INSERT INTO ${schema}.src SELECT g, g % 10000, (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4],
         round((g % 100000) / 7.0, 2), 'customer' || (g % 10000) || '@example.com',
         now() - interval '40 days' + g * interval '1 millisecond', now() - interval '30 days' + g * interval '1 millisecond'
       FROM generate_series(1, ${ROWS}) g`,
    );
    await c.query(`CREATE INDEX ON ${schema}.src (updated_at, id)`);
    await c.query(`VACUUM ANALYZE ${schema}.src`);
  });
  process.stderr.write(
    `setup: ${fmt(ROWS)} rows in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  try {
    const results: Record<string, Measure> = {};
    // Raw and ours alternate REPS times and the best of each counts: this machine is shared, and
    // the best run is the one least disturbed by others.
    const runs: Array<[string, number]> = [];
    for (let i = 0; i < REPS; i++) runs.push(["raw", ROWS], ["ours", ROWS]);
    runs.push(["ours", 100_000], ["article", ARTICLE_ROWS]);
    const all: string[] = [];
    const times: Record<string, number[]> = {};
    for (const [approach, rows] of runs) {
      await freshTarget(schema, `dst_${approach}`);
      const m = await child(approach, rows, schema);
      const key = `${approach}@${rows}`;
      const best = results[key];
      if (!best || m.seconds < best.seconds)
        results[key] = { ...m, maxRssMb: Math.max(m.maxRssMb, best?.maxRssMb ?? 0) };
      all.push(`${approach} ${fmt(rows)}: ${m.seconds.toFixed(2)} s`);
      (times[key] ??= []).push(m.seconds);
      process.stderr.write(
        `${approach} ${fmt(rows)} rows: ${m.seconds.toFixed(2)} s, ${m.maxRssMb.toFixed(0)} MB\n`,
      );
    }
    const raw = results[`raw@${ROWS}`] as Measure;
    const mine = results[`ours@${ROWS}`] as Measure;
    const small = results["ours@100000"] as Measure;
    const art = results[`article@${ARTICLE_ROWS}`] as Measure;
    // OFFSET re-reads every earlier row: a page costs c + k·offset. Summed over all pages of ROWS:
    const pages = Math.ceil(ROWS / 1000);
    // A negative slope is noise (OFFSET never gets cheaper): then no growth is assumed, which
    // flatters the article's approach.
    const fitted = art.fit ?? { c: art.seconds / (art.rows / 1000), k: 0 };
    const c = fitted.c;
    const k = art.rows >= ROWS ? 0 : Math.max(0, fitted.k);
    const articleAtRows = art.rows >= ROWS ? art.seconds : pages * c + k * 1000 * ((pages * (pages - 1)) / 2);
    const rate = (m: Measure) => m.rows / m.seconds;
    const median = (xs: number[] = []) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const medianRatio = median(times[`raw@${ROWS}`]) / median(times[`ours@${ROWS}`]);
    const line = (what: string, rowsPerSec: number, rss: string) =>
      `| ${what.padEnd(62)} | ${fmt(rowsPerSec).padStart(9)} | ${(rowsPerSec / rate(raw)).toFixed(2).padStart(6)}× | ${rss.padStart(12)} |`;
    const lines = [
      `Sync: PostgreSQL → PostgreSQL, ${fmt(ROWS)} rows (7 columns), batch ${fmt(BATCH)}, each approach in its own process, best of ${REPS} for the limit and ours`,
      "",
      `| ${"what".padEnd(62)} | ${"rows/s".padStart(9)} | vs COPY | ${"peak RSS".padStart(12)} |`,
      `| ${"-".repeat(62)} | ${"-".repeat(9)} | ------- | ${"-".repeat(12)} |`,
      line(
        `limit: raw COPY TO STDOUT → COPY FROM STDIN pipe (${fmt(ROWS)})`,
        rate(raw),
        `${raw.maxRssMb.toFixed(0)} MB`,
      ),
      line(
        `ours: incremental merge (keyset, COPY, checkpoints) (${fmt(ROWS)})`,
        rate(mine),
        `${mine.maxRssMb.toFixed(0)} MB`,
      ),
      line(`ours: same, 100,000 rows`, rate(small), `${small.maxRssMb.toFixed(0)} MB`),
      line(
        `article: OFFSET pages + INSERT ON CONFLICT (${fmt(ARTICLE_ROWS)} measured)`,
        rate(art),
        `${art.maxRssMb.toFixed(0)} MB`,
      ),
      line(`article: extrapolated to ${fmt(ROWS)} (page time fitted to OFFSET)`, ROWS / articleAtRows, "—"),
      "",
      `ours / raw COPY: ${(rate(mine) / rate(raw)).toFixed(2)}× best of ${REPS}, ${medianRatio.toFixed(2)}× median of ${REPS} (target ≥ 0.70×); ours / article at ${fmt(ROWS)}: ${(rate(mine) / (ROWS / articleAtRows)).toFixed(1)}×`,
      `article: ${fmt(art.rows)} rows measured in ${art.seconds.toFixed(1)} s; page time fitted as ${(c * 1000).toFixed(1)} ms + ${(k * 1e6).toFixed(2)} µs per row of OFFSET, so ${fmt(ROWS)} rows would take ~${articleAtRows.toFixed(0)} s`,
      `all runs: ${all.join("; ")}`,
      `peak RSS of ours: ${small.maxRssMb.toFixed(0)} MB at 100,000 rows, ${mine.maxRssMb.toFixed(0)} MB at ${fmt(ROWS)} rows (batches stream; memory does not grow with the table)`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await withClient((c) =>
      c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${schema}_pb CASCADE`),
    );
  }
}

if (process.argv[2] === "child" && process.argv[1] === fileURLToPath(import.meta.url)) {
  await runChild(process.argv[3] as string, Number(process.argv[4]), process.argv[5] as string);
}
