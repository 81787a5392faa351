/**
 * The bus benchmark's memory probe: a consumer process started on a backlog. It samples its RSS
 * while consuming for a fixed time and prints `{ baseline, peak, handled }` (MiB, count) as JSON.
 * Usage: node --import tsx bench/bus-rss-child.ts '{"transport":"rabbitmq"|"local","store":"postgres"|"sqlite","config":{...},"prefix":"...","seconds":8}'
 */
// The built package, like the throughput contenders (the bench runs with tsconfig.bench.json).
import { createEventBus } from "patchbay";
import { postgres } from "patchbay/postgres";
import { rabbitmq } from "patchbay/rabbitmq";
import { sqlite } from "patchbay/sqlite";
import { AMQP_URL, BenchEvent, CONCURRENCY } from "./bus-contenders.js";

const args = JSON.parse(process.argv[2] ?? "{}") as {
  transport: "rabbitmq" | "local";
  store: "postgres" | "sqlite";
  config: Record<string, unknown>;
  prefix?: string;
  seconds: number;
};
const store = args.store === "postgres" ? postgres(args.config) : sqlite(args.config);
await store.open();
const bus = createEventBus({
  store,
  events: [BenchEvent],
  ...(args.transport === "rabbitmq" ? { transport: rabbitmq({ url: AMQP_URL, prefix: args.prefix }) } : {}),
});
let handled = 0;
bus.subscribe(BenchEvent, { group: "bench", concurrency: CONCURRENCY }, () => void handled++);
const mib = () => process.memoryUsage().rss / 1048576;
global.gc?.();
const baseline = mib();
let peak = baseline;
const sampler = setInterval(() => (peak = Math.max(peak, mib())), 20);
await bus.start();
await new Promise((r) => setTimeout(r, args.seconds * 1000));
clearInterval(sampler);
peak = Math.max(peak, mib(), process.resourceUsage().maxRSS / 1024);
process.stdout.write(JSON.stringify({ baseline, peak, handled }) + "\n");
await bus.stop({ timeout: "5s" });
await store.close();
process.exit(0);
