/**
 * The event bus: durable publish/subscribe with consumer groups, an outbox for publishing inside
 * business transactions, an inbox for exactly-once effects, delayed retries and dead letters —
 * the same semantics on every transport.
 */
import type { Attributes } from "@opentelemetry/api";
import { setMaxListeners } from "node:events";
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { decodeStructured, type CloudEvent } from "../core/envelope.js";
import { serializeStructured } from "../core/envelope-structured.js";
import { EnvelopeError, InvalidArgumentError, isPatchbayError, PatchbayError } from "../core/errors.js";
import { syncFirst, type EventDefinition, type ToEnvelopeOptions } from "../core/events.js";
import { invoke } from "../core/invoke.js";
import { createLifecycle, StoppedError, type Lifecycle } from "../core/lifecycle.js";
import { settleBy } from "../core/settle-by.js";
import { silentLogger, type Logger } from "../core/logger.js";
import { exponential, type Backoff } from "../resilience/backoff.js";
import { bulkhead, type BulkheadPolicy } from "../resilience/bulkhead.js";
import { retryAfterMsOf, retryWait } from "../resilience/classify.js";
import type { StoreTx } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import { createDeadLetters, type DeadLetters } from "./dead-letters.js";
import { BusError, DeadLetterError, MessageTooLargeError } from "./errors.js";
import { createInbox } from "./inbox.js";
import { localTransport } from "./local-transport.js";
import { createOutbox } from "./outbox.js";
import { assertPattern, compilePattern } from "./patterns.js";
import { storableLetter } from "./storable-letter.js";
import { busMetrics, withConsumerSpan, withProducerSpan } from "./telemetry.js";
import type { Consumer, Delivery, Transport, TransportMessage } from "./transport.js";

/** Any event definition, whatever its data types (definitions are invariant in them). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyEventDefinition = EventDefinition<any, any>;

/** Options of {@link createEventBus}. */
export interface EventBusOptions {
  /** Durable state: inbox, dead letters, outbox (and the queue itself for the local transport). */
  store: SqlStore;
  /** Default: the local transport on `store`. */
  transport?: Transport;
  /** Event definitions this process knows: consumed events of these types are upcast and validated. */
  events?: readonly AnyEventDefinition[];
  /** CloudEvents `source` of published events. Default `/patchbay`. */
  source?: string;
  /**
   * The largest message `publish` and `tx.publish` accept, in bytes: the serialized CloudEvent
   * plus its headers, UTF-8. A larger one is refused with `MESSAGE_TOO_LARGE` and nothing is
   * published. Default {@link DEFAULT_MAX_MESSAGE_BYTES} (1 MiB).
   */
  maxMessageBytes?: number;
  /** How long processed message ids are remembered by the inbox. Default 7 days. */
  inboxRetention?: Duration;
  /** Uniform numbers in [0, 1) for the retry backoff's jitter. Default `Math.random`. */
  random?: () => number;
  clock?: Clock;
  logger?: Logger;
}

/** Options of {@link EventBus.publish}. */
export interface PublishOptions extends Omit<ToEnvelopeOptions, "source"> {
  /** Ordering/partition key (e.g. the order id). */
  key?: string;
  /** Extra transport headers. */
  headers?: Record<string, string>;
  /** Deliver no earlier than this from now. */
  delay?: Duration;
  source?: string;
}

/** Retry behaviour of a subscription. */
export interface SubscriptionRetry {
  /** In-process retries of one delivery before it is scheduled for later. Default 2. */
  immediate?: number;
  /** Deliveries before the message goes to dead letters. Default 8. */
  maxAttempts?: number;
  /** @deprecated The former name of {@link SubscriptionRetry.maxAttempts}. */
  attempts?: number;
  /** Wait before each delayed retry. Default exponential from 1 s to 10 min, full jitter. */
  backoff?: Backoff;
  /** Which errors are worth retrying. Default: all but non-retryable Patchbay errors (`NonRetryableError`, schema errors). */
  retryOn?: (error: unknown) => boolean;
}

