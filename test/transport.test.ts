import { randomUUID } from "node:crypto";
import { describe, expect, inject, it } from "vitest";
import { localTransport } from "../src/bus/local-transport.js";
import type { Delivery } from "../src/bus/transport.js";
import { memoryTransport } from "../src/testing/memory-transport.js";
import { defineTransportConformance, until } from "./conformance/transport.js";
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

describe("local transport on SQLite: stop while a claim waits for the file's write lock", () => {
  it("returns within its timeout; what the claim then takes goes to no handler and is due again at once, not counted", async () => {
    const db = sqliteDatabase();
    const store = db.make();
    await store.open();
    // A long lease and poll: whatever comes back quickly below was handed back, not timed out.
    const transport = localTransport(store, { lease: "30s", pollInterval: "10s" });
    await transport.open();
    await transport.bind("g", ["#"]);
    const messages = [1, 2].map((n) => ({
      id: randomUUID(),
      type: "a.b",
      body: JSON.stringify({ specversion: "1.0", id: `e-${n}`, source: "/t", type: "a.b", data: {} }),
      headers: {},
    }));
    const delivered: Delivery[] = [];
    // The consumer's first claim comes after a turn of the event loop; the transaction below
    // takes the write lock before it, so the claim waits behind the transaction.
    const consuming = transport.consume("g", { concurrency: 2 }, async (d) => {
      delivered.push(d);
      await d.ack();
    });
    let unblock!: () => void;
    const gate = new Promise<void>((r) => (unblock = r));
    const holding = store.transaction(async (tx) => {
      await transport.publish(messages, { tx });
      await gate; // a handler awaiting after its first ctx.tx write does the same
    });
    const consumer = await consuming;
    try {
      await new Promise((r) => setTimeout(r, 100));
      const began = Date.now();
      await Promise.race([consumer.stop(300), new Promise((r) => setTimeout(r, 5000))]);
      expect(Date.now() - began).toBeLessThan(300 + 300);
    } finally {
      unblock();
      await holding;
    }
    try {
      // The claim ran once the transaction committed, and took both rows: handed back at once.
      const jobs = store.dialect.table("bus_jobs");
      await until(
        async () =>
          (await store.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${jobs} WHERE attempt = 0`)).rows[0]
            ?.n === 2,
        5_000,
        "both rows back, their claim undone",
      );
      expect(delivered).toHaveLength(0);
      const again: Delivery[] = [];
      const next = await transport.consume("g", { concurrency: 2 }, async (d) => {
        again.push(d);
        await d.ack();
      });
      await until(() => again.length === 2, 2_000, "both delivered to the next consumer at once");
      expect(again.map((d) => d.attempt)).toEqual([1, 1]);
      await next.stop(1000);
      expect(delivered).toHaveLength(0);
    } finally {
      await transport.close();
      await store.close();
      await db.cleanup();
    }
  });
});
