/**
 * The `patchbay` command line as a user meets it, in real processes: `--help` anywhere, unknown
 * flags and bad values refused with exit code 2, read-only commands that create no file, output
 * piped into a reader that goes away, and explicit store flags winning over a config file.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { nats } from "../src/adapters/nats/index.js";
import { topologyNames } from "../src/adapters/nats/topology.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { natsUrl } from "./services.js";
import { createWebhooks } from "../src/webhooks/webhooks.js";

const natsReachable = inject("services").nats.reachable;

/** Deletes the streams of a NATS prefix. */
async function isolatedNatsCleanup(prefix: string) {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const nc = await connect({ servers: natsUrl() });
  try {
    const jsm = await jetstreamManager(nc);
    const n = topologyNames(prefix);
    for (const s of n.streams) await jsm.streams.delete(s).catch(() => false);
  } finally {
    await nc.close();
  }
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");

interface Result {
  code: number | null;
  out: string;
  err: string;
}

function cli(args: string[], cwd: string, opts: { closeStdout?: boolean } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.PATCHBAY_PG_URL;
    delete env.PATCHBAY_SQLITE_FILE;
    const proc = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), MAIN, ...args], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    // A reader that is gone before the first line (`patchbay … | head -0`).
    if (opts.closeStdout) proc.stdout.destroy();
    else proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.once("exit", (code) => resolve({ code, out, err }));
  });
}

const COMMANDS = [
  "start",
  "migrate",
  "health",
  "status",
  "dlq",
  "bus",
  "saga",
  "sync",
  "webhooks",
  "contracts",
  "console",
  "cdc",
];

