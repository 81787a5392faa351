/**
 * The consume path of the bus: one delivery from its transport to its handler and back. Decode
 * and check the envelope, skip what the inbox says is processed, run the handler in its slot and
 * transaction, retry at once or later, dead-letter what cannot succeed, and hand back unfinished
 * work when the bus stops.
 */
import type { Attributes } from "@opentelemetry/api";
import type { Clock } from "../core/clock.js";
import { decodeStructured, type CloudEvent } from "../core/envelope.js";
import { EnvelopeError, isPatchbayError, PatchbayError } from "../core/errors.js";
import { syncFirst, type EventDefinition } from "../core/events.js";
import { summarizedWarn } from "../core/log-summary.js";
import type { Logger } from "../core/logger.js";
import type { Backoff } from "../resilience/backoff.js";
import { TimeoutError } from "../resilience/errors.js";
import type { BulkheadPolicy } from "../resilience/bulkhead.js";
import { retryAfterMsOf, retryWait } from "../resilience/classify.js";
import type { StoreTx } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import type { AnyEventDefinition, Handler, HandlerContext, ReceivedEvent } from "./bus.js";
import type { DeadLetters } from "./dead-letters.js";
import { BusError, DeadLetterError } from "./errors.js";
import type { createInbox } from "./inbox.js";
import { createBatchGatherer, type BatchGatherer, type BatchOutcome } from "./batch-gather.js";
import { storableLetter } from "./storable-letter.js";
import { busMetrics, withConsumerSpan } from "./telemetry.js";
import type { Delivery, Transport } from "./transport.js";

/** A group's handler and its settings, as the bus keeps them. */
export interface Subscription {
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
  /** Each handler attempt's bound (`SubscribeOptions.timeout`), in ms; none when undefined. */
  timeoutMs?: number;
  /** Deliveries share one transaction, up to `size` of them (see `SubscribeOptions.batch`). */
  batch?: { size: number; maxWaitMs: number };
  handler: Handler;
  /** Bound and consuming unless paused (set once, by the first attach). */
  attached?: Promise<void>;
  /** Bound to its patterns: its consumer follows the group's paused state from then on. */
  bound?: boolean;
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
  readonly #stopping: AbortSignal;
  readonly #bound: BoundedAttempt | undefined;
  #child: Logger | undefined;

  constructor(
    readonly attempt: number,
    readonly group: string,
    stopping: AbortSignal,
    logger: Logger,
    event: CloudEvent,
    tx: StoreTx | undefined,
    bound?: BoundedAttempt,
  ) {
    this.#logger = logger;
    this.#event = event;
    this.#tx = tx;
    this.#stopping = stopping;
    this.#bound = bound;
  }

  get signal(): AbortSignal {
    return this.#bound ? this.#bound.signal : this.#stopping;
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

/** A store failure that says nothing about the letter: down, busy, or closed by a shutdown. */
const unreachable = (e: unknown) => isPatchbayError(e) && (e.retryable || e.code === "STORE_CLOSED");

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
 * One handler attempt under its subscription's `timeout`. Its signal (made on first use: most
 * handlers never read `ctx.signal`) aborts with `STOPPED` as the bus's does, or with the attempt's
 * `TIMEOUT` when it expires.
 */
class BoundedAttempt {
  #controller: AbortController | undefined;
  #expired: TimeoutError | undefined;
  #onStop: (() => void) | undefined;

