/**
 * The event bus's semantics on the store-backed transports and the in-memory one (scenarios in
 * `src/adapter/conformance/bus.ts`; RabbitMQ in `test/bus-rabbitmq.test.ts`).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { localTransport, PARKED } from "../src/bus/local-transport.js";
import { PARKED_AT } from "../src/bus/outbox.js";
import { encodeStructured } from "../src/core/envelope.js";
import { defineEvent } from "../src/core/events.js";
import { createLogger } from "../src/core/logger.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { memoryTransport } from "../src/testing/memory-transport.js";
import { defineBusConformance } from "../src/adapter/conformance/index.js";
import { until } from "./conformance/transport.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, mysql: maria } = inject("services");
const nothing = () => Promise.resolve();

/** Messages of `group` parked in the local queue (their dead letter refused). */
async function parkedRows(store: SqlStore, group: string) {
  const p = store.dialect.placeholders === "numbered" ? "$1" : "?";
  const { rows } = await store.query<{ n: number | string }>(
    `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")} WHERE grp = ${p} AND run_at = ${PARKED}`,
    [group],
  );
  return Number(rows[0]?.n ?? 0);
}

/** A queued row whose headers cannot be read: not JSON on SQLite; JSON but no object of strings in PostgreSQL's jsonb. */
async function corruptRow(store: SqlStore, group: string) {
  const id = randomUUID();
  const body = JSON.stringify({
    specversion: "1.0",
    id,
    source: "/broken",
    type: "order.created",
    data: { orderId: "corrupt", qty: 1 },
  });
  const headers = store.dialect.name === "sqlite" ? "{not json" : '["not", "headers"]';
  const p = (n: number) => (store.dialect.placeholders === "numbered" ? `$${n}` : "?");
  await store.query(
    `INSERT INTO ${store.dialect.table("bus_jobs")} (grp, message_id, type, body, headers, attempt, run_at, created_at)
     VALUES (${p(1)}, ${p(2)}, 'order.created', ${p(3)}, ${p(4)}, 0, 0, 0)`,
    [group, id, body, headers],
  );
  return { id, body };
}

defineBusConformance({
  name: "local on SQLite",
  database: sqliteDatabase,
  transports: () => ({
    make: (store) => localTransport(store, { lease: "2s", pollInterval: "100ms" }),
    cleanup: nothing,
    undecodable: corruptRow,
    parked: parkedRows,
  }),
});
defineBusConformance({
  name: "in-memory (outbox relay on SQLite)",
  database: sqliteDatabase,
  transports: () => {
    // One per test: the buses of a test (a restart) share its queues, as with the other transports.
    const transport = memoryTransport({ redeliverAfterMs: 300 });
    return {
      make: () => transport,
      cleanup: nothing,
      parked: (_store, group) => Promise.resolve(transport.parked.filter((p) => p.group === group).length),
    };
  },
});
if (pg.reachable) {
  defineBusConformance({
    name: "local on PostgreSQL",
    database: () => postgresDatabase(pg.url),
    transports: () => ({
      make: (store) => localTransport(store, { lease: "2s", pollInterval: "100ms" }),
      cleanup: nothing,
      undecodable: corruptRow,
      parked: parkedRows,
    }),
  });
}

if (maria.reachable) {
  defineBusConformance({
    name: "local on MariaDB",
    database: () => mysqlDatabase(maria.url),
    deferredConstraints: false,
    transports: () => ({
      make: (store) => localTransport(store, { lease: "2s", pollInterval: "100ms" }),
      cleanup: nothing,
      undecodable: corruptRow,
      parked: parkedRows,
    }),
  });
} else {
  describe("event bus: local on MariaDB", () => {
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {});
  });
}

