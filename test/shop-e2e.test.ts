/**
 * The reference shop end to end: the shop runs as its own process, the load driver drives it
 * with failures injected and checks the invariants. One run SIGKILLs the shop mid-load and
 * restarts it, and a full payment outage opens the provider's circuit breaker; the invariants
 * must still hold.
 *
 * Enough orders to keep sagas waiting on a breaker that opens, probes and opens again: with 60,
 * a saga that retried at once on a half-open refusal (retryAfterMs 0) went unseen; with these,
 * that bug leaves hundreds of orders stuck. `SHOP_E2E_CPU_HOG=1` runs a busy loop in a child
 * process beside the shop (a busy machine), for a run by hand.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { afterEach, describe, expect, inject, it } from "vitest";
import { until } from "./conformance/transport.js";
import { isolatedNats } from "./support/nats.js";
import { isolatedBroker } from "./support/rabbitmq.js";

const { postgres: pgService, rabbitmq: amqpService, nats: natsService } = inject("services");
const ROOT = fileURLToPath(new URL("..", import.meta.url));
// Node itself with tsx's loader, not the tsx CLI: the CLI runs the script in a child process, so
// a SIGKILL would kill only the wrapper and leave the shop running.
// The loader by its path: the shop runs in a temporary directory, where "tsx" does not resolve.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const tsx = (script: string) =>
  [process.execPath, ["--import", TSX_LOADER, join(ROOT, "examples", "shop", script)]] as const;

interface Running {
  proc: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
}

function run(script: string, args: string[], cwd: string, env: Record<string, string> = {}): Running {
  const [cmd, base] = tsx(script);
  const proc = spawn(cmd, [...base, ...args], {
    cwd,
    // The case alone says where the shop keeps its data: a PATCHBAY_PG_URL / PATCHBAY_AMQP_URL
    // set for the test run (the documented override) must not turn the embedded case into another.
    env: {
      ...process.env,
      PATCHBAY_PG_URL: undefined,
      PATCHBAY_AMQP_URL: undefined,
      PATCHBAY_NATS_URL: undefined,
      TSX_TSCONFIG_PATH: join(ROOT, "tsconfig.json"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, exited, output: () => output };
}

/** The command lines of the processes whose working directory is `dir` (from /proc). */
function processesIn(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (realpathSync(readlinkSync(`/proc/${entry}/cwd`)) !== realpathSync(dir)) continue;
      found.push(readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " "));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

async function startShop(cwd: string, env: Record<string, string>): Promise<Running> {
  // Port 0: the shop writes where it listens to .patchbay/shop.json, where the load driver looks.
  const shop = run("main.ts", [], cwd, { PORT: "0", SHOP_LEASE: "3s", ...env });
  await until(
    () => shop.output().includes("Patchbay shop running") || shop.proc.exitCode !== null,
    60_000,
    "the shop to start",
  );
  if (shop.proc.exitCode !== null) throw new Error(`the shop exited: ${shop.output()}`);
  return shop;
}

const ORDERS = 300;
/** Seconds of the payment outage, from a third of the orders on. */
const OUTAGE_S = 8;

/** How many orders the load driver says it has placed so far. */
const placedSoFar = (output: string) =>
  Math.max(0, ...[...output.matchAll(/orders placed .*? (\d+)\/\d+/g)].map((m) => Number(m[1])));

