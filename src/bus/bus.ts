/**
 * The event bus: durable publish/subscribe with consumer groups, an outbox for publishing inside
 * business transactions, an inbox for exactly-once effects, delayed retries and dead letters —
 * the same semantics on every transport. This file holds the public types, subscriptions and the
 * lifecycle; the publish path is in publish.ts, the consume path (one delivery) in consume.ts.
 */
import { setMaxListeners } from "node:events";
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import type { CloudEvent } from "../core/envelope.js";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import type { EventDefinition, ToEnvelopeOptions } from "../core/events.js";
import { invoke } from "../core/invoke.js";
import { createLifecycle, StoppedError, type Lifecycle } from "../core/lifecycle.js";
import { settleBy } from "../core/settle-by.js";
import { silentLogger, type Logger } from "../core/logger.js";
import { exponential, type Backoff } from "../resilience/backoff.js";
import { bulkhead } from "../resilience/bulkhead.js";
import type { StoreTx } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import { createDeliver, type Subscription } from "./consume.js";
import { createDeadLetters, type DeadLetters } from "./dead-letters.js";
import { BusError } from "./errors.js";
import { createInbox } from "./inbox.js";
import { localTransport } from "./local-transport.js";
import { createOutbox } from "./outbox.js";
import { assertGroupName, groupPauses, type PausedGroup } from "./pause.js";
import { assertPattern, compilePattern } from "./patterns.js";
import { createPublisher, DEFAULT_MAX_MESSAGE_BYTES } from "./publish.js";
import type { Consumer, Transport } from "./transport.js";

export { DEFAULT_MAX_MESSAGE_BYTES } from "./publish.js";

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
  /**
   * How often the bus reads the paused groups from the store: how soon a pause or resume made by
   * another process (or another bus on this store) takes effect here. Default 500 ms; a pause
   * made through this bus takes effect at once.
   */
  pausePollInterval?: Duration;
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
  /**
   * Run several deliveries' handlers in ONE store transaction (opt-in, for handlers that write
   * through `ctx.tx`): up to `size` first deliveries of this group, gathered for at most
   * `maxWait` (default 0: those that arrived in the same turn of the event loop), run one after
   * another in arrival order, and their inbox records (and, on the local transport, their acks)
   * commit with their writes in one commit. Should any of them fail (a handler throws, the commit
   * fails), nothing of the batch commits and each delivery runs again on its own, as without
   * `batch`, with its own retries and dead letter. `concurrency` then counts batches; the default
   * `prefetch` becomes `size × (concurrency + 1)`. Needs `transaction` (the default).
   */
  batch?: { size: number; maxWait?: Duration };
  /**
   * How long one handler attempt may run (default 15 minutes; `false`: unbounded). Past it,
   * `ctx.signal` aborts with `TIMEOUT` and the attempt fails (retryable) whatever the handler
   * does: retried, then dead-lettered, so a handler that never returns cannot hold its message in
   * flight unseen. Its `ctx.tx` is rolled back; the handler itself may go on in the background.
   */
  timeout?: Duration | false;
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

/** One event for {@link BusTx.publishMany}: what `tx.publish` takes, as one value. */
export interface PublishEntry<T = unknown, In = T> {
  event: EventDefinition<T, In>;
  data: In;
  options?: PublishOptions;
}

/** A transaction that can also publish (through the outbox, atomically with its writes). */
export interface BusTx extends StoreTx {
  publish<T, In>(event: EventDefinition<T, In>, data: In, options?: PublishOptions): Promise<CloudEvent<T>>;
  /**
   * Publishes many events in this transaction, in order, as `tx.publish` would one by one, but
   * written together: one multi-row write for all of them instead of a round trip (or more) each.
   * All or nothing: an event that fails validation or the size limit rejects the call and none
   * of them is written. For events of several data types, type the entries `PublishEntry<any, any>`.
   *
   * @example
   * await bus.transaction((tx) =>
   *   tx.publishMany(orders.map((o) => ({ event: OrderCreated, data: o, options: { key: o.orderId } }))),
   * );
   */
  publishMany<T, In>(entries: readonly PublishEntry<T, In>[]): Promise<CloudEvent<T>[]>;
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
  /**
   * Pauses a consumer group in every process sharing the store, durably (until `resume`): this
   * bus stops taking its messages at once, other buses within their `pausePollInterval`. Handlers
   * already running finish (and deliveries this process fetched already are handled); new
   * messages wait in the queue or the broker — none is retried, released or dead-lettered for
   * the pause. Resolves once the pause is stored and this bus's consumer of the group has
   * stopped. `by` is recorded with the pause (who paused it).
   */
  pause(group: string, options?: { by?: string }): Promise<void>;
  /** Resumes a paused group everywhere: this bus consumes it again at once, others within their poll. */
  resume(group: string): Promise<void>;
  /** The paused groups, read from the store. */
  paused(): Promise<PausedGroup[]>;
  readonly deadLetters: DeadLetters;
  readonly transport: Transport;
}

