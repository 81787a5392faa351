import { inject } from "vitest";
import { localTransport } from "../src/bus/local-transport.js";
import { memoryTransport } from "../src/testing/memory-transport.js";
import { defineTransportConformance } from "./conformance/transport.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");

const local = (name: string, makeDb: () => IsolatedDatabase) =>
  defineTransportConformance({
    name,
    sharesStore: true,
    async fresh() {
      const db = makeDb();
      const store = db.make();
      await store.open();
      // A short lease so "the consumer died" is noticed within the test.
      const transport = localTransport(store, { lease: "400ms", pollInterval: "200ms" });
      return {
        transport,
        store,
        async cleanup() {
          await store.close();
          await db.cleanup();
        },
      };
    },
  });

local("local on SQLite", sqliteDatabase);
if (pg.reachable) local(`local on PostgreSQL (${pg.where})`, () => postgresDatabase(pg.url));
else console.log(`Transport conformance on PostgreSQL skipped: unreachable at ${pg.where}`);

defineTransportConformance({
  name: "in-memory",
  sharesStore: false,
  fresh: () =>
    Promise.resolve({
      transport: memoryTransport({ redeliverAfterMs: 300 }),
      cleanup: () => Promise.resolve(),
    }),
});