const cases: Array<[string, () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>]> = [
  [
    "embedded (SQLite, local transport)",
    () => Promise.resolve({ env: {}, cleanup: () => Promise.resolve() }),
  ],
];
if (pgService.reachable && amqpService.reachable) {
  cases.push([
    "PostgreSQL + RabbitMQ",
    async () => {
      // A database of its own: the shop's tables live in its default schema.
      const name = `shop_e2e_${Date.now().toString(36)}`;
      const admin = new pg.Client({ connectionString: pgService.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const url = new URL(pgService.url);
      url.pathname = `/${name}`;
      const broker = isolatedBroker(amqpService.url);
      // Every group the shop consumes, the webhooks fan-out's included: cleanup deletes only these.
      for (const g of [
        "order-saga",
        "welcome-email",
        "default-settings",
        "confirmation-email",
        "patchbay.webhooks",
      ])
        broker.track(g);
      return {
        env: {
          PATCHBAY_PG_URL: url.toString(),
          PATCHBAY_AMQP_URL: amqpService.url,
          SHOP_AMQP_PREFIX: broker.prefix,
        },
        async cleanup() {
          await broker.cleanup();
          const c = new pg.Client({ connectionString: pgService.url });
          await c.connect();
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await c.end();
        },
      };
    },
  ]);
}

if (pgService.reachable && natsService.reachable) {
  cases.push([
    "PostgreSQL + NATS JetStream",
    async () => {
      const name = `shop_e2e_nats_${Date.now().toString(36)}`;
      const admin = new pg.Client({ connectionString: pgService.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const url = new URL(pgService.url);
      url.pathname = `/${name}`;
      const broker = isolatedNats(natsService.url);
      return {
        env: {
          PATCHBAY_PG_URL: url.toString(),
          PATCHBAY_NATS_URL: natsService.url,
          SHOP_NATS_PREFIX: broker.prefix,
        },
        async cleanup() {
          await broker.cleanup();
          const c = new pg.Client({ connectionString: pgService.url });
          await c.connect();
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await c.end();
        },
      };
    },
  ]);
}

for (const [name, backend] of cases) {
  describe(`shop end to end: ${name}`, () => {
    const cleanups: Array<() => Promise<unknown> | void> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it("the load driver's invariants hold with payment and e-mail failures, and through a SIGKILL of the shop", async () => {
      const cwd = mkdtempSync(join(tmpdir(), "patchbay-shop-"));
      cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
      const db = await backend();
      const env = db.env;
      cleanups.push(() => db.cleanup());

      if (process.env.SHOP_E2E_CPU_HOG === "1") {
        const hog = spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" });
        cleanups.push(() => {
          hog.kill("SIGKILL");
        });
      }
      let shop = await startShop(cwd, env);
      cleanups.push(() => {
        shop.proc.kill("SIGKILL");
      });
      const load = run(
        "load.ts",
        [
          "--orders",
          String(ORDERS),
          "--outage",
          String(OUTAGE_S),
          "--users",
          "6",
          "--payment-failure",
          "0.2",
          "--email-failure",
          "0.1",
          "--timeout",
          "150",
          "--json",
        ],
        cwd,
      );
      cleanups.push(() => {
        load.proc.kill("SIGKILL");
      });
      // Kill the shop for real while orders are being placed and processed, then start it again.
      await until(
        () => placedSoFar(load.output()) >= ORDERS / 10 || load.proc.exitCode !== null,
        90_000,
        "orders in flight",
      );
      shop.proc.kill("SIGKILL");
      await shop.exited;
      // The shop itself is gone, not just a wrapper around it (helpers such as tsx's esbuild
      // service may still be winding down; no shop may be left).
      expect(processesIn(cwd).filter((cmd) => cmd.includes("examples/shop/main.ts"))).toEqual([]);
      shop = await startShop(cwd, env);

      const code = await load.exited;
      // The last line is the JSON summary; when the driver failed, its error is there instead.
      const last = load.output().trim().split("\n").pop() ?? "";
      expect(
        last.startsWith("{"),
        `the load driver ended without a summary:\n${load.output().slice(-3000)}`,
      ).toBe(true);
      const summary = JSON.parse(last) as {
        orders: number;
        stuck: number;
        invariantsBroken: number;
        failures: string[];
      };
      expect(summary.failures, load.output().slice(-3000)).toEqual([]);
      expect(code).toBe(0);
      expect(summary.orders).toBeGreaterThanOrEqual(ORDERS);
      expect(summary.stuck).toBe(0);

      expect(shop.output()).toContain(
        env.PATCHBAY_AMQP_URL
          ? "PostgreSQL, events on RabbitMQ"
          : env.PATCHBAY_NATS_URL
            ? "PostgreSQL, events on NATS JetStream"
            : "embedded SQLite",
      );
      // The shop runs on the Node the project brings (24), as the test run does.
      expect(shop.output()).toMatch(/on Node\.js v24\./);
      // Ctrl-C drains and exits cleanly.
      shop.proc.kill("SIGTERM");
      expect(await shop.exited).toBe(0);
      expect(shop.output()).toContain("stopped cleanly");
    }, 360_000);
  });
}
