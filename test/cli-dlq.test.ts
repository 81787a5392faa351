/** `patchbay dlq` against a real SQLite store holding real dead letters. */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { localTransport } from "../src/bus/local-transport.js";
import { defineEvent } from "../src/core/events.js";
import { NonRetryableError } from "../src/core/errors.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { memoryTransport } from "../src/testing/memory-transport.js";
import { until } from "./conformance/transport.js";
import { isolatedBroker } from "./support/rabbitmq.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { rabbitmq: mq } = inject("services");

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });

describe("patchbay dlq", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [
      "--import",
      "tsx",
      CLI,
      ...args,
      "--sqlite",
      String(db.config.file),
    ]);
    return stdout;
  };

  beforeEach(async () => {
    db = sqliteDatabase();
    store = db.make();
    const bus = createEventBus({ store, events: [Ping] });
    bus.subscribe(Ping, { group: "pinger" }, () => {
      throw new NonRetryableError("no pings today");
    });
    await bus.start();
    for (let n = 0; n < 3; n++) await bus.publish(Ping, { n });
    await until(async () => (await bus.deadLetters.count()) === 3, 10_000, "3 dead letters");
    await bus.stop();
  });
  afterEach(async () => {
    await store.close();
    await db.cleanup();
  });

  it("lists, shows, replays and purges dead letters", async () => {
    const list = JSON.parse(await cli("dlq", "list", "--json")) as Array<{
      messageId: string;
      error: { code: string };
    }>;
    expect(list).toHaveLength(3);
    expect(list[0]!.error.code).toBe("NON_RETRYABLE");
    expect(await cli("dlq", "list")).toContain("no pings today");

    const shown = JSON.parse(await cli("dlq", "show", "pinger", list[0]!.messageId, "--json")) as {
      event: { data: unknown };
    };
    expect(shown.event.data).toEqual({ n: 0 });

    expect(await cli("dlq", "replay", "--id", list[0]!.messageId)).toContain("replayed 1 dead letter");
    const jobs = await store.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`,
    );
    expect(Number(jobs.rows[0]!.n)).toBe(1);

    expect(await cli("dlq", "purge", "--all")).toContain("purged 2 dead letters");
    expect(JSON.parse(await cli("dlq", "list", "--json"))).toEqual([]);
  });

  it("replays exactly the letters matched when it began while a consumer fails them again", async () => {
    await store.query(`DELETE FROM ${store.dialect.table("bus_dead_letters")}`);
    const runs = new Map<number, number>();
    const bus = createEventBus({
      store,
      events: [Ping],
      transport: localTransport(store, { pollInterval: "20ms" }),
    });
    bus.subscribe(Ping, { group: "pinger" }, (e) => {
      runs.set(e.data.n, (runs.get(e.data.n) ?? 0) + 1);
      throw new NonRetryableError("no pings today");
    });
    await bus.start();
    try {
      const n = 300;
      for (let i = 0; i < n; i++) await bus.publish(Ping, { n: i });
      await until(async () => (await bus.deadLetters.count()) === n, 30_000, `${n} dead letters`);
      // The consumer runs on while the CLI replays: each message fails again at once.
      expect(JSON.parse(await cli("dlq", "replay", "--group", "pinger", "--json"))).toEqual({ replayed: n });
      const total = () => [...runs.values()].reduce((a, c) => a + c, 0);
      await until(() => total() >= 2 * n, 30_000, "every replayed message handled");
      await until(async () => (await bus.deadLetters.count()) === n, 30_000, `${n} letters again`);
      await new Promise((r) => setTimeout(r, 300));
      expect(total()).toBe(2 * n);
    } finally {
      await bus.stop();
    }
  });

  it("refuses to replay letters of another transport into the store's local queue", async () => {
    await store.query(`DELETE FROM ${store.dialect.table("bus_dead_letters")}`);
    const bus = createEventBus({ store, events: [Ping], transport: memoryTransport() });
    bus.subscribe(Ping, { group: "pinger" }, () => {
      throw new NonRetryableError("no pings today");
    });
    await bus.start();
    for (let n = 0; n < 2; n++) await bus.publish(Ping, { n });
    await until(async () => (await bus.deadLetters.count()) === 2, 10_000, "2 dead letters");
    await bus.stop();
    const error = (await cli("dlq", "replay", "--all").catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(error.code).toBe(1);
    expect(error.stderr).toContain("2 of the matched dead letters came from memory");
    expect(error.stderr).toContain("--config");
    expect(await bus.deadLetters.count()).toBe(2);
    const jobs = await store.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`,
    );
    expect(Number(jobs.rows[0]!.n)).toBe(0);
  });

  it.runIf(mq.reachable)(
    "replays RabbitMQ letters only through the app's bus from --config, and they reach its consumer",
    async () => {
      await store.query(`DELETE FROM ${store.dialect.table("bus_dead_letters")}`);
      const broker = isolatedBroker(mq.url);
      const seen: number[] = [];
      let healed = false;
      const bus = createEventBus({ store, events: [Ping], transport: broker.make() });
      bus.subscribe(Ping, { group: "pinger" }, (e) => {
        if (!healed) throw new NonRetryableError("no pings today");
        seen.push(e.data.n);
      });
      await bus.start();
      try {
        for (let n = 0; n < 3; n++) await bus.publish(Ping, { n });
        await until(async () => (await bus.deadLetters.count()) === 3, 10_000, "3 dead letters");
        const refused = (await cli("dlq", "replay", "--all").catch((e: unknown) => e)) as {
          code: number;
          stderr: string;
        };
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(`3 of the matched dead letters came from rabbitmq (`);
        expect(await bus.deadLetters.count()).toBe(3);

        const config = join(dirname(String(db.config.file)), "patchbay.config.ts");
        writeFileSync(
          config,
          `import { sqlite } from ${JSON.stringify(join(ROOT, "src/adapters/sqlite/index.ts"))};
import { rabbitmq } from ${JSON.stringify(join(ROOT, "src/adapters/rabbitmq/index.ts"))};
import { createEventBus } from ${JSON.stringify(join(ROOT, "src/bus/bus.ts"))};
export const store = sqlite({ file: ${JSON.stringify(String(db.config.file))} });
export const bus = createEventBus({ store, transport: rabbitmq({ url: ${JSON.stringify(mq.url)}, prefix: ${JSON.stringify(broker.prefix)} }) });
`,
        );
        healed = true;
        const { stdout } = await run(process.execPath, [
          "--import",
          "tsx",
          CLI,
          "dlq",
          "replay",
          "--all",
          "--config",
          config,
        ]);
        expect(stdout).toContain("replayed 3 dead letters");
        await until(() => seen.length === 3, 10_000, "replayed messages consumed");
        expect(seen.sort()).toEqual([0, 1, 2]);
        expect(await bus.deadLetters.count()).toBe(0);
      } finally {
        await bus.stop();
        await broker.cleanup();
      }
    },
  );

  it("refuses a replay or purge that names nothing", async () => {
    const error = await cli("dlq", "purge").catch((e: { code: number; stderr: string }) => e);
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain("--all");
  });
});
