/**
 * The event bus's semantics on the store-backed transports and the in-memory one (scenarios in
 * `test/conformance/bus.ts`; RabbitMQ in `test/bus-rabbitmq.test.ts`).
 */
import { inject } from "vitest";
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
  transports: () => ({ make: () => memoryTransport({ redeliverAfterMs: 300 }), cleanup: nothing }),
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