/** Checks and resolves `SubscribeOptions.batch`. */
function batchOptions(options: SubscribeOptions): Subscription["batch"] {
  if (options.batch === undefined) return undefined;
  const { size, maxWait } = options.batch;
  if (!Number.isInteger(size) || size < 1) {
    throw new InvalidArgumentError("batch.size must be a positive integer", "batch.size");
  }
  if (options.transaction === false) {
    throw new BusError(
      "SUBSCRIPTION_INVALID",
      `group ${options.group}: batch shares a transaction between deliveries, so it needs transaction: true`,
    );
  }
  return { size, maxWaitMs: toMs(maxWait ?? 0, "batch.maxWait") };
}

/** Longest timer Node keeps as asked (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** A subscription's `timeout` in ms (undefined: none). */
function handlerTimeout(timeout: Duration | false | undefined): number | undefined {
  if (timeout === false) return undefined;
  const ms = toMs(timeout ?? "15m", "timeout");
  if (ms < 1 || ms > MAX_TIMER_MS) {
    throw new InvalidArgumentError(
      `timeout must be between 1 ms and ${MAX_TIMER_MS} ms (about 24 days), or false for none; got ${ms} ms`,
      "timeout",
    );
  }
  return ms;
}

const defaultRetryOn = (e: unknown) => !(isPatchbayError(e) && !e.retryable);

/**
 * How long before `stop()`'s deadline the handlers still running are aborted: enough for them to
 * throw and their messages to be handed back before the stop returns.
 */
const abortLead = (timeoutMs: number) => Math.min(timeoutMs / 5, 1000);

/** How long a pause waits for the group's handlers running to finish before it leaves them. */
const PAUSE_DRAIN_MS = 30_000;

/** A subscription's consumer now, and the start or stop of it in progress (one at a time). */
interface ConsumerSlot {
  consumer: Consumer | undefined;
  switching: Promise<void>;
  /** Its consumer was stopped by a pause (so the next start is a resume, and says so). */
  paused: boolean;
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
  const slots = new Map<Subscription, ConsumerSlot>();
  /** Consumers a pause is stopping: the bus's stop waits for them too. */
  const draining = new Set<Promise<void>>();
  const pauses = groupPauses(store, clock);
  const pausePoll = toMs(options.pausePollInterval ?? "500ms", "pausePollInterval");
  if (pausePoll < 10) {
    throw new InvalidArgumentError("pausePollInterval must be at least 10 ms", "pausePollInterval");
  }
  let paused = new Set<string>();
  // Bumped by this bus's own pause and resume: a poll that read the list before one of them
  // committed must not undo it in the set.
  let pauseChanges = 0;
  let pauseTimer: NodeJS.Timeout | undefined;
  let pausesUnreadable = false;
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
  const publisher = createPublisher({ transport, outbox, catalogue, clock, source, maxMessageBytes });
  const deliver = createDeliver({
    store,
    transport,
    clock,
    logger,
    random,
    inbox,
    deadLetters,
    catalogue,
    closing: closing.signal,
    stopping: stopping.signal,
  });
  const stoppingError = () => new StoppedError("bus", "the bus is stopping");

  /**
   * Starts the group's consumer, or stops it, as its paused state says; one switch at a time per
   * group. Rejects when the consumer could not start (the next pause poll tries again).
   */
  function reconcile(sub: Subscription): Promise<void> {
    let slot = slots.get(sub);
    if (!slot) slots.set(sub, (slot = { consumer: undefined, switching: Promise.resolve(), paused: false }));
    const s = slot;
    const next = s.switching.then(async () => {
      if (closing.signal.aborted) return;
      const pause = paused.has(sub.group);
      if (!pause && !s.consumer) {
        s.consumer = await transport.consume(sub.group, { concurrency: sub.prefetch }, (delivery) =>
          deliver(sub, delivery),
        );
        if (s.paused) logger.info({ group: sub.group }, "patchbay bus: group resumed; consuming again");
        s.paused = false;
      } else if (pause && s.consumer) {
        const consumer = s.consumer;
        s.consumer = undefined;
        s.paused = true;
        logger.info({ group: sub.group }, "patchbay bus: group paused; its consumer stops");
        const stopped = consumer.stop(PAUSE_DRAIN_MS);
        draining.add(stopped);
        try {
          await stopped;
        } finally {
          draining.delete(stopped);
        }
      }
    });
    s.switching = next.catch(() => undefined);
    return next;
  }

