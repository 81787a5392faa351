/**
 * The console's list pages and filtered counts with 100,000 dead letters and 100,000 saga
 * instances in the store, on SQLite and PostgreSQL: `npx tsx bench/console.ts` (PostgreSQL from
 * PATCHBAY_PG_URL, default the local test database; its own schema, dropped after). Times are
 * the median of 5 requests to the console over loopback HTTP (so they include the HTTP round
 * trip, well under a millisecond here). A benchmark, not a test: it asserts nothing.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { postgres } from "../src/adapters/postgres/index.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { createConsole } from "../src/ops/console.js";
import type { SqlStore } from "../src/store/sql-store.js";

const N = 100_000;
const BATCH = 500;
const GROUPS = ["billing", "email", "inventory", "search", "audit"];
const CODES = ["NON_RETRYABLE", "SCHEMA_INVALID", "WEBHOOK_TIMEOUT", "QUERY_FAILED"];
const STATUSES = ["completed", "completed", "completed", "compensated", "failed", "running"];

async function seed(store: SqlStore): Promise<void> {
  const d = store.dialect;
  const p = (n: number) => (d.placeholders === "numbered" ? `$${n}` : "?");
  const now = Date.now();
  const dl = d.table("bus_dead_letters");
  const si = d.table("saga_instances");
  for (let start = 0; start < N; start += BATCH) {
    const letters: unknown[] = [];
    const sagas: unknown[] = [];
    const lv: string[] = [];
    const sv: string[] = [];
    for (let i = start; i < start + BATCH; i++) {
      const b = letters.length;
      lv.push(`(${Array.from({ length: 11 }, (_, k) => p(b + k + 1)).join(", ")}, 'bench')`);
      letters.push(
        GROUPS[i % GROUPS.length],
        `m-${i}`,
        "order.created",
        `k-${i}`,
        "",
        Buffer.from(
          `{"specversion":"1.0","id":"m-${i}","type":"order.created","source":"/bench","data":{"i":${i}}}`,
        ),
        d.encodeJson({ "content-type": "application/cloudevents+json" }),
        d.encodeJson({ name: "Error", code: CODES[i % CODES.length], message: `failure ${i}` }),
        3,
        now - (N - i) * 1000,
        now - (N - i) * 1000 + 500,
      );
      const s = sagas.length;
      sv.push(`(${Array.from({ length: 10 }, (_, k) => p(s + k + 1)).join(", ")}, 0, NULL, NULL)`);
      sagas.push(
        `s-${i}`,
        i % 2 ? "order" : "refund",
        1,
        d.encodeJson({ orderId: `o-${i}` }),
        STATUSES[i % STATUSES.length],
        1,
        1,
        now - (N - i) * 1000,
        now - (N - i) * 1000,
        now - (N - i) * 1000,
      );
    }
    await store.query(
      `INSERT INTO ${dl} (grp, message_id, type, key, body, body_bytes, headers, error, attempts, first_failed_at, last_failed_at, transport) VALUES ${lv.join(", ")}`,
      letters,
    );
    await store.query(
      `INSERT INTO ${si} (id, name, version, input, status, step, attempt, run_at, created_at, updated_at, claim, owner, failure) VALUES ${sv.join(", ")}`,
      sagas,
    );
  }
}

async function measure(name: string, store: SqlStore): Promise<string[]> {
  await store.open();
  const started = performance.now();
  await seed(store);
  const seeded = Math.round((performance.now() - started) / 1000);
  const handler = createConsole({ store });
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
  const since = new Date(Date.now() - 3_600_000).toISOString();
  // Page 999's `next`: where page 1,000 starts by cursor.
  const page999 = (await (await fetch(base + "dead-letters?limit=50&offset=49900")).json()) as {
    next: string;
  };
  const cursor = encodeURIComponent(page999.next);
  const cases: Array<[string, string]> = [
    ["dead letters: first page + total", "dead-letters?limit=50"],
    [
      "dead letters: group + error code, page + count",
      "dead-letters?group=billing&code=NON_RETRYABLE&limit=50",
    ],
    ["dead letters: last hour, page + count", `dead-letters?since=${since}&limit=50`],
    ["dead letters: page 1,000 (offset 49,950)", "dead-letters?limit=50&offset=49950"],
    ["dead letters: page 1,000 (cursor)", `dead-letters?limit=50&cursor=${cursor}`],
    ["sagas: failed, first page + count", "sagas?status=failed&limit=50"],
    ["sagas: name + status, page + count", "sagas?status=failed&name=order&limit=50"],
    ["sagas: every status, first page + count", "sagas?limit=50"],
    ["overview (all totals)", "overview"],
  ];
  const rows: string[] = [];
  for (const [label, path] of cases) {
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = performance.now();
      const res = await fetch(base + path);
      await res.text();
      if (!res.ok) throw new Error(`${path}: ${res.status}`);
      if (i > 0) times.push(performance.now() - t); // the first warms caches
    }
    times.sort((a, b) => a - b);
    rows.push(`| ${name} | ${label} | ${times[2]!.toFixed(1)} |`);
  }
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await handler.close();
  await store.close();
  process.stderr.write(`${name}: seeded ${N} + ${N} rows in ${seeded}s\n`);
  return rows;
}

const out = ["| store | request | median ms |", "| --- | --- | --- |"];
const dir = mkdtempSync(join(tmpdir(), "patchbay-bench-console-"));
try {
  out.push(...(await measure("SQLite", sqlite({ file: join(dir, "bench.db") }))));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const url = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `pb_bench_${randomBytes(4).toString("hex")}`;
try {
  out.push(...(await measure("PostgreSQL", postgres({ url, schema }))));
} finally {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}
process.stdout.write(out.join("\n") + "\n");
