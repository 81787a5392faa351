/**
 * The event bus's semantics on the store-backed transports and the in-memory one (scenarios in
 * `test/conformance/bus.ts`; RabbitMQ in `test/bus-rabbitmq.test.ts`).
 */
import { describe, expect, inject, it } from "vitest";
import { localTransport } from "../src/bus/local-transport.js";
import { memoryTransport } from "../src/testing/memory-transport.js";
import { defineBusConformance } from "./conformance/bus.js";
import { postgresDatabase, sqliteDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");
const nothing = () => Promise.resolve();

defineBusConformance({
  name: "local on SQLite",
  database: sqliteDatabase,
  transports: () => ({
    make: (store) => localTransport(store, { lease: "2s", pollInterval: "100ms" }),
    cleanup: nothing,
  }),
});
defineBusConformance({
  name: "in-memory (outbox relay on SQLite)",
  database: sqliteDatabase,
  transports: () => {
    // One per test: the buses of a test (a restart) share its queues, as with the other transports.
    const transport = memoryTransport({ redeliverAfterMs: 300 });
    return { make: () => transport, cleanup: nothing };
  },
});
if (pg.reachable) {
  defineBusConformance({
    name: "local on PostgreSQL",
    database: () => postgresDatabase(pg.url),
    transports: () => ({
      make: (store) => localTransport(store, { lease: "2s", pollInterval: "100ms" }),
      cleanup: nothing,
    }),
  });
}

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
