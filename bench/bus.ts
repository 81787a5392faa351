/**
 * Bus benchmark: end-to-end events/s (publish → handler → ack, 1 KiB payload, all in one
 * process) for ours on RabbitMQ beside raw amqplib (the broker's limit), ours on PostgreSQL
 * beside pg-boss and graphile-worker, and ours on SQLite; p50/p99 latency at a fixed moderate
 * rate; and the consumer's peak RSS (in a child process) on a backlog of 10,000 and 200,000.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { createEventBus } from "patchbay";
import { rabbitmq } from "../src/adapters/rabbitmq/index.js";
import { localTransport } from "../src/bus/local-transport.js";
import type { Transport, TransportMessage } from "../src/bus/transport.js";
import { encodeStructured } from "../src/core/envelope.js";
import {
  AMQP_URL,
  BenchEvent,
  benchStore,
  CONCURRENCY,
  contenders,
  deletePrefix,
  type Contender,
} from "./bus-contenders.js";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10000);
const RATE = Number(process.env.BENCH_RATE ?? 200);
/**
 * Events each contender handles before a round is timed: connections, prepared statements, and
 * the JIT. 200 was too few: ours then ran its first ~20,000 events at ~1.5× its steady CPU per
 * event (TurboFan compiling on the side), and raw amqplib its first at ~1.3×.
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3000);
const LATENCY_EVENTS = Number(process.env.BENCH_LATENCY_EVENTS ?? 400);
/** Rounds per contender, interleaved within a group; the table shows the median round. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BACKLOGS = (process.env.BENCH_BACKLOGS ?? "10000,200000")
  .split(",")
  .filter((b) => b.trim() !== "")
  .map(Number);
const RSS_SECONDS = Number(process.env.BENCH_RSS_SECONDS ?? 6);
const blob = "x".repeat(1000);
/** Only the rows whose name contains one of these ("|"-separated: names hold commas); default all. */
const ROWS = process.env.BENCH_ROWS?.split("|");
/** Only these contender groups (comma-separated: rabbitmq, nats, postgres, sqlite, mysql); default all. */
const GROUPS = process.env.BENCH_GROUPS?.split(",");
const CHILD = fileURLToPath(new URL("./bus-rss-child.ts", import.meta.url));
const SCALE_CHILD = fileURLToPath(new URL("./bus-scale-child.ts", import.meta.url));
/** Consumer processes of the scaling rows (one group, one PostgreSQL); empty: no scaling rows. */
const SCALE = (process.env.BENCH_SCALE ?? "1,4")
  .split(",")
  .filter((n) => n.trim() !== "")
  .map(Number);

interface Figures {
  rate: number;
  latencies: number[];
  /** CPU µs per event during the throughput run: this process, RabbitMQ, PostgreSQL. */
  cpu: { own: number; rabbitmq: number; postgres: number };
}

/**
 * CPU seconds used so far by the local processes whose command line matches (from /proc; NaN
 * where /proc or the service is not visible, e.g. a service on another machine).
 */
function serviceCpu(match: (cmdline: string) => boolean): number {
  let ticks = 0;
  let seen = false;
  try {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (!match(readFileSync(`/proc/${pid}/cmdline`, "utf8"))) continue;
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        // utime + stime, and cutime + cstime: what its exited children used (a PostgreSQL
        // backend that ends meanwhile is counted in the postmaster's, not lost from the sum).
        ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
        seen = true;
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return NaN;
  }
  return seen ? ticks / 100 : NaN; // USER_HZ
}
/** The brokers' CPU together: a row exercises one of them (RabbitMQ or nats-server). */
const rabbitmqCpu = () => {
  const [mq, ns] = [
    serviceCpu((c) => c.includes("beam") && c.includes("rabbit")),
    serviceCpu((c) => c.includes("nats-server")),
  ];
  if (!Number.isFinite(mq) && !Number.isFinite(ns)) return NaN;
  return (Number.isFinite(mq) ? mq : 0) + (Number.isFinite(ns) ? ns : 0);
};
/** PostgreSQL's processes: the backends ("postgres: …") and the postmaster (…/bin/postgres), whose cutime holds the backends that ended. */
const postgresCpu = () =>
  serviceCpu((c) => c.startsWith("postgres") || /(^|\/)postgres$/.test(c.split("\0")[0] ?? ""));

