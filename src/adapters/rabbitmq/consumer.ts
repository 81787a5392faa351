/**
 * A consumer of one group's queue: manual acks (coalesced per turn of the event loop, see
 * acks.ts), prefetch = concurrency, one channel per consumer. It re-attaches by itself on a new
 * connection. Acks are bound to the channel the message came on: once that channel is gone, an
 * ack is dropped and the broker redelivers the message (the bus's inbox recognises it).
 */
import type { Channel, ConsumeMessage } from "./load.js";
import { channelAcks, type Tracked } from "./acks.js";
import { BusError } from "../../bus/errors.js";
import { isPatchbayError } from "../../core/errors.js";
import { invoke } from "../../core/invoke.js";
import { settleBy } from "../../core/settle-by.js";
import type { Consumer, Delivery, FailureRecord } from "../../bus/transport.js";
import type { Logger } from "../../core/logger.js";
import type { Backoff } from "../../resilience/backoff.js";
import { decode, decodeFallback, type Decoded } from "./codec.js";
import type { Connection, Link } from "./connection.js";
import { tierFor } from "./topology.js";

/** How a message goes back to the group later (a retry, a hop through a delay tier). */
export interface Later {
  group: string;
  /** Relative delay from now; or `due`, an absolute time. */
  delayMs?: number;
  due?: number | undefined;
  retries: number;
  failure: FailureRecord | undefined;
}

/** What a consumer needs from its transport. */
export interface ConsumerDeps {
  connection: Connection;
  queue: (group: string) => string;
  declareGroup(ch: Channel, group: string): Promise<void>;
  /** The group's broker dead-letter queue (where a rejected message goes). */
  brokerDeadLetters: (group: string) => string;
  /** Publishes the message back (confirmed) as described. */
  sendLater(decoded: Decoded, later: Later): Promise<void>;
  /** Registers a callback for new connections; returns its removal. */
  onReconnect(listener: (link: Link) => void): () => void;
  /** Delay before a delivery the consumer could not settle is tried again. */
  unsettled: Backoff;
  /**
   * Longest wait, on a new connection, for handlers still running from the old one (their acks
   * are lost anyway) before consuming again: keeps `concurrency` across a reconnection unless a
   * handler hangs.
   */
  drainMs: number;
  logger: Logger;
}

interface Attachment {
  link: Link;
  ch: Channel;
  alive: boolean;
  tag: string | undefined;
  acks: ReturnType<typeof channelAcks>;
}

