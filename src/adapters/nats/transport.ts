/**
 * The NATS JetStream {@link Transport}: one stream per prefix, one durable pull consumer per
 * group (every process of a group shares it), publishes acknowledged by the stream with
 * `Nats-Msg-Id` = the message id (the stream's duplicate window drops a re-publish), explicit
 * acks, delayed retries through a delay stream, and a connection that reconnects by itself.
 * See topology.ts for the objects and consumer.ts for delivery.
 */
import { BusError, PublishError } from "../../bus/errors.js";
import { assertPattern, compilePattern } from "../../bus/patterns.js";
import type { Transport, TransportMessage } from "../../bus/transport.js";
import { InvalidArgumentError, isPatchbayError } from "../../core/errors.js";
import { encodeHeaders, decode, type Bookkeeping, type Decoded } from "./codec.js";
import { incoming, startConsumer, type Later } from "./consumer.js";
import { NatsError } from "./errors.js";
import {
  loadNatsDrivers,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type MsgHdrs,
  type NatsConnection,
} from "./load.js";
import { assertGroup, resolveOptions, type NatsTransportOptions } from "./options.js";
import {
  declareForwarder,
  declareGroup,
  declareStreams,
  describedGroup,
  readBinding,
  topologyNames,
} from "./topology.js";

/** What `patchbay status` shows of a NATS transport. */
export interface NatsInspection {
  transport: string;
  streams: Array<{ name: string; messages: number; bytes: number; consumers: number }>;
  /** Each durable consumer: `pending` not yet delivered, `ackPending` delivered and not acked, `redelivered` delivered more than once. */
  groups: Array<{
    group: string;
    stream: string;
    consumer: string;
    patterns: string[];
    pending: number;
    ackPending: number;
    redelivered: number;
    waitingPulls: number;
  }>;
}

interface Link {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  headers: () => MsgHdrs;
}

/**
 * A {@link Transport} on NATS JetStream (nats-server 2.9 or later). It does not share the store,
 * so the bus publishes `tx.publish` through its outbox and keeps dead letters in the store.
 *
 * @example
 * const bus = createEventBus({ store: postgres({ url: pgUrl }), transport: nats({ url: "nats://127.0.0.1:4222" }) });
 */
/** The longest wait one `nak` asks for: a longer one is naked again when it comes back. */
const MAX_NAK_MS = 86_400_000;

