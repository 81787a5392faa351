/**
 * The contenders of the bus benchmark, each an isolated queue that calls `onEvent` from its
 * handler: ours on RabbitMQ, NATS JetStream, PostgreSQL and SQLite; raw amqplib (confirms + manual
 * acks: the broker's limit) and raw @nats-io/jetstream (acked publishes + pull consume with acks:
 * JetStream's); pg-boss and graphile-worker (the PostgreSQL peers).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { connect as natsConnect, headers as natsHeaders } from "@nats-io/transport-node";
import amqp from "amqplib";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import mysql2 from "mysql2/promise";
import pg from "pg";
import { PgBoss, type Db, type Job } from "pg-boss";
// Ours as users run it: the built package (dist/, through its own exports; `npm run bench`
// builds first), like the peers' compiled JavaScript — not src/ through tsx's transform.
import { createEventBus, defineEvent, type SqlStore, type StandardSchemaV1 } from "patchbay";
import { mysql } from "patchbay/mysql";
import { postgres } from "patchbay/postgres";
import { nats } from "patchbay/nats";
import { rabbitmq } from "patchbay/rabbitmq";
import { sqlite } from "patchbay/sqlite";
// Names only, to delete what a run declared.
import { createBatcher } from "../src/core/batcher.js";
import { topologyNames as natsNames } from "../src/adapters/nats/topology.js";
import { DELAY_TIERS_MS, topologyNames } from "../src/adapters/rabbitmq/topology.js";

export const PG_URL = process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const MYSQL_URL = process.env.PATCHBAY_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
export const AMQP_URL = process.env.PATCHBAY_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const NATS_URL = process.env.PATCHBAY_NATS_URL ?? "nats://127.0.0.1:4222";

/** Deletes the streams of a NATS transport's prefix (with their consumers). */
export async function deleteNatsPrefix(prefix: string) {
  const n = natsNames(prefix);
  const nc = await natsConnect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    for (const s of n.streams) await jsm.streams.delete(s).catch(() => false);
  } finally {
    await nc.close();
  }
}
/** Handlers (and prefetch) in flight per consumer, and concurrent publishers. */
export const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

/** What every event carries: a sequence number, when it was sent, and ~1 KiB of data. */
export interface Payload {
  seq: number;
  sentAt: number;
  blob: string;
}

const payloadSchema: StandardSchemaV1<Payload> = {
  "~standard": { version: 1, vendor: "bench", validate: (value) => ({ value: value as Payload }) },
};
/** The event ours publish (validated by a pass-through schema, so validation costs nothing). */
export const BenchEvent = defineEvent("bench.event", { version: 1, schema: payloadSchema, source: "/bench" });

/** A running contender. */
export interface Running {
  publish(payload: Payload): Promise<void>;
  close(): Promise<void>;
}

/** A contender: opens an isolated queue whose consumer calls `onEvent`. */
export interface Contender {
  name: string;
  open(onEvent: (payload: Payload) => void): Promise<Running>;
}

const suffix = () => `${process.pid}_${randomBytes(3).toString("hex")}`;

async function dropSchema(schema: string) {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Deletes every object of a RabbitMQ transport's prefix. */
export async function deletePrefix(prefix: string, groups: readonly string[]) {
  const n = topologyNames(prefix);
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    for (const g of groups)
      for (const q of [n.group(g), n.brokerDeadLetters(g), n.bindings(g)]) await ch.deleteQueue(q);
    for (const ms of DELAY_TIERS_MS) await ch.deleteQueue(n.tier(ms));
    await ch.deleteQueue(n.unrouted);
    for (const e of [n.due, n.delay, n.exchange, n.unrouted]) await ch.deleteExchange(e);
  } finally {
    await conn.close();
  }
}

