/**
 * The event bus's semantics on NATS JetStream (the scenarios of `src/adapter/conformance/bus.ts`), with
 * the inbox, outbox and dead letters in PostgreSQL (SQLite when PostgreSQL is unreachable).
 */
import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { connect, headers } from "@nats-io/transport-node";
import { inject } from "vitest";
import { topologyNames } from "../src/adapters/nats/topology.js";
import { defineBusConformance } from "../src/adapter/conformance/index.js";
import { isolatedNats } from "./support/nats.js";
import { postgresDatabase, sqliteDatabase } from "./support/stores.js";

const { postgres: pg, nats: ns } = inject("services");

if (ns.reachable) {
  defineBusConformance({
    name: `NATS JetStream (${ns.where}) with ${pg.reachable ? "PostgreSQL" : "SQLite"}`,
    database: pg.reachable ? () => postgresDatabase(pg.url) : sqliteDatabase,
    transports() {
      const broker = isolatedNats(ns.url);
      return {
        make: () => broker.make(),
        cleanup: () => broker.cleanup(),
        parked: (_store, group) => broker.parked(group),
        // A foreign producer's message: its escaped-headers header is not JSON, and its body
        // holds a NUL byte (which a PostgreSQL text column refuses).
        async undecodable(_store, group) {
          const id = randomUUID();
          const body = `{"specversion":"1.0","id":"${id}","type":"order.created"}\u0000 trailing`;
          const nc = await connect({ servers: ns.url });
          try {
            const h = headers();
            h.set("Patchbay-Id", id);
            h.set("Patchbay-Type", "order.created");
            h.set("Patchbay-Group", group);
            h.set("Patchbay-Headers", "{not json");
            await jetstream(nc).publish(topologyNames(broker.prefix).direct(group), body, { headers: h });
          } finally {
            await nc.close();
          }
          return { id, body };
        },
      };
    },
  });
} else {
  console.log(`Event bus on NATS skipped: unreachable at ${ns.where}`);
}
