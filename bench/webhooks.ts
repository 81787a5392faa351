/**
 * Webhooks benchmark: signed deliveries per second to a local keep-alive receiver (a separate
 * process on loopback), beside a raw `fetch` loop at the same concurrency — the limit: the same
 * receiver, body size and number of requests in flight, with no signing, no SSRF check, no store.
 *
 * Rows:
 * - limit: `fetch` (undici, keep-alive), C requests in flight;
 * - reference: the same through `http.request` with a keep-alive agent (what our connector uses);
 * - send path: our sender (HMAC signing, SSRF address check, pinned keep-alive connection,
 *   timeout, bounded response read), C in flight;
 * - durable: the delivery worker draining N due deliveries from the store (claim with lease and
 *   per-endpoint limits, send, record attempt + outcome in group commits), endpoint concurrency C;
 * - end to end: N events published on the bus, fanned out and delivered.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { postgres } from "../src/adapters/postgres/index.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { createEventBus } from "../src/bus/bus.js";
import { localTransport } from "../src/bus/local-transport.js";
import { systemClock } from "../src/core/clock.js";
import { defineEvent } from "../src/core/events.js";
import type { StandardSchemaV1 } from "../src/core/schema.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { createHttpConnector } from "../src/webhooks/connector.js";
import { generateSecret } from "../src/webhooks/secrets.js";
import { createSender } from "../src/webhooks/sender.js";
import { createTargetPolicy } from "../src/webhooks/ssrf.js";
import { createWebhooks } from "../src/webhooks/webhooks.js";

const C = Number(process.env.BENCH_CONCURRENCY ?? 16);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURABLE = Number(process.env.BENCH_DELIVERIES ?? 3000);
const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const data = { orderId: "o-12345", total: 42.5, currency: "EUR", note: "x".repeat(120) };
const body = JSON.stringify({ type: "order.paid", timestamp: new Date().toISOString(), data });

const RECEIVER = `
const http = require("node:http");
let n = 0;
const server = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => { n++; res.writeHead(200, { "content-type": "text/plain", "content-length": "2" }); res.end("ok"); });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => process.stdout.write(String(server.address().port) + "\\n"));
process.on("message", () => process.send(n));
`;

async function startReceiver(): Promise<{ url: string; proc: ChildProcess; count(): Promise<number> }> {
  const proc = spawn(process.execPath, ["-e", RECEIVER], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  const [chunk] = (await once(proc.stdout!, "data")) as [Buffer];
  const port = Number(chunk.toString().trim());
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    proc,
    count: async () => {
      proc.send("count");
      const [n] = (await once(proc, "message")) as [number];
      return n;
    },
  };
}

async function timed(ops: number, concurrency: number, op: () => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < ops) await op();
    }),
  );
  return ops / ((performance.now() - started) / 1000);
}

async function rawFetch(url: string): Promise<number> {
  const op = async () => {
    const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  };
  await timed(2000, C, op);
  return timed(REQUESTS, C, op);
}

/** The same POST through `http.request` and a keep-alive agent: no signing, no checks. */
async function rawHttp(url: string): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(url);
  const payload = Buffer.from(body);
  const op = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: "POST",
          agent,
          headers: { "content-type": "application/json", "content-length": String(payload.length) },
        },
        (res) => {
          res.resume();
          res.on("end", () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
          );
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  await timed(2000, C, op);
  const rate = await timed(REQUESTS, C, op);
  agent.destroy();
  return rate;
}

async function sendPath(url: string): Promise<number> {
  const connector = createHttpConnector();
  const send = createSender({
    policy: createTargetPolicy({ allow: ["127.0.0.1/32"] }),
    connector: connector.send,
    timeoutMs: 15_000,
    maxPayloadBytes: 1_048_576,
    maxResponseBytes: 2048,
    clock: systemClock,
    userAgent: "bench",
  });
  const secrets = [generateSecret()];
  let id = 0;
  const op = async () => {
    const outcome = await send({ id: `msg_${id++}`, url, body, secrets });
    if (!outcome.ok) throw outcome.error ?? new Error("failed");
  };
  await timed(2000, C, op);
  const rate = await timed(REQUESTS, C, op);
  connector.close();
  return rate;
}

const anything: StandardSchemaV1<typeof data> = {
  "~standard": { version: 1, vendor: "bench", validate: (value) => ({ value: value as typeof data }) },
};
const OrderPaid = defineEvent("order.paid", { version: 1, schema: anything, source: "/bench" });

const count = async (store: SqlStore, status: string) =>
  Number(
    (
      await store.query<{ n: unknown }>(
        `SELECT COUNT(*) AS n FROM ${store.dialect.table("webhook_deliveries")} WHERE status = '${status}'`,
      )
    ).rows[0]?.n ?? 0,
  );

