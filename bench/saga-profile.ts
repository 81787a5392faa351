/**
 * The saga bench's "started here, run at once" row alone (or with `BENCH_PATH=backlog` its
 * "backlog drained by claiming" row), on one backend, for profiling:
 * `BENCH_BACKEND=postgres|sqlite|mariadb npx tsx bench/saga-profile.ts` (add `node --cpu-prof`
 * for a profile). Prints sagas/s, this process's and PostgreSQL's CPU per saga (from /proc), and
 * with `BENCH_COUNT=1` the statements sent per saga by their first words.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import mysql2 from "mysql2/promise";
import { createSagaRunner, defineSaga } from "../src/saga/index.js";
import { postgres } from "../src/adapters/postgres/index.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { mysql } from "../src/adapters/mysql/index.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { backendCpuSeconds } from "./pg-cpu.js";

const SAGAS = Number(process.env.BENCH_SAGAS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const BACKEND = process.env.BENCH_BACKEND ?? "postgres";
/** `direct` (started here, run at once) or `backlog` (started with no worker running, then drained by claiming). */
const PATH = process.env.BENCH_PATH ?? "direct";
const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_URL = process.env.PATCHBAY_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

const order = defineSaga("bench-order", {
  version: 1,
  steps: ["reserve", "charge", "ship", "confirm"].map((name) => ({
    name,
    run: (input: { orderId: string }) => ({ ref: `${name}-${input.orderId}` }),
    ...(name === "confirm" ? {} : { compensate: () => undefined }),
  })),
});

const pgCpu = (app: string) => backendCpuSeconds(PG_URL, app);

let counting = false;
const statements = new Map<string, number>();
const count = (text: string) => {
  if (!counting) return;
  const k = text.replace(/\s+/g, " ").slice(0, 70);
  statements.set(k, (statements.get(k) ?? 0) + 1);
};
if (process.env.BENCH_COUNT === "1") {
  for (const proto of [pg.Client.prototype]) {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the client as `this`
    const query = proto.query as (...args: unknown[]) => unknown;
    proto.query = function (this: unknown, ...args: unknown[]) {
      const first = args[0];
      count(typeof first === "string" ? first : ((first as { text?: string } | null)?.text ?? "?"));
      return query.apply(this, args);
    } as typeof proto.query;
  }
}

async function pool(n: number, concurrency: number, op: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) await op(i);
    }),
  );
}

