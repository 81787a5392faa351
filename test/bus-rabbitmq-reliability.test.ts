/**
 * Reliability on RabbitMQ, with the effects counted in the store: a consumer process SIGKILLed
 * twice in the middle of 10,000 events; our broker connections force-closed (`rabbitmqctl
 * close_connection`) while publishing and consuming; a poison message among a flowing stream.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { describe, expect, inject, it } from "vitest";
import { topologyNames } from "../src/adapters/rabbitmq/topology.js";
import { createEventBus } from "../src/bus/bus.js";
import { encodeStructured } from "../src/core/envelope.js";
import { isPatchbayError } from "../src/core/errors.js";
import { defineEvent } from "../src/core/events.js";
import type { StandardSchemaV1 } from "../src/core/schema.js";
import { constant } from "../src/resilience/backoff.js";
import { until } from "./conformance/transport.js";
import { canUseRabbitmqctl, closeConnections, isolatedBroker } from "./support/rabbitmq.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, rabbitmq: mq } = inject("services");
const CHILD = fileURLToPath(new URL("./fixtures/bus-rabbitmq-consumer.ts", import.meta.url));
const EVENTS = 10_000;

const anything: StandardSchemaV1<{ n: number }> = {
  "~standard": { version: 1, vendor: "test", validate: (value) => ({ value: value as { n: number } }) },
};
const Crash = defineEvent("crash.test", { version: 1, schema: anything, source: "/crash" });
const Flow = defineEvent("flow.item", { version: 1, schema: anything, source: "/flow" });
const storeName = pg.reachable ? "PostgreSQL" : "SQLite";
const makeDb = (): IsolatedDatabase => (pg.reachable ? postgresDatabase(pg.url) : sqliteDatabase());

function startConsumer(db: IsolatedDatabase, prefix: string) {
  const proc = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      CHILD,
      JSON.stringify({ adapter: db.adapter, config: db.config, url: mq.url, prefix }),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let errors = "";
  proc.stdout.resume();
  proc.stderr.on("data", (d: Buffer) => (errors += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return { proc, exited, errors: () => errors };
}

const rabbitmqctl = mq.reachable && (await canUseRabbitmqctl());

describe.skipIf(!mq.reachable)(`bus reliability on RabbitMQ (${mq.where}) with ${storeName}`, () => {
  it("10,000 events, consumer SIGKILLed twice mid-stream: each effect applied exactly once", async () => {
    const broker = isolatedBroker(mq.url);
    broker.track("effects");
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

      for (const killAt of [1500, 5000]) {
        const consumer = startConsumer(db, broker.prefix);
        await until(
          async () => (await rows("SELECT COUNT(*) AS n FROM effects")) >= killAt,
          90_000,
          `${killAt} effects (${consumer.errors()})`,
        );
        consumer.proc.kill("SIGKILL");
        await consumer.exited;
      }
      const last = startConsumer(db, broker.prefix);
      await until(
        async () => (await rows("SELECT COUNT(*) AS n FROM effects")) >= EVENTS,
        120_000,
        `all effects (${last.errors()})`,
      );
      // The queue drains: redeliveries of effects already applied are acked by the inbox.
      const conn = await amqp.connect(mq.url);
      try {
        const ch = await conn.createChannel();
        const queue = topologyNames(broker.prefix).group("effects");
        await until(async () => (await ch.checkQueue(queue)).messageCount === 0, 30_000, "an empty queue");
      } finally {
        await conn.close();
      }
      await new Promise((r) => setTimeout(r, 500));
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

  it.skipIf(!rabbitmqctl)(
    "connections force-closed while publishing and consuming: nothing lost, nothing applied twice",
    async () => {
      const broker = isolatedBroker(mq.url);
      const db = makeDb();
      const store = db.make();
      const bus = createEventBus({ store, transport: broker.make(), events: [Flow] });
      try {
        await store.open();
        await store.query("CREATE TABLE effects (event_id TEXT NOT NULL)");
        bus.subscribe(Flow, { group: "effects", concurrency: 8 }, async (event, { tx }) => {
          await tx.query(`INSERT INTO effects (event_id) VALUES (${db.p(1)})`, [event.id]);
        });
        await bus.start();
        const published = new Set<string>();
        let failed = 0;
        let next = 0;
        const total = 3000;
        const publisher = async () => {
          while (next < total) {
            next++;
            try {
              published.add((await bus.publish(Flow, { n: next })).id);
            } catch (e) {
              // Confirm lost with the connection: not published as far as we know (it may exist).
              if (!isPatchbayError(e, "PUBLISH_FAILED")) throw e;
              failed++;
            }
          }
        };
        const publishing = Promise.all(Array.from({ length: 16 }, publisher));
        let closes = 0;
        try {
          for (const at of [500, 1400, 2300]) {
            await until(() => next >= at, 60_000, `${at} published`);
            closes += await closeConnections(broker.prefix);
          }
        } finally {
          await publishing;
        }
        expect(closes).toBeGreaterThanOrEqual(3);
        const ids = async () =>
          new Map(
            (
              await store.query<{ event_id: string; n: number | string }>(
                "SELECT event_id, COUNT(*) AS n FROM effects GROUP BY event_id",
              )
            ).rows.map((r) => [r.event_id, Number(r.n)]),
          );
        await until(
          async () => {
            const seen = await ids();
            return [...published].every((id) => seen.has(id));
          },
          60_000,
          "every confirmed event's effect",
        );
        await new Promise((r) => setTimeout(r, 1000));
        const seen = await ids();
        expect([...seen.values()].every((n) => n === 1)).toBe(true);
        expect(seen.size).toBeGreaterThanOrEqual(published.size);
        expect(seen.size).toBeLessThanOrEqual(published.size + failed);
        console.log(
          `force-close test: ${closes} connections closed, ${published.size} confirmed, ${failed} PUBLISH_FAILED, ${seen.size} effects`,
        );
      } finally {
        await bus.stop({ timeout: "5s" });
        await store.close();
        await db.cleanup();
        await broker.cleanup();
      }
    },
    180_000,
  );

  it("a poison message goes to dead letters after its attempts while 500 others flow; replay processes it", async () => {
    const broker = isolatedBroker(mq.url);
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
      healed = true;
      expect(await bus.deadLetters.replay({ group: "poison" })).toBe(1);
      await until(() => processed.has(0), 15_000, "the replayed message");
      expect(await bus.deadLetters.count()).toBe(0);
      expect(processed.size).toBe(501);
    } finally {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
      await broker.cleanup();
    }
  }, 120_000);
});

if (!mq.reachable) console.log(`Bus reliability on RabbitMQ skipped: unreachable at ${mq.where}`);
else if (!rabbitmqctl)
  console.log("Force-close test on RabbitMQ skipped: rabbitmqctl cannot manage the broker here");