describe("patchbay (CLI)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "patchbay-cli-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe.each(COMMANDS)("%s", (command) => {
    it("prints its help for --help anywhere on the line, exits 0 and touches no store", async () => {
      const db = join(dir, "sub", "new.db");
      const lines = [
        [command, "--help", "--sqlite", db],
        ["--sqlite", db, command, "list", "-h"],
        ["-h", command, "--sqlite", db, "--json"],
      ];
      for (const line of lines) {
        const r = await cli(line, dir);
        expect(r.err).toBe("");
        expect(r.code).toBe(0);
        expect(r.out).toContain(`Usage: patchbay ${command}`);
      }
      // No directory, no database, no migration applied: nothing at all was written.
      expect(readdirSync(dir)).toEqual([]);
    });

    it("refuses an unknown flag with exit code 2, naming the closest known flag", async () => {
      const r = await cli([command, "--sqlite", join(dir, "x.db"), "--jsn"], dir);
      expect(r.code).toBe(2);
      expect(r.err).toContain("unknown option --jsn (did you mean --json?)");
      expect(r.out).toBe("");
      expect(readdirSync(dir)).toEqual([]);
    });
  });

  it("refuses bad values: a --limit that is not a number, a flag without its value", async () => {
    const limit = await cli(["saga", "list", "--limit", "abc", "--sqlite", join(dir, "x.db")], dir);
    expect(limit.code).toBe(2);
    expect(limit.err).toContain('--limit must be a positive whole number, got "abc" [INVALID_ARGUMENT]');
    const group = await cli(["dlq", "list", "--sqlite", join(dir, "x.db"), "--group"], dir);
    expect(group.code).toBe(2);
    expect(group.err).toContain("option --group needs a value");
    const typo = await cli(["dlq", "list", "--grup", "g", "--sqlite", join(dir, "x.db")], dir);
    expect(typo.code).toBe(2);
    expect(typo.err).toContain("(did you mean --group?)");
    const rate = await cli(
      [
        "webhooks",
        "endpoints",
        "create",
        "--url",
        "https://example.com/h",
        "--rate-limit",
        "fast",
        "--sqlite",
        join(dir, "x.db"),
      ],
      dir,
    );
    expect(rate.code).toBe(2);
    expect(rate.err).toContain('--rate-limit must be a positive number, got "fast"');
    const command = await cli(["stats"], dir);
    expect(command.code).toBe(2);
    expect(command.err).toContain('unknown command "stats" (did you mean status?)');
    expect(readdirSync(dir)).toEqual([]);
  });

  it("health and status on a SQLite file that does not exist say so and create nothing", async () => {
    const missing = join(dir, "typo", "patchbay.db");
    for (const command of ["health", "status"]) {
      const r = await cli([command, "--sqlite", missing], dir);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`SQLite file ${missing} does not exist`);
    }
    expect(existsSync(join(dir, "typo"))).toBe(false);
    // start creates it, as it says.
    expect((await cli(["start", "--sqlite", missing], dir)).code).toBe(0);
    expect(existsSync(missing)).toBe(true);
    expect((await cli(["health", "--sqlite", missing], dir)).code).toBe(0);
  });

  it("exits quietly when the reader of its output goes away (EPIPE)", async () => {
    const r = await cli(["--help"], dir, { closeStdout: true });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
  });

  it("an explicit --sqlite wins over the store of a patchbay.config.js", async () => {
    const real = join(dir, "real.db");
    const store = sqlite({ file: real });
    try {
      await createWebhooks({ store }).endpoints.create({ url: "https://example.com/hook" });
    } finally {
      await store.close();
    }
    writeFileSync(
      join(dir, "patchbay.config.mjs"),
      `export const store = { close: async () => {}, get dialect() { throw new Error("the config's store was used"); } };\n`,
    );
    const endpoints = await cli(["webhooks", "endpoints", "--sqlite", real, "--json"], dir);
    expect(endpoints.err).toBe("");
    expect(JSON.parse(endpoints.out)).toMatchObject([{ url: "https://example.com/hook" }]);
    // A fractional rate limit (requests per second) is a valid value.
    const created = await cli(
      [
        "webhooks",
        "endpoints",
        "create",
        "--url",
        "https://example.com/slow",
        "--rate-limit",
        "0.5",
        "--sqlite",
        real,
        "--json",
      ],
      dir,
    );
    expect(created.err).toBe("");
    expect(JSON.parse(created.out)).toMatchObject({ url: "https://example.com/slow", rateLimit: 0.5 });
    const sagas = await cli(["saga", "list", "--sqlite", real, "--json"], dir);
    expect(sagas.err).toBe("");
    expect(JSON.parse(sagas.out)).toEqual([]);
  });

  it("status with a bus on RabbitMQ says its queues live in the broker, not '(none)'", async () => {
    const db = join(dir, "app.db");
    expect((await cli(["migrate", "--sqlite", db], dir)).code).toBe(0);
    const config = join(dir, "patchbay.config.ts");
    writeFileSync(
      config,
      `import { sqlite } from ${JSON.stringify(join(ROOT, "src/adapters/sqlite/index.ts"))};
import { rabbitmq } from ${JSON.stringify(join(ROOT, "src/adapters/rabbitmq/index.ts"))};
import { createEventBus } from ${JSON.stringify(join(ROOT, "src/bus/bus.ts"))};
const store = sqlite({ file: ${JSON.stringify(db)} });
export const bus = createEventBus({ store, transport: rabbitmq({ url: "amqp://guest:guest@127.0.0.1:5672", prefix: "shop" }) });
`,
    );
    const r = await cli(["status", "--sqlite", db, "--config", config], dir);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("Queues (rabbitmq (127.0.0.1:5672/, prefix shop))");
    expect(r.out).toContain("queues live in the broker, not in the store");
    expect(r.out).toContain("rabbitmqctl list_queues name messages");
    expect(r.out).not.toContain("Queues (local transport)");
    const json = JSON.parse(
      (await cli(["status", "--sqlite", db, "--config", config, "--json"], dir)).out,
    ) as {
      queues: unknown;
    };
    expect(json.queues).toEqual({ transport: "rabbitmq (127.0.0.1:5672/, prefix shop)", inStore: false });
  });

  it.runIf(natsReachable)(
    "status with a bus on NATS shows its streams and consumers (pending, ack pending, redelivered)",
    async () => {
      const db = join(dir, "app.db");
      expect((await cli(["migrate", "--sqlite", db], dir)).code).toBe(0);
      const prefix = `pbt_status_${Date.now().toString(36)}`;
      const transport = nats({ url: natsUrl(), prefix });
      try {
        await transport.bind("audit.log", ["order.*"]);
        await transport.publish([
          { id: "s-1", type: "order.created", body: "{}", headers: {} },
          { id: "s-2", type: "order.paid", body: "{}", headers: {} },
        ]);
        const config = join(dir, "patchbay.config.ts");
        writeFileSync(
          config,
          `import { sqlite } from ${JSON.stringify(join(ROOT, "src/adapters/sqlite/index.ts"))};
import { nats } from ${JSON.stringify(join(ROOT, "src/adapters/nats/index.ts"))};
import { createEventBus } from ${JSON.stringify(join(ROOT, "src/bus/bus.ts"))};
const store = sqlite({ file: ${JSON.stringify(db)} });
export const bus = createEventBus({ store, transport: nats({ url: ${JSON.stringify(natsUrl())}, prefix: ${JSON.stringify(prefix)} }) });
`,
        );
        const r = await cli(["status", "--sqlite", db, "--config", config], dir);
        expect(r.err).toBe("");
        expect(r.code).toBe(0);
        expect(r.out).toContain(`Streams (nats (127.0.0.1:4222, prefix ${prefix}))`);
        expect(r.out).toMatch(/ACK PENDING/);
        const json = JSON.parse(
          (await cli(["status", "--sqlite", db, "--config", config, "--json"], dir)).out,
        ) as { queues: { groups: Array<Record<string, unknown>>; streams: Array<Record<string, unknown>> } };
        expect(json.queues.groups).toContainEqual(
          expect.objectContaining({
            group: "audit.log",
            pending: 2,
            ackPending: 0,
            redelivered: 0,
            patterns: ["order.*"],
          }),
        );
        expect(json.queues.streams).toContainEqual(expect.objectContaining({ name: prefix, messages: 2 }));
      } finally {
        await transport.close();
        await isolatedNatsCleanup(prefix);
      }
    },
  );
});
