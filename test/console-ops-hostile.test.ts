/**
 * The console's dead-letter actions on a selection that cannot be done whole: refused before any
 * letter moves, never half-applied under an error that says nothing moved.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { localTransport } from "../src/bus/local-transport.js";
import type { Transport } from "../src/bus/transport.js";
import { defineEvent } from "../src/core/events.js";
import { NonRetryableError } from "../src/core/errors.js";
import { PublishError } from "../src/bus/errors.js";
import { createConsole } from "../src/ops/console.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { memoryTransport } from "../src/testing/memory-transport.js";
import { until } from "./conformance/transport.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });
const TOKEN = "s3cret-token";
const HEADERS = {
  "content-type": "application/json",
  "x-patchbay-console": "1",
  authorization: `Bearer ${TOKEN}`,
};

const adapters: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
];

for (const [name, makeDb, reachable] of adapters) {
  describe.skipIf(!reachable)(`console dead-letter selection on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    beforeEach(async () => {
      db = makeDb();
      store = db.make();
      await store.open();
    });
    afterEach(async () => {
      await store.close();
      await db.cleanup();
    });

    /** Dead-letters ping `n` in group `pinger`, sent through `transport`; returns its message id. */
    async function deadLetter(transport: Transport, n: number): Promise<string> {
      const bus = createEventBus({ store, events: [Ping], transport });
      bus.subscribe(Ping, { group: "pinger" }, () => {
        throw new NonRetryableError("no pings today");
      });
      await bus.start();
      const before = await bus.deadLetters.count();
      const { id } = await bus.publish(Ping, { n });
      await until(async () => (await bus.deadLetters.count()) === before + 1, 10_000, "a dead letter");
      await bus.stop();
      return id;
    }

    it("refuses a selected replay with a letter of another transport before replaying any", async () => {
      const local = await deadLetter(localTransport(store), 1);
      const foreign = await deadLetter(memoryTransport(), 2);
      const handler = createConsole({ store, token: TOKEN });
      const server = createServer(handler);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/dead-letters/replay`;
        const res = await fetch(url, {
          method: "POST",
          headers: HEADERS,
          body: JSON.stringify({
            selection: [
              { group: "pinger", messageId: local },
              { group: "pinger", messageId: foreign },
            ],
          }),
        });
        const body: unknown = await res.json();
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(JSON.stringify(body)).toContain("DEAD_LETTER_TRANSPORT_MISMATCH");
        // Nothing moved: both letters are still there, and no job was queued.
        const letters = await store.query<{ message_id: string }>(
          `SELECT message_id FROM ${store.dialect.table("bus_dead_letters")} ORDER BY message_id`,
        );
        expect(letters.rows.map((r) => r.message_id)).toEqual([local, foreign].sort());
        const jobs = await store.query<{ n: number }>(
          `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`,
        );
        expect(Number(jobs.rows[0]!.n)).toBe(0);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
        await handler.close();
      }
    });

    it("a replay that stops part-way says how many letters moved, the audit counts them, and a second replay moves the rest", async () => {
      for (let n = 1; n <= 5; n++) await deadLetter(localTransport(store), n);
      // The transport goes down at the third letter (a broker lost mid-replay, say).
      const local = localTransport(store);
      let sent = 0;
      const flaky: Transport = Object.assign(Object.create(local) as Transport, {
        publish: (...args: Parameters<Transport["publish"]>) => {
          if (++sent === 3) return Promise.reject(new PublishError("the broker went away"));
          return local.publish(...args);
        },
      });
      const bus = createEventBus({ store, events: [Ping], transport: flaky });
      const handler = createConsole({ store, token: TOKEN, bus });
      const server = createServer(handler);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const count = async (table: string) =>
        Number(
          (await store.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${store.dialect.table(table)}`))
            .rows[0]!.n,
        );
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/dead-letters/replay`;
        const replay = () =>
          fetch(url, { method: "POST", headers: HEADERS, body: JSON.stringify({ filter: {}, all: true }) });
        const res = await replay();
        const body = (await res.json()) as { code?: string; message?: string };
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(body.code).toBe("DEAD_LETTER_REPLAY_INTERRUPTED");
        expect(body.message).toContain("after 2 of 5");
        // Two moved (queued, no longer letters); three still letters; none lost or queued twice.
        expect({ letters: await count("bus_dead_letters"), jobs: await count("bus_jobs") }).toEqual({
          letters: 3,
          jobs: 2,
        });
        const audit = await store.query<{ count: number; outcome: string }>(
          `SELECT count, outcome FROM ${store.dialect.table("console_audit")}`,
        );
        expect(audit.rows.map((r) => [Number(r.count), r.outcome])).toEqual([
          [2, "DEAD_LETTER_REPLAY_INTERRUPTED"],
        ]);
        const again = await replay();
        expect(((await again.json()) as { count?: number }).count).toBe(3);
        expect({ letters: await count("bus_dead_letters"), jobs: await count("bus_jobs") }).toEqual({
          letters: 0,
          jobs: 5,
        });
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
        await handler.close();
      }
    });
  });
}
