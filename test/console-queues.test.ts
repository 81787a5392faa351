/**
 * The console's Queues and CDC screens' API against real stores: deliveries in flight and what
 * the last minute's deliveries became, counted in the process that serves the console; and the
 * logical replication slots of the store's PostgreSQL database.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { defineEvent } from "../src/core/events.js";
import { NonRetryableError } from "../src/core/errors.js";
import { createConsole, type ConsoleHandler, type ConsoleOptions } from "../src/ops/console.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");
const Job = defineEvent("job.queued", { version: 1, schema: z.object({ n: z.number() }) });

interface Group {
  group: string;
  depth?: number;
  inFlight?: number;
  lastMinute?: { delivered: number; acked: number; retried: number; deadLettered: number };
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const adapters: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
];

for (const [name, makeDb, reachable] of adapters) {
  describe.skipIf(!reachable)(`console Queues and CDC on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    let bus: EventBus;
    let release: () => void = () => {};
    const open = new Promise<void>((r) => (release = r));
    const served: Array<{ server: Server; handler: ConsoleHandler }> = [];

    async function serve(options: Partial<ConsoleOptions> = {}) {
      const handler = createConsole({ store, ...options });
      const server = createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      served.push({ server, handler });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
      return async <T>(path: string) => (await (await fetch(url + path)).json()) as T;
    }

    beforeAll(async () => {
      db = makeDb();
      store = db.make();
      bus = createEventBus({ store, events: [Job] });
      bus.subscribe(Job, { group: "slow", concurrency: 4 }, async (event) => {
        await open;
        if (event.data.n < 0) throw new NonRetryableError("negative job");
      });
      await store.open();
      await bus.start();
    });
    afterAll(async () => {
      release();
      for (const { server, handler } of served) {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
        await handler.close();
      }
      await bus?.stop();
      await store?.close();
      await db?.cleanup();
    });

    it("shows deliveries in flight in this process, then what the last minute's became", async () => {
      const get = await serve({ bus });
      const slow = async () =>
        (await get<{ measured: boolean; groups: Group[] }>("queues")).groups.find((g) => g.group === "slow");
      for (const n of [1, 2, -3]) await bus.publish(Job, { n });
      const busy = await until(slow, (g) => g?.inFlight === 3, "3 deliveries in flight");
      expect(busy?.lastMinute).toEqual({ delivered: 3, acked: 0, retried: 0, deadLettered: 0 });

      release();
      const done = await until(slow, (g) => g?.inFlight === 0 && g.depth === 0, "the 3 settled");
      expect(done?.lastMinute).toEqual({ delivered: 3, acked: 2, retried: 0, deadLettered: 1 });
      expect((await get<{ measured: boolean }>("queues")).measured).toBe(true);
    });

    it("without the app's bus, says it measures nothing rather than showing zeros", async () => {
      const get = await serve();
      const q = await get<{ measured: boolean; groups: Group[] }>("queues");
      expect(q.measured).toBe(false);
      const slow = q.groups.find((g) => g.group === "slow");
      expect(slow).toMatchObject({ depth: 0 });
      expect(slow?.inFlight).toBeUndefined();
      expect(slow?.lastMinute).toBeUndefined();
    });

    it("lists the logical replication slots of the store's database (none off PostgreSQL)", async () => {
      const get = await serve();
      if (name !== "PostgreSQL") {
        expect(await get("cdc")).toEqual({ dialect: "sqlite", slots: [] });
        return;
      }
      const slot = `pb_console_${randomUUID().slice(0, 8)}`;
      await store.query(`SELECT pg_create_logical_replication_slot('${slot}', 'pgoutput')`);
      try {
        const r = await get<{ dialect: string; slots: Array<Record<string, unknown>> }>("cdc");
        expect(r.dialect).toBe("postgres");
        const mine = r.slots.find((s) => s.slot === slot);
        expect(mine).toMatchObject({ slot, active: false });
        expect(typeof mine?.lagBytes).toBe("number");
      } finally {
        await store.query(`SELECT pg_drop_replication_slot('${slot}')`);
      }
    });
  });
}