  constructor(private readonly stopping: AbortSignal) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = (this.#controller = new AbortController());
      if (this.#expired) controller.abort(this.#expired);
      else if (this.stopping.aborted) controller.abort(this.stopping.reason);
      else {
        this.#onStop = () => controller.abort(this.stopping.reason);
        this.stopping.addEventListener("abort", this.#onStop, { once: true });
      }
    }
    return this.#controller.signal;
  }

  expire(e: TimeoutError): void {
    this.#expired = e;
    this.#controller?.abort(e);
  }

  /** The attempt settled: it no longer follows the bus's stop (no listener left behind). */
  end(): void {
    if (this.#onStop) this.stopping.removeEventListener("abort", this.#onStop);
  }
}

/**
 * Runs one handler attempt within the subscription's `timeout`. Past it the attempt fails with
 * `TIMEOUT` (retryable) whatever the handler does: the delivery is retried, then dead-lettered,
 * rather than held in flight unseen for ever by a handler that never returns. The handler is told
 * through `ctx.signal` and may go on in the background; its `ctx.tx` is rolled back (a later use
 * is refused), so none of its store writes commit.
 */
function bounded(
  sub: Subscription,
  stopping: AbortSignal,
  run: (bound: BoundedAttempt | undefined) => Promise<void> | void,
): Promise<void> {
  const ms = sub.timeoutMs;
  if (ms === undefined) return Promise.resolve(run(undefined));
  const bound = new BoundedAttempt(stopping);
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      const e = new TimeoutError(ms);
      bound.expire(e);
      reject(e);
    }, ms);
    const settle = () => {
      clearTimeout(timer);
      bound.end();
    };
    // A handler that throws synchronously rejects here like one that rejects.
    const attempt = (async () => run(bound))();
    attempt.then(
      () => {
        settle();
        resolve();
      },
      (e: unknown) => {
        settle();
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the handler's own error, passed through
        reject(e);
      },
    );
  });
}

/** What the consume path works with: the bus's store, transport, inbox and stop signals. */
export interface DeliverDeps {
  store: SqlStore;
  transport: Transport;
  clock: Clock;
  logger: Logger;
  random: () => number;
  inbox: ReturnType<typeof createInbox>;
  deadLetters: DeadLetters;
  /** Definitions by type: consumed events of these types are upcast and validated. */
  catalogue: ReadonlyMap<string, AnyEventDefinition>;
  /** Aborted when stop() is called: no handler starts after it. */
  closing: AbortSignal;
  /** Aborted shortly before stop()'s deadline: `ctx.signal` of the handlers still running. */
  stopping: AbortSignal;
}

