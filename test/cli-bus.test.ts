/**
 * `patchbay bus pause|resume|paused` in a child process, against a bus consuming in this one (on
 * a SQLite file, and a PostgreSQL schema): the pause reaches the running bus through the store,
 * its messages wait, and after the resume each is handled once; `patchbay status` lists it.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { defineEvent } from "../src/core/events.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { until } from "./conformance/transport.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, mysql: maria } = inject("services");
const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const adapters: Array<[string, () => IsolatedDatabase, (db: IsolatedDatabase) => string[], boolean]> = [
  ["SQLite", sqliteDatabase, (db) => ["--sqlite", String(db.config.file)], true],
  [
    "PostgreSQL",
    () => postgresDatabase(pg.url),
    (db) => ["--pg", String(db.config.url), "--schema", String(db.config.schema)],
    pg.reachable,
  ],
  ["MariaDB", () => mysqlDatabase(maria.url), (db) => ["--store", String(db.config.url)], maria.reachable],
];

for (const [name, makeDb, storeFlags, reachable] of adapters) {
  describe.skipIf(!reachable)(`patchbay bus on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    let bus: EventBus;
    const handled: number[] = [];
    const cli = async (...args: string[]) => {
      const { stdout } = await run(process.execPath, ["--import", "tsx", CLI, ...args, ...storeFlags(db)]);
      return stdout;
    };

    beforeEach(async () => {
      handled.length = 0;
      db = makeDb();
      store = db.make();
      bus = createEventBus({ store, events: [Ping], pausePollInterval: "200ms" });
      bus.subscribe(Ping, { group: "pinger", concurrency: 2 }, (e) => void handled.push(e.data.n));
      await bus.start();
    });
    afterEach(async () => {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
    });

    it("pauses a group another process consumes; its messages wait; resumed, each is handled once", async () => {
      expect(await cli("bus", "pause", "pinger")).toContain("group pinger paused");
      expect(await cli("bus", "pause", "pinger")).toContain("already paused");
      const listed = JSON.parse(await cli("bus", "paused", "--json")) as Array<{ group: string; by: string }>;
      expect(listed).toEqual([
        {
          group: "pinger",
          pausedAt: expect.any(Number) as number,
          by: expect.stringMatching(/^cli:/) as string,
        },
      ]);
      const status = JSON.parse(await cli("status", "--json")) as { pausedGroups: Array<{ group: string }> };
      expect(status.pausedGroups.map((p) => p.group)).toEqual(["pinger"]);
      expect(await cli("status")).toContain("Paused consumer groups");
      // The running bus reads the pause within its poll (200 ms); well past it, publish.
      await sleep(1000);
      for (let n = 0; n < 10; n++) await bus.publish(Ping, { n });
      await sleep(1500);
      expect(handled).toEqual([]);

      expect(await cli("bus", "resume", "pinger")).toContain("group pinger resumed");
      await until(() => handled.length === 10, 15_000, "10 pings after the resume");
      await sleep(300);
      expect([...handled].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(await bus.deadLetters.count()).toBe(0);
      expect(await cli("bus", "paused")).toContain("no paused groups");
    }, 120_000); // seven CLI runs, each a Node process compiling TypeScript

    it("refuses a missing or invalid group", async () => {
      const missing = await run(process.execPath, [
        "--import",
        "tsx",
        CLI,
        "bus",
        "pause",
        ...storeFlags(db),
      ]).catch((e: { code: number; stderr: string }) => e);
      expect((missing as { code: number }).code).toBe(2);
      const invalid = await run(process.execPath, [
        "--import",
        "tsx",
        CLI,
        "bus",
        "pause",
        "not a group",
        ...storeFlags(db),
      ]).catch((e: { code: number; stderr: string }) => e);
      expect((invalid as { code: number }).code).not.toBe(0);
      expect((invalid as { stderr: string }).stderr).toContain("INVALID_ARGUMENT");
      expect(JSON.parse(await cli("bus", "paused", "--json"))).toEqual([]);
    }, 60_000);
  });
}