/** Options of {@link EventBus.subscribe}. */
export interface SubscribeOptions {
  /** The consumer group: every group gets every matching event; instances of one group compete. */
  group: string;
  /** Handlers running at once in this process. Default 1. */
  concurrency?: number;
  /**
   * Deliveries this process holds at once, running or waiting for a handler slot (the broker's
   * prefetch; rows claimed from the local queue). Headroom over `concurrency` keeps handlers busy
   * while finished deliveries are recorded and acked and new ones are checked against the inbox
   * (and lets more of those share one statement). Default `3 × concurrency`; at least `concurrency`.
   */
  prefetch?: number;
  retry?: SubscriptionRetry;
  /**
   * Give the handler `ctx.tx` (default `true`): a store transaction, opened at its first use,
   * whose writes commit together with the inbox record — an exactly-once effect. With `false`
   * there is no `ctx.tx` and the handler runs outside any transaction (it may use the store
   * directly; those writes are not deduplicated).
   */
  transaction?: boolean;
}

/** What a handler gets besides the event. */
export interface HandlerContext {
  /** The store transaction the handler's writes must use (throws when `transaction: false`). */
  readonly tx: StoreTx;
  /** 1 on the first delivery; counts delayed retries and redeliveries after crashes. */
  readonly attempt: number;
  readonly group: string;
  /**
   * Aborts shortly before `stop()`'s timeout while the handler still runs (with `STOPPED`):
   * give up and throw — the message goes back to the queue, as after any failure once the stop
   * began, never to dead letters.
   */
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/** An event as a handler receives it: decoded, upcast and validated when its definition is known. */
export type ReceivedEvent<T = unknown> = CloudEvent<T> & { data: T };

/** A handler: awaited; resolving acks, throwing retries or dead-letters. */
export type Handler<T = unknown> = (event: ReceivedEvent<T>, ctx: HandlerContext) => Promise<void> | void;

/** A transaction that can also publish (through the outbox, atomically with its writes). */
export interface BusTx extends StoreTx {
  publish<T, In>(event: EventDefinition<T, In>, data: In, options?: PublishOptions): Promise<CloudEvent<T>>;
}

/** What {@link EventBus.subscribe} returns. */
export interface SubscriptionHandle {
  readonly group: string;
  /**
   * Resolves once the group is bound and consuming: at once for a subscription made before
   * `start()` (it binds when the bus starts, and `ready` resolves then), after a bind for one made
   * after. Events published after `ready` resolves reach the group.
   */
  readonly ready: Promise<void>;
}

/** The event bus. */
export interface EventBus extends Lifecycle {
  /** Validates, wraps in a CloudEvent and resolves once the event is durable. */
  publish<T, In>(event: EventDefinition<T, In>, data: In, options?: PublishOptions): Promise<CloudEvent<T>>;
  /** A store transaction whose `tx.publish` commits with the business writes (outbox). */
  transaction<R>(fn: (tx: BusTx) => Promise<R>): Promise<R>;
  /**
   * Registers a handler for events matching `pattern` (or one event definition). Before `start()`
   * the group binds when the bus starts; after it, at once (`ready` says when). After `stop()`:
   * `STOPPED`.
   */
  subscribe<T = unknown>(
    pattern: string | EventDefinition<T, unknown>,
    options: SubscribeOptions,
    handler: Handler<T>,
  ): SubscriptionHandle;
  /**
   * Binds every group and starts consuming (and relaying the outbox, when the transport needs
   * it). A no-op when started; `STOPPED` after `stop()`.
   */
  start(): Promise<void>;
  /**
   * Stops within `timeout` (default 30 s), whatever hangs: starts no handler from the moment it
   * is called and hands the deliveries it fetched back to the queue, waits for the handlers
   * running, aborts their `ctx.signal` shortly before the timeout, and hands back what did not
   * finish (never to dead letters); then stops the outbox relay and closes the transport. Safe
   * twice.
   */
  stop(options?: { timeout?: Duration }): Promise<void>;
  readonly deadLetters: DeadLetters;
  readonly transport: Transport;
}

interface Subscription {
  patterns: string[];
  matches: (type: string) => boolean;
  group: string;
  prefetch: number;
  /** At most `concurrency` handlers at once; the other prefetched deliveries wait here. */
  slots: BulkheadPolicy;
  immediate: number;
  maxAttempts: number;
  backoff: Backoff;
  retryOn: (error: unknown) => boolean;
  transactional: boolean;
  handler: Handler;
  /** Bound and consuming (set once, by the first attach). */
  attached?: Promise<void>;
  /** Metric attributes, made once (not an object per delivery). */
  attributes: { group: Attributes; acked: Attributes; duplicate: Attributes };
}

/**
 * A handler's context, one per delivery. A class, not an object literal with getters: those
 * make fresh closures per delivery. The child logger is made on first use (most handlers never
 * log, and one per delivery is not free).
 */
class DeliveryContext implements HandlerContext {
  readonly #logger: Logger;
  readonly #event: CloudEvent;
  readonly #tx: StoreTx | undefined;
  #child: Logger | undefined;