/** The limit's statement (autocommit single-row INSERT), 5 per saga, with its backends' CPU. */
async function pgRaw(): Promise<string> {
  const app = `sagaraw${process.pid}`;
  const p = new pg.Pool({ connectionString: `${PG_URL}?application_name=${app}`, max: CONCURRENCY });
  const table = `pb_sagaraw_${process.pid}`;
  await p.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, body jsonb NOT NULL)`);
  const write = async (i: number) =>
    void (await p.query(`INSERT INTO ${table} (body) VALUES ($1)`, [`{"ref":"step-${i}"}`]));
  await pool(1000, CONCURRENCY, write);
  const n = SAGAS * 5;
  const cpu0 = process.cpuUsage();
  const pg0 = await pgCpu(app);
  const t0 = performance.now();
  await pool(n, CONCURRENCY, write);
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const pgSecs = (await pgCpu(app)) - pg0;
  await p.query(`DROP TABLE ${table}`);
  await p.end();
  return `raw limit: ${(n / 5 / secs).toFixed(0)} "sagas"/s (5 INSERTs each), CPU µs per 5 own ${((cpu.user + cpu.system) / (n / 5)).toFixed(0)}, PostgreSQL ${((pgSecs * 1e6) / (n / 5)).toFixed(0)}\n`;
}

async function main() {
  let store: SqlStore;
  let cleanup: () => Promise<void>;
  if (BACKEND === "postgres") {
    const schema = `pb_sagaprof_${process.pid}`;
    store = postgres({
      url: `${PG_URL}?application_name=sagaprof${process.pid}`,
      schema,
      max: CONCURRENCY + 2,
    });
    cleanup = async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    };
  } else if (BACKEND === "mariadb") {
    const database = `pb_sagaprof_${process.pid}`;
    const admin = await mysql2.createConnection({ uri: MYSQL_URL });
    await admin.query(`CREATE DATABASE \`${database}\``);
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    store = mysql({ url: url.toString(), max: CONCURRENCY + 2 });
    cleanup = async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    };
  } else {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-sagaprof-"));
    store = sqlite({ file: join(dir, "s.db") });
    cleanup = () => Promise.resolve(rmSync(dir, { recursive: true, force: true }));
  }
  if (BACKEND !== "postgres" && process.env.BENCH_COUNT === "1") {
    const q = store.query.bind(store);
    const t = store.transaction.bind(store);
    store = {
      ...store,
      query: (text, params, o) => (count(text), q(text, params, o)),
      transaction: (fn, o) =>
        t((tx) => {
          count("(transaction)");
          const counted = Object.create(tx) as typeof tx;
          Object.assign(counted, {
            query: (text: string, p?: readonly unknown[]) => (count(text), tx.query(text, p)),
          });
          return fn(counted);
        }, o),
    };
  }
  try {
    const runner = createSagaRunner({ store, sagas: [order], concurrency: CONCURRENCY });
    await runner.start();
    const handle = runner.saga(order);
    const go = (prefix: string, n: number) =>
      pool(n, CONCURRENCY, async (i) => {
        const s = await handle.start({ orderId: String(i) }, { id: `${prefix}${i}` });
        await runner.wait(s.id);
      });
    await go("w", 200);
    /** As bench/saga.ts's backlog row: start them all with no worker, then drain by claiming. */
    const drain = async (prefix: string, n: number) => {
      await runner.stop();
      const starter = createSagaRunner({ store, sagas: [order] });
      await pool(n, CONCURRENCY, async (i) => {
        await starter.saga(order).start({ orderId: String(i) }, { id: `${prefix}${i}` });
      });
      const worker = createSagaRunner({
        store,
        sagas: [order],
        concurrency: CONCURRENCY,
        pollInterval: "20ms",
      });
      // The starts alone: on PostgreSQL a NOTIFY per start once serialized their commits.
      process.stdout.write(
        `backlog: ${n} started in ${(performance.now() - t0).toFixed(0)} ms, then drained\n`,
      );
      await worker.start();
      while ((await worker.count({ status: "running", name: order.name })) > 0) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await worker.stop();
    };
    counting = true;
    const cpu0 = process.cpuUsage();
    const app = `sagaprof${process.pid}`;
    const pg0 = BACKEND === "postgres" ? await pgCpu(app) : NaN;
    const t0 = performance.now();
    await (PATH === "backlog" ? drain("m", SAGAS) : go("m", SAGAS));
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const pgSecs = BACKEND === "postgres" ? (await pgCpu(app)) - pg0 : NaN;
    counting = false;
    await runner.stop();
    const rawLine = BACKEND === "postgres" ? await pgRaw() : "";
    process.stdout.write(rawLine);
    process.stdout.write(
      `${BACKEND} ${PATH}, load ${loadavg()
        .map((n) => n.toFixed(1))
        .join(
          " ",
        )}: ${(SAGAS / secs).toFixed(0)} sagas/s, CPU µs per saga own ${((cpu.user + cpu.system) / SAGAS).toFixed(0)}, PostgreSQL ${((pgSecs * 1e6) / SAGAS).toFixed(0)}\n`,
    );
    for (const [k, v] of [...statements].sort((a, b) => b[1] - a[1])) {
      process.stdout.write(`  ${(v / SAGAS).toFixed(2)} per saga: ${k}\n`);
    }
  } finally {
    await store.close();
    await cleanup();
  }
}
await main();