describe.runIf(pg.reachable)(
  "the local queue on PostgreSQL, publishing with the bindings it last read",
  () => {
    it("routes by the bindings at each publish: a group bound or rebound by another process counts at once", async () => {
      const db = postgresDatabase(pg.url);
      const publisher = db.make();
      const other = db.make();
      const a = localTransport(publisher);
      const b = localTransport(other);
      const message = (id: string, type = "order.created") => ({ id, type, body: "{}", headers: {} });
      const queued = async () => {
        const { rows } = await publisher.query<{ grp: string; message_id: string }>(
          "SELECT grp, message_id FROM bus_jobs ORDER BY id",
        );
        return rows.map((r) => `${r.grp}:${r.message_id}`);
      };
      try {
        await a.open();
        await b.open();
        await a.bind("g1", ["order.*"]);
        await a.publish([message("m1")]);
        // Another process binds a group, and rebinds g1 away from orders: the publisher's next
        // publishes (outside a transaction, then in one) follow the table, not what it read before.
        await b.bind("g2", ["order.created"]);
        await a.publish([message("m2")]);
        await b.bind("g1", ["invoice.#"]);
        await publisher.transaction((tx) => a.publish([message("m3")], { tx }));
        await a.publish([message("m4", "invoice.paid.late")]);
        expect(await queued()).toEqual(["g1:m1", "g1:m2", "g2:m2", "g2:m3", "g1:m4"]);
      } finally {
        await a.close();
        await b.close();
        await publisher.close();
        await other.close();
        await db.cleanup();
      }
    });
  },
);