/** The element at `p` (0..1) of a sorted list. */
const at = <T>(sorted: readonly T[], p: number): T | undefined =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const percentile = (sorted: number[], p: number) => at(sorted, p) ?? NaN;
const median = <T>(sorted: readonly T[]) => at(sorted, 0.5);

async function waitFor(predicate: () => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function measure(c: Contender): Promise<Figures> {
  let handled = 0;
  const latencies: number[] = [];
  let recordLatency = false;
  const running = await c.open((p) => {
    handled++;
    if (recordLatency) latencies.push(performance.now() - p.sentAt);
  });
  try {
    const publishAll = async (count: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let seq = next++; seq < count; seq = next++) {
            await running.publish({ seq, sentAt: performance.now(), blob });
          }
        }),
      );
    };
    // Warm-up (connections, JIT, prepared plans), then throughput.
    await publishAll(WARMUP);
    await waitFor(() => handled >= WARMUP, 120_000, `${c.name}: warm-up`);
    handled = 0;
    const own0 = process.cpuUsage();
    const [mq0, pg0] = [rabbitmqCpu(), postgresCpu()];
    const started = performance.now();
    await publishAll(EVENTS);
    await waitFor(() => handled >= EVENTS, 300_000, `${c.name}: ${EVENTS} events`);
    const rate = EVENTS / ((performance.now() - started) / 1000);
    const own = process.cpuUsage(own0);
    const cpu = {
      own: (own.user + own.system) / EVENTS,
      rabbitmq: ((rabbitmqCpu() - mq0) * 1e6) / EVENTS,
      postgres: ((postgresCpu() - pg0) * 1e6) / EVENTS,
    };
    // Latency at a fixed rate well below every contender's throughput.
    handled = 0;
    recordLatency = true;
    const t0 = performance.now();
    const sends: Array<Promise<void>> = [];
    for (let seq = 0; seq < LATENCY_EVENTS; seq++) {
      const wait = t0 + (seq * 1000) / RATE - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sends.push(running.publish({ seq, sentAt: performance.now(), blob }));
    }
    await Promise.all(sends);
    await waitFor(() => handled >= LATENCY_EVENTS, 60_000, `${c.name}: latency events`);
    return { rate, latencies, cpu };
  } finally {
    await running.close();
  }
}

async function messages(count: number): Promise<TransportMessage[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, seq) => {
      const event = await BenchEvent.toEnvelope({ seq, sentAt: 0, blob });
      return { id: event.id, type: event.type, body: encodeStructured(event), headers: {} };
    }),
  );
}

async function fill(transport: Transport, backlog: number) {
  await transport.open();
  await transport.bind("bench", ["bench.*"]);
  for (let sent = 0; sent < backlog; sent += 5000) {
    await transport.publish(await messages(Math.min(5000, backlog - sent)));
  }
}

function child(args: Record<string, unknown>): Promise<{ baseline: number; peak: number; handled: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(args)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.once("exit", (code) => {
      try {
        resolve(
          JSON.parse(out.trim().split("\n").pop() ?? "") as {
            baseline: number;
            peak: number;
            handled: number;
          },
        );
      } catch {
        reject(new Error(`memory probe failed (exit ${code}): ${err.slice(-2000)}`));
      }
    });
  });
}

async function memory(kind: "rabbitmq" | "postgres" | "sqlite", backlog: number) {
  const { store, config, drop } = benchStore(kind === "sqlite" ? "sqlite" : "postgres");
  await store.open();
  const prefix = `pb_bench_rss_${process.pid}_${backlog}`;
  const transport = kind === "rabbitmq" ? rabbitmq({ url: AMQP_URL, prefix }) : localTransport(store);
  try {
    const filling = performance.now();
    await fill(transport, backlog);
    const fillSeconds = (performance.now() - filling) / 1000;
    await transport.close();
    const result = await child({
      transport: kind === "rabbitmq" ? "rabbitmq" : "local",
      store: kind === "sqlite" ? "sqlite" : "postgres",
      config,
      prefix,
      seconds: RSS_SECONDS,
    });
    return { ...result, fillSeconds };
  } finally {
    await store.close();
    await drop();
    if (kind === "rabbitmq") await deletePrefix(prefix, ["bench"]);
  }
}

