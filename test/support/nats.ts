/**
 * Isolated NATS JetStream objects for integration tests: every test gets its own random prefix
 * (its own streams and consumers), deleted by `cleanup`.
 */
import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { nats } from "../../src/adapters/nats/index.js";
import type { NatsTransportOptions } from "../../src/adapters/nats/options.js";
import { topologyNames } from "../../src/adapters/nats/topology.js";
import type { Transport } from "../../src/bus/transport.js";

export interface IsolatedNats {
  prefix: string;
  url: string;
  make(options?: NatsTransportOptions): Transport;
  /** Messages in the parked stream for `group`. */
  parked(group: string): Promise<number>;
  /** Every consumer of the prefix's streams, as the server reports it. */
  consumers(): Promise<
    Array<{
      stream: string;
      name: string;
      description: string | undefined;
      pending: number;
      ackPending: number;
      redelivered: number;
    }>
  >;
  cleanup(): Promise<void>;
}

/** Options every test transport gets: short waits so redeliveries come within a test's patience. */
export const quick: NatsTransportOptions = { ackWait: "3s", connectTimeout: "5s" };

export function isolatedNats(url: string): IsolatedNats {
  const prefix = `pbt_${randomBytes(5).toString("hex")}`;
  const n = topologyNames(prefix);
  const withJsm = async <T>(fn: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>) => {
    const nc = await connect({ servers: url });
    try {
      return await fn(await jetstreamManager(nc));
    } finally {
      await nc.close();
    }
  };
  return {
    prefix,
    url,
    make: (options = {}) => nats({ url, prefix, ...quick, ...options }),
    parked: (group) =>
      withJsm(async (jsm) => {
        const info = await jsm.streams.info(n.parkedStream, { subjects_filter: n.parked(group) });
        return info.state.subjects?.[n.parked(group)] ?? 0;
      }),
    consumers: () =>
      withJsm(async (jsm) => {
        const out = [];
        for (const stream of n.streams) {
          const list = await jsm.consumers
            .list(stream)
            .next()
            .catch(() => []);
          for (const c of list) {
            out.push({
              stream,
              name: c.name,
              description: c.config.description,
              pending: c.num_pending,
              ackPending: c.num_ack_pending,
              redelivered: c.num_redelivered,
            });
          }
        }
        return out;
      }),
    cleanup: () =>
      withJsm(async (jsm) => {
        for (const s of n.streams) {
          await jsm.streams.delete(s).catch(() => undefined);
        }
      }),
  };
}
