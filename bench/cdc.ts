/**
 * CDC benchmark: PostgreSQL logical replication, CHANGES changes (default 200,000: half inserts,
 * half updates, in transactions of 1,000) waiting in each slot's WAL, drained by:
 *
 * - limit: a replication connection decoding the pgoutput stream and doing nothing else;
 * - ours, PG → PG: `changeCapture()` into a PostgreSQL table (merge), position stored with the rows;
 * - ours, PG → bus: `changeEvents()` publishing each change through the store's queue (one
 *   consumer group bound and consuming), position stored in the same transaction.
 *
 * Then the replication lag of each at half its measured rate (a steady load of 50-row
 * transactions for LAG_SECONDS): per change, from its insert at the source (`clock_timestamp()`)
 * to its write at the destination (a column defaulting to `clock_timestamp()`) or to its delivery
 * to the bus's consumer, p50 and p99. CPU per change is this process's (user + system) over the
 * changes; the server's walsender and writes are not in it. Sequin's published figure is quoted,
 * not measured here. The machine is shared: ratios to the same-run limit, and the load average.
 */
import { loadavg } from "node:os";
import pg from "pg";
import { postgres, postgresChanges, postgresDestination } from "../src/adapters/postgres/index.js";
import { PgOutputDecoder } from "../src/adapters/postgres/cdc/pgoutput.js";
import { ReplicationConnection } from "../src/adapters/postgres/cdc/replication.js";
import { parseLsn } from "../src/adapters/postgres/cdc/lsn.js";
import { createEventBus } from "../src/bus/bus.js";
import { changeCapture } from "../src/cdc/change-capture.js";
import { changeEvents, defaultChangeEvent } from "../src/cdc/change-events.js";

const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const CHANGES = Number(process.env.BENCH_CHANGES ?? 200_000);
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 10);
/** The bus drain is cut after this long (it is far slower than the others): its rate is what it published. */
const BUS_SECONDS = Number(process.env.BENCH_BUS_SECONDS ?? 60);
const TX = 1000;

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

interface Drain {
  changes: number;
  seconds: number;
  cpuMsPerChange: number;
}

async function timed(changes: number, fn: () => Promise<void>): Promise<Drain> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await fn();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { changes, seconds, cpuMsPerChange: (used.user + used.system) / 1000 / changes };
}

