/**
 * The event bus's semantics on RabbitMQ (the scenarios of `test/conformance/bus.ts`), with the
 * inbox, outbox and dead letters in PostgreSQL (SQLite when PostgreSQL is unreachable).
 */
import { inject } from "vitest";
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
      return { make: () => broker.make(), cleanup: () => broker.cleanup() };
    },
  });
} else {
  console.log(`Event bus on RabbitMQ skipped: unreachable at ${mq.where}`);
}