describe.runIf(pg.reachable)("the inbox on PostgreSQL", () => {
  it("checks many ids with one index probe each, even before the table was analysed", async () => {
    const db = postgresDatabase(pg.url);
    const store = db.make();
    try {
      await store.open();
      // A grown inbox autovacuum has not analysed yet (a new deployment's first minute, or a
      // bench): the planner knows its size but not that every row is of the one group.
      await store.query(
        `INSERT INTO bus_inbox (grp, message_id, processed_at)
         SELECT 'orders', md5(i::text), 0 FROM generate_series(1, 20000) AS i`,
      );
      const ids = Array.from({ length: 60 }, (_, i) => `missing-${i}`);
      const { rows } = await store.query<{ "QUERY PLAN": string }>(
        `EXPLAIN (ANALYZE, FORMAT TEXT)
         SELECT grp, message_id FROM bus_inbox WHERE grp = $1 AND message_id = ANY($2::text[])`,
        ["orders", ids],
      );
      const plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
      // A probe per id reads none of the 20,000 rows; a scan of the group filters all of them.
      expect(plan).not.toMatch(/Rows Removed by Filter/);
      expect(plan).toMatch(/Index Cond: \(\(message_id = ANY/);
      // Should a generic plan (made once, without the values) ever run the check — an app's own
      // pool with prepareStatements: true and the default plan_cache_mode — it must probe by id too.
      const generic = await store.transaction(async (tx) => {
        await tx.query("SET LOCAL plan_cache_mode = force_generic_plan");
        await tx.query(
          `PREPARE inbox_check(text, text[]) AS
           SELECT grp, message_id FROM bus_inbox WHERE grp = $1 AND message_id = ANY($2::text[])`,
        );
        const explained = await tx.query<{ "QUERY PLAN": string }>(
          `EXPLAIN (ANALYZE, FORMAT TEXT) EXECUTE inbox_check('orders', '{${ids.join(",")}}')`,
        );
        await tx.query("DEALLOCATE inbox_check");
        return explained.rows.map((r) => r["QUERY PLAN"]).join("\n");
      });
      expect(generic).not.toMatch(/Rows Removed by Filter/);
      expect(generic).toMatch(/Index Cond: \(\(message_id = ANY \(\$2\)/);
    } finally {
      await store.close();
      await db.cleanup();
    }
  });
});

describe("the outbox relay and a row it cannot read", () => {
  const Ping = defineEvent("ping", { version: 1, schema: z.object({ n: z.number() }) });
  const cases: Array<[string, () => IsolatedDatabase, string]> = [
    ["SQLite (headers that are not JSON)", sqliteDatabase, "{not json"],
  ];
  if (pg.reachable)
    cases.push(["PostgreSQL (headers a JSON string)", () => postgresDatabase(pg.url), '"just a string"']);
  if (maria.reachable)
    cases.push(["MariaDB (headers a JSON string)", () => mysqlDatabase(maria.url), '"just a string"']);

  for (const [name, database, badHeaders] of cases) {
    it(`parks it, logs it at error level, and relays every event behind it (${name})`, async () => {
      const db = database();
      const store = db.make();
      const errors: string[] = [];
      const logger = createLogger({
        level: "error",
        destination: { write: (line) => void errors.push(line) },
      });
      const bus = createEventBus({ store, transport: memoryTransport(), events: [Ping], logger });
      const seen: number[] = [];
      bus.subscribe(Ping, { group: "g" }, (e) => void seen.push(e.data.n));
      try {
        await store.open();
        const outbox = store.dialect.table("bus_outbox");
        // A damaged row first in line, then good events behind it.
        await store.query(
          `INSERT INTO ${outbox} (message_id, type, ${store.dialect.quote?.("key") ?? "key"}, body, headers, deliver_at, created_at) VALUES (${db.p(1)}, 'ping', NULL, '{}', ${db.p(2)}, 0, 0)`,
          ["damaged", badHeaders],
        );
        for (let n = 1; n <= 3; n++)
          await bus.transaction((tx) => tx.publish(Ping, { n }).then(() => undefined));
        await bus.start();
        await until(
          () => seen.length === 3,
          10_000,
          `the events behind the damaged row; log: ${errors.join("")}`,
        );
        expect(seen.sort()).toEqual([1, 2, 3]);
        const left = async () =>
          (
            await store.query<{ message_id: string; deliver_at: number | string }>(
              `SELECT message_id, deliver_at FROM ${outbox}`,
            )
          ).rows.map((r) => [r.message_id, Number(r.deliver_at)]);
        // The relay deletes what it published once the publish returned.
        await until(async () => (await left()).length === 1, 5_000, "the relayed rows deleted");
        expect(await left()).toEqual([["damaged", PARKED_AT]]);
        expect(errors.join("\n")).toContain("damaged");
      } finally {
        await bus.stop({ timeout: "5s" });
        await store.close();
        await db.cleanup();
      }
    });
  }
});

describe("batch subscriptions on a store without a many-id inbox claim (recordMany)", () => {
  it("claim their ids one by one in the batch's transaction: each effect once, copies recognised", async () => {
    const db = sqliteDatabase();
    const base = db.make();
    // As a third-party adapter that implements only the required inbox roles would be.
    const inbox = base.dialect.roles.inbox;
    const required = {
      processed: (...args: Parameters<typeof inbox.processed>) => inbox.processed(...args),
      record: (...args: Parameters<typeof inbox.record>) => inbox.record(...args),
    };
    const store: SqlStore = {
      ...base,
      dialect: { ...base.dialect, roles: { ...base.dialect.roles, inbox: required } },
    };
    const transport = memoryTransport({ redeliverAfterMs: 300 });
    const Created = defineEvent("order.created", {
      version: 1,
      schema: z.object({ orderId: z.string() }),
      source: "/test",
    });
    const bus = createEventBus({ store, transport, events: [Created] });
    try {
      await store.open();
      await store.query("CREATE TABLE effects (event_id TEXT NOT NULL)");
      const transactions = new Set<unknown>();
      bus.subscribe(Created, { group: "fx", concurrency: 2, batch: { size: 8 } }, async (e, ctx) => {
        transactions.add(ctx.tx);
        await ctx.tx.query("INSERT INTO effects (event_id) VALUES (?)", [e.id]);
      });
      await bus.start();
      const messages = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const event = await Created.toEnvelope({ orderId: `o-${i}` });
          return { id: event.id, type: event.type, body: encodeStructured(event), headers: {} };
        }),
      );
      const effects = async () =>
        Number((await store.query<{ n: number }>("SELECT COUNT(*) AS n FROM effects")).rows[0]?.n);
      // First 16 messages once each: batches commit, their ids claimed one by one.
      await transport.publish(messages.slice(0, 16), { group: "fx" });
      await until(async () => (await effects()) >= 16, 10_000, "16 effects");
      expect(transactions.size).toBeLessThan(16);
      // Then each message twice in one send (a broker redelivering): a copy shares a batch with
      // its original, whose claims then find an id taken, roll back, and run them alone.
      await transport.publish(
        messages.slice(16).flatMap((m) => [m, m]),
        { group: "fx" },
      );
      await until(async () => (await effects()) >= 30, 10_000, "30 effects");
      await new Promise((r) => setTimeout(r, 500));
      expect(await effects()).toBe(30);
      const distinct = await store.query<{ n: number }>("SELECT COUNT(DISTINCT event_id) AS n FROM effects");
      expect(Number(distinct.rows[0]?.n)).toBe(30);
      expect(await bus.deadLetters.count()).toBe(0);
    } finally {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
    }
  });
});
