/**
 * The broker objects the RabbitMQ transport uses, their names and how they are declared. All
 * durable; every queue that holds messages is a quorum queue.
 *
 * ```
 *  publish ──► <prefix> (topic) ──pattern──► <prefix>.group.<g> (quorum) ──delivery-limit──► <prefix>.dlq.<g>
 *                 │ no route                        ▲            ▲
 *                 ▼                                 │ to=<g>     │ default exchange (replay, short retries)
 *          <prefix>.unrouted (sink)         <prefix>.due (headers) ──to=*──► <prefix> (fan-out of delayed publishes)
 *                                                   ▲ dead-lettered on expiry
 *  delayed ──► <prefix>.delay (headers) ──tier──► <prefix>.delay.<ms> (quorum, x-message-ttl = ms)
 * ```
 */
import type { Channel } from "./load.js";
import { toTopologyError } from "./errors.js";

/**
 * Delay tiers in ms: 100 ms × 4^k, up to ~1.8 h. A delay is made of hops through the largest
 * tier that fits (at most three per tier), the last < 100 ms held by the consumer.
 */
export const DELAY_TIERS_MS: readonly number[] = Array.from({ length: 9 }, (_, k) => 100 * 4 ** k);

/** The largest tier not longer than `remainingMs`, or `undefined` when it is shorter than every tier. */
export function tierFor(remainingMs: number): number | undefined {
  let chosen: number | undefined;
  for (const tier of DELAY_TIERS_MS) if (tier <= remainingMs) chosen = tier;
  return chosen;
}

/** Header names the transport owns (user headers with these names travel escaped). */
export const H = {
  key: "patchbay-key",
  to: "patchbay-to",
  due: "patchbay-due",
  tier: "patchbay-delay",
  retries: "patchbay-retries",
  failure: "patchbay-failure",
  headers: "patchbay-headers",
  fresh: "patchbay-fresh",
} as const;

/** `patchbay-to` of a delayed message meant for every matching group (group names never contain `*`). */
export const TO_ALL = "*";

/** The names of one prefix's broker objects. */
export interface TopologyNames {
  exchange: string;
  due: string;
  delay: string;
  unrouted: string;
  tier(ms: number): string;
  group(group: string): string;
  brokerDeadLetters(group: string): string;
  bindings(group: string): string;
}

/** Names for `prefix`. */
export function topologyNames(prefix: string): TopologyNames {
  return {
    exchange: prefix,
    due: `${prefix}.due`,
    delay: `${prefix}.delay`,
    unrouted: `${prefix}.unrouted`,
    tier: (ms) => `${prefix}.delay.${ms}`,
    group: (g) => `${prefix}.group.${g}`,
    brokerDeadLetters: (g) => `${prefix}.dlq.${g}`,
    bindings: (g) => `${prefix}.bindings.${g}`,
  };
}

const quorum = { "x-queue-type": "quorum" };
// At-least-once dead-lettering (RabbitMQ >= 3.10): a message leaves the source queue only once
// the target queue confirmed it. It requires reject-publish overflow (there is no length limit).
const safeDeadLettering = { "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish" };

/** Declares the exchanges and the sink every prefix needs. */
export async function declareBase(ch: Channel, n: TopologyNames): Promise<void> {
  try {
    // Unroutable messages (an event no group subscribes to, a delayed one included) are dropped
    // here rather than held by at-least-once dead-lettering forever.
    await ch.assertExchange(n.unrouted, "fanout", { durable: true });
    await ch.assertQueue(n.unrouted, {
      durable: true,
      arguments: { "x-queue-type": "classic", "x-max-length": 0 },
    });
    await ch.bindQueue(n.unrouted, n.unrouted, "");
    await ch.assertExchange(n.exchange, "topic", { durable: true, alternateExchange: n.unrouted });
    await ch.assertExchange(n.delay, "headers", { durable: true });
    await ch.assertExchange(n.due, "headers", { durable: true, alternateExchange: n.unrouted });
    await ch.bindExchange(n.exchange, n.due, "", { "x-match": "all", [H.to]: TO_ALL });
  } catch (e) {
    throw toTopologyError(e, `the exchanges of prefix ${n.exchange}`);
  }
}

/** Declares a group's queue, its broker dead-letter queue and its route for delayed messages. */
export async function declareGroup(
  ch: Channel,
  n: TopologyNames,
  group: string,
  deliveryLimit: number,
): Promise<void> {
  try {
    await ch.assertQueue(n.brokerDeadLetters(group), { durable: true, arguments: quorum });
    await ch.assertQueue(n.group(group), {
      durable: true,
      arguments: {
        ...quorum,
        ...safeDeadLettering,
        "x-delivery-limit": deliveryLimit,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": n.brokerDeadLetters(group),
      },
    });
    await ch.bindQueue(n.group(group), n.due, "", { "x-match": "all", [H.to]: group });
  } catch (e) {
    throw toTopologyError(e, `the queue of group ${group}`);
  }
}

/** Declares one delay tier: a queue whose messages expire after `ms` back into the due exchange. */
export async function declareTier(ch: Channel, n: TopologyNames, ms: number): Promise<void> {
  try {
    await ch.assertQueue(n.tier(ms), {
      durable: true,
      arguments: { ...quorum, ...safeDeadLettering, "x-message-ttl": ms, "x-dead-letter-exchange": n.due },
    });
    await ch.bindQueue(n.tier(ms), n.delay, "", { "x-match": "all", [H.tier]: String(ms) });
  } catch (e) {
    throw toTopologyError(e, `delay tier ${ms} ms`);
  }
}
