/**
 * The event bus's semantics on RabbitMQ (the scenarios of `src/adapter/conformance/bus.ts`), with the
 * inbox, outbox and dead letters in PostgreSQL (SQLite when PostgreSQL is unreachable).
 */
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import { describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { topologyNames } from "../src/adapters/rabbitmq/topology.js";
import { createEventBus } from "../src/bus/bus.js";
import { defineEvent } from "../src/core/events.js";
import { defineBusConformance } from "../src/adapter/conformance/index.js";
import { until } from "./conformance/transport.js";
import { isolatedBroker } from "./support/rabbitmq.js";
import { postgresDatabase, sqliteDatabase } from "./support/stores.js";

const { postgres: pg, rabbitmq: mq } = inject("services");

if (mq.reachable) {
  defineBusConformance({
    name: `RabbitMQ (${mq.where}) with ${pg.reachable ? "PostgreSQL" : "SQLite"}`,
    database: pg.reachable ? () => postgresDatabase(pg.url) : sqliteDatabase,
    transports() {
      const broker = isolatedBroker(mq.url);
      return {
        make: () => broker.make(),
        cleanup: () => broker.cleanup(),
        async parked(_store, group) {
          const conn = await amqp.connect(mq.url);
          try {
            const ch = await conn.createChannel();
            const { messageCount } = await ch.checkQueue(
              topologyNames(broker.prefix).brokerDeadLetters(group),
            );
            return messageCount;
          } finally {
            await conn.close();
          }
        },
        // A foreign producer's message: its escaped-headers header is not JSON, and its body
        // holds a NUL byte (which a PostgreSQL text column refuses).
        async undecodable(_store, group) {
          const id = randomUUID();
          const body = `{"specversion":"1.0","id":"${id}","type":"order.created"}\u0000 trailing`;
          const conn = await amqp.connect(mq.url);
          try {
            const ch = await conn.createConfirmChannel();
            ch.sendToQueue(topologyNames(broker.prefix).group(group), Buffer.from(body), {
              messageId: id,
              type: "order.created",
              persistent: true,
              headers: { "patchbay-headers": "{not json" },
            });
            await ch.waitForConfirms();
          } finally {
            await conn.close();
          }
          return { id, body };
        },
      };
    },
  });
} else {
  console.log(`Event bus on RabbitMQ skipped: unreachable at ${mq.where}`);
}

describe.runIf(mq.reachable)("event bus on RabbitMQ: a message from another producer", () => {
  const OrderCreated = defineEvent("order.created", {
    version: 1,
    schema: z.object({ orderId: z.string(), qty: z.number().int().positive() }),
  });

  it("routed by the key order.created but typed evil.other (property and envelope) never reaches the handler", async () => {
    const broker = isolatedBroker(mq.url);
    const db = sqliteDatabase();
    const store = db.make();
    await store.open();
    const bus = createEventBus({ store, transport: broker.make(), events: [OrderCreated] });
    const seen: unknown[] = [];
    bus.subscribe(OrderCreated, { group: "inventory" }, (e) => void seen.push(e.data));
    try {
      await bus.start();
      // A producer that bypasses Patchbay: the routing key says one type, the message another.
      const conn = await amqp.connect(mq.url);
      try {
        const ch = await conn.createConfirmChannel();
        const body = JSON.stringify({
          specversion: "1.0",
          id: "forged-2",
          source: "/x",
          type: "evil.other",
          data: { drop: "tables", qty: "lots" },
        });
        ch.publish(topologyNames(broker.prefix).exchange, "order.created", Buffer.from(body), {
          messageId: "forged-2",
          type: "evil.other",
          persistent: true,
        });
        await ch.waitForConfirms();
        await ch.close();
      } finally {
        await conn.close();
      }
      await until(
        async () => (await bus.deadLetters.count({ group: "inventory" })) === 1,
        10_000,
        "a dead letter",
      );
      const [letter] = await bus.deadLetters.list({ group: "inventory" });
      expect(letter!.error).toMatchObject({ code: "ENVELOPE_INVALID", attribute: "type" });
      expect(seen).toEqual([]);
    } finally {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
      await broker.cleanup();
    }
  });
});
