/**
 * The store bench's PostgreSQL row, A/B: raw pg, ours, and ours without named statements
 * (`prepareStatements: false`), interleaved rounds, with the CPU of each one's PostgreSQL
 * backends (by application_name, from /proc) per committed write. `BENCH_OPS`, `BENCH_ROUNDS`.
 */
import { loadavg } from "node:os";
import pg from "pg";
import { postgres } from "../src/adapters/postgres/index.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { backendCpuSeconds } from "./pg-cpu.js";

const OPS = Number(process.env.BENCH_OPS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const C = 8;
const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const value = { cursor: "2026-11-26T10:00:00.000Z", id: 123456, note: "x".repeat(100) };
const schema = `pb_storeprof_${process.pid}`;

const backendCpu = (app: string) => backendCpuSeconds(PG_URL, app);

async function timed(op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      for (let i = next++; i < OPS; i = next++) await op(i);
    }),
  );
  return OPS / ((performance.now() - t) / 1000);
}

const admin = new pg.Client({ connectionString: PG_URL });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
try {
  const rawPool = new pg.Pool({ connectionString: `${PG_URL}?application_name=raw${process.pid}`, max: C });
  await rawPool.query(
    `CREATE TABLE ${schema}.raw_state (key text COLLATE "C" PRIMARY KEY, value jsonb NOT NULL, version integer NOT NULL, updated_at bigint NOT NULL)`,
  );
  const raw = async (i: number) => {
    const c = await rawPool.connect();
    try {
      await c.query("BEGIN");
      await c.query(
        `INSERT INTO ${schema}.raw_state AS s (key, value, version, updated_at) VALUES ($1, $2, 1, $3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = s.version + 1, updated_at = excluded.updated_at RETURNING key, value, version, updated_at`,
        [`k/${i % 500}`, JSON.stringify(value), Date.now()],
      );
      await c.query("COMMIT");
    } finally {
      c.release();
    }
  };
  const stores: Record<string, SqlStore> = {
    ours: postgres({ url: `${PG_URL}?application_name=ours${process.pid}`, schema, max: C }),
    unprepared: postgres({
      url: `${PG_URL}?application_name=unprepared${process.pid}`,
      schema,
      max: C,
      prepareStatements: false,
    }),
  };
  const ops: Record<string, (i: number) => Promise<void>> = { raw };
  for (const [name, store] of Object.entries(stores)) {
    await store.open();
    ops[name] = (i) => store.transaction(async (tx) => void (await tx.state.set(`k/${i % 500}`, value)));
  }
  if (process.env.BENCH_ONLY)
    for (const k of Object.keys(ops)) if (k !== process.env.BENCH_ONLY) delete ops[k];
  const results: Record<string, { rate: number; cpu: number; own: number }[]> = {};
  for (const op of Object.values(ops)) await timed(op);
  for (let r = 0; r < ROUNDS; r++) {
    const names = Object.keys(ops);
    for (const name of r % 2 ? names.reverse() : names) {
      const app = `${name}${process.pid}`;
      const c0 = await backendCpu(app);
      const own0 = process.cpuUsage();
      const rate = await timed(ops[name]!);
      const own1 = process.cpuUsage(own0);
      const cpu = (((await backendCpu(app)) - c0) * 1e6) / OPS;
      (results[name] ??= []).push({ rate, cpu, own: (own1.user + own1.system) / OPS });
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `load ${loadavg()
      .map((n) => n.toFixed(1))
      .join(" ")}\n`,
  );
  for (const [name, rs] of Object.entries(results)) {
    process.stdout.write(
      `${name.padEnd(11)} writes/s ${med(rs.map((x) => x.rate)).toFixed(0)} (${rs.map((x) => x.rate.toFixed(0)).join(" ")}), vs raw per round ${rs.map((x, i) => (x.rate / (results.raw?.[i]?.rate ?? NaN)).toFixed(2)).join(" ")}; CPU µs/write: own ${med(rs.map((x) => x.own)).toFixed(0)}, backend ${med(rs.map((x) => x.cpu)).toFixed(0)}\n`,
    );
  }
  await rawPool.end();
  for (const s of Object.values(stores)) await s.close();
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
}
