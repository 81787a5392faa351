/**
 * Publishing with publisher confirms. Every message gets its own confirm callback (amqplib
 * matches the broker's acks and nacks to them by delivery sequence number, `multiple` acks
 * included), and a batch resolves only when every one of its messages is confirmed. A nack, a
 * return of a mandatory message, a channel or connection lost before the confirm, or no confirm
 * within the timeout reject with a {@link PublishError}; the caller may publish again (consumers
 * dedupe by message id). While there is no connection, publishes wait in a bounded buffer.
 */
import type { PublishOptions } from "./load.js";
import { PublishError } from "../../bus/errors.js";
import { returnKey, type Connection, type Link } from "./connection.js";

/** One AMQP publish. */
export interface Outgoing {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: PublishOptions;
  /** Fail (not retryable) when no queue takes it. */
  mandatory?: boolean;
}

/** Options of {@link createPublisher}. */
export interface PublisherOptions {
  /** Messages that may wait for a connection at once; more are refused at once. */
  maxBuffered: number;
  /** How long a publish waits for a connection. */
  bufferTimeoutMs: number;
  /** How long a connected publish waits for its confirms. */
  confirmTimeoutMs: number;
  where: string;
}

/** Publishes batches with confirms through `connection`. */
export function createPublisher(connection: Connection, o: PublisherOptions) {
  let waiting = 0;

  async function linkFor(n: number): Promise<Link> {
    const now = connection.current();
    if (now) return now;
    if (waiting + n > o.maxBuffered) {
      throw new PublishError(
        `RabbitMQ at ${o.where} is unreachable and ${waiting} message(s) already wait for it ` +
          `(publishBuffer.maxMessages = ${o.maxBuffered}); ${n} message(s) not published`,
      );
    }
    waiting += n;
    try {
      return await connection.ready(o.bufferTimeoutMs);
    } catch (e) {
      throw new PublishError(
        `RabbitMQ at ${o.where} stayed unreachable (publishBuffer.timeout = ${o.bufferTimeoutMs} ms); ` +
          `${n} message(s) not published`,
        { cause: e },
      );
    } finally {
      waiting -= n;
    }
  }

  /**
   * Publishes one message; `settle` gets its outcome once, from its confirm callback (or at once
   * when amqplib refuses the publish). Never throws.
   */
  function publishOne(link: Link, m: Outgoing, settle: (failure: PublishError | undefined) => void) {
    const key = m.mandatory ? returnKey(m.routingKey, m.options.messageId) : undefined;
    const confirmed = (err: unknown) => {
      const id = String(m.options.messageId);
      if (err) {
        settle(
          new PublishError(`RabbitMQ did not confirm message ${id}: ${(err as Error).message}`, {
            cause: err,
          }),
        );
      } else if (key !== undefined && link.returned.delete(key)) {
        settle(
          new PublishError(`no queue takes message ${id} (routing key ${m.routingKey})`, {
            retryable: false,
          }),
        );
      } else settle(undefined);
    };
    try {
      const ok = link.publisher.publish(
        m.exchange,
        m.routingKey,
        m.content,
        m.mandatory ? { ...m.options, mandatory: true } : m.options,
        confirmed,
      );
      if (!ok) link.markFull();
    } catch (e) {
      forgetConfirm(link, confirmed, e);
      const id = String(m.options.messageId).slice(0, 300);
      // amqplib refuses what AMQP cannot encode (a message id, type or header name over 255
      // bytes, headers over 64 KiB) with a TypeError or RangeError: the same message is refused
      // every time. Only a closed channel (IllegalOperationError) is not the message's fault.
      settle(
        new PublishError(`cannot publish message ${id}: ${(e as Error).message}`, {
          cause: e,
          retryable: (e as Error | undefined)?.name === "IllegalOperationError",
        }),
      );
    }
  }

  /**
   * amqplib's confirm channel queues a publish's confirm callback before it encodes the message,
   * and the broker numbers only the messages it received: a publish refused while encoding left
   * a callback that the next message's confirm would settle, and so on down the channel (each
   * publish confirmed by the next one's ack, the last waiting for its confirm timeout though
   * delivered). Takes it back; should it not be the last one queued, the link is failed (a new
   * channel, whose publishes each wait for their own confirm).
   */
  function forgetConfirm(link: Link, callback: (err: unknown) => void, cause: unknown) {
    const queued = (link.publisher as unknown as { unconfirmed?: unknown[] }).unconfirmed;
    if (Array.isArray(queued) && queued.at(-1) === callback) queued.pop();
    else if (!link.broken) link.fail("a refused publish left the channel's confirms out of step", cause);
  }

  /** Batches waiting for their confirms, swept for the confirm timeout by one shared timer. */
  const awaiting = new Set<{ deadline: number; expire: () => void }>();
  /** Who waits for no batch to be waiting for its confirms ({@link settled}). */
  const idle: Array<() => void> = [];
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = Date.now();
    for (const b of awaiting) if (b.deadline <= now) b.expire();
    if (awaiting.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  /**
   * Publishes `messages` on `link`, waiting whenever the socket's write buffer is full; resolves
   * once all are confirmed, or rejects with the first failure. One promise for the batch, not one
   * per message, and no timer of its own (see `sweep`).
   */
  function sendOn(link: Link, messages: readonly Outgoing[]): Promise<void> {
    let pending = messages.length;
    let failed: PublishError | undefined;
    let resolveBatch!: () => void;
    let rejectBatch!: (e: PublishError) => void;
    const confirmed = new Promise<void>((resolve, reject) => {
      resolveBatch = resolve;
      rejectBatch = reject;
    });
    const finish = () => {
      awaiting.delete(batch);
      if (awaiting.size === 0) for (const resolve of idle.splice(0)) resolve();
      if (failed) rejectBatch(failed);
      else resolveBatch();
    };
    // The confirm timeout runs from the last message sent (waits for the buffer do not count).
    const batch = {
      deadline: Infinity,
      expire() {
        failed ??= new PublishError(`no confirm from RabbitMQ within ${o.confirmTimeoutMs} ms`);
        pending = -1; // confirms that still come change nothing
        finish();
      },
    };
    const settle = (failure: PublishError | undefined) => {
      if (failure) failed ??= failure;
      if (--pending === 0) finish();
    };
    const publishFrom = (start: number) => {
      for (let i = start; i < messages.length; i++) {
        const blocked = link.writable();
        if (blocked) return void blocked.then(() => publishFrom(i));
        if (link.broken) {
          // The rest were never sent; the confirms of those sent cannot come any more.
          failed ??= new PublishError("the connection to RabbitMQ was lost");
          pending -= messages.length - i;
          if (pending === 0) finish();
          return;
        }
        publishOne(link, messages[i]!, settle);
      }
      if (pending > 0) {
        batch.deadline = Date.now() + o.confirmTimeoutMs;
        sweeper ??= setInterval(sweep, Math.min(1000, Math.max(10, o.confirmTimeoutMs / 4))).unref();
      }
    };
    awaiting.add(batch);
    publishFrom(0);
    return confirmed;
  }

  return {
    /**
     * Resolves once no publish sent waits for its confirm (each ends by its confirm, its
     * channel's loss or the confirm timeout): what a close waits for, so that messages the broker
     * has are not reported failed because the connection closed before their confirms came.
     */
    settled(): Promise<void> {
      if (awaiting.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
    /** Publishes every message and resolves once all are confirmed. */
    send(messages: readonly Outgoing[]): Promise<void> {
      if (messages.length === 0) return Promise.resolve();
      const link = connection.current();
      // The common case, connected, without an async step.
      if (link) return sendOn(link, messages);
      return linkFor(messages.length).then((l) => sendOn(l, messages));
    },
  };
}
