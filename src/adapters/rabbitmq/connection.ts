/**
 * One AMQP connection that heals itself: when the connection or its publishing channel breaks,
 * a new one is made with backoff, the topology is declared again, and the listeners (consumers)
 * re-attach. Everything that belonged to the old connection (channels, delivery tags, pending
 * confirms) is dead with it: callers check {@link Link.broken} rather than reuse it.
 */
import type { Duplex } from "node:stream";
import { isPatchbayError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { Backoff } from "../../resilience/backoff.js";
import { RabbitmqError } from "./errors.js";
import { loadAmqplib, type ChannelModel, type ConfirmChannel, type Message } from "./load.js";

/** One live connection with its confirm channel for publishing. Replaced as a whole when it breaks. */
export interface Link {
  readonly model: ChannelModel;
  readonly publisher: ConfirmChannel;
  /** 1 for the first connection, +1 for each reconnection. */
  readonly generation: number;
  /** True once the connection or its publishing channel is gone. */
  readonly broken: boolean;
  /** Mandatory publishes the broker returned as unroutable, by {@link returnKey}. */
  readonly returned: Set<string>;
  /** While the socket's write buffer is full: resolves when it drained (or the link broke). */
  writable(): Promise<void> | undefined;
  /** Notes that `publish` returned false (the write buffer is full). */
  markFull(): void;
  /** Breaks this link (closes the connection); a new one follows with backoff. Idempotent. */
  fail(reason: string, cause?: unknown): void;
  /** Resolves once a broken link's connection is closed. */
  closed(): Promise<void>;
}

/** Identifies a returned mandatory publish. */
export const returnKey = (routingKey: string, messageId: unknown) =>
  `${routingKey}\u0000${String(messageId)}`;

/** Options of {@link createConnection}. */
export interface ConnectionOptions {
  url: string;
  /** Where, for messages (no credentials). */
  where: string;
  connectionName: string;
  reconnect: Backoff;
  connectTimeoutMs: number;
  logger: Logger;
  /** Declares the topology on a new connection before it is used. */
  setup(link: Link): Promise<void>;
  /** Runs after each reconnection (not the first connection), once `setup` succeeded. */
  onReconnect(link: Link): void;
}

/**
 * amqplib writes every frame to the socket on its own (a publish is 3 frames, an ack 1): a system
 * call each. Frames written in one turn of the event loop are sent together instead — the socket
 * is corked at the first write and uncorked on the next tick, so nothing waits longer.
 */
function coalesceWrites(model: unknown): void {
  const socket = (model as { connection?: { stream?: Partial<Duplex> } }).connection?.stream;
  if (!socket || typeof socket.write !== "function" || typeof socket.cork !== "function") return;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork!();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork!();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Duplex["write"];
}

/** A self-healing connection. */
export interface Connection {
  /** Connects (retrying with backoff up to the connect timeout) unless connected. */
  open(): Promise<Link>;
  /** The live link, if connected now. */
  current(): Link | undefined;
  /** The live link, waiting for a reconnection up to `timeoutMs`. */
  ready(timeoutMs: number): Promise<Link>;
  /** Closes for good; waiters are rejected. */
  close(): Promise<void>;
}

const quietly = (fn: () => Promise<unknown>): Promise<void> =>
  Promise.resolve()
    .then(fn)
    .then(
      () => undefined,
      () => undefined,
    );

/** Creates a {@link Connection}; nothing happens until `open()`. */
export function createConnection(o: ConnectionOptions): Connection {
  let link: Link | undefined;
  let generation = 0;
  let state: "idle" | "connecting" | "up" | "closed" = "idle";
  let everUp = false;
  let loop: Promise<void> | undefined;
  let lastError: unknown;
  let wakeSleep: (() => void) | undefined;
  const waiters = new Set<(result: Link | Error) => void>();
  const settleWaiters = (result: Link | Error) => {
    for (const w of [...waiters]) w(result);
    waiters.clear();
  };

  function makeLink(model: ChannelModel, publisher: ConfirmChannel, gen: number): Link {
    let broken = false;
    let closing: Promise<void> = Promise.resolve();
    let full: Promise<void> | undefined;
    const l: Link = {
      model,
      publisher,
      generation: gen,
      returned: new Set(),
      get broken() {
        return broken;
      },
      writable: () => full,
      markFull() {
        full ??= new Promise<void>((resolve) => {
          const done = () => {
            publisher.off("drain", done);
            publisher.off("close", done);
            full = undefined;
            resolve();
          };
          publisher.on("drain", done);
          publisher.on("close", done);
        });
      },
      fail(reason, cause) {
        if (broken) return;
        broken = true;
        closing = quietly(() => model.close());
        if (link !== l) return;
        link = undefined;
        o.logger.warn({ err: cause, generation: gen }, `patchbay rabbitmq: ${reason}; reconnecting`);
        if (state === "up") {
          state = "connecting";
          startLoop();
        }
      },
      closed: () => closing,
    };
    publisher.on("error", (e: unknown) =>
      o.logger.warn({ err: e }, "patchbay rabbitmq: publishing channel error"),
    );
    publisher.on("close", () => l.fail("publishing channel closed"));
    publisher.on("return", (msg: Message) =>
      l.returned.add(returnKey(msg.fields.routingKey, msg.properties.messageId)),
    );
    return l;
  }

  async function connectOnce(): Promise<Link> {
    const amqp = await loadAmqplib();
    const model = await amqp.connect(o.url, {
      clientProperties: { connection_name: o.connectionName },
      timeout: o.connectTimeoutMs,
    });
    coalesceWrites(model);
    let l: Link | undefined;
    model.on("error", (e: unknown) => o.logger.warn({ err: e }, "patchbay rabbitmq: connection error"));
    model.on("close", () => l?.fail("connection closed"));
    model.on("blocked", (reason: unknown) =>
      o.logger.warn({ reason }, "patchbay rabbitmq: the broker blocks publishing (resource alarm)"),
    );
    model.on("unblocked", () => o.logger.info("patchbay rabbitmq: the broker accepts publishing again"));
    try {
      const publisher = await model.createConfirmChannel();
      l = makeLink(model, publisher, ++generation);
      await o.setup(l);
      return l;
    } catch (e) {
      l?.fail("setup failed", e);
      await quietly(() => model.close());
      throw e;
    }
  }

  function startLoop() {
    loop ??= (async () => {
      let attempt = 0;
      let previous: number | undefined;
      try {
        while (state === "connecting") {
          try {
            const l = await connectOnce();
            if (state !== "connecting") {
              l.fail("no longer wanted");
              return;
            }
            link = l;
            state = "up";
            settleWaiters(l);
            if (everUp) {
              o.logger.info({ generation: l.generation }, "patchbay rabbitmq: reconnected");
              o.onReconnect(l);
            }
            everUp = true;
            return;
          } catch (e) {
            lastError = e;
            const conflict = e instanceof RabbitmqError && e.code === "RABBITMQ_TOPOLOGY_CONFLICT";
            if ((conflict || isPatchbayError(e, "DRIVER_MISSING")) && !everUp) {
              // A first connection whose topology conflicts, or without amqplib installed, will
              // not get better by retrying.
              state = "idle";
              settleWaiters(e);
              return;
            }
            attempt++;
            const delay = o.reconnect.delay(attempt, previous, Math.random);
            previous = delay;
            (conflict ? o.logger.error : o.logger.warn)(
              { err: e, attempt, delayMs: delay },
              `patchbay rabbitmq: cannot connect to ${o.where}; retrying`,
            );
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, delay);
              wakeSleep = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wakeSleep = undefined;
          }
        }
      } finally {
        loop = undefined;
      }
    })();
  }

  function ready(timeoutMs: number): Promise<Link> {
    if (link) return Promise.resolve(link);
    if (state === "closed") {
      return Promise.reject(new RabbitmqError("RABBITMQ_UNAVAILABLE", "the RabbitMQ transport is closed"));
    }
    if (state === "idle") {
      state = "connecting";
      startLoop();
    }
    return new Promise<Link>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(
          new RabbitmqError(
            "RABBITMQ_UNAVAILABLE",
            `no connection to RabbitMQ at ${o.where} within ${timeoutMs} ms` +
              (lastError instanceof Error ? `: ${lastError.message}` : ""),
            { cause: lastError },
          ),
        );
      }, timeoutMs);
      const w = (result: Link | Error) => {
        clearTimeout(timer);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      waiters.add(w);
    });
  }

  return {
    current: () => link,
    ready,
    async open() {
      try {
        return await ready(o.connectTimeoutMs);
      } catch (e) {
        if (!everUp && state === "connecting") {
          state = "idle"; // give up for now; the next open() or publish starts again
          wakeSleep?.();
        }
        throw e;
      }
    },
    async close() {
      if (state === "closed") return;
      state = "closed";
      wakeSleep?.();
      settleWaiters(new RabbitmqError("RABBITMQ_UNAVAILABLE", "the RabbitMQ transport is closed"));
      const l = link;
      link = undefined;
      if (l) {
        l.fail("transport closed");
        await l.closed();
      }
      await loop;
    },
  };
}
