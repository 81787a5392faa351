/**
 * The bus benchmark's scaling probe: one consumer process of group "bench" on PostgreSQL (the local
 * transport). Prints `ready` once subscribed, then `{ handled, cpu }` (count, CPU µs of this
 * process) every 20 ms while the count moves, until its stdin closes.
 * Usage: node --import tsx bench/bus-scale-child.ts '{"config":{...}}'
 */
import { createEventBus } from "patchbay";
import { postgres } from "patchbay/postgres";
import { BenchEvent, CONCURRENCY } from "./bus-contenders.js";

const args = JSON.parse(process.argv[2] ?? "{}") as { config: Record<string, unknown> };
const store = postgres(args.config);
await store.open();
const bus = createEventBus({ store, events: [BenchEvent] });
let handled = 0;
bus.subscribe(BenchEvent, { group: "bench", concurrency: CONCURRENCY }, () => void handled++);
await bus.start();
const report = () => {
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ handled, cpu: cpu.user + cpu.system }) + "\n");
};
process.stdout.write("ready\n");
let last = -1;
const timer = setInterval(() => {
  if (handled !== last) report();
  last = handled;
}, 20);
process.stdin.resume();
process.stdin.on("end", () => {
  clearInterval(timer);
  report();
  void bus
    .stop({ timeout: "5s" })
    .then(() => store.close())
    .finally(() => process.exit(0));
});