  constructor(
    readonly attempt: number,
    readonly group: string,
    readonly signal: AbortSignal,
    logger: Logger,
    event: CloudEvent,
    tx: StoreTx | undefined,
  ) {
    this.#logger = logger;
    this.#event = event;
    this.#tx = tx;
  }

  get logger(): Logger {
    return (this.#child ??= this.#logger.child({
      group: this.group,
      messageId: this.#event.id,
      type: this.#event.type,
    }));
  }

  get tx(): StoreTx {
    if (this.#tx) return this.#tx;
    throw new BusError(
      "SUBSCRIPTION_INVALID",
      `group ${this.group} was subscribed with transaction: false, so its handler has no ctx.tx`,
    );
  }
}

/** Thrown into a handler's transaction when its message turns out to be processed already. */
class AlreadyProcessed extends Error {
  constructor() {
    super("message already processed by this group");
  }
}

const GROUP = /^[A-Za-z0-9_.-]{1,100}$/;

/** A store failure that says nothing about the letter: down, busy, or closed by a shutdown. */
const unreachable = (e: unknown) => isPatchbayError(e) && (e.retryable || e.code === "STORE_CLOSED");

/**
 * The default `maxMessageBytes`: 1 MiB. Large enough for any event that describes something, small
 * enough to stay clear of every transport's own ceiling (NATS's default payload limit is 1 MiB) and
 * to keep a queue table, a prefetch window or a dead-letter listing from carrying blobs; put large
 * content in storage and publish a reference to it.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** The size of a message as {@link EventBusOptions.maxMessageBytes} counts it. */
function messageBytes(m: TransportMessage): number {
  let size = Buffer.byteLength(m.body, "utf8");
  for (const name in m.headers)
    size += Buffer.byteLength(name, "utf8") + Buffer.byteLength(m.headers[name]!, "utf8");
  return size;
}

const defaultRetryOn = (e: unknown) => !(isPatchbayError(e) && !e.retryable);

/**
 * How long before `stop()`'s deadline the handlers still running are aborted: enough for them to
 * throw and their messages to be handed back before the stop returns.
 */
const abortLead = (timeoutMs: number) => Math.min(timeoutMs / 5, 1000);

/** A JSON-safe record of an error for dead letters and retries. */
function errorRecord(e: unknown): Record<string, unknown> {
  if (e instanceof PatchbayError) return e.toJSON();
  if (e instanceof Error)
    return { name: e.name, message: e.message, stack: e.stack?.split("\n").slice(0, 8).join("\n") };
  return { name: "NonError", message: String(e) };
}

/** A delivery whose envelope type is not the type it was routed by (or not one its group takes). */
function typeMismatch(sub: Subscription, delivery: Delivery, event: CloudEvent): EnvelopeError {
  return new EnvelopeError(
    event.type === delivery.message.type
      ? `message ${delivery.message.id} has type ${event.type}, which group ${sub.group} does not subscribe to`
      : `message ${delivery.message.id} was routed as ${delivery.message.type} but its envelope says ${event.type}`,
    "type",
  );
}

/**
 * Creates an event bus on a store and a transport.
 *
 * @example
 * const bus = createEventBus({ store, events: [OrderCreated] });
 * bus.subscribe(OrderCreated, { group: "inventory" }, async (event, { tx }) => {
 *   await tx.query("update stock set reserved = reserved + ? where sku = ?", [event.data.qty, event.data.sku]);
 * });
 * await bus.start();
 * await bus.publish(OrderCreated, { orderId: "o-1", sku: "A", qty: 2 }, { key: "o-1" });
 */
