/**
 * Isolated RabbitMQ topology for integration tests: every test gets its own random prefix (its
 * own exchanges and queues), deleted by `cleanup`; and a way to force-close our connections.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import amqp from "amqplib";
import { rabbitmq } from "../../src/adapters/rabbitmq/index.js";
import type { RabbitmqTransportOptions } from "../../src/adapters/rabbitmq/options.js";
import { DELAY_TIERS_MS, topologyNames } from "../../src/adapters/rabbitmq/topology.js";
import type { Transport } from "../../src/bus/transport.js";

const run = promisify(execFile);

/** One test's own space on the broker: a random prefix for every exchange and queue. */
export interface IsolatedBroker {
  prefix: string;
  /** A new transport on this prefix (groups it touches are remembered for cleanup). */
  make(options?: RabbitmqTransportOptions): Transport;
  /** Remembers a group used by another process on this prefix. */
  track(group: string): void;
  /** Deletes every queue and exchange of the prefix. */
  cleanup(): Promise<void>;
}

/** A fresh random prefix on the broker at `url`; `cleanup` deletes what its transports made. */
export function isolatedBroker(url: string): IsolatedBroker {
  const prefix = `pbt_${randomBytes(5).toString("hex")}`;
  const groups = new Set<string>();
  return {
    prefix,
    track: (g) => void groups.add(g),
    make(options = {}) {
      const t = rabbitmq({ url, prefix, ...options });
      return {
        ...t,
        name: t.name,
        capabilities: t.capabilities,
        bind: (group, patterns) => (groups.add(group), t.bind(group, patterns)),
        consume: (group, o, fn) => (groups.add(group), t.consume(group, o, fn)),
        publish: (messages, o) => (o?.group && groups.add(o.group), t.publish(messages, o)),
        open: () => t.open(),
        close: () => t.close(),
      };
    },
    async cleanup() {
      const n = topologyNames(prefix);
      const conn = await amqp.connect(url);
      try {
        const ch = await conn.createChannel();
        for (const g of groups) {
          for (const q of [n.group(g), n.brokerDeadLetters(g), n.bindings(g)]) await ch.deleteQueue(q);
        }
        for (const ms of DELAY_TIERS_MS) await ch.deleteQueue(n.tier(ms));
        await ch.deleteQueue(n.unrouted);
        for (const e of [n.due, n.delay, n.exchange, n.unrouted]) await ch.deleteExchange(e);
        await ch.close();
      } finally {
        await conn.close();
      }
    },
  };
}

/** Whether `rabbitmqctl` can manage the broker from here. */
export async function canUseRabbitmqctl(): Promise<boolean> {
  try {
    await run("rabbitmqctl", ["-q", "status"], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** Force-closes (as the broker would on an admin's request) every connection whose name contains `part`. */
export async function closeConnections(part: string): Promise<number> {
  // `client_properties` carries the connection_name we set (`user_provided_name` needs 3.11+).
  const { stdout } = await run(
    "rabbitmqctl",
    ["-q", "list_connections", "--no-table-headers", "name", "client_properties"],
    { timeout: 30_000 },
  );
  let closed = 0;
  for (const line of stdout.split("\n")) {
    const [name, properties] = line.split("\t");
    if (!name || !properties?.includes(part)) continue;
    await run("rabbitmqctl", ["-q", "close_connection", name, "test"], { timeout: 30_000 }).catch(
      () => undefined,
    );
    closed++;
  }
  return closed;
}