async function waitFor(predicate: () => Promise<boolean>) {
  while (!(await predicate())) await new Promise((r) => setTimeout(r, 20));
}

/** Deliveries/s of the worker draining `DURABLE` due deliveries, and of publish → fan-out → delivered. */
async function durable(makeStore: (name: string) => SqlStore, url: string): Promise<[number, number]> {
  const results: number[] = [];
  for (const mode of ["drain", "end-to-end"] as const) {
    const store = makeStore(mode);
    await store.open();
    const bus = createEventBus({ store, transport: localTransport(store, { pollInterval: "20ms" }) });
    const webhooks = createWebhooks({
      store,
      bus,
      allow: ["127.0.0.1/32"],
      concurrency: C,
      fanOutConcurrency: 8,
      pollInterval: "20ms",
    });
    await bus.start();
    await webhooks.endpoints.create({ url, concurrency: C });
    const publish = async (n: number) => {
      let i = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (i++ < n) await bus.publish(OrderPaid, data);
        }),
      );
    };
    let started: number;
    if (mode === "drain") {
      await publish(DURABLE);
      await waitFor(async () => (await count(store, "pending")) === DURABLE);
      started = performance.now();
      await webhooks.start();
    } else {
      await webhooks.start();
      started = performance.now();
      await publish(DURABLE);
    }
    await waitFor(async () => (await count(store, "delivered")) === DURABLE);
    results.push(DURABLE / ((performance.now() - started) / 1000));
    await webhooks.stop();
    await bus.stop();
    await store.close();
  }
  return results as [number, number];
}

function row(name: string, rate: number, limit: number): string {
  return `| ${name.padEnd(58)} | ${rate.toFixed(0).padStart(7)} | ${(rate / limit).toFixed(2).padStart(7)}× |`;
}

/** Runs the benchmark and prints its table. */
export async function main(): Promise<void> {
  const receiver = await startReceiver();
  const lines = [
    `Webhooks: POSTs of a ${body.length}-byte JSON body to a keep-alive receiver in another process, ${C} in flight;`,
    `send rows: median of ${ROUNDS} interleaved rounds of ${REQUESTS} requests; durable rows: ${DURABLE} deliveries`,
    "",
    `| ${"what".padEnd(58)} | ${"req/s".padStart(7)} | vs limit |`,
    `| ${"-".repeat(58)} | ${"-".repeat(7)} | -------- |`,
  ];
  const dir = mkdtempSync(join(tmpdir(), "patchbay-bench-"));
  const schema = `pb_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  try {
    // Rounds interleaved, medians reported: the machine is shared and its load moves.
    const rounds: Array<[number, number, number]> = [];
    for (let round = 0; round < ROUNDS; round++) {
      rounds.push([await rawFetch(receiver.url), await rawHttp(receiver.url), await sendPath(receiver.url)]);
    }
    const median = (i: 0 | 1 | 2) => rounds.map((r) => r[i]).sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
    const limit = median(0);
    lines.push(row(`limit: raw fetch loop`, limit, limit));
    lines.push(row(`reference: raw http.request loop, keep-alive agent`, median(1), limit));
    lines.push(row(`ours: signed send path`, median(2), limit));
    const [drainSqlite, e2eSqlite] = await durable(
      (name) => sqlite({ file: join(dir, `${name}.db`) }),
      receiver.url,
    );
    lines.push(row(`ours durable, SQLite: worker drains ${DURABLE} deliveries`, drainSqlite, limit));
    lines.push(row(`ours durable, SQLite: publish → fan-out → delivered`, e2eSqlite, limit));
    try {
      await admin.connect();
      const [drainPg, e2ePg] = await durable(
        (name) => postgres({ url: PG_URL, schema: `${schema}_${name.replace(/-/g, "_")}`, max: 10 }),
        receiver.url,
      );
      lines.push(row(`ours durable, PostgreSQL: worker drains ${DURABLE} deliveries`, drainPg, limit));
      lines.push(row(`ours durable, PostgreSQL: publish → fan-out → delivered`, e2ePg, limit));
    } catch (e) {
      lines.push(`| PostgreSQL skipped: ${(e as Error).message} |`);
    }
  } finally {
    receiver.proc.kill();
    rmSync(dir, { recursive: true, force: true });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema}_drain CASCADE`).catch(() => undefined);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema}_end_to_end CASCADE`).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
  lines.push(
    "",
    "No peer column: no maintained Node library delivers Standard Webhooks durably to compare with (Svix is a service); the raw fetch loop is the ceiling.",
  );
  process.stdout.write(lines.join("\n") + "\n");
}
