/**
 * Reliability on NATS JetStream, with the effects counted in the store: a consumer process
 * SIGKILLed twice mid-stream; connections cut (a TCP proxy in front of the shared server) while
 * publishing and consuming; a nats-server of the test's own killed and started again
 * mid-stream; a poison message among a flowing stream.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { nats } from "../src/adapters/nats/index.js";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { encodeStructured } from "../src/core/envelope.js";
import { isPatchbayError } from "../src/core/errors.js";
import { defineEvent } from "../src/core/events.js";
import type { StandardSchemaV1 } from "../src/core/schema.js";
import { constant } from "../src/resilience/backoff.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { until } from "./conformance/transport.js";
import { isolatedNats, quick } from "./support/nats.js";
import { ownNatsServer } from "./support/nats-server.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";
import { tcpProxy } from "./support/tcp-proxy.js";

const { postgres: pg, nats: ns } = inject("services");
const CHILD = fileURLToPath(new URL("./fixtures/bus-nats-consumer.ts", import.meta.url));
const EVENTS = 5_000;

const anything: StandardSchemaV1<{ n: number }> = {
  "~standard": { version: 1, vendor: "test", validate: (value) => ({ value: value as { n: number } }) },
};
const Crash = defineEvent("crash.test", { version: 1, schema: anything, source: "/crash" });
const Flow = defineEvent("flow.item", { version: 1, schema: anything, source: "/flow" });
const storeName = pg.reachable ? "PostgreSQL" : "SQLite";
const makeDb = (): IsolatedDatabase => (pg.reachable ? postgresDatabase(pg.url) : sqliteDatabase());

function startConsumer(db: IsolatedDatabase, url: string, prefix: string) {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, JSON.stringify({ adapter: db.adapter, config: db.config, url, prefix })],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let errors = "";
  proc.stdout.resume();
  proc.stderr.on("data", (d: Buffer) => (errors += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return { proc, exited, errors: () => errors };
}

/** Effects per event id. */
const effects = async (store: SqlStore) =>
  new Map(
    (
      await store.query<{ event_id: string; n: number | string }>(
        "SELECT event_id, COUNT(*) AS n FROM effects GROUP BY event_id",
      )
    ).rows.map((r) => [r.event_id, Number(r.n)]),
  );

/**
 * Publishes `total` events from 16 publishers while `disturb` runs; then waits for every
 * confirmed event's effect and checks none was applied twice. Returns the counts.
 */
async function flowThrough(
  bus: EventBus,
  store: SqlStore,
  total: number,
  disturb: (published: () => number) => Promise<void>,
) {
  const published = new Set<string>();
  let failed = 0;
  let next = 0;
  const publisher = async () => {
    while (next < total) {
      next++;
      try {
        published.add((await bus.publish(Flow, { n: next })).id);
      } catch (e) {
        // The acknowledgement was lost with the connection: maybe stored, maybe not.
        if (!isPatchbayError(e, "PUBLISH_FAILED")) throw e;
        failed++;
      }
    }
  };
  const publishing = Promise.all(Array.from({ length: 16 }, publisher));
  try {
    await disturb(() => next);
  } finally {
    await publishing;
  }
  await until(
    async () => {
      const seen = await effects(store);
      return [...published].every((id) => seen.has(id));
    },
    90_000,
    "every acknowledged event's effect",
  );
  await new Promise((r) => setTimeout(r, 1500));
  const seen = await effects(store);
  const doubled = [...seen.values()].filter((n) => n > 1).length;
  const lost = [...published].filter((id) => !seen.has(id)).length;
  return { published: published.size, failed, applied: seen.size, doubled, lost };
}