/** Makes `deliver(sub, delivery)`, the function each consumer calls for each delivery. */
export function createDeliver(deps: DeliverDeps): (sub: Subscription, delivery: Delivery) => Promise<void> {
  const { store, transport, clock, logger, random, inbox, deadLetters, catalogue, closing, stopping } = deps;
  /** Handlers refused by an open breaker: one warn line per group per 10 s, the others at debug. */
  const refused = summarizedWarn(logger, clock);

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
    if (closing.aborted) return handBack(sub, delivery);
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
    // A first delivery of a batch subscription runs in a batch; should the batch fail, it runs
    // on its own below, as any delivery (redeliveries and retries always do).
    if (sub.batch && delivery.attempt === 1) {
      const started = performance.now();
      const outcome = await batchOf(sub).add({ delivery, event });
      if (outcome !== "alone") {
        busMetrics.handlerDuration.record(performance.now() - started, sub.attributes.group);
        busMetrics.acked.add(1, outcome === "duplicate" ? sub.attributes.duplicate : sub.attributes.acked);
        return;
      }
      if (closing.aborted) return handBack(sub, delivery);
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
        if (!sub.retryOn(e) || closing.aborted) break;
      }
    }
    // Whatever the handler threw once the stop began (the abort reason STOPPED, a statement
    // cut short), its message is unfinished work: back to the queue, not a retry or a dead letter.
    if (closing.aborted) return handBack(sub, delivery, lastError);
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
      // Once per group per interval: an open breaker refuses every message's attempt.
      if (isPatchbayError(lastError, "CIRCUIT_OPEN")) {
        refused(
          sub.group,
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
      if (closing.aborted) throw closing.reason as Error;
      return handler();
    }, closing);
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
    const call = (tx: StoreTx | undefined) =>
      bounded(sub, stopping, (bound) =>
        sub.handler(
          event as ReceivedEvent,
          new DeliveryContext(delivery.attempt, sub.group, stopping, logger, event, tx, bound),
        ),
      );
    // Only a delivery that may repeat an earlier one can find its id recorded: a redelivery or a
    // retry, or a message published again under its id (or by a producer that did not say).
    const mayRepeat = delivery.attempt > 1 || delivery.message.fresh !== true;
    if (mayRepeat && (await inbox.isProcessed(sub.group, event.id))) {
      await delivery.ack();
      return true;
    }
    if (!sub.transactional) {
      await inSlot(sub, () => call(undefined));
      await delivery.ack();
      return false;
    }
    const shared = transport.capabilities.sharesStore;
    let opened: boolean;
    try {
      ({ opened } = await store.lazyTransaction((tx) => inSlot(sub, () => call(tx)), {
        first: inbox.claimAsOpening(sub.group, event.id, () => new AlreadyProcessed()),
        ...(shared ? { beforeCommit: (tx: StoreTx) => delivery.ack(tx) } : {}),
      }));
    } catch (e) {
      // Another delivery of the same message committed its effect while this one ran.
      if (!(e instanceof AlreadyProcessed)) throw e;
      await delivery.ack();
      return true;
    }
    if (!opened || !shared) await delivery.ack();
    return false;
  }

  const gatherers = new Map<Subscription, BatchGatherer<Member>>();
  const batchOf = (sub: Subscription): BatchGatherer<Member> => {
    let gatherer = gatherers.get(sub);
    if (!gatherer) {
      const { size, maxWaitMs } = sub.batch!;
      gatherer = createBatchGatherer<Member>({
        size,
        maxWaitMs,
        slots: sub.slots,
        closing,
        run: (members) => runBatch(sub, members),
      });
      gatherers.set(sub, gatherer);
    }
    return gatherer;
  };

  /**
   * Runs the handlers of several deliveries of one group, one after another in arrival order, in
   * ONE lazy transaction: its first statement claims every member's message id in the inbox, and on a
   * store-backed transport its last statements ack every member — all their writes, "processed" marks
   * and acks commit together, or none does. Any failure (a handler throws, a member turns out to
   * be a duplicate, the commit fails) rolls the whole batch back and rejects: each member then
   * runs on its own, with its own retries and dead letter, so one failing handler neither marks
   * the others processed nor loses them. Runs in a slot (the gatherer takes one for it).
   */
  async function runBatch(sub: Subscription, members: Member[]): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = members.map(() => "done");
    // As runHandler: only a delivery that may repeat an earlier one is checked first.
    const checked = await Promise.all(
      members.map((m) =>
        m.delivery.message.fresh === true ? Promise.resolve(false) : inbox.isProcessed(sub.group, m.event.id),
      ),
    );
    // An ack that fails leaves its delivery to run on its own ("alone"), never the others.
    const ackEach = (indexes: number[], outcome: BatchOutcome) =>
      Promise.all(
        indexes.map((i) =>
          members[i]!.delivery.ack().then(
            () => void (outcomes[i] = outcome),
            () => void (outcomes[i] = "alone"),
          ),
        ),
      );
    const run: Member[] = [];
    const runIndexes: number[] = [];
    const duplicates: number[] = [];
    for (const [i, m] of members.entries()) {
      if (checked[i]) duplicates.push(i);
      else {
        run.push(m);
        runIndexes.push(i);
      }
    }
    await ackEach(duplicates, "duplicate");
    if (run.length === 0) return outcomes;
    const shared = transport.capabilities.sharesStore;
    const claims = inbox.claimManyAsOpening(
      sub.group,
      run.map((m) => m.event.id),
      () => new AlreadyProcessed(),
    );
    let opened: boolean;
    try {
      ({ opened } = await store.lazyTransaction(
        async (tx) => {
          for (const m of run) {
            if (closing.aborted) throw closing.reason as Error;
            await withConsumerSpan(m.event.type, sub.group, m.delivery.message.headers, () =>
              bounded(sub, stopping, (bound) =>
                sub.handler(
                  m.event as ReceivedEvent,
                  new DeliveryContext(m.delivery.attempt, sub.group, stopping, logger, m.event, tx, bound),
                ),
              ),
            );
          }
        },
        {
          ...claims,
          ...(shared
            ? {
                beforeCommit: async (tx: StoreTx) => {
                  for (const m of run) await m.delivery.ack(tx);
                },
              }
            : {}),
        },
      ));
    } catch (e) {
      logger.debug(
        { group: sub.group, size: run.length, err: e },
        "patchbay bus: batch rolled back; its deliveries run one by one",
      );
      for (const i of runIndexes) outcomes[i] = "alone";
      return outcomes;
    }
    if (!opened || !shared) await ackEach(runIndexes, "done");
    return outcomes;
  }

  return deliver;
}

/** A delivery waiting for its batch, with its decoded event. */
interface Member {
  delivery: Delivery;
  event: CloudEvent;
}