interface ScaleFigures {
  rate: number;
  /** CPU µs per event: the publishing process, the consumer processes together, PostgreSQL. */
  cpu: { publisher: number; consumers: number; postgres: number };
}

/**
 * End to end with the consumers in `processes` child processes of one group (the local transport
 * on one PostgreSQL schema), the publishers (CONCURRENCY, group-committed) in this process.
 */
async function scaling(processes: number): Promise<ScaleFigures> {
  const { store, config, drop } = benchStore("postgres");
  await store.open();
  const children = Array.from({ length: processes }, () =>
    spawn(process.execPath, ["--import", "tsx", SCALE_CHILD, JSON.stringify({ config })], {
      stdio: ["pipe", "pipe", "pipe"],
    }),
  );
  const latest = children.map(() => ({ handled: 0, cpu: 0 }));
  let errors = "";
  const ready = children.map(
    (proc, i) =>
      new Promise<void>((resolve, reject) => {
        let buffer = "";
        proc.stderr.on("data", (d: Buffer) => (errors = (errors + d.toString()).slice(-2000)));
        proc.once("exit", (code) => reject(new Error(`consumer ${i} exited (${code}): ${errors}`)));
        proc.stdout.on("data", (d: Buffer) => {
          buffer += d.toString();
          const lines = buffer.split("\n");
          buffer = lines.pop() ?? "";
          for (const line of lines) {
            if (line === "ready") resolve();
            else if (line.startsWith("{")) latest[i] = JSON.parse(line) as { handled: number; cpu: number };
          }
        });
      }),
  );
  const bus = createEventBus({ store, events: [BenchEvent] });
  try {
    await Promise.all(ready);
    await bus.start();
    const total = () => latest.reduce((sum, l) => sum + l.handled, 0);
    const consumerCpu = () => latest.reduce((sum, l) => sum + l.cpu, 0);
    const publishAll = async (count: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let seq = next++; seq < count; seq = next++) {
            await bus.publish(BenchEvent, { seq, sentAt: performance.now(), blob });
          }
        }),
      );
    };
    await publishAll(WARMUP);
    await waitFor(() => total() >= WARMUP, 120_000, `${processes} consumers: warm-up`);
    const [handled0, consumers0, pg0, own0] = [total(), consumerCpu(), postgresCpu(), process.cpuUsage()];
    const started = performance.now();
    await publishAll(EVENTS);
    await waitFor(() => total() >= handled0 + EVENTS, 300_000, `${processes} consumers: ${EVENTS} events`);
    const rate = EVENTS / ((performance.now() - started) / 1000);
    const own = process.cpuUsage(own0);
    return {
      rate,
      cpu: {
        publisher: (own.user + own.system) / EVENTS,
        consumers: (consumerCpu() - consumers0) / EVENTS,
        postgres: ((postgresCpu() - pg0) * 1e6) / EVENTS,
      },
    };
  } finally {
    for (const proc of children) {
      proc.removeAllListeners("exit");
      proc.stdin.end();
    }
    await Promise.all(
      children.map((proc) => new Promise((r) => (proc.exitCode !== null ? r(0) : proc.once("exit", r)))),
    );
    await bus.stop({ timeout: "5s" });
    await store.close();
    await drop();
  }
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