/** Starts consuming `group`; resolves once attached (or waiting for a connection to attach to). */
export async function startConsumer(
  deps: ConsumerDeps,
  group: string,
  concurrency: number,
  onDelivery: (delivery: Delivery) => Promise<void>,
): Promise<Consumer> {
  const log = deps.logger.child({ group });
  let running = true;
  let current: Attachment | undefined;
  let attaching: Promise<void> = Promise.resolve();
  let unsettledRun = 0;
  let previousDelay: number | undefined;
  const inFlight = new Set<Promise<void>>();
  const cancels = new Set<() => void>();

  /** Waits `ms`; false when the consumer stopped meanwhile. */
  const pause = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const cancel = () => {
        clearTimeout(timer);
        cancels.delete(cancel);
        resolve(false);
      };
      const timer = setTimeout(() => {
        cancels.delete(cancel);
        resolve(running);
      }, ms);
      cancels.add(cancel);
    });

  // Once the channel died an ack is dropped: the broker redelivers, the inbox dedupes.
  const ackOn = (att: Attachment, msg: Tracked) => att.acks.ack(msg);
  /** Gives the message back to the queue now (it counts as a delivery in x-delivery-count). */
  const release = (att: Attachment, msg: Tracked) => att.acks.requeue(msg);

  /** One delivery: settled once, by ack or retry. A class: no closures made per message. */
  class RabbitDelivery implements Delivery {
    state: "open" | "busy" | "settled" = "open";
    readonly message: Delivery["message"];
    readonly failure: FailureRecord | undefined;
    readonly undecodable: Delivery["undecodable"];
    constructor(
      private readonly att: Attachment,
      private readonly msg: Tracked,
      private readonly d: Decoded,
      readonly attempt: number,
    ) {
      this.message = d.message;
      this.failure = d.failure;
      this.undecodable = d.undecodable;
    }
    get group() {
      return group;
    }
    private claim(what: string) {
      if (this.state !== "open") {
        throw new BusError("BUS_STOPPED", `delivery ${this.d.message.id} already settled (${what})`);
      }
      this.state = "busy";
    }
    ack(): Promise<void> {
      return invoke(() => {
        this.claim("ack");
        ackOn(this.att, this.msg);
        this.state = "settled";
      });
    }
    /** Back to the queue at once (a requeue: the broker counts it in `x-delivery-count`). */
    release(): Promise<void> {
      return invoke(() => {
        this.claim("release");
        release(this.att, this.msg);
        this.state = "settled";
      });
    }
    async retry(delayMs: number, failure: FailureRecord): Promise<void> {
      this.claim("retry");
      try {
        await deps.sendLater(this.d, {
          group,
          delayMs: Math.max(0, delayMs),
          retries: this.attempt,
          failure,
        });
      } catch (e) {
        this.state = "open";
        throw e;
      }
      ackOn(this.att, this.msg);
      this.state = "settled";
    }
  }

  async function handle(att: Attachment, msg: Tracked): Promise<void> {
    let d: Decoded;
    try {
      d = decode(msg.msg);
    } catch (e) {
      // Never leave a message unsettled on the channel (it would hold a prefetch slot for good).
      d = decodeFallback(msg.msg, e);
    }
    const wait = d.due === undefined ? 0 : d.due - Date.now();
    if (wait > 0 && tierFor(wait) !== undefined) {
      // Back from a delay tier early: one more hop (not an attempt; the count carries over).
      try {
        await deps.sendLater(d, {
          group,
          due: d.due,
          retries: d.retries + d.deliveryCount,
          failure: d.failure,
        });
        ackOn(att, msg);
      } catch (e) {
        log.warn({ err: e, messageId: d.message.id }, "patchbay rabbitmq: cannot re-park a delayed message");
        if (await pause(1000)) release(att, msg);
      }
      return;
    }
    // The rest of a delay, shorter than the shortest tier, is waited here.
    if (wait > 0 && !(await pause(wait))) return release(att, msg);

    const attempt = d.retries + d.deliveryCount + 1;
    const delivery = new RabbitDelivery(att, msg, d, attempt);
    let failure: unknown;
    try {
      await onDelivery(delivery);
    } catch (e) {
      failure = e;
      log.error({ err: e, messageId: d.message.id }, "patchbay rabbitmq: delivery not settled");
    }
    if (delivery.state === "settled") {
      unsettledRun = 0;
      return;
    }
    if (!running || !att.alive) return release(att, msg);
    if (isPatchbayError(failure, "DEAD_LETTER_FAILED") && !failure.retryable) {
      // The store refused its dead letter: the broker's own dead-letter queue takes it, as it is.
      log.error(
        { messageId: d.message.id, queue: deps.brokerDeadLetters(group) },
        "patchbay rabbitmq: message parked in the group's broker dead-letter queue",
      );
      att.acks.reject(msg);
      return;
    }
    // The consumer could not record an outcome (the store is down?): try again later, durably,
    // without burning the queue's delivery limit, and slower while it keeps happening.
    const delayMs = deps.unsettled.delay(++unsettledRun, previousDelay, Math.random);
    previousDelay = delayMs;
    if (d.undecodable) {
      // Republishing would write its unreadable parts anew (readable, and wrong): the broker
      // gets it back as it is, and its delivery limit parks it should this go on.
      if (await pause(delayMs)) release(att, msg);
      return;
    }
    try {
      await deps.sendLater(d, { group, delayMs, retries: attempt, failure: d.failure });
      ackOn(att, msg);
    } catch (e) {
      log.warn({ err: e, messageId: d.message.id }, "patchbay rabbitmq: cannot reschedule a delivery");
      if (await pause(delayMs)) release(att, msg);
    }
  }

  function onMessage(att: Attachment, msg: ConsumeMessage | null) {
    if (msg === null) {
      // The broker cancelled us (the queue was deleted): a new connection declares it again.
      if (running && current === att) att.link.fail(`RabbitMQ cancelled the consumer of group ${group}`);
      return;
    }
    const tracked = att.acks.track(msg);
    if (!running) return release(att, tracked);
    const p: Promise<void> = handle(att, tracked).then(
      () => void inFlight.delete(p),
      (e: unknown) => {
        log.error({ err: e }, "patchbay rabbitmq: consumer error");
        inFlight.delete(p);
      },
    );
    inFlight.add(p);
  }

  async function attach(link: Link): Promise<void> {
    if (!running || link.broken || (current?.link === link && current.alive)) return;
    // Handlers from the old connection still run: wait (bounded) so concurrency holds.
    if (inFlight.size > 0) {
      await Promise.race([Promise.allSettled([...inFlight]), pause(deps.drainMs)]);
    }
    if (!running || link.broken) return;
    const ch = await link.model.createChannel();
    const att: Attachment = {
      link,
      ch,
      alive: true,
      tag: undefined,
      acks: channelAcks(ch, () => att.alive),
    };
    ch.on("error", (e: unknown) => log.warn({ err: e }, "patchbay rabbitmq: consumer channel error"));
    ch.on("close", () => {
      att.alive = false;
      if (running && current === att) link.fail(`the consumer channel of group ${group} closed`);
    });
    await deps.declareGroup(ch, group);
    await ch.prefetch(concurrency);
    if (!running) {
      att.alive = false;
      await ch.close().catch(() => undefined);
      return;
    }
    current = att;
    const { consumerTag } = await ch.consume(deps.queue(group), (msg) => onMessage(att, msg), {
      noAck: false,
    });
    att.tag = consumerTag;
  }

  const enqueueAttach = (link: Link) => {
    const next = attaching.then(() => attach(link));
    attaching = next.catch(() => undefined);
    return next;
  };
  const removeListener = deps.onReconnect((link) => {
    enqueueAttach(link).catch((e: unknown) => {
      log.error({ err: e }, "patchbay rabbitmq: cannot resume consuming; reconnecting");
      link.fail("consumer could not resume", e);
    });
  });

  const link = deps.connection.current() ?? (await deps.connection.open());
  try {
    await enqueueAttach(deps.connection.current() ?? link);
  } catch (e) {
    // A connection lost meanwhile is healed by the reconnect listener; anything else is the caller's.
    if (!link.broken) {
      removeListener();
      running = false;
      throw e;
    }
  }

  let stopped: Promise<void> | undefined;
  return {
    stop(timeoutMs = 30_000) {
      stopped ??= (async () => {
        // Every step is bounded by the one deadline: a broker that does not answer (cancel,
        // close) or a handler that hangs cannot hold the stop past it.
        const deadline = Date.now() + timeoutMs;
        running = false;
        removeListener();
        for (const cancel of [...cancels]) cancel();
        await settleBy(attaching, deadline);
        const att = current;
        if (att?.alive && att.tag !== undefined) {
          await settleBy(
            att.ch.cancel(att.tag).catch(() => undefined),
            deadline,
          );
        }
        await settleBy(Promise.allSettled([...inFlight]), deadline);
        if (att?.alive) {
          att.acks.flush(); // the acks of this turn, before the channel goes
          att.alive = false; // later acks are dropped; the broker requeues what is unacked
          await settleBy(
            att.ch.close().catch(() => undefined),
            deadline,
          );
        }
      })();
      return stopped;
    },
  };
}