/** Runs `sql` on the MariaDB server as the bench's admin connection. */
async function onMysql(sql: string) {
  const c = await mysql2.createConnection({ uri: MYSQL_URL });
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A Patchbay store for a contender, and how to remove it. */
export function benchStore(kind: "postgres" | "sqlite" | "mysql"): {
  store: SqlStore;
  config: Record<string, unknown>;
  drop: () => Promise<void>;
} {
  if (kind === "mysql") {
    // A database of its own, made before the store first opens.
    const database = `pb_bench_${suffix()}`;
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    const config = { url: url.toString(), max: 16 };
    const store = mysql(config);
    const open = store.open.bind(store);
    store.open = async () => {
      await onMysql(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
      await open();
    };
    return { store, config, drop: () => onMysql(`DROP DATABASE IF EXISTS \`${database}\``) };
  }
  if (kind === "postgres") {
    const schema = `pb_bench_${suffix()}`;
    const config = { url: PG_URL, schema, max: 16 };
    return { store: postgres(config), config, drop: () => dropSchema(schema) };
  }
  const dir = mkdtempSync(join(tmpdir(), "patchbay-bench-"));
  const config = { file: join(dir, "bus.db") };
  return {
    store: sqlite(config),
    config,
    drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
}

/**
 * Ours: the whole bus (envelope, validation, inbox). With `writes`, the handler also inserts one
 * row through `ctx.tx` — the exactly-once path: its own transaction with the inbox claim (and,
 * on the local transport, the ack). Without it, the handler never touches the store: the first
 * delivery of an event `publish` sent once is not checked against the inbox and records nothing.
 */
function ours(
  name: string,
  kind: "postgres" | "sqlite" | "mysql",
  broker: "rabbitmq" | "nats" | false,
  writes = false,
  batch?: { size: number; concurrency: number },
): Contender {
  return {
    name,
    async open(onEvent) {
      const { store, drop } = benchStore(kind);
      await store.open();
      if (writes) await store.query("CREATE TABLE IF NOT EXISTS bench_effects (seq integer NOT NULL)");
      const insert = `INSERT INTO bench_effects (seq) VALUES (${kind === "postgres" ? "$1" : "?"})`;
      const prefix = `pb_bench_${suffix()}`;
      const bus = createEventBus({
        store,
        events: [BenchEvent],
        ...(broker === "rabbitmq" ? { transport: rabbitmq({ url: AMQP_URL, prefix }) } : {}),
        ...(broker === "nats" ? { transport: nats({ url: NATS_URL, prefix }) } : {}),
      });
      const shape = batch
        ? { concurrency: batch.concurrency, batch: { size: batch.size } }
        : { concurrency: CONCURRENCY };
      bus.subscribe(BenchEvent, { group: "bench", ...shape }, async (event, ctx) => {
        if (writes) await ctx.tx.query(insert, [event.data.seq]);
        onEvent(event.data);
      });
      await bus.start();
      return {
        publish: async (p) => void (await bus.publish(BenchEvent, p)),
        async close() {
          await bus.stop({ timeout: "5s" });
          await store.close();
          await drop(); // the schema, with bench_effects
          if (broker === "rabbitmq") await deletePrefix(prefix, ["bench"]);
          if (broker === "nats") await deleteNatsPrefix(prefix);
        },
      };
    },
  };
}

/** Our RabbitMQ transport alone (no bus: no envelope, inbox or store), to separate its cost from the bus's. */
const transportOnly: Contender = {
  name: "ours: patchbay's RabbitMQ transport alone (no inbox)",
  async open(onEvent) {
    const prefix = `pb_bench_${suffix()}`;
    const transport = rabbitmq({ url: AMQP_URL, prefix });
    await transport.open();
    await transport.bind("bench", ["bench.*"]);
    const consumer = await transport.consume("bench", { concurrency: CONCURRENCY }, async (d) => {
      onEvent((JSON.parse(d.message.body) as { data: Payload }).data);
      await d.ack();
    });
    return {
      async publish(p) {
        const id = randomUUID();
        const body = JSON.stringify({
          specversion: "1.0",
          id,
          source: "/bench",
          type: "bench.event",
          data: p,
        });
        await transport.publish([{ id, type: "bench.event", body, headers: {} }]);
      },
      async close() {
        await consumer.stop(5000);
        await transport.close();
        await deletePrefix(prefix, ["bench"]);
      },
    };
  },
};

/**
 * Raw amqplib on the same topology: a durable topic exchange, a durable quorum queue bound to it,
 * persistent messages, a confirm per publish, a manual ack per delivery — what the broker can do.
 */
const rawAmqplib: Contender = {
  name: "limit: raw amqplib (topic → quorum queue, confirms, acks)",
  async open(onEvent) {
    const conn = await amqp.connect(AMQP_URL);
    const publisher = await conn.createConfirmChannel();
    const queue = `raw_bench_${suffix()}`;
    await publisher.assertExchange(queue, "topic", { durable: true });
    await publisher.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
    await publisher.bindQueue(queue, queue, "bench.*");
    const consumer = await conn.createChannel();
    // Prefetch 32 is its best here (64 made it ~15 % slower). Ours holds 3 × concurrency = 96:
    // its inbox checks and records are a stage raw amqplib does not have.
    await consumer.prefetch(CONCURRENCY);
    await consumer.consume(queue, (msg) => {
      if (!msg) return;
      const envelope = JSON.parse(msg.content.toString("utf8")) as { data: Payload };
      onEvent(envelope.data);
      consumer.ack(msg);
    });
    return {
      publish: (p) =>
        new Promise<void>((resolve, reject) => {
          const id = randomUUID();
          const body = JSON.stringify({
            specversion: "1.0",
            id,
            source: "/bench",
            type: "bench.event",
            data: p,
          });
          publisher.publish(
            queue,
            "bench.event",
            Buffer.from(body),
            { persistent: true, messageId: id },
            (err: unknown) => (err ? reject(err instanceof Error ? err : new Error("nacked")) : resolve()),
          );
        }),
      async close() {
        await consumer.close();
        await publisher.deleteQueue(queue);
        await publisher.deleteExchange(queue);
        await conn.close();
      },
    };
  },
};

/**
 * Raw @nats-io/jetstream on the same shape as ours: a file stream with interest retention, a
 * durable pull consumer with explicit acks, each publish awaiting the stream's ack (with a
 * Nats-Msg-Id), `consume()` with CONCURRENCY messages buffered and an ack per message — what
 * JetStream can do from one Node process.
 */
const rawJetstream: Contender = {
  name: "limit: raw @nats-io/jetstream (acked publish, pull + acks)",
  async open(onEvent) {
    const nc = await natsConnect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const stream = `raw_bench_${suffix()}`;
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], retention: RetentionPolicy.Interest });
    await jsm.consumers.add(stream, { durable_name: "bench", ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get(stream, "bench");
    const messages = await consumer.consume({ max_messages: CONCURRENCY });
    const consuming = (async () => {
      for await (const m of messages) {
        const envelope = JSON.parse(m.string()) as { data: Payload };
        onEvent(envelope.data);
        m.ack();
      }
    })();
    const encoder = new TextEncoder();
    return {
      async publish(p) {
        const id = randomUUID();
        const body = JSON.stringify({
          specversion: "1.0",
          id,
          source: "/bench",
          type: "bench.event",
          data: p,
        });
        const h = natsHeaders();
        h.set("Patchbay-Type", "bench.event");
        await js.publish(`${stream}.bench.event`, encoder.encode(body), { msgID: id, headers: h });
      },
      async close() {
        messages.stop();
        await consuming;
        await jsm.streams.delete(stream);
        await nc.close();
      },
    };
  },
};

/** Our NATS transport alone (no bus: no envelope, inbox or store). */
const natsTransportOnly: Contender = {
  name: "ours: patchbay's NATS transport alone (no inbox)",
  async open(onEvent) {
    const prefix = `pb_bench_${suffix()}`;
    const transport = nats({ url: NATS_URL, prefix });
    await transport.open();
    await transport.bind("bench", ["bench.*"]);
    const consumer = await transport.consume("bench", { concurrency: CONCURRENCY }, async (d) => {
      onEvent((JSON.parse(d.message.body) as { data: Payload }).data);
      await d.ack();
    });
    return {
      async publish(p) {
        const id = randomUUID();
        const body = JSON.stringify({
          specversion: "1.0",
          id,
          source: "/bench",
          type: "bench.event",
          data: p,
        });
        await transport.publish([{ id, type: "bench.event", body, headers: {} }]);
      },
      async close() {
        await consumer.stop(5000);
        await transport.close();
        await deleteNatsPrefix(prefix);
      },
    };
  },
};

/**
 * How a peer publishes: `"each"`, one call per event (`boss.send`, `utils.addJob`); `"batched"`,
 * group-committed through its own batch API (`boss.insert(queue, jobs[])`, `utils.addJobs([...])`)
 * by the rule our publish uses (`createBatcher`: concurrent callers queue, one flush in flight, the
 * next batch forms meanwhile; at most 256 a flush, as our publish).
 */
type PeerPublish = "each" | "batched";

/**
 * pg-boss 12.38.1 at its best for throughput (its docs: pgboss.io/api/workers, /api/queues,
 * /api/constructor; dist/types.d.ts `WorkOptions`):
 *   new PgBoss({ connectionString, schema, max: 16, useListenNotify: true })
 *   createQueue("bench", { notify: true })            // NOTIFY wakes the workers on a send
 *   work("bench", { batchSize: 100, localConcurrency: 8, burstWhenBatchFull: true,
 *                   pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 }, batchHandler)
 * 8 workers × 100 jobs a fetch, fetching again at once while a fetch comes back full (burst), a
 * notify on each insert, and a 0.5 s poll (its minimum) as the floor. With `transactional`, the
 * handler gets the batch's transaction (`tx`) and writes one row per job through it, committed
 * with the batch's completion: pg-boss's exactly-once effect, beside ours in `ctx.tx`.
 */
function pgBoss(publish: PeerPublish, transactional = false): Contender {
  return {
    name: transactional
      ? "  pg-boss, insert() group-committed, a row in its work tx"
      : `peer: pg-boss 12.38.1, ${publish === "each" ? "one send() per event" : "insert() group-committed"}`,
    async open(onEvent) {
      const schema = `pgboss_bench_${suffix()}`;
      const boss = new PgBoss({ connectionString: PG_URL, schema, max: 16, useListenNotify: true });
      boss.on("error", () => undefined);
      boss.on("warning", () => undefined);
      await boss.start();
      await boss.createQueue("bench", { notify: true });
      const tuning = {
        batchSize: 100,
        localConcurrency: 8,
        burstWhenBatchFull: true,
        pollingIntervalSeconds: 0.5,
        notifyPollingIntervalSeconds: 0.5,
      } as const;
      if (transactional) {
        await boss.getDb().executeSql(`CREATE TABLE "${schema}".bench_effects (seq integer NOT NULL)`);
        const insert = `INSERT INTO "${schema}".bench_effects (seq) VALUES ($1)`;
        await boss.work("bench", { ...tuning, transactional: true }, async (jobs: Job<Payload>[], tx: Db) => {
          for (const job of jobs) await tx.executeSql(insert, [job.data.seq]);
          for (const job of jobs) onEvent(job.data);
        });
      } else {
        await boss.work<Payload>("bench", tuning, async (jobs: Job<Payload>[]) => {
          for (const job of jobs) onEvent(job.data);
          return Promise.resolve();
        });
      }
      const inserts = createBatcher(
        async (ps: Payload[]) => {
          await boss.insert(
            "bench",
            ps.map((data) => ({ data })),
          );
          return ps.map(() => undefined);
        },
        { maxBatch: 256 },
      );
      return {
        publish: publish === "each" ? async (p) => void (await boss.send("bench", p)) : (p) => inserts.add(p),
        async close() {
          await boss.stop({ graceful: true, timeout: 5000 });
          await dropSchema(schema);
        },
      };
    },
  };
}

/**
 * graphile-worker 0.18.0 at its best for throughput (worker.graphile.org/docs/performance, whose
 * own figures use this preset; `preparedStatements` is on by default):
 *   run({ connectionString, schema, concurrency: 32, maxPoolSize: 33, noHandleSignals: true,
 *         preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0,
 *                             failJobBatchDelay: 0, preparedStatements: true } }, taskList })
 * A local queue of 500 locked jobs served to 32 concurrent jobs, completions batched (delay 0: the
 * completions of one event-loop turn in one statement), LISTEN/NOTIFY wake-ups.
 */
function graphileWorker(publish: PeerPublish): Contender {
  return {
    name: `peer: graphile-worker 0.18.0, ${publish === "each" ? "one addJob() per event" : "addJobs() group-committed"}`,
    async open(onEvent) {
      const schema = `gw_bench_${suffix()}`;
      const logger = new Logger(() => () => undefined);
      const runner = await run({
        connectionString: PG_URL,
        schema,
        concurrency: CONCURRENCY,
        maxPoolSize: CONCURRENCY + 1,
        noHandleSignals: true,
        logger,
        preset: {
          worker: {
            localQueue: { size: 500 },
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
            preparedStatements: true,
          },
        },
        taskList: { bench: (payload) => void onEvent(payload as Payload) },
      });
      const utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger });
      const adds = createBatcher(
        async (ps: Payload[]) => {
          await utils.addJobs(ps.map((payload) => ({ identifier: "bench", payload })));
          return ps.map(() => undefined);
        },
        { maxBatch: 256 },
      );
      return {
        publish: publish === "each" ? async (p) => void (await utils.addJob("bench", p)) : (p) => adds.add(p),
        async close() {
          // A runner that stopped itself (a pool error under load) throws "already stopped" here.
          await runner.stop().catch(() => undefined);
          await utils.release();
          await dropSchema(schema);
        },
      };
    },
  };
}