export function createEventBus(options: EventBusOptions): EventBus {
  const store = options.store;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const random = options.random ?? Math.random;
  const transport = options.transport ?? localTransport(store, { clock, logger });
  const source = options.source ?? "/patchbay";
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1) {
    throw new InvalidArgumentError("maxMessageBytes must be a positive integer (bytes)", "maxMessageBytes");
  }
  const catalogue = new Map<string, AnyEventDefinition>();
  for (const def of options.events ?? []) catalogue.set(def.type, def);
  const subscriptions: Subscription[] = [];
  const consumers: Consumer[] = [];
  const inbox = createInbox(store, toMs(options.inboxRetention ?? "7d", "inboxRetention"), clock);
  const deadLetters = createDeadLetters(store, transport);
  const outbox = transport.capabilities.sharesStore
    ? undefined
    : createOutbox(store, transport, { clock, logger });
  // Aborted when stop() is called: no handler starts after it (deliveries waiting for a slot
  // leave the queue and are handed back).
  const closing = new AbortController();
  setMaxListeners(0, closing.signal);
  // Aborted shortly before stop()'s deadline: ctx.signal of the handlers still running.
  const stopping = new AbortController();
  // Handlers in flight may listen to it (ctx.signal): as many as the concurrency, not a leak.
  setMaxListeners(0, stopping.signal);
  const stoppingError = () => new StoppedError("bus", "the bus is stopping");

  /** Binds the group and starts its consumer, once (at start, or at subscribe after it). */
  function attach(sub: Subscription): Promise<void> {
    return (sub.attached ??= (async () => {
      await transport.bind(sub.group, sub.patterns);
      // A stop that began during the bind: no consumer, the group stays bound for the next process.
      if (closing.signal.aborted) return;
      consumers.push(
        await transport.consume(sub.group, { concurrency: sub.prefetch }, (delivery) =>
          deliver(sub, delivery),
        ),
      );
    })());
  }

  const life = createLifecycle("bus", {
    async start() {
      await transport.open();
      for (const sub of subscriptions) await attach(sub);
      outbox?.start();
      inbox.startPurging();
    },
    async stop(timeout) {
      // One deadline for every part: consumers, the outbox relay, the transport's close.
      const deadline = Date.now() + timeout;
      const left = () => Math.max(0, deadline - Date.now());
      closing.abort(stoppingError());
      const abort = setTimeout(() => stopping.abort(stoppingError()), timeout - abortLead(timeout));
      try {
        // Subscriptions made after start() may still be binding: their consumers are stopped too.
        await settleBy(
          Promise.allSettled(subscriptions.flatMap((s) => (s.attached ? [s.attached] : []))),
          deadline,
        );
        await settleBy(
          Promise.all([...consumers.map((c) => c.stop(left())), outbox?.stop(left())]),
          deadline,
        );
        inbox.stopPurging();
        const closed = transport.close();
        closed.catch((e: unknown) => logger.warn({ err: e }, "patchbay bus: closing the transport failed"));
        await settleBy(closed, deadline);
      } finally {
        clearTimeout(abort);
      }
    },
  });

  /**
   * Builds the event and its message in a producer span and hands them to `send` (in the span).
   * Without a promise of its own unless the schema is asynchronous: this runs for every publish.
   */
  function withMessage<T, In, R>(
    def: EventDefinition<T, In>,
    data: In,
    opts: PublishOptions,
    send: (event: CloudEvent<T>, message: TransportMessage) => Promise<R>,
  ): Promise<R> {
    catalogue.set(def.type, def);
    return withProducerSpan(def.type, (carrier) => {
      const built = syncFirst(def).toEnvelope(
        data,
        {
          ...opts,
          source: opts.source ?? def.source ?? source,
          ...(carrier.traceparent ? { traceparent: carrier.traceparent } : {}),
        },
        clock,
      );
      const go = (event: CloudEvent<T>) => {
        const message: TransportMessage = {
          id: event.id,
          type: event.type,
          key: opts.key,
          // toEnvelope returned a validated event: serialise it without validating it again.
          body: serializeStructured(event),
          headers: { ...opts.headers, ...carrier },
          // An id we made is sent once by this call (the outbox does not store this flag).
          fresh: opts.id === undefined,
        };
        // A UTF-8 byte is at most 3 per UTF-16 unit: most messages are under the limit at a glance.
        if (3 * message.body.length > maxMessageBytes) {
          const size = messageBytes(message);
          if (size > maxMessageBytes) throw new MessageTooLargeError(event.type, size, maxMessageBytes);
        }
        return send(event, message);
      };
      return built instanceof Promise ? built.then(go) : go(built);
    });
  }

  const typeAttributes = new Map<string, Attributes>();
  const published = (type: string) => {
    let attributes = typeAttributes.get(type);
    if (!attributes) typeAttributes.set(type, (attributes = { type }));
    busMetrics.published.add(1, attributes);
  };

  const delayOf = (opts: PublishOptions) =>
    opts.delay === undefined ? undefined : toMs(opts.delay, "delay");

  const bus: EventBus = {
    transport,
    deadLetters,

    publish(def, data, opts = {}) {
      return invoke(() => {
        life.assertNotStopped();
        const delayMs = delayOf(opts);
        return withMessage(def, data, opts, (event, message) =>
          transport.publish([message], delayMs === undefined ? {} : { delayMs }).then(() => {
            published(def.type);
            return event;
          }),
        );
      });
    },

    transaction(fn) {
      return store.transaction(async (tx) => {
        const busTx: BusTx = {
          query: (text, params) => tx.query(text, params),
          get state() {
            return tx.state;
          },
          get idempotency() {
            return tx.idempotency;
          },
          afterCommit: (callback) => tx.afterCommit(callback),
          publish: <T, In>(def: EventDefinition<T, In>, data: In, opts: PublishOptions = {}) =>
            withMessage(def, data, opts, async (event, message) => {
              const delayMs = delayOf(opts);
              if (outbox) await outbox.add(tx, message, delayMs);
              else await transport.publish([message], { tx, ...(delayMs === undefined ? {} : { delayMs }) });
              tx.afterCommit(() => published(def.type));
              return event;
            }),
        };
        return fn(busTx);
      });
    },

    subscribe(target, subOptions, handler) {
      life.assertNotStopped();
      const pattern = typeof target === "string" ? target : target.type;
      if (typeof target !== "string") catalogue.set(target.type, target);
      assertPattern(pattern);
      const group = subOptions?.group;
      if (typeof group !== "string" || !GROUP.test(group)) {
        throw new InvalidArgumentError("group must be 1-100 characters of letters, digits, _ . -", "group");
      }
      if (subscriptions.some((s) => s.group === group)) {
        throw new BusError("SUBSCRIPTION_INVALID", `group ${group} already has a handler in this bus`);
      }
      if (typeof handler !== "function")
        throw new InvalidArgumentError("handler must be a function", "handler");
      const retry = subOptions.retry ?? {};
      const concurrency = subOptions.concurrency ?? 1;
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw new InvalidArgumentError("concurrency must be a positive integer", "concurrency");
      }
      const prefetch = subOptions.prefetch ?? 3 * concurrency;
      if (!Number.isInteger(prefetch) || prefetch < concurrency) {
        throw new InvalidArgumentError("prefetch must be an integer of at least concurrency", "prefetch");
      }
      const maxAttempts = retry.maxAttempts ?? retry.attempts ?? 8;
      if (
        retry.attempts !== undefined &&
        retry.maxAttempts !== undefined &&
        retry.attempts !== retry.maxAttempts
      ) {
        throw new InvalidArgumentError(
          "retry.attempts is the former name of retry.maxAttempts: give one of them",
          "retry.attempts",
        );
      }
      if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
        throw new InvalidArgumentError("retry.maxAttempts must be a positive integer", "retry.maxAttempts");
      }
      const sub: Subscription = {
        patterns: [pattern],
        matches: compilePattern(pattern),
        group,
        prefetch,
        slots: bulkhead({ limit: concurrency, queue: Infinity }),
        immediate: retry.immediate ?? 2,
        maxAttempts,
        backoff: retry.backoff ?? exponential({ initial: "1s", max: "10m" }),
        retryOn: retry.retryOn ?? defaultRetryOn,
        transactional: subOptions.transaction ?? true,
        handler: handler as Handler,
        attributes: {
          group: { group },
          acked: { group, duplicate: "false" },
          duplicate: { group, duplicate: "true" },
        },
      };
      subscriptions.push(sub);
      // Before start() the group binds when the bus starts; after it (or during it), now.
      const ready = life.running ? life.start().then(() => attach(sub)) : Promise.resolve();
      ready.catch((e: unknown) =>
        logger.error({ group, err: e }, "patchbay bus: a subscription made after start() could not bind"),
      );
      return { group, ready };
    },

    start: () => life.start(),
    stop: (stopOptions) => life.stop(stopOptions),
  };

  /**
   * Moves the message to dead letters. The body is stored as bytes, so any body fits; should the
   * store refuse the letter for its content (a NUL character in a header or in the error, which a
   * PostgreSQL text or jsonb value cannot hold), it is stored again with that text made storable
   * and says so (`error.sanitized`). What the store still refuses, or cannot be reached for, is a
   * `DEAD_LETTER_FAILED` for the transport to deliver again later (unreachable) or park
   * (refused) — logged at error level, never a silent loop.
   */
  async function deadLetter(sub: Subscription, delivery: Delivery, error: unknown) {
    const now = clock.now();
    const letter = {
      group: sub.group,
      messageId: delivery.message.id,
      type: delivery.message.type,
      key: delivery.message.key,
      body: delivery.message.body,
      headers: delivery.message.headers,
      error: errorRecord(error),
      attempts: delivery.attempt,
      firstFailedAt: delivery.failure?.firstFailedAt ?? now,
      lastFailedAt: now,
    };
    const write = async (l: typeof letter) => {
      if (transport.capabilities.sharesStore) {
        await store.transaction(async (tx) => {
          await deadLetters.add(tx, l);
          await delivery.ack(tx);
        });
      } else {
        await deadLetters.add(store, l);
        await delivery.ack();
      }
    };
    try {
      try {
        await write(letter);
      } catch (refused) {
        if (unreachable(refused)) throw refused; // not the letter's fault
        await write(storableLetter(letter, refused));
      }
    } catch (e) {
      busMetrics.deadLetterFailed.add(1, sub.attributes.group);
      const failed = new DeadLetterError(
        `the dead letter of message ${letter.messageId} (group ${sub.group}) could not be stored`,
        sub.group,
        letter.messageId,
        { cause: e, retryable: unreachable(e) },
      );
      logger.error(
        { group: sub.group, messageId: letter.messageId, type: letter.type, err: e, handlerError: error },
        failed.retryable
          ? "patchbay bus: message could not be dead-lettered (store unreachable); it will be delivered again"
          : "patchbay bus: message could not be dead-lettered (store refused it); the transport parks it",
      );
      throw failed;
    }
    busMetrics.deadLettered.add(1, sub.attributes.group);
    logger.warn(
      {
        group: sub.group,
        messageId: letter.messageId,
        type: letter.type,
        attempts: letter.attempts,
        err: error,
      },
      "patchbay bus: message dead-lettered",
    );
  }

  /**
   * Gives a delivery back to the queue, unfinished, because the bus is stopping: redelivered at
   * once to another consumer or after a restart, never retried later or dead-lettered for it.
   */
  async function handBack(sub: Subscription, delivery: Delivery, error?: unknown): Promise<void> {
    await delivery.release();
    logger.debug(
      { group: sub.group, messageId: delivery.message.id, attempt: delivery.attempt, err: error },
      "patchbay bus: stopping; delivery handed back",
    );
  }

  async function deliver(sub: Subscription, delivery: Delivery): Promise<void> {
    if (closing.signal.aborted) return handBack(sub, delivery);
    busMetrics.delivered.add(1, sub.attributes.group);
    // The transport could not read it whole: the same bytes will never read better.
    if (delivery.undecodable) return deadLetter(sub, delivery, delivery.undecodable);
    let event: CloudEvent;
    try {
      event = decodeStructured(delivery.message.body);
      // Routing went by the transport's type, the schema goes by the envelope's: they must agree,
      // or a handler would run on data no schema checked.
      if (event.type !== delivery.message.type || !sub.matches(event.type))
        throw typeMismatch(sub, delivery, event);
      const def = catalogue.get(event.type);
      // decodeStructured returned a fresh object: the decoded data replaces the raw in place.
      if (def) {
        const decoded: unknown = syncFirst(def as EventDefinition<unknown, unknown>).decode(event);
        event.data = decoded instanceof Promise ? await decoded : decoded;
      }
    } catch (e) {
      // An undecodable envelope or a payload that fails its schema will never get better.
      await deadLetter(sub, delivery, e);
      return;
    }
    let lastError: unknown;
    for (let round = 0; round <= sub.immediate; round++) {
      const started = performance.now();
      try {
        const duplicate = await withConsumerSpan(event.type, sub.group, delivery.message.headers, () =>
          runHandler(sub, delivery, event),
        );
        busMetrics.handlerDuration.record(performance.now() - started, sub.attributes.group);
        busMetrics.acked.add(1, duplicate ? sub.attributes.duplicate : sub.attributes.acked);
        return;
      } catch (e) {
        lastError = e;
        if (!sub.retryOn(e) || closing.signal.aborted) break;
      }
    }
    // Whatever the handler threw once the stop began (the abort reason STOPPED, a statement
    // cut short), its message is unfinished work: back to the queue, not a retry or a dead letter.
    if (closing.signal.aborted) return handBack(sub, delivery, lastError);
    if (sub.retryOn(lastError) && delivery.attempt < sub.maxAttempts) {
      const backoff = sub.backoff.delay(delivery.attempt, undefined, random);
      const waited = retryWait(backoff, retryAfterMsOf(lastError));
      // An endless hint (a breaker isolated by hand) must not park the message: the backoff then.
      const delay = Number.isFinite(waited) ? waited : retryWait(backoff, undefined);
      await delivery.retry(delay, {
        firstFailedAt: delivery.failure?.firstFailedAt ?? clock.now(),
        error: errorRecord(lastError),
      });
      busMetrics.retried.add(1, sub.attributes.group);
      const fields = {
        group: sub.group,
        messageId: delivery.message.id,
        attempt: delivery.attempt,
        delayMs: delay,
        err: lastError,
      };
      if (isPatchbayError(lastError, "CIRCUIT_OPEN")) {
        logger.warn(
          { ...fields, breaker: lastError.state, maxAttempts: sub.maxAttempts },
          "patchbay bus: handler refused by an open circuit breaker; an attempt is spent, retrying later",
        );
      } else logger.info(fields, "patchbay bus: handler failed; retrying later");
      return;
    }
    await deadLetter(sub, delivery, lastError);
  }

  /**
   * Runs `handler` in one of the subscription's slots. None starts once stop() was called: a
   * delivery waiting for a slot then leaves the queue with `STOPPED` (and is handed back).
   */
  function inSlot(sub: Subscription, handler: () => Promise<void> | void): Promise<void> {
    return sub.slots.execute(() => {
      if (closing.signal.aborted) throw closing.signal.reason as Error;
      return handler();
    }, closing.signal);
  }

  /**
   * Runs the handler once; resolves true when the message was a duplicate already processed.
   *
   * The handler's transaction opens only when it first uses `ctx.tx` (a lazy transaction), with
   * the inbox claim as its first statement and, on a store-backed transport, the ack as its
   * last: its writes, its "processed" mark and its ack commit together. A handler that never
   * touches `ctx.tx` has no store effect to protect: nothing is recorded for it, and it is at
   * least once like any effect outside the store. So the first delivery of a message the bus
   * published once, to a handler that writes nothing, costs no statement on the store at all.
   */
  async function runHandler(sub: Subscription, delivery: Delivery, event: CloudEvent): Promise<boolean> {
    const context = (tx: StoreTx | undefined) =>
      new DeliveryContext(delivery.attempt, sub.group, stopping.signal, logger, event, tx);
    // Only a delivery that may repeat an earlier one can find its id recorded: a redelivery or a
    // retry, or a message published again under its id (or by a producer that did not say).
    const mayRepeat = delivery.attempt > 1 || delivery.message.fresh !== true;
    if (mayRepeat && (await inbox.isProcessed(sub.group, event.id))) {
      await delivery.ack();
      return true;
    }
    if (!sub.transactional) {
      const ctx = context(undefined);
      await inSlot(sub, () => sub.handler(event as ReceivedEvent, ctx));
      await delivery.ack();
      return false;
    }
    const shared = transport.capabilities.sharesStore;
    let opened: boolean;
    try {
      ({ opened } = await store.lazyTransaction(
        (tx) => inSlot(sub, () => sub.handler(event as ReceivedEvent, context(tx))),
        {
          opening: inbox.claimAsOpening(sub.group, event.id, () => new AlreadyProcessed()),
          ...(shared ? { beforeCommit: (tx: StoreTx) => delivery.ack(tx) } : {}),
        },
      ));
    } catch (e) {
      // Another delivery of the same message committed its effect while this one ran.
      if (!(e instanceof AlreadyProcessed)) throw e;
      await delivery.ack();
      return true;
    }
    if (!opened || !shared) await delivery.ack();
    return false;
  }

  return bus;
}
