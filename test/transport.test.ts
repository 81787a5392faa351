import { randomUUID } from "node:crypto";
import { describe, expect, inject, it } from "vitest";
import { localTransport } from "../src/bus/local-transport.js";
import type { Delivery } from "../src/bus/transport.js";
import { memoryTransport } from "../src/testing/memory-transport.js";
import { defineTransportConformance, until } from "./conformance/transport.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, mysql: maria } = inject("services");

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
if (maria.reachable) local(`local on MariaDB (${maria.where})`, () => mysqlDatabase(maria.url));
else console.log(`Transport conformance on MariaDB skipped: unreachable at ${maria.where}`);

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

/**
 * One lease heartbeat per consumer keeps every delivery it runs: a handler that runs for several
 * leases is neither taken by another consumer polling the queue nor run twice, while the other
 * consumer goes on with the later messages.
 */
const slowHandler = (name: string, makeDb: () => IsolatedDatabase) =>
  describe(`local transport on ${name}: slow handlers keep their lease while another consumer polls`, () => {
    it("each message is delivered once, attempt 1, though its handler runs for four leases", async () => {
      const db = makeDb();
      // Two stores on one database: the other consumer is as good as another process (it learns
      // of work by polling, or by notification where the store has them, never in-process).
      const stores = [db.make(), db.make()];
      const leaseMs = 600;
      const [a, b] = stores.map((store) =>
        localTransport(store, { lease: `${leaseMs}ms`, pollInterval: "50ms" }),
      ) as [ReturnType<typeof localTransport>, ReturnType<typeof localTransport>];
      const body = (n: number) =>
        JSON.stringify({ specversion: "1.0", id: `e-${n}`, source: "/t", type: "a.b", data: { n } });
      const batch = (from: number, count: number) =>
        Array.from({ length: count }, (_, i) => ({
          id: randomUUID(),
          type: "a.b",
          body: body(from + i),
          headers: {},
        }));
      const got: Array<{ by: "a" | "b"; id: string; attempt: number }> = [];
      try {
        for (const store of stores) await store.open();
        await a.open();
        await b.open();
        await a.bind("g", ["#"]);
        const slow = batch(0, 3);
        await a.publish(slow);
        let running = 0;
        const slowConsumer = await a.consume("g", { concurrency: 4 }, async (d) => {
          got.push({ by: "a", id: d.message.id, attempt: d.attempt });
          if (slow.some((m) => m.id === d.message.id)) {
            running++;
            await new Promise((r) => setTimeout(r, 4 * leaseMs));
            running--;
          }
          await d.ack();
        });
        await until(() => running === 3, 5_000, "the three slow handlers running");
        const fastConsumer = await b.consume("g", { concurrency: 4 }, async (d) => {
          got.push({ by: "b", id: d.message.id, attempt: d.attempt });
          await d.ack();
        });
        const fast = batch(3, 5);
        await a.publish(fast);
        await until(
          () => got.length >= slow.length + fast.length,
          5_000,
          "the later messages handled beside the slow ones",
        );
        // The slow handlers are still running (for four leases), their messages with no one else.
        expect(running).toBe(3);
        await until(() => running === 0, 10_000, "the slow handlers done");
        // Two more leases and many polls: nothing comes back.
        await new Promise((r) => setTimeout(r, 2 * leaseMs));
        await slowConsumer.stop(5_000);
        await fastConsumer.stop(5_000);
        const ids = [...slow, ...fast].map((m) => m.id);
        expect(got.map((g) => g.id).sort()).toEqual([...ids].sort());
        expect(got.filter((g) => g.attempt !== 1)).toEqual([]);
        const jobs = stores[0]!.dialect.table("bus_jobs");
        const { rows } = await stores[0]!.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${jobs}`);
        expect(Number(rows[0]?.n)).toBe(0);
      } finally {
        await a.close();
        await b.close();
        for (const store of stores) await store.close();
        await db.cleanup();
      }
    });
  });

slowHandler("SQLite", sqliteDatabase);
if (pg.reachable) slowHandler("PostgreSQL", () => postgresDatabase(pg.url));
if (maria.reachable) slowHandler("MariaDB", () => mysqlDatabase(maria.url));

/**
 * A consumer claims freed slots together (half of them at a time) while work waits, but never
 * holds work back for long: with its other slots held by slow handlers, the one slot freed is
 * claimed within a few ms, again and again, though no more slots free.
 */
const freedBesideSlow = (name: string, makeDb: () => IsolatedDatabase) =>
  describe(`local transport on ${name}: a slot freed beside slow handlers`, () => {
    it("takes the waiting messages one by one while the other slots stay busy", async () => {
      const db = makeDb();
      const store = db.make();
      // A poll far beyond the test: only a handler that ends can make the consumer claim again.
      const transport = localTransport(store, { pollInterval: "10m" });
      const gates = new Map<number, () => void>();
      const done: number[] = [];
      const message = (n: number) => ({
        id: randomUUID(),
        type: "a.b",
        body: JSON.stringify({ specversion: "1.0", id: `e-${n}`, source: "/t", type: "a.b", data: { n } }),
        headers: {},
      });
      try {
        await store.open();
        await transport.open();
        await transport.bind("g", ["#"]);
        await transport.publish([0, 1, 2, 3].map(message));
        const consumer = await transport.consume("g", { concurrency: 4 }, async (d) => {
          const n = (JSON.parse(d.message.body) as { data: { n: number } }).data.n;
          if (n < 4) await new Promise<void>((resolve) => gates.set(n, resolve));
          await d.ack();
          done.push(n);
        });
        await until(() => gates.size === 4, 5_000, "four slow handlers holding every slot");
        await transport.publish([4, 5, 6].map(message));
        gates.get(0)!();
        await until(() => done.length === 4, 10_000, "the three waiting messages handled in the freed slot");
        expect([...done].sort()).toEqual([0, 4, 5, 6]);
        for (const n of [1, 2, 3]) gates.get(n)!();
        await until(() => done.length === 7, 5_000, "the slow handlers done");
        await consumer.stop(5_000);
      } finally {
        await transport.close();
        await store.close();
        await db.cleanup();
      }
    });
  });

freedBesideSlow("SQLite", sqliteDatabase);
if (pg.reachable) freedBesideSlow("PostgreSQL", () => postgresDatabase(pg.url));
if (maria.reachable) freedBesideSlow("MariaDB", () => mysqlDatabase(maria.url));
