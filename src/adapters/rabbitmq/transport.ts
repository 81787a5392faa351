/**
 * The RabbitMQ {@link Transport}: a durable topic exchange, one durable quorum queue per group
 * bound by the group's patterns, publisher confirms, manual acks with prefetch = concurrency,
 * delayed retries through delay tiers, and a connection that heals itself.
 *
 * Delayed retries use **fixed delay tiers** (`<prefix>.delay.<ms>`: quorum queues with a
 * queue-wide `x-message-ttl` that dead-letter back through the `<prefix>.due` headers exchange,
 * to the one group a retry belongs to, or to the topic exchange for a delayed publish), not the
 * delayed-message plugin (not durable across node loss, often not installed) and not
 * per-message expiration on one retry queue (RabbitMQ expires messages only at the head of a
 * queue, so a 10-minute retry would hold up every 1-second retry queued behind it). With one TTL
 * per queue, a tier's messages expire in queue order. A delay is made of hops through the
 * largest tier that fits (100 ms × 4^k, at most three hops per tier); the consumer sends an early
 * arrival on to its next hop and waits out the last < 100 ms itself. Tiers are shared by every
 * group of a prefix, so the number of queues is bounded (9 tiers, made on first use), and they
 * are quorum queues with at-least-once dead-lettering, so a retry survives a broker restart and
 * is neither reset nor lost. The attempt count and the failure record travel in headers.
 *
 * Dead letters stay in the bus's store, as on every transport. The broker queue
 * `<prefix>.dlq.<group>` only takes what no consumer could even settle: a message delivered
 * `deliveryLimit` times without an ack (it killed its consumer each time).
 */
import type { Channel, ConfirmChannel } from "./load.js";
import { BusError, PublishError } from "../../bus/errors.js";
import { assertPattern } from "../../bus/patterns.js";
import type { Transport, TransportMessage } from "../../bus/transport.js";
import { InvalidArgumentError, isPatchbayError } from "../../core/errors.js";
import { invoke } from "../../core/invoke.js";
import { applyBindings } from "./bindings.js";
import { encode, type Bookkeeping, type Decoded } from "./codec.js";
import { createConnection, type Link } from "./connection.js";
import { startConsumer, type Later } from "./consumer.js";
import { RabbitmqError } from "./errors.js";
import { assertGroup, resolveOptions, type RabbitmqTransportOptions } from "./options.js";
import { createPublisher, type Outgoing } from "./publisher.js";
import { declareBase, declareGroup, declareTier, tierFor, TO_ALL, topologyNames } from "./topology.js";

/**
 * A {@link Transport} on RabbitMQ (3.10 or later: quorum queues with message TTL and
 * at-least-once dead-lettering). It does not share the store, so the bus publishes `tx.publish`
 * through its outbox and keeps dead letters in the store.
 *
 * @example
 * const bus = createEventBus({ store: postgres({ url: pgUrl }), transport: rabbitmq({ url: amqpUrl }) });
 */