  /** Reads the paused groups and starts or stops consumers to match (at start, then each poll). */
  async function refreshPauses(): Promise<void> {
    const bound = subscriptions.filter((s) => s.bound);
    if (bound.length === 0) return; // a bus that only publishes reads nothing
    await readPauses();
    await Promise.all(
      bound.map((s) =>
        reconcile(s).catch((e: unknown) =>
          logger.warn({ group: s.group, err: e }, "patchbay bus: consumer could not start; retrying"),
        ),
      ),
    );
  }

  /**
   * Reads the paused groups into `paused`. When the store cannot say (down, or a store whose
   * migrations lack the table), the last known list stays: logged at warn once, until a read
   * succeeds again.
   */
  async function readPauses(): Promise<void> {
    const seen = pauseChanges;
    try {
      const list = await pauses.list();
      if (seen === pauseChanges) paused = new Set(list.map((p) => p.group));
      pausesUnreadable = false;
    } catch (e) {
      if (!pausesUnreadable)
        logger.warn({ err: e }, "patchbay bus: paused groups could not be read; keeping the last known");
      pausesUnreadable = true;
    }
  }

  function pollPauses() {
    pauseTimer = setTimeout(() => {
      refreshPauses()
        .catch(() => undefined) // reconcile logs its own failures
        .finally(() => {
          if (!closing.signal.aborted) pollPauses();
        });
    }, pausePoll);
  }

  /** Binds the group and starts its consumer (unless paused), once (at start, or at subscribe after it). */
  function attach(sub: Subscription): Promise<void> {
    return (sub.attached ??= (async () => {
      await transport.bind(sub.group, sub.patterns);
      sub.bound = true;
      // A stop that began during the bind: no consumer, the group stays bound for the next process.
      if (closing.signal.aborted) return;
      await readPauses(); // a group paused now is not consumed even for a moment
      await reconcile(sub);
    })());
  }

  const life = createLifecycle("bus", {
    async start() {
      await transport.open();
      for (const sub of subscriptions) await attach(sub);
      pollPauses();
      outbox?.start();
      inbox.startPurging();
    },
    async stop(timeout) {
      // One deadline for every part: consumers, the outbox relay, the transport's close.
      const deadline = Date.now() + timeout;
      const left = () => Math.max(0, deadline - Date.now());
      closing.abort(stoppingError());
      clearTimeout(pauseTimer);
      const abort = setTimeout(() => stopping.abort(stoppingError()), timeout - abortLead(timeout));
      try {
        // Subscriptions made after start() may still be binding: their consumers are stopped too.
        await settleBy(
          Promise.allSettled(subscriptions.flatMap((s) => (s.attached ? [s.attached] : []))),
          deadline,
        );
        // Starts and stops of consumers for a pause or resume in progress end first.
        await settleBy(Promise.allSettled([...slots.values()].map((s) => s.switching)), deadline);
        const consumers = [...slots.values()].flatMap((s) => (s.consumer ? [s.consumer] : []));
        await settleBy(
          Promise.all([...consumers.map((c) => c.stop(left())), ...draining, outbox?.stop(left())]),
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

  const bus: EventBus = {
    transport,
    deadLetters,

    publish: (def, data, opts = {}) =>
      invoke(() => {
        life.assertNotStopped();
        return publisher.publish(def, data, opts);
      }),

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
          publish: (def, data, opts = {}) => publisher.publishIn(tx, def, data, opts),
          publishMany: <T, In>(entries: readonly PublishEntry<T, In>[]) =>
            publisher.publishManyIn(tx, entries) as Promise<CloudEvent<T>[]>,
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
      assertGroupName(group);
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
      const batch = batchOptions(subOptions);
      const prefetch =
        subOptions.prefetch ?? Math.max(3 * concurrency, batch ? batch.size * (concurrency + 1) : 0);
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
      const timeoutMs = handlerTimeout(subOptions.timeout);
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
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(batch ? { batch } : {}),
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

    async pause(group, pauseOptions = {}) {
      await pauses.pause(group, pauseOptions.by === undefined ? {} : { by: pauseOptions.by });
      pauseChanges++;
      paused.add(group);
      await Promise.all(subscriptions.filter((s) => s.group === group && s.bound).map(reconcile));
    },

    async resume(group) {
      await pauses.resume(group);
      pauseChanges++;
      paused.delete(group);
      await Promise.all(subscriptions.filter((s) => s.group === group && s.bound).map(reconcile));
    },

    paused: () => pauses.list(),

    start: () => life.start(),
    stop: (stopOptions) => life.stop(stopOptions),
  };

  return bus;
}
