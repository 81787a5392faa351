/**
 * Publishing with publisher confirms. Every message gets its own confirm callback (amqplib
 * matches the broker's acks and nacks to them by delivery sequence number, `multiple` acks
 * included), and a batch resolves only when every one of its messages is confirmed. A nack, a
 * return of a mandatory message, a channel or connection lost before the confirm, or no confirm
 * within the timeout reject with a {@link PublishError}; the caller may publish again (consumers
 * dedupe by message id). While there is no connection, publishes wait in a bounded buffer.
 */
import type { Options } from "amqplib";
import { PublishError } from "../../bus/errors.js";
import { returnKey, type Connection, type Link } from "./connection.js";

/** One AMQP publish. */
export interface Outgoing {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
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

  /** Resolves to the failure of one message, never rejects (so no confirm is left unobserved). */
  function publishOne(link: Link, m: Outgoing): Promise<PublishError | undefined> {
    return new Promise((resolve) => {
      const id = String(m.options.messageId);
      const key = m.mandatory ? returnKey(m.routingKey, m.options.messageId) : undefined;
      try {
        const ok = link.publisher.publish(
          m.exchange,
          m.routingKey,
          m.content,
          m.mandatory ? { ...m.options, mandatory: true } : m.options,
          (err: unknown) => {
            if (err) {
              resolve(
                new PublishError(`RabbitMQ did not confirm message ${id}: ${(err as Error).message}`, {
                  cause: err,
                }),
              );
            } else if (key !== undefined && link.returned.delete(key)) {
              resolve(
                new PublishError(`no queue takes message ${id} (routing key ${m.routingKey})`, {
                  retryable: false,
                }),
              );
            } else resolve(undefined);
          },
        );
        if (!ok) link.markFull();
      } catch (e) {
        resolve(new PublishError(`cannot publish message ${id}: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  return {
    /** Publishes every message and resolves once all are confirmed. */
    async send(messages: readonly Outgoing[]): Promise<void> {
      if (messages.length === 0) return;
      const link = await linkFor(messages.length);
      const outcomes: Array<Promise<PublishError | undefined>> = [];
      for (const m of messages) {
        const blocked = link.writable();
        if (blocked) await blocked;
        if (link.broken) {
          outcomes.push(Promise.resolve(new PublishError("the connection to RabbitMQ was lost")));
          break;
        }
        outcomes.push(publishOne(link, m));
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<PublishError>((resolve) => {
        timer = setTimeout(
          () => resolve(new PublishError(`no confirm from RabbitMQ within ${o.confirmTimeoutMs} ms`)),
          o.confirmTimeoutMs,
        );
      });
      try {
        const failures = await Promise.race([Promise.all(outcomes), timedOut.then((e) => [e])]);
        const first = failures.find((f) => f !== undefined);
        if (first) throw first;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
