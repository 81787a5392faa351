/**
 * `npm run bench -- <name>`: runs one benchmark and prints its table. Benchmarks compare our
 * figure with a peer's and the physical limit, measured in the same run, as ratios.
 */
const benches: Record<string, () => Promise<void>> = {
  store: async () => (await import("./store.js")).main(),
  bus: async () => (await import("./bus.js")).main(),
  cdc: async () => (await import("./cdc.js")).main(),
  resilience: async () => (await import("./resilience.js")).main(),
  saga: async () => (await import("./saga.js")).main(),
  sync: async () => (await import("./sync.js")).main(),
  webhooks: async () => (await import("./webhooks.js")).main(),
};

const name = process.argv[2];
const bench = name ? benches[name] : undefined;
if (!bench) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join("|")}>\n`);
  process.exitCode = 2;
} else {
  process.stdout.write(`Node.js ${process.version}, ${new Date().toISOString().slice(0, 10)}\n\n`);
  await bench();
}