export async function main(): Promise<void> {
  const out: string[] = [
    `Bus: ${EVENTS} events of ~1 KiB end to end (publish → handler → ack) in one process, ${CONCURRENCY} concurrent publishers and handlers;`,
    `latency at ${RATE} events/s (${LATENCY_EVENTS} events a round, pooled). ${ROUNDS} rounds per row, interleaved, each after a`,
    `warm-up of ${WARMUP} events; events/s is the median round (range beside it). Ratios against the first row of each group.`,
    `CPU: µs per event in the throughput run (median round) of this process (publishers and consumer), of the broker`,
    `(RabbitMQ or nats-server, whichever the row uses) and of PostgreSQL (from /proc; the services share this machine's CPUs with it).`,
    `Load average when starting: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} (other processes share the CPUs; compare rows of one run only).`,
    "",
    `| ${"what".padEnd(58)} | events/s |       range | ratio | p50 ms | p99 ms | CPU µs: own |   broker | PostgreSQL |`,
    `| ${"-".repeat(58)} | -------: | ----------: | ----: | -----: | -----: | ----------: | -------: | ---------: |`,
  ];
  const rates = new Map<string, number>();
  for (const [group, all] of Object.entries(contenders)) {
    if (GROUPS && !GROUPS.includes(group)) continue;
    const list = all.filter((c) => !ROWS || ROWS.some((r) => c.name.includes(r)));
    // Rounds interleaved (a, b, c, a, b, c, ...) so a slow spell of the machine hits every row.
    const runs = new Map<Contender, Figures[]>(list.map((c) => [c, []]));
    const failures = new Map<Contender, string>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of list) {
        if (failures.has(c)) continue;
        process.stderr.write(`bus bench: ${c.name.trim()}, round ${round}/${ROUNDS}...\n`);
        try {
          runs.get(c)!.push(await measure(c));
        } catch (e) {
          failures.set(c, (e as Error).message);
        }
      }
    }
    let reference: number | undefined;
    for (const c of list) {
      const failed = failures.get(c);
      if (failed) {
        out.push(`| ${c.name.padEnd(58)} | failed (${group}): ${failed} |`);
        continue;
      }
      // Rounds by rate: the median round gives the row's rate and CPU figures.
      const byRate = [...runs.get(c)!].sort((a, b) => a.rate - b.rate);
      const middle = median(byRate)!;
      const rate = middle.rate;
      const lat = byRate.flatMap((f) => f.latencies).sort((a, b) => a - b);
      reference ??= rate;
      rates.set(c.name, rate);
      out.push(
        `| ${c.name.padEnd(58)} | ${fmt(rate).padStart(8)} | ${`${fmt(byRate[0]?.rate ?? NaN)}–${fmt(byRate.at(-1)?.rate ?? NaN)}`.padStart(11)} | ${fmt(rate / reference, 2).padStart(4)}× | ${fmt(percentile(lat, 0.5), 1).padStart(6)} | ${fmt(percentile(lat, 0.99), 1).padStart(6)} | ${fmt(middle.cpu.own).padStart(11)} | ${fmt(middle.cpu.rabbitmq).padStart(8)} | ${fmt(middle.cpu.postgres).padStart(10)} |`,
      );
    }
  }
  const rate = (prefix: string) => [...rates].find(([name]) => name.startsWith(prefix))?.[1] ?? NaN;
  /** The faster of two rows; a row that did not run (or failed) does not count. */
  const faster = (a: number, b: number) => {
    const ran = [a, b].filter(Number.isFinite);
    return ran.length === 0 ? NaN : Math.max(...ran);
  };
  const rabbit = rate("ours: patchbay on RabbitMQ") / rate("limit: raw amqplib");
  const natsRatio = rate("ours: patchbay on NATS") / rate("limit: raw @nats-io/jetstream");
  const targets = [
    `RabbitMQ ≥ 0.80× raw amqplib: ${fmt(rabbit, 2)}× ${rabbit >= 0.8 ? "(met)" : "(missed)"}`,
    `NATS ≥ 0.80× raw @nats-io/jetstream: ${fmt(natsRatio, 2)}× ${natsRatio >= 0.8 ? "(met)" : "(missed)"}`,
  ];
  if (!GROUPS || GROUPS.includes("postgres")) {
    const pgOurs = rate("ours: patchbay on PostgreSQL");
    const each = faster(
      rate("peer: pg-boss 12.38.1, one send"),
      rate("peer: graphile-worker 0.18.0, one addJob"),
    );
    const batched = faster(
      rate("peer: pg-boss 12.38.1, insert() group-committed"),
      rate("peer: graphile-worker 0.18.0, addJobs"),
    );
    const once = rate("  the same, handler writes a row in ctx.tx");
    const bossTx = rate("  pg-boss, insert() group-committed, a row in its work tx");
    targets.push(
      `PostgreSQL ahead of the faster peer publishing one call per event: ${fmt(pgOurs / each, 2)}× ${pgOurs > each ? "(met)" : "(missed)"}`,
      `ahead of the faster peer publishing through its batch API, group-committed: ${fmt(pgOurs / batched, 2)}× ${pgOurs > batched ? "(met)" : "(missed)"}`,
      `exactly-once (ctx.tx) vs pg-boss transactional worker: ${fmt(once / bossTx, 2)}×; vs our at-least-once: ${fmt(once / pgOurs, 2)}× (target ≥ 0.5×)`,
    );
  }
  out.push("", `Targets: ${targets.join("; ")}.`);
  if (SCALE.length > 0 && (!GROUPS || GROUPS.includes("postgres"))) {
    out.push(
      "",
      `Scaling: ${EVENTS} events end to end, ${CONCURRENCY} publishers in this process, the consumers of one group in N`,
      `child processes (${CONCURRENCY} handlers each) on one PostgreSQL; ${ROUNDS} rounds interleaved, median; CPU µs per event.`,
      "",
      "| consumer processes | events/s |       range | vs 1 process | CPU µs: publisher | consumers | PostgreSQL |",
      "| -----------------: | -------: | ----------: | -----------: | ----------------: | --------: | ---------: |",
    );
    const runs = new Map<number, ScaleFigures[]>(SCALE.map((n) => [n, []]));
    const failed = new Map<number, string>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const n of SCALE) {
        if (failed.has(n)) continue;
        process.stderr.write(`bus bench: scaling, ${n} consumer processes, round ${round}/${ROUNDS}...\n`);
        try {
          runs.get(n)!.push(await scaling(n));
        } catch (e) {
          failed.set(n, (e as Error).message);
        }
      }
    }
    let one: number | undefined;
    for (const n of SCALE) {
      const f = failed.get(n);
      if (f) {
        out.push(`| ${String(n).padStart(18)} | failed: ${f} |`);
        continue;
      }
      const byRate = [...runs.get(n)!].sort((a, b) => a.rate - b.rate);
      const m = median(byRate)!;
      one ??= m.rate;
      out.push(
        `| ${String(n).padStart(18)} | ${fmt(m.rate).padStart(8)} | ${`${fmt(byRate[0]?.rate ?? NaN)}–${fmt(byRate.at(-1)?.rate ?? NaN)}`.padStart(11)} | ${`${fmt(m.rate / one, 2)}×`.padStart(12)} | ${fmt(m.cpu.publisher).padStart(17)} | ${fmt(m.cpu.consumers).padStart(9)} | ${fmt(m.cpu.postgres).padStart(10)} |`,
      );
    }
  }
  out.push(
    "",
    `Consumer memory (child process, ${CONCURRENCY} handlers in flight, consuming for ${RSS_SECONDS} s from a backlog):`,
    "",
    "| consumer                         | backlog | RSS before MiB | peak RSS MiB | handled | fill s |",
    "| -------------------------------- | ------: | -------------: | -----------: | ------: | -----: |",
  );
  const names = {
    rabbitmq: "ours on RabbitMQ (inbox in PG)",
    postgres: "ours on PostgreSQL",
    sqlite: "ours on SQLite",
  };
  for (const kind of ["rabbitmq", "postgres", "sqlite"] as const) {
    if (GROUPS && !GROUPS.includes(kind)) continue;
    for (const backlog of BACKLOGS) {
      process.stderr.write(`bus bench: memory, ${kind}, backlog ${backlog}...\n`);
      try {
        const m = await memory(kind, backlog);
        out.push(
          `| ${names[kind].padEnd(32)} | ${String(backlog).padStart(7)} | ${fmt(m.baseline).padStart(14)} | ${fmt(m.peak).padStart(12)} | ${String(m.handled).padStart(7)} | ${fmt(m.fillSeconds).padStart(6)} |`,
        );
      } catch (e) {
        out.push(`| ${names[kind].padEnd(32)} | ${backlog} | failed: ${(e as Error).message} |`);
      }
    }
  }
  out.push(
    "",
    `Load average when done: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  console.log(out.join("\n"));
}