export function nats(options: NatsTransportOptions = {}): Transport {
  const o = resolveOptions(options);
  const n = topologyNames(o.prefix);
  const encoder = new TextEncoder();
  let link: Promise<Link> | undefined;
  let closed = false;
  let forwarder: { stop(timeoutMs?: number): Promise<void> } | undefined;
  const consumers = new Set<{ stop(timeoutMs?: number): Promise<void> }>();
  const matchers = new Map<string, { at: number; match: (type: string) => boolean }>();

  function connect(): Promise<Link> {
    link ??= (async () => {
      const [natsModule, jsModule] = await loadNatsDrivers();
      let nc: NatsConnection;
      try {
        nc = await natsModule.connect({
          servers: o.servers,
          name: o.connectionName,
          timeout: o.connectTimeoutMs,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          pingInterval: 5000,
          maxPingOut: 2,
        });
      } catch (e) {
        throw new NatsError("NATS_UNAVAILABLE", `cannot reach NATS at ${o.where}`, { cause: e });
      }
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error") {
            o.logger.info({ status: s.type }, `patchbay nats: connection ${s.type}`);
          }
        }
      })().catch(() => undefined);
      try {
        const jsm = await jsModule.jetstreamManager(nc, { timeout: o.connectTimeoutMs });
        await declareStreams(jsm, n, o.prefix, o.duplicateWindowMs);
        const js = jsModule.jetstream(nc, { timeout: o.publishTimeoutMs });
        return { nc, js, jsm, headers: () => natsModule.headers() };
      } catch (e) {
        await nc.close().catch(() => undefined);
        if (isPatchbayError(e)) throw e;
        throw new NatsError("NATS_UNAVAILABLE", `JetStream is not usable at ${o.where}`, { cause: e });
      }
    })();
    link.catch(() => (link = undefined));
    return link;
  }

  async function ensureOpen(): Promise<Link> {
    if (closed) throw new NatsError("NATS_UNAVAILABLE", "the NATS transport is closed");
    return connect();
  }

  /** Publishes one message, acknowledged by its stream. */
  /**
   * A refusal of the message itself, which sending it again cannot change: nats.js's refusal of
   * an argument (InvalidArgumentError: over the server's max_payload), thrown before anything is
   * sent, or the stream's (JetStream API errors 10054, message over the stream's size limit, and
   * 10097, headers over 64 KiB).
   */
  const refusedByClient = (e: unknown) =>
    e instanceof Error &&
    (e.name === "InvalidArgumentError" ||
      (e.name === "JetStreamApiError" && [10054, 10097].includes((e as { code?: unknown }).code as number)));

  async function send(l: Link, subject: string, m: TransportMessage, book: Bookkeeping, msgID?: string) {
    const h = l.headers();
    for (const [k, v] of encodeHeaders(m, book)) h.set(k, v);
    await l.js.publish(subject, encoder.encode(m.body), {
      headers: h,
      ...(msgID === undefined ? {} : { msgID }),
      timeout: o.publishTimeoutMs,
    });
  }

  async function sendLater(d: Decoded, later: Later): Promise<void> {
    const l = await ensureOpen();
    const due = Date.now() + later.delayMs;
    await send(l, n.delay(later.group), d.message, {
      retries: later.retries,
      failure: later.failure,
      group: later.group,
      due,
      to: n.direct(later.group),
    });
  }

  /** The forwarder: sends what waits in the delay stream on to its subject when it is due. */
  async function startForwarder(l: Link) {
    await declareForwarder(l.jsm, n);
    let running = true;
    let batch: { stop(): void } | undefined;
    const forward = async (m: JsMsg) => {
      const d = decode(incoming(m), n.typePrefix);
      const wait = (d.due ?? 0) - Date.now();
      // nats-server#6093: counted ack pending; unlimited there. At most a day at a time: the
      // server reads the delay in int64 nanoseconds, and a longer wait (a delay of centuries)
      // overflowed into an immediate redelivery, naked again at once, in a hot loop.
      if (wait > 0) return m.nak(Math.min(wait, MAX_NAK_MS));
      if (d.to === undefined) return m.term("no destination");
      try {
        // Its id in the delay stream: a forward repeated after a crash is dropped as a duplicate.
        await send(
          l,
          d.to,
          d.message,
          { retries: d.retries, failure: d.failure, group: d.group },
          `${o.prefix}-delay-${m.seq}`,
        );
        m.ack();
      } catch (e) {
        o.logger.warn({ err: e }, "patchbay nats: cannot forward a delayed message");
        m.nak(1000);
      }
    };
    const looping = (async () => {
      while (running) {
        try {
          const c = await l.js.consumers.get(n.delayStream, n.forwarder);
          const b = await c.fetch({ max_messages: 256, expires: 2000 });
          batch = b;
          const pending: Promise<void>[] = [];
          for await (const m of b) pending.push(forward(m));
          await Promise.allSettled(pending);
        } catch (e) {
          if (!running) break;
          o.logger.warn({ err: e }, "patchbay nats: delay forwarder pull failed");
          await new Promise((r) => setTimeout(r, 500));
        } finally {
          batch = undefined;
        }
      }
    })();
    return {
      async stop(timeoutMs = 5000) {
        running = false;
        batch?.stop();
        await Promise.race([looping, new Promise((r) => setTimeout(r, timeoutMs))]);
      },
    };
  }

  async function matcher(l: Link, group: string): Promise<(type: string) => boolean> {
    const cached = matchers.get(group);
    if (cached && Date.now() - cached.at < 1000) return cached.match;
    const info = await l.jsm.consumers.info(n.stream, n.consumer(group));
    const preds = readBinding(info.config.description).patterns.map(compilePattern);
    const match = (type: string) => preds.some((p) => p(type));
    matchers.set(group, { at: Date.now(), match });
    return match;
  }

  /** The streams and group consumers of the prefix as the server reports them; makes nothing. */
  async function inspect(): Promise<NatsInspection> {
    const [natsModule, jsModule] = await loadNatsDrivers();
    let nc: NatsConnection;
    try {
      nc = await natsModule.connect({
        servers: o.servers,
        name: `${o.connectionName} status`,
        timeout: o.connectTimeoutMs,
        reconnect: false,
        maxReconnectAttempts: 0,
        reconnectTimeWait: 250,
        pingInterval: 5000,
        maxPingOut: 2,
      });
    } catch (e) {
      throw new NatsError("NATS_UNAVAILABLE", `cannot reach NATS at ${o.where}`, { cause: e });
    }
    try {
      const jsm = await jsModule.jetstreamManager(nc, { timeout: o.connectTimeoutMs });
      const streams: NatsInspection["streams"] = [];
      const groups: NatsInspection["groups"] = [];
      for (const name of n.streams) {
        const info = await jsm.streams.info(name).catch(() => undefined);
        if (!info) continue;
        streams.push({
          name,
          messages: info.state.messages,
          bytes: info.state.bytes,
          consumers: info.state.consumer_count,
        });
        for (const c of await jsm.consumers.list(name).next()) {
          const bound = describedGroup(c.config.description);
          groups.push({
            group: bound?.group ?? c.name,
            stream: name,
            consumer: c.name,
            patterns: bound?.patterns ?? [],
            pending: c.num_pending,
            ackPending: c.num_ack_pending,
            redelivered: c.num_redelivered,
            waitingPulls: c.num_waiting,
          });
        }
      }
      return { transport: transport.name, streams, groups };
    } finally {
      await nc.close().catch(() => undefined);
    }
  }

  const transport: Transport & { inspect(): Promise<NatsInspection> } = {
    inspect,
    name: `nats (${o.where}, prefix ${o.prefix})`,
    capabilities: { sharesStore: false, durable: true },

    async open() {
      await ensureOpen();
    },

    async bind(group, patterns) {
      assertGroup(group);
      if (patterns.length === 0) {
        throw new BusError("SUBSCRIPTION_INVALID", "a group needs at least one pattern");
      }
      patterns.forEach(assertPattern);
      const l = await ensureOpen();
      await declareGroup(l.jsm, n, group, o.ackWaitMs, [...new Set(patterns)]);
      matchers.delete(group);
    },

    async publish(messages, opts = {}) {
      if (closed) throw new PublishError("the NATS transport is closed", { retryable: false });
      if (opts.tx) {
        throw new InvalidArgumentError(
          "the NATS transport cannot publish inside a store transaction; the bus's outbox does that (tx.publish)",
          "tx",
        );
      }
      if (opts.group !== undefined) assertGroup(opts.group);
      if (messages.length === 0) return;
      let l: Link;
      try {
        l = await ensureOpen();
      } catch (e) {
        throw new PublishError(`cannot reach NATS at ${o.where}`, { cause: e });
      }
      const delayed = opts.delayMs !== undefined && opts.delayMs > 0;
      const group = opts.group;
      try {
        await Promise.all(
          messages.map((m) => {
            const now = group === undefined ? n.event(m.type) : n.direct(group);
            if (delayed) {
              return send(
                l,
                n.delay(group),
                m,
                { group, due: Date.now() + opts.delayMs!, to: now },
                group === undefined ? m.id : undefined,
              );
            }
            // A targeted publish (a replay) may repeat an id on purpose: no duplicate check.
            return send(l, now, m, { group }, group === undefined ? m.id : undefined);
          }),
        );
      } catch (e) {
        if (isPatchbayError(e)) throw e;
        // The client refuses what it cannot send at all (a message over the server's
        // max_payload, headers included) before sending it: the same message is refused every time.
        if (refusedByClient(e)) {
          throw new PublishError(`NATS refuses the message: ${(e as Error).message}`, {
            cause: e,
            retryable: false,
          });
        }
        throw new PublishError(`NATS did not acknowledge a publish at ${o.where}`, { cause: e });
      }
    },

    async consume(group, { concurrency }, onDelivery) {
      assertGroup(group);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
        throw new InvalidArgumentError("concurrency must be an integer from 1 to 10000", "concurrency");
      }
      const l = await ensureOpen();
      await declareGroup(l.jsm, n, group, o.ackWaitMs);
      forwarder ??= await startForwarder(l);
      const c = await startConsumer(
        {
          consumer: () => l.js.consumers.get(n.stream, n.consumer(group)),
          matcher: () => matcher(l, group),
          typePrefix: n.typePrefix,
          sendLater,
          park: (d, g) =>
            send(l, n.parked(g), d.message, { retries: d.retries, failure: d.failure, group: g }),
          async suspectRuns(g, seq) {
            const last = await l.jsm.streams.getMessage(n.suspectsStream, {
              last_by_subj: n.suspect(g, seq),
            });
            const runs = last ? Number(new TextDecoder().decode(last.data)) : 0;
            return Number.isInteger(runs) && runs > 0 ? runs : 0;
          },
          async markSuspect(g, seq, runs) {
            await l.js.publish(n.suspect(g, seq), encoder.encode(String(runs)), {
              timeout: o.publishTimeoutMs,
            });
          },
          async clearSuspect(g, seq) {
            await l.jsm.streams.purge(n.suspectsStream, { filter: n.suspect(g, seq) });
          },
          unsettled: o.unsettled,
          deliveryLimit: o.deliveryLimit,
          ackWaitMs: o.ackWaitMs,
          logger: o.logger,
        },
        group,
        concurrency,
        onDelivery,
      );
      consumers.add(c);
      return {
        async stop(timeoutMs?: number) {
          await c.stop(timeoutMs);
          consumers.delete(c);
        },
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      const f = forwarder;
      forwarder = undefined;
      await f?.stop(5000);
      const l = await link?.catch(() => undefined);
      if (l) {
        await Promise.race([l.nc.drain().catch(() => l.nc.close()), new Promise((r) => setTimeout(r, 5000))]);
        await l.nc.close().catch(() => undefined);
      }
    },
  };
  return transport;
}
