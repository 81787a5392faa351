/**
 * The event bus's semantics on RabbitMQ (the scenarios of `test/conformance/bus.ts`), with the
 * inbox, outbox and dead letters in PostgreSQL (SQLite when PostgreSQL is unreachable).
 */
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import { inject } from "vitest";
import { topologyNames } from "../src/adapters/rabbitmq/topology.js";
import { defineBusConformance } from "./conformance/bus.js";
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
