/**
 * `patchbay dlq replay` killed part-way through thousands of letters, run again, and run by two
 * operators at once: every letter ends queued exactly once — none lost (gone from the dead
 * letters, never queued), none queued twice.
 */
import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { createDeadLetters } from "../src/bus/dead-letters.js";
import { defineEvent } from "../src/core/events.js";
import { NonRetryableError } from "../src/core/errors.js";
import { localTransport } from "../src/bus/local-transport.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, mysql: my } = inject("services");
const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);
const N = 2000;
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });

const adapters: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
  ["MariaDB", () => mysqlDatabase(my.url), my.reachable],
];

for (const [name, makeDb, reachable] of adapters) {
  describe.skipIf(!reachable)(`dlq replay killed and raced on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    const storeArgs = () =>
      db.adapter === "sqlite"
        ? ["--sqlite", String(db.config.file)]
        : db.adapter === "mysql"
          ? ["--store", String(db.config.url)]
          : ["--pg", String(db.config.url), "--schema", String(db.config.schema)];
    const count = async (table: string, what = "COUNT(*)") =>
      Number(
        (await store.query<{ n: number }>(`SELECT ${what} AS n FROM ${store.dialect.table(table)}`)).rows[0]!
          .n,
      );

    beforeEach(async () => {
      db = makeDb();
      store = db.make();
      await store.open();
      const letters = createDeadLetters(store, localTransport(store));
      const now = Date.now();
      await store.transaction(async (tx) => {
        for (let i = 0; i < N; i++) {
          await letters.add(tx, {
            group: `g${i % 3}`,
            messageId: `m-${String(i).padStart(5, "0")}`,
            type: "ping.sent",
            key: undefined,
            body: JSON.stringify({
              specversion: "1.0",
              id: `m-${i}`,
              type: "ping.sent",
              source: "t",
              data: { n: i },
            }),
            headers: {},
            error: { code: "NON_RETRYABLE", message: "no" },
            attempts: 1,
            firstFailedAt: now - N + i,
            lastFailedAt: now - N + i,
          });
        }
      });
    }, 60_000);
    afterEach(async () => {
      await store.close();
      await db.cleanup();
    });

    it("a replay killed part-way and run again queues every letter once", async () => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", CLI, "dlq", "replay", "--all", ...storeArgs()],
        {
          stdio: "ignore",
        },
      );
      const exited = new Promise((r) => child.on("exit", r));
      const deadline = Date.now() + 60_000;
      while ((await count("bus_jobs")) < N / 5 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill("SIGKILL");
      await exited;
      const queued = await count("bus_jobs");
      const left = await count("bus_dead_letters");
      expect({ queued: queued > 0 && queued < N, lost: N - queued - left }).toEqual({
        queued: true,
        lost: 0,
      });

      const { stdout } = await run(process.execPath, [
        "--import",
        "tsx",
        CLI,
        "dlq",
        "replay",
        "--all",
        "--json",
        ...storeArgs(),
      ]);
      expect(JSON.parse(stdout)).toEqual({ replayed: left });
      expect({
        letters: await count("bus_dead_letters"),
        jobs: await count("bus_jobs"),
        distinct: await count("bus_jobs", "COUNT(DISTINCT message_id)"),
      }).toEqual({ letters: 0, jobs: N, distinct: N });
    }, 120_000);

    it("two operators replaying every letter at once queue each letter once between them", async () => {
      const replay = () =>
        run(process.execPath, [
          "--import",
          "tsx",
          CLI,
          "dlq",
          "replay",
          "--all",
          "--json",
          ...storeArgs(),
        ]).then(({ stdout }) => (JSON.parse(stdout) as { replayed: number }).replayed);
      const [a, b] = await Promise.all([replay(), replay()]);
      expect({
        reported: a + b,
        letters: await count("bus_dead_letters"),
        jobs: await count("bus_jobs"),
        distinct: await count("bus_jobs", "COUNT(DISTINCT message_id)"),
      }).toEqual({ reported: N, letters: 0, jobs: N, distinct: N });
    }, 120_000);

    it("a replay while the consumer fails every message again brings each back once", async () => {
      await store.query(`DELETE FROM ${store.dialect.table("bus_dead_letters")}`);
      const runs = new Map<number, number>();
      const bus = createEventBus({
        store,
        events: [Ping],
        transport: localTransport(store, { pollInterval: "20ms" }),
      });
      bus.subscribe(Ping, { group: "pinger", concurrency: 4 }, (e) => {
        runs.set(e.data.n, (runs.get(e.data.n) ?? 0) + 1);
        throw new NonRetryableError("no pings today");
      });
      await bus.start();
      try {
        const n = 200;
        for (let i = 0; i < n; i++) await bus.publish(Ping, { n: i });
        const settle = async (what: string) => {
          const deadline = Date.now() + 60_000;
          while ((await bus.deadLetters.count()) !== n || (await count("bus_jobs")) !== 0) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        };
        await settle("the first dead letters");
        const { stdout } = await run(process.execPath, [
          "--import",
          "tsx",
          CLI,
          "dlq",
          "replay",
          "--group",
          "pinger",
          "--json",
          ...storeArgs(),
        ]);
        expect(JSON.parse(stdout)).toEqual({ replayed: n });
        await settle("the letters back");
        await new Promise((r) => setTimeout(r, 300));
        const counts = [...runs.values()];
        expect({
          messages: runs.size,
          handledTwice: counts.filter((c) => c === 2).length,
          letters: await bus.deadLetters.count(),
        }).toEqual({ messages: n, handledTwice: n, letters: n });
      } finally {
        await bus.stop();
      }
    }, 120_000);
  });
}
