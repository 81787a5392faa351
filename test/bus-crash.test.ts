/**
 * Reliability: a consumer process SIGKILLed in the middle of 10,000 events, restarted, killed
 * again and restarted — every event's effect is applied exactly once (counted in rows).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { localTransport } from "../src/bus/local-transport.js";
import { defineEvent } from "../src/core/events.js";
import { encodeStructured } from "../src/core/envelope.js";
import type { StandardSchemaV1 } from "../src/core/schema.js";
import { until } from "./conformance/transport.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, mysql: maria } = inject("services");
const CHILD = fileURLToPath(new URL("./fixtures/bus-consumer.ts", import.meta.url));
const EVENTS = 10_000;

const anything: StandardSchemaV1<{ n: number }> = {
  "~standard": { version: 1, vendor: "test", validate: (value) => ({ value: value as { n: number } }) },
};
const Crash = defineEvent("crash.test", { version: 1, schema: anything, source: "/crash" });

function startConsumer(db: IsolatedDatabase, batch?: number) {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, JSON.stringify({ adapter: db.adapter, config: db.config, batch })],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let handled = 0;
  let errors = "";
  proc.stdout.on("data", (d: Buffer) => {
    const m = /handled (\d+)\s*$/.exec(d.toString());
    if (m) handled = Number(m[1]);
  });
  proc.stderr.on("data", (d: Buffer) => (errors += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return { proc, exited, handled: () => handled, errors: () => errors };
}

const cases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pg.reachable) cases.push(["PostgreSQL", () => postgresDatabase(pg.url)]);
if (maria.reachable) cases.push(["MariaDB", () => mysqlDatabase(maria.url)]);
else
  describe("on MariaDB", () =>
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {}));

const shapes: Array<[string, number | undefined]> = [
  ["", undefined],
  [", handlers batched 32 per transaction", 32],
];

for (const [name, makeDb] of cases) {
  describe(`bus crash recovery on ${name}`, () => {
    it.each(shapes)(
      "10,000 events, consumer SIGKILLed twice mid-stream%s: each effect applied exactly once",
      async (_, batchSize) => {
        const db = makeDb();
        const store = db.make();
        try {
          await store.open();
          await store.query("CREATE TABLE effects (event_id TEXT NOT NULL)");
          const transport = localTransport(store);
          await transport.bind("effects", ["crash.*"]);
          for (let start = 0; start < EVENTS; start += 1000) {
            const batch = await Promise.all(
              Array.from({ length: 1000 }, async (_, i) => {
                const event = await Crash.toEnvelope({ n: start + i });
                return { id: event.id, type: event.type, body: encodeStructured(event), headers: {} };
              }),
            );
            await transport.publish(batch);
          }
          const rows = async (sql: string) =>
            Number((await store.query<{ n: number | string }>(sql)).rows[0]?.n);

          for (const killAt of [1500, 5000]) {
            const consumer = startConsumer(db, batchSize);
            await until(
              async () => (await rows("SELECT COUNT(*) AS n FROM effects")) >= killAt,
              60_000,
              `${killAt} effects (${consumer.errors()})`,
            );
            consumer.proc.kill("SIGKILL");
            await consumer.exited;
          }
          const last = startConsumer(db, batchSize);
          await until(
            async () => (await rows("SELECT COUNT(*) AS n FROM effects")) >= EVENTS,
            120_000,
            `all effects (${last.errors()})`,
          );
          await until(
            async () => (await rows(`SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`)) === 0,
            30_000,
            "an empty queue",
          );
          last.proc.kill("SIGTERM");
          await last.exited;
          expect(await rows("SELECT COUNT(*) AS n FROM effects")).toBe(EVENTS);
          expect(await rows("SELECT COUNT(DISTINCT event_id) AS n FROM effects")).toBe(EVENTS);
        } finally {
          await store.close();
          await db.cleanup();
        }
      },
      240_000,
    );
  });
}
