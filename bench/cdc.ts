/**
 * CDC benchmark: PostgreSQL logical replication, CHANGES changes (default 200,000: half inserts,
 * half updates, in transactions of 1,000) waiting in each slot's WAL, drained by:
 *
 * - limit: a replication connection decoding the pgoutput stream and doing nothing else;
 * - ours, PG → PG: `changeCapture()` into a PostgreSQL table (merge), position stored with the rows;
 * - ours, PG → bus: `changeEvents()` publishing each change through the store's queue (one
 *   consumer group bound and consuming), position stored in the same transaction.
 *
 * Then the replication lag of each at half its measured rate (a steady load for LAG_SECONDS from
 * LAG_WRITERS connections, each inserting LAG_TX-row transactions on a shared schedule; the rate
 * reached is printed, and flagged when it fell short): per change, from its insert at the source
 * (`clock_timestamp()`, a few ms before its commit) to the moment a poll of the destination every
 * 10 ms sees it committed, or to its delivery to the bus's consumer, p50 and p99. CPU per change is this process's (user + system) over the
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
/** The lag loads: this many connections inserting, each in transactions of LAG_TX rows. */
const LAG_WRITERS = Number(process.env.BENCH_LAG_WRITERS ?? 4);
const LAG_TX = Number(process.env.BENCH_LAG_TX ?? 100);

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
    const stored = async () => {
      // A capture that failed never stores a position: say why instead of waiting forever.
      if (capture.failure || events.failure) throw (capture.failure ?? events.failure) as Error;
      return (await capture.status()).checkpoint !== undefined && (await events.position()) !== undefined;
    };
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
      while (String((await sql(`SELECT status FROM ${schema}.dst WHERE id = 0`))[0]?.status) !== "done") {
        if (capture.failure) throw capture.failure as Error;
        await sleep(20);
      }
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
    // Lag at half the measured rate: LAG_WRITERS connections, each inserting LAG_TX-row
    // transactions on a shared schedule (one connection could not keep up with half the rate).
    // Each lag load marks its rows: the bus's slot also holds the PG lag load's rows, ahead of its own.
    const writers = new pg.Pool({ connectionString: PG_URL, max: LAG_WRITERS });
    const steady = async (status: string, perSecond: number) => {
      const from = nextId;
      const started = performance.now();
      const end = started + LAG_SECONDS * 1000;
      let sent = 0;
      let behind = 0;
      const writer = async () => {
        while (performance.now() < end) {
          const due = ((performance.now() - started) / 1000) * perSecond;
          if (sent + LAG_TX > due) {
            await sleep(Math.max(1, Math.min(20, ((sent + LAG_TX - due) / perSecond) * 1000)));
            continue;
          }
          // Claimed before the await: the writers share the id range and the schedule.
          const first = nextId;
          nextId += LAG_TX;
          sent += LAG_TX;
          if (due - sent > perSecond / 10) behind++;
          await writers.query(
            `INSERT INTO ${schema}.src (id, v, status, total, email) SELECT g, g, $3, 1, 'x' FROM generate_series($1::bigint, $2::bigint) g`,
            [first, first + LAG_TX - 1, status],
          );
        }
      };
      await Promise.all(Array.from({ length: LAG_WRITERS }, writer));
      const seconds = (performance.now() - started) / 1000;
      return { from, to: nextId, target: perSecond, achieved: sent / seconds, behind };
    };
    /**
     * The lag of rows from, to (exclusive): each row's insert at the source (clock_timestamp(), at
     * most a few ms before its commit) to the moment a poll of the destination every 10 ms first
     * sees it committed. Ends when all are seen or after `waitMs` with no progress.
     */
    const watchDestination = (from: number, to: number) => {
      const lags: number[] = [];
      const seen = new Uint8Array(to - from);
      let floor = from; // every id below it was seen
      let stopped = false;
      const done = (async () => {
        let idleSince = performance.now();
        while (!stopped && floor < to) {
          const rows = await sql(`SELECT id, created_ms FROM ${schema}.dst WHERE id >= $1 AND id < $2`, [
            floor,
            to,
          ]);
          const now = Date.now();
          for (const r of rows) {
            const i = Number(r.id) - from;
            if (seen[i]) continue;
            seen[i] = 1;
            lags.push(now - Number(r.created_ms));
            idleSince = performance.now();
          }
          while (floor < to && seen[floor - from]) floor++;
          if (performance.now() - idleSince > 30_000) break;
          await sleep(10);
        }
      })();
      return {
        lags,
        stop: async () => {
          stopped = true;
          await done;
        },
        finished: done,
      };
    };
    // PG → PG: the capture running and caught up first (its start-up is not lag).
    capture.start();
    await sql(`UPDATE ${schema}.src SET status = 'warm' WHERE id = 0`);
    while (String((await sql(`SELECT status FROM ${schema}.dst WHERE id = 0`))[0]?.status) !== "warm") {
      if (capture.failure) throw capture.failure as Error;
      await sleep(20);
    }
    const pgFrom = nextId;
    const pgTarget = rate(toPg) / 2;
    const pgWatch = watchDestination(
      pgFrom,
      pgFrom + Math.ceil((pgTarget * LAG_SECONDS) / LAG_TX + LAG_WRITERS) * LAG_TX,
    );
    const pgLoad = await steady("lag_pg", pgTarget);
    // Only the ids written are waited for.
    await Promise.race([
      (async () => {
        while (
          Number(
            (
              await sql(`SELECT count(*)::int AS c FROM ${schema}.dst WHERE id >= $1 AND id < $2`, [
                pgLoad.from,
                pgLoad.to,
              ])
            )[0]?.c,
          ) <
          pgLoad.to - pgLoad.from
        )
          await sleep(50);
        await sleep(50);
      })(),
      sleep(60_000),
    ]);
    await pgWatch.stop();
    await capture.stop();
    const pgLags = pgWatch.lags;

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
    const busLoad = await steady("lag_bus", rate(toBus) / 2);
    for (let i = 0; i < 600 && busLags.length < busLoad.to - busLoad.from; i++) await sleep(50);
    await lagEvents.close();
    await writers.end();

    const reached = (load: { achieved: number; target: number; behind: number }) =>
      load.achieved >= 0.95 * load.target
        ? ""
        : ` — NOT REACHED: the writers fell behind the schedule ${load.behind} times`;
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
      `lag loads (${LAG_WRITERS} connections, ${LAG_TX}-row transactions, ${LAG_SECONDS} s): PG → PG ${fmt(pgLoad.achieved)} of ${fmt(pgLoad.target)} changes/s asked${reached(pgLoad)} (${fmt(pgLags.length)} of ${fmt(pgLoad.to - pgLoad.from)} changes seen), PG → bus ${fmt(busLoad.achieved)} of ${fmt(busLoad.target)} changes/s${reached(busLoad)} (${fmt(busLags.length)} of ${fmt(busLoad.to - busLoad.from)} changes delivered; ${fmt(delivered)} events delivered in all)`,
      `lag: from the insert at the source (a few ms before its commit) to the row seen committed at the destination (a poll every 10 ms), or to the delivery to the bus consumer; CPU: this process only (the server's walsender and writes are not counted)`,
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