/** The batch rows' shape: handlers per shared transaction, and such transactions at once. */
const BATCH = {
  size: Number(process.env.BENCH_BATCH_SIZE ?? 32),
  concurrency: Number(process.env.BENCH_BATCH_CONCURRENCY ?? 4),
};

/** Every contender, grouped as the table shows them. */
export const contenders = {
  rabbitmq: [
    rawAmqplib,
    ours("ours: patchbay on RabbitMQ (inbox in PostgreSQL)", "postgres", "rabbitmq"),
    ours("  the same, handler writes a row in ctx.tx", "postgres", "rabbitmq", true),
    ours("  the same, batch of 32 handlers per transaction", "postgres", "rabbitmq", true, BATCH),
    transportOnly,
  ],
  nats: [
    rawJetstream,
    ours("ours: patchbay on NATS JetStream (inbox in PostgreSQL)", "postgres", "nats"),
    ours("  the same, handler writes a row in ctx.tx", "postgres", "nats", true),
    ours("  the same, batch of 32 handlers per transaction", "postgres", "nats", true, BATCH),
    natsTransportOnly,
  ],
  postgres: [
    ours("ours: patchbay on PostgreSQL (local transport)", "postgres", false),
    ours("  the same, handler writes a row in ctx.tx", "postgres", false, true),
    ours("  the same, batch of 32 handlers per transaction", "postgres", false, true, BATCH),
    pgBoss("each"),
    graphileWorker("each"),
    pgBoss("batched"),
    graphileWorker("batched"),
    pgBoss("batched", true),
  ],
  sqlite: [
    ours("ours: patchbay on SQLite (local transport)", "sqlite", false),
    ours("  the same, handler writes a row in ctx.tx", "sqlite", false, true),
    ours("  the same, batch of 32 handlers per transaction", "sqlite", false, true, BATCH),
  ],
  mysql: [
    ours("ours: patchbay on MariaDB (local transport)", "mysql", false),
    ours("  the same, handler writes a row in ctx.tx", "mysql", false, true),
    ours("  the same, batch of 32 handlers per transaction", "mysql", false, true, BATCH),
  ],
};
