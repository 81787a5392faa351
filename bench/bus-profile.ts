/**
 * A driver for profiling one bus contender alone: `BENCH_ROW=<index in the postgres group>
 * node --cpu-prof --import tsx bench/bus-profile.ts` (TSX_TSCONFIG_PATH=tsconfig.bench.json, after
 * `npm run build`; BENCH_PROFILE=<file> profiles the timed run alone, BENCH_COUNT=1 counts statements). Publishes BENCH_EVENTS events from CONCURRENCY publishers after a warm-up and
 * prints events/s and CPU µs per event of this process.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import pg from "pg";
import { CONCURRENCY, contenders, type Payload } from "./bus-contenders.js";

/** With BENCH_COUNT=1, the statements each client sent during the timed run, by their first words. */
const statements = new Map<string, number>();
let counting = false;
if (process.env.BENCH_COUNT === "1") {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the client as `this`
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    if (counting) {
      const first = args[0];
      const text = typeof first === "string" ? first : ((first as { text?: string } | null)?.text ?? "?");
      const k = text.replace(/\s+/g, " ").slice(0, 90);
      statements.set(k, (statements.get(k) ?? 0) + 1);
    }
    return query.apply(this, args);
  } as typeof pg.Client.prototype.query;
}
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3000);
const contender = contenders.postgres[Number(process.env.BENCH_ROW ?? 0)]!;
let handled = 0;
const running = await contender.open(() => void handled++);
const blob = "x".repeat(1000);
const publishAll = async (count: number) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let seq = next++; seq < count; seq = next++) {
        const p: Payload = { seq, sentAt: performance.now(), blob };
        await running.publish(p);
      }
    }),
  );
};
const until = async (n: number) => {
  while (handled < n) await new Promise((r) => setTimeout(r, 5));
};
await publishAll(WARMUP);
await until(WARMUP);
handled = 0;
counting = true;
// With BENCH_PROFILE=<file>, a CPU profile of the timed run alone (no start-up, no warm-up).
const session = process.env.BENCH_PROFILE ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await publishAll(EVENTS);
await until(EVENTS);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
if (session) {
  const { profile } = await session.post("Profiler.stop");
  writeFileSync(process.env.BENCH_PROFILE!, JSON.stringify(profile));
  session.disconnect();
}
console.log(
  `${contender.name.trim()}: ${(EVENTS / seconds).toFixed(0)} events/s, ${((cpu.user + cpu.system) / EVENTS).toFixed(0)} µs/event own`,
);
counting = false;
for (const [text, n] of [...statements].sort((a, b) => b[1] - a[1]))
  console.log(`${(n / EVENTS).toFixed(3).padStart(7)} per event  ${n}×  ${text}`);
await running.close();