export async function main(): Promise<void> {
  const id = `${process.pid}`;
  const schema = `pb_bench_cdc_${id}`;
  const meta = `${schema}_pb`;
  const slots = {
    raw: `pb_bench_raw_${id}`,
    pg: `pb_bench_pg_${id}`,
    bus: `pb_bench_bus_${id}`,
    busLag: `pb_bench_buslag_${id}`,
  };
  const publication = `pb_bench_cdc_${id}`;
  const db = new pg.Pool({ connectionString: PG_URL, max: 4 });
  const sql = async (text: string, params: unknown[] = []) =>
    (await db.query<Record<string, unknown>>(text, params)).rows;
  const nowMs = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
  await sql(`CREATE SCHEMA ${schema}`);
  const columns = `id bigint PRIMARY KEY, v int NOT NULL, status text NOT NULL, total numeric(12,2) NOT NULL,
    email text NOT NULL, created_ms bigint NOT NULL DEFAULT ${nowMs}`;
  await sql(`CREATE TABLE ${schema}.src (${columns})`);
  await sql(`CREATE TABLE ${schema}.dst (${columns}, applied_ms bigint DEFAULT ${nowMs})`);
  await sql(`INSERT INTO ${schema}.src (id, v, status, total, email) VALUES (0, 0, 'start', 0, 'm')`);
  const store = postgres({ url: PG_URL, schema: meta });
  const source = (slot: string) =>
    postgresChanges({ url: PG_URL, slot, publication, tables: [`${schema}.src`], snapshot: false });
  const capture = changeCapture({
    name: `bench_cdc_${id}`,
    store,
    source: source(slots.pg),
    destination: postgresDestination({ url: PG_URL, table: `${schema}.dst`, key: "id" }),
    restartDelay: "200ms",
  });
  const bus = createEventBus({ store });
  // The lag of the steady load, seen by the consumer: its insert at the source to its delivery.
  // 32 handlers in flight, as in the bus bench: one would measure its own backlog, not the lag.
  const busLags: number[] = [];
  let delivered = 0;
  bus.subscribe(`${schema}.src.*`, { group: "bench", transaction: false, concurrency: 32 }, (event) => {
    delivered++;
    const row = event.data as { status?: string; created_ms?: string };
    if (row.status === "lag_bus") busLags.push(Date.now() - Number(row.created_ms));
    return Promise.resolve();
  });
  // Counts the changes handed to the outbox (a batch's count before its commit: one batch early at most).
  let mapped = 0;
  const events = changeEvents({
    name: `bench_cdc_ev_${id}`,
    bus,
    source: source(slots.bus),
    map: (change) => (mapped++, defaultChangeEvent(change)),
    restartDelay: "200ms",
  });
  let raw: ReplicationConnection | undefined;
  try {
    // The slots first (empty table), so the load below waits in each one's WAL.
    raw = await ReplicationConnection.open(PG_URL);
    await sql(`CREATE PUBLICATION ${publication} FOR TABLE ${schema}.src`);
    await raw.createSlot(slots.raw);
    await raw.end();
    await bus.start();
    capture.start();
    events.start();
    const stored = async () =>
      (await capture.status()).checkpoint !== undefined && (await events.position()) !== undefined;
    while (!(await stored())) await sleep(100);
    await capture.stop();
    await events.stop();

    const loadStarted = performance.now();
    let nextId = 1;
    for (let done = 0; done < CHANGES / 2; done += TX) {
      await sql(
        `INSERT INTO ${schema}.src (id, v, status, total, email)
           SELECT g, g, 'new', (g % 100000) / 7.0, 'customer' || (g % 10000) || '@example.com' FROM generate_series($1::bigint, $2::bigint) g`,
        [nextId, nextId + TX - 1],
      );
      nextId += TX;
    }
    for (let at = 1; at < nextId; at += TX)
      await sql(`UPDATE ${schema}.src SET v = v + 1, status = 'paid' WHERE id BETWEEN $1 AND $2`, [
        at,
        at + TX - 1,
      ]);
    const beforeMarker = parseLsn(String((await sql("SELECT pg_current_wal_lsn()::text AS l"))[0]?.l));
    await sql(`UPDATE ${schema}.src SET status = 'done' WHERE id = 0`);
    const total = CHANGES + 1;
    process.stderr.write(
      `load: ${fmt(total)} changes written in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s\n`,
    );

    const limit = await timed(total, () => drainRaw(slots.raw, publication, total));
    process.stderr.write(`limit: ${limit.seconds.toFixed(2)} s\n`);
    const toPg = await timed(total, async () => {
      capture.start();
      while (String((await sql(`SELECT status FROM ${schema}.dst WHERE id = 0`))[0]?.status) !== "done")
        await sleep(20);
      await capture.stop();
    });
    process.stderr.write(`PG → PG: ${toPg.seconds.toFixed(2)} s\n`);
    mapped = 0;
    const busDrain = await timed(total, async () => {
      events.start();
      const until = performance.now() + BUS_SECONDS * 1000;
      while (performance.now() < until) {
        const cursor = (await events.position()) as { lsn?: string } | undefined;
        if (cursor?.lsn && parseLsn(cursor.lsn) > beforeMarker) break;
        await sleep(20);
      }
      await events.stop();
    });
    const toBus = {
      ...busDrain,
      changes: Math.min(total, mapped),
      cpuMsPerChange: (busDrain.cpuMsPerChange * total) / Math.max(1, Math.min(total, mapped)),
    };
    process.stderr.write(`PG → bus: ${toBus.seconds.toFixed(2)} s\n`);
    if (capture.failure || events.failure) throw (capture.failure ?? events.failure) as Error;

    const rate = (d: Drain) => d.changes / d.seconds;
    // Lag at half the measured rate.
    // Each lag load marks its rows: the bus's slot also holds the PG lag load's rows, ahead of its own.
    const steady = async (status: string, perSecond: number, run: () => void, stop: () => Promise<void>) => {
      const from = nextId;
      run();
      const per = 50;
      const started = performance.now();
      let sent = 0;
      while (performance.now() - started < LAG_SECONDS * 1000) {
        const due = ((performance.now() - started) / 1000) * perSecond;
        if (sent + per <= due) {
          await sql(
            `INSERT INTO ${schema}.src (id, v, status, total, email) SELECT g, g, $3, 1, 'x' FROM generate_series($1::bigint, $2::bigint) g`,
            [nextId, nextId + per - 1, status],
          );
          nextId += per;
          sent += per;
        } else await sleep(2);
      }
      return { from, to: nextId, stop, achieved: sent / LAG_SECONDS };
    };
    const pgLoad = await steady(
      "lag_pg",
      rate(toPg) / 2,
      () => capture.start(),
      () => capture.stop(),
    );
    while (
      Number(
        (await sql(`SELECT count(*)::int AS c FROM ${schema}.dst WHERE id >= $1`, [pgLoad.from]))[0]?.c,
      ) <
      pgLoad.to - pgLoad.from
    )
      await sleep(50);
    await pgLoad.stop();
    const pgLags = (
      await sql(`SELECT applied_ms - created_ms AS lag FROM ${schema}.dst WHERE id >= $1 AND id < $2`, [
        pgLoad.from,
        pgLoad.to,
      ])
    ).map((r) => Number(r.lag));

    // The bus's lag load alone: a slot of its own from now on (the first one still holds what
    // its time box left), and the queued backlog the consumer has not reached yet dropped.
    const lagEvents = changeEvents({
      name: `bench_cdc_lag_${id}`,
      bus,
      source: source(slots.busLag),
      restartDelay: "200ms",
    });
    lagEvents.start();
    while ((await lagEvents.position()) === undefined) await sleep(50);
    await sql(`DELETE FROM ${meta}.bus_jobs`);
    const busLoad = await steady(
      "lag_bus",
      rate(toBus) / 2,
      () => undefined,
      () => lagEvents.close(),
    );
    for (let i = 0; i < 600 && busLags.length < busLoad.to - busLoad.from; i++) await sleep(50);
    await busLoad.stop();

    const line = (what: string, d: Drain, lag: number[] | undefined) =>
      `| ${what.padEnd(44)} | ${fmt(rate(d)).padStart(9)} | ${(rate(d) / rate(limit)).toFixed(2).padStart(6)}× | ${(d.cpuMsPerChange * 1000).toFixed(1).padStart(8)} µs | ${lag ? `${pct(lag, 50)} / ${pct(lag, 99)} ms` : "—"} |`;
    const lines = [
      `CDC: PostgreSQL logical replication, ${fmt(total)} changes (inserts and updates, ${fmt(TX)} per transaction) drained from each slot; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(", ")} (2 cores, shared)`,
      "",
      `| ${"what".padEnd(44)} | ${"changes/s".padStart(9)} | vs limit | CPU/change  | lag p50 / p99 at half rate |`,
      `| ${"-".repeat(44)} | ${"-".repeat(9)} | -------- | ----------- | -------------------------- |`,
      line("limit: decode pgoutput, do nothing", limit, undefined),
      line("ours: changeCapture PG → PG (merge)", toPg, pgLags),
      line("ours: changeEvents PG → bus (1 group)", toBus, busLags),
      `| ${"Sequin (published, not measured here)".padEnd(44)} | ${">50,000".padStart(9)} |    —     |      —      | p99 253 ms                 |`,
      "",
      `lag loads: PG → PG ${fmt(pgLoad.achieved)} changes/s for ${LAG_SECONDS} s (${fmt(pgLags.length)} changes), PG → bus ${fmt(busLoad.achieved)} changes/s (${fmt(busLags.length)} of ${fmt(busLoad.to - busLoad.from)} changes delivered; ${fmt(delivered)} events delivered in all)`,
      `lag: from the insert at the source to the write at the destination (PG), or to the delivery to the bus consumer; CPU: this process only (the server's walsender and writes are not counted)`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await capture.close().catch(() => undefined);
    await events.close().catch(() => undefined);
    await bus.stop().catch(() => undefined);
    await store.close().catch(() => undefined);
    await raw?.end();
    for (const slot of Object.values(slots)) {
      for (let i = 0; i < 25; i++) {
        try {
          await sql(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
            [slot],
          );
          break;
        } catch {
          await sleep(200);
        }
      }
    }
    await sql(`DROP PUBLICATION IF EXISTS ${publication}`).catch(() => undefined);
    await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${meta} CASCADE`).catch(
      () => undefined,
    );
    await db.end();
  }
}

/** The limit: stream the slot, decode every message, count the changes, nothing else. */
async function drainRaw(slot: string, publication: string, total: number): Promise<void> {
  const repl = await ReplicationConnection.open(PG_URL);
  const decoder = new PgOutputDecoder();
  let seen = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const stream = repl.start(slot, publication, 0n, (frame) => {
    if (frame.kind !== "xlog") return;
    const msg = decoder.decode(frame.data);
    if (msg.tag === "insert" || msg.tag === "update" || msg.tag === "delete") {
      if (++seen === total) finish();
    }
  });
  await Promise.race([finished, stream.done]);
  await stream.stop();
  await repl.end();
  if (seen < total) throw new Error(`limit: the stream ended after ${seen} of ${total} changes`);
}