export function rabbitmq(options: RabbitmqTransportOptions = {}): Transport {
  const o = resolveOptions(options);
  const n = topologyNames(o.prefix);
  /** Groups this process bound or consumes, with their patterns: declared again on reconnection. */
  const groups = new Map<string, readonly string[] | undefined>();
  const tiers = new Map<number, Promise<void>>();
  const declaredTiers = new Set<number>();
  const reconnectListeners = new Set<(link: Link) => void>();
  let bindings: Promise<void> = Promise.resolve();
  let opened = false;
  let closed = false;

  const connection = createConnection({
    url: o.url,
    where: o.where,
    connectionName: o.connectionName,
    reconnect: o.reconnect,
    connectTimeoutMs: o.connectTimeoutMs,
    logger: o.logger,
    setup: (link) =>
      withChannel(link, false, async (ch) => {
        await declareBase(ch, n);
        for (const ms of declaredTiers) await declareTier(ch, n, ms);
        for (const [group, patterns] of groups) {
          await declareGroup(ch, n, group, o.deliveryLimit);
          for (const p of patterns ?? []) await ch.bindQueue(n.group(group), n.exchange, p);
        }
      }),
    onReconnect: (link) => {
      for (const listener of reconnectListeners) listener(link);
    },
  });
  const publisher = createPublisher(connection, {
    maxBuffered: o.maxBuffered,
    bufferTimeoutMs: o.bufferTimeoutMs,
    confirmTimeoutMs: o.confirmTimeoutMs,
    where: o.where,
  });

  /** Runs `fn` on a short-lived channel of `link` (declarations, bindings). */
  async function withChannel<T>(
    link: Link,
    confirm: boolean,
    fn: (ch: ConfirmChannel & Channel) => Promise<T>,
  ): Promise<T> {
    const ch = (
      confirm ? await link.model.createConfirmChannel() : await link.model.createChannel()
    ) as ConfirmChannel;
    let open = true;
    ch.on("error", (e: unknown) =>
      o.logger.debug({ err: e }, "patchbay rabbitmq: declaration channel error"),
    );
    ch.on("close", () => (open = false));
    try {
      return await fn(ch);
    } finally {
      if (open) await ch.close().catch(() => undefined);
    }
  }

  async function ensureOpen(): Promise<void> {
    if (closed) throw new RabbitmqError("RABBITMQ_UNAVAILABLE", "the RabbitMQ transport is closed");
    if (opened) return;
    await connection.open();
    opened = true;
  }

  function ensureTier(ms: number): Promise<void> {
    let declared = tiers.get(ms);
    if (!declared) {
      declared = (async () => {
        const link = await connection.ready(o.bufferTimeoutMs);
        await withChannel(link, false, (ch) => declareTier(ch, n, ms));
        declaredTiers.add(ms);
      })();
      tiers.set(ms, declared);
      declared.catch(() => tiers.delete(ms));
    }
    return declared;
  }

  /**
   * Where a message goes: now to every matching group or to one, or into a delay tier first.
   * Synchronous unless a delay tier must be declared first (a publish path without promises).
   */
  function route(
    m: TransportMessage,
    to: { group?: string | undefined; due?: number | undefined },
    book: Bookkeeping,
    now: number,
  ): Outgoing | Promise<Outgoing> {
    const remaining = to.due === undefined ? 0 : to.due - now;
    const tier = remaining > 0 ? tierFor(remaining) : undefined;
    if (tier !== undefined) return routeDelayed(m, to, book, tier);
    return routeNow(m, to, book, remaining > 0 ? to.due : undefined);
  }

  /** Straight to the group(s); a `due` shorter than every tier is waited by the consumer. */
  function routeNow(
    m: TransportMessage,
    to: { group?: string | undefined },
    book: Bookkeeping,
    due: number | undefined,
  ): Outgoing {
    const content = Buffer.from(m.body, "utf8");
    const options = encode(m, { ...book, due });
    if (to.group !== undefined) {
      return { exchange: "", routingKey: n.group(to.group), content, options, mandatory: true };
    }
    return { exchange: n.exchange, routingKey: m.type, content, options };
  }

  /** Into the delay tier of `tier` ms (declared on first use), to come back to its group(s). */
  async function routeDelayed(
    m: TransportMessage,
    to: { group?: string | undefined; due?: number | undefined },
    book: Bookkeeping,
    tier: number,
  ): Promise<Outgoing> {
    try {
      await ensureTier(tier);
    } catch (e) {
      throw isPatchbayError(e, "RABBITMQ_TOPOLOGY_CONFLICT")
        ? e
        : new PublishError(`cannot prepare delay tier ${tier} ms`, { cause: e });
    }
    const content = Buffer.from(m.body, "utf8");
    const options = encode(m, { ...book, due: to.due, tier: { ms: tier, to: to.group ?? TO_ALL } });
    return { exchange: n.delay, routingKey: m.type, content, options, mandatory: true };
  }

  /** Opens first if needed, routes (declaring delay tiers), then publishes. */
  async function publishRouted(
    messages: readonly TransportMessage[],
    to: { group?: string | undefined; due?: number | undefined },
    now: number,
  ): Promise<void> {
    if (!opened) {
      try {
        await ensureOpen();
      } catch (e) {
        throw new PublishError(`cannot reach RabbitMQ at ${o.where}`, { cause: e });
      }
    }
    const out: Outgoing[] = [];
    for (const m of messages) out.push(await route(m, to, {}, now));
    await publisher.send(out);
  }

  async function sendLater(d: Decoded, later: Later): Promise<void> {
    const now = Date.now();
    const due = later.delayMs !== undefined ? now + later.delayMs : later.due;
    const out = await route(
      d.message,
      { group: later.group, due },
      { retries: later.retries, failure: later.failure },
      now,
    );
    await publisher.send([out]);
  }

  const transport: Transport = {
    name: `rabbitmq (${o.where}, prefix ${o.prefix})`,
    capabilities: { sharesStore: false, durable: true },

    health: () =>
      Promise.resolve(
        connection.current() ? { ok: true } : { ok: false, error: `not connected to RabbitMQ at ${o.where}` },
      ),

    async open() {
      await ensureOpen();
    },

    async bind(group, patterns) {
      assertGroup(group);
      if (patterns.length === 0) {
        throw new BusError("SUBSCRIPTION_INVALID", "a group needs at least one pattern");
      }
      patterns.forEach(assertPattern);
      const unique = [...new Set(patterns)];
      await ensureOpen();
      // One bind at a time in this process: each reads and rewrites the group's record.
      const run = bindings.then(async () => {
        const link = await connection.ready(o.connectTimeoutMs);
        await withChannel(link, true, async (ch) => {
          await declareGroup(ch, n, group, o.deliveryLimit);
          await applyBindings(ch, n, group, unique);
        });
        groups.set(group, unique);
      });
      bindings = run.catch(() => undefined);
      await run;
    },

    publish(messages, opts = {}) {
      // invoke: a refusal below rejects like the rest, without an async step on the common path.
      return invoke(() => {
        if (closed) throw new PublishError("the RabbitMQ transport is closed", { retryable: false });
        if (opts.tx) {
          throw new InvalidArgumentError(
            "the RabbitMQ transport cannot publish inside a store transaction; the bus's outbox does that (tx.publish)",
            "tx",
          );
        }
        if (opts.group !== undefined) assertGroup(opts.group);
        if (messages.length === 0) return undefined;
        const now = Date.now();
        const due = opts.delayMs !== undefined && opts.delayMs > 0 ? now + opts.delayMs : undefined;
        const to = { group: opts.group, due };
        // Open, and no delay tier to go through: routed and sent without an async step.
        if (opened && (due === undefined || tierFor(due - now) === undefined)) {
          return publisher.send(messages.map((m) => routeNow(m, to, {}, due)));
        }
        return publishRouted(messages, to, now);
      });
    },

    async consume(group, { concurrency }, onDelivery) {
      assertGroup(group);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 65_535) {
        throw new InvalidArgumentError("concurrency must be an integer from 1 to 65535", "concurrency");
      }
      await ensureOpen();
      if (!groups.has(group)) groups.set(group, undefined);
      return startConsumer(
        {
          connection,
          queue: (g) => n.group(g),
          declareGroup: (ch, g) => declareGroup(ch, n, g, o.deliveryLimit),
          brokerDeadLetters: (g) => n.brokerDeadLetters(g),
          sendLater,
          onReconnect(listener) {
            reconnectListeners.add(listener);
            return () => reconnectListeners.delete(listener);
          },
          unsettled: o.unsettled,
          drainMs: 5_000,
          logger: o.logger,
        },
        group,
        concurrency,
        onDelivery,
      );
    },

    async close() {
      if (closed) return;
      closed = true;
      // Publishes already sent wait for their confirms first: the broker may have them, and a
      // publish reported failed that was delivered is a false alarm its caller may act on.
      await publisher.settled();
      await connection.close();
    },
  };
  return transport;
}