describe.skipIf(!ns.reachable)(`bus reliability on NATS JetStream (${ns.where}) with ${storeName}`, () => {
  it(`${EVENTS} events, consumer SIGKILLed twice mid-stream: each effect applied exactly once`, async () => {
    const broker = isolatedNats(ns.url);
    const db = makeDb();
    const store = db.make();
    const transport = broker.make();
    try {
      await store.open();
      await store.query("CREATE TABLE effects (event_id TEXT NOT NULL)");
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
      const rows = async (sql: string) => Number((await store.query<{ n: number | string }>(sql)).rows[0]?.n);
      for (const killAt of [1000, 3000]) {
        const consumer = startConsumer(db, ns.url, broker.prefix);
        await until(
          async () => (await rows("SELECT COUNT(*) AS n FROM effects")) >= killAt,
          90_000,
          `${killAt} effects (${consumer.errors()})`,
        );
        consumer.proc.kill("SIGKILL");
        await consumer.exited;
      }
      const last = startConsumer(db, ns.url, broker.prefix);
      await until(
        async () => (await rows("SELECT COUNT(*) AS n FROM effects")) >= EVENTS,
        120_000,
        `all effects (${last.errors()})`,
      );
      await new Promise((r) => setTimeout(r, 4000)); // past the ack wait: redeliveries done
      last.proc.kill("SIGTERM");
      await last.exited;
      expect(await rows("SELECT COUNT(*) AS n FROM effects")).toBe(EVENTS);
      expect(await rows("SELECT COUNT(DISTINCT event_id) AS n FROM effects")).toBe(EVENTS);
    } finally {
      await transport.close();
      await store.close();
      await db.cleanup();
      await broker.cleanup();
    }
  }, 300_000);

  it("connections cut (TCP proxy) while publishing and consuming: nothing lost, nothing applied twice", async () => {
    const target = new URL(ns.url);
    const proxy = await tcpProxy(target.hostname, Number(target.port) || 4222);
    const broker = isolatedNats(`nats://127.0.0.1:${proxy.port}`);
    const db = makeDb();
    const store = db.make();
    const bus = createEventBus({ store, transport: broker.make({ publishTimeout: "5s" }), events: [Flow] });
    try {
      await store.open();
      await store.query("CREATE TABLE effects (event_id TEXT NOT NULL)");
      bus.subscribe(Flow, { group: "effects", concurrency: 8 }, async (event, { tx }) => {
        await tx.query(`INSERT INTO effects (event_id) VALUES (${db.p(1)})`, [event.id]);
      });
      await bus.start();
      const r = await flowThrough(bus, store, 3000, async (next) => {
        for (const at of [500, 1400, 2300]) {
          await until(() => next() >= at, 60_000, `${at} published`);
          proxy.cut();
        }
      });
      console.log(`connection-cut test on NATS: 3 cuts, ${JSON.stringify(r)}`);
      expect(r.lost).toBe(0);
      expect(r.doubled).toBe(0);
      expect(r.applied).toBeLessThanOrEqual(r.published + r.failed);
    } finally {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
      await broker.cleanup().catch(() => undefined);
      await proxy.close();
    }
  }, 240_000);

  it("our own nats-server killed and started again mid-stream: nothing lost, nothing applied twice", async () => {
    const server = await ownNatsServer();
    const db = makeDb();
    const store = db.make();
    const transport = nats({ url: server.url, prefix: "restart", ...quick, publishTimeout: "5s" });
    const bus = createEventBus({ store, transport, events: [Flow] });
    try {
      await store.open();
      await store.query("CREATE TABLE effects (event_id TEXT NOT NULL)");
      bus.subscribe(Flow, { group: "effects", concurrency: 8 }, async (event, { tx }) => {
        await tx.query(`INSERT INTO effects (event_id) VALUES (${db.p(1)})`, [event.id]);
      });
      await bus.start();
      const r = await flowThrough(bus, store, 2000, async (next) => {
        await until(() => next() >= 700, 60_000, "700 published");
        await server.kill();
        await new Promise((res) => setTimeout(res, 1500));
        await server.start();
      });
      console.log(`server-restart test on NATS: ${JSON.stringify(r)}`);
      expect(r.lost).toBe(0);
      expect(r.doubled).toBe(0);
      expect(r.applied).toBeLessThanOrEqual(r.published + r.failed);
    } finally {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
      await server.cleanup();
    }
  }, 240_000);

  it("a poison message goes to dead letters after its attempts while 500 others flow; replay processes it", async () => {
    const broker = isolatedNats(ns.url);
    const db = makeDb();
    const store = db.make();
    const bus = createEventBus({ store, transport: broker.make(), events: [Flow] });
    try {
      await store.open();
      const processed = new Set<number>();
      let healed = false;
      let poisonRuns = 0;
      bus.subscribe(
        Flow,
        { group: "poison", concurrency: 4, retry: { immediate: 1, attempts: 4, backoff: constant(300) } },
        (event) => {
          if (event.data.n === 0 && !healed) {
            poisonRuns++;
            throw new Error("cannot handle item 0");
          }
          processed.add(event.data.n);
        },
      );
      await bus.start();
      await bus.publish(Flow, { n: 0 });
      for (let i = 1; i <= 500; i++) await bus.publish(Flow, { n: i });
      await until(() => processed.size === 500, 60_000, "the 500 others");
      await until(async () => (await bus.deadLetters.count()) === 1, 30_000, "a dead letter");
      expect(poisonRuns).toBe(8); // 4 deliveries × (1 + 1 immediate retry)
      const [letter] = await bus.deadLetters.list({ group: "poison" });
      expect(letter).toMatchObject({ group: "poison", type: "flow.item", attempts: 4 });
      expect(letter!.error.message).toBe("cannot handle item 0");
      // The worker goes on after the dead letter.
      await bus.publish(Flow, { n: 501 });
      await until(() => processed.has(501), 15_000, "a message after the dead letter");
      healed = true;
      expect(await bus.deadLetters.replay({ group: "poison" })).toBe(1);
      await until(() => processed.has(0), 15_000, "the replayed message");
      expect(await bus.deadLetters.count()).toBe(0);
      expect(processed.size).toBe(502);
    } finally {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
      await broker.cleanup();
    }
  }, 120_000);
});

if (!ns.reachable) console.log(`Bus reliability on NATS skipped: unreachable at ${ns.where}`);
