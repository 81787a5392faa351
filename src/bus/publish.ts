/**
 * The publish path of the bus: an event definition and its data become a validated CloudEvent and
 * a transport message (in a producer span), sent at once or written to the outbox in a transaction.
 */
import type { Attributes } from "@opentelemetry/api";
import type { Clock } from "../core/clock.js";
import { toMs } from "../core/duration.js";
import type { CloudEvent } from "../core/envelope.js";
import { serializeStructured } from "../core/envelope-structured.js";
import { syncFirst, type EventDefinition } from "../core/events.js";
import type { StoreTx } from "../store/contracts.js";
import type { AnyEventDefinition, PublishEntry, PublishOptions } from "./bus.js";
import { InvalidArgumentError } from "../core/errors.js";
import { MessageTooLargeError } from "./errors.js";
import { isHeaders } from "./headers.js";
import type { createOutbox } from "./outbox.js";
import { busMetrics, withProducerSpan } from "./telemetry.js";
import type { Transport, TransportMessage } from "./transport.js";

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

/**
 * Refuses a key or headers that are not strings (possible from JavaScript): every transport
 * would otherwise write them as they come and a consumer could not read the message back,
 * ending it in dead letters though its publish succeeded.
 */
function checkOptions(opts: PublishOptions): void {
  if (opts.key !== undefined && typeof opts.key !== "string")
    throw new InvalidArgumentError(`the key must be a string, got ${typeof opts.key}`, "options.key");
  if (opts.headers !== undefined && !isHeaders(opts.headers))
    throw new InvalidArgumentError("headers must be an object of string values", "options.headers");
}

/** What the publish path works with. */
export interface PublisherDeps {
  transport: Transport;
  /** Where `publishIn` writes when the transport does not share the store; else the transport takes the transaction. */
  outbox: ReturnType<typeof createOutbox> | undefined;
  /** Definitions by type; every published definition is added (so consumers here can decode it). */
  catalogue: Map<string, AnyEventDefinition>;
  clock: Clock;
  source: string;
  maxMessageBytes: number;
}

/** The bus's publish path: `publish` sends now, `publishIn` sends with a transaction's commit. */
export function createPublisher(deps: PublisherDeps) {
  const { transport, outbox, catalogue, clock, source, maxMessageBytes } = deps;

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
        checkOptions(opts);
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

  return {
    /** Validates, wraps and sends; resolves once the transport made it durable. */
    publish<T, In>(def: EventDefinition<T, In>, data: In, opts: PublishOptions): Promise<CloudEvent<T>> {
      const delayMs = delayOf(opts);
      return withMessage(def, data, opts, (event, message) =>
        transport.publish([message], delayMs === undefined ? {} : { delayMs }).then(() => {
          published(def.type);
          return event;
        }),
      );
    },
    /** Publishes within `tx`: through the outbox, or the store-backed transport, committing with it. */
    publishIn<T, In>(
      tx: StoreTx,
      def: EventDefinition<T, In>,
      data: In,
      opts: PublishOptions,
    ): Promise<CloudEvent<T>> {
      return withMessage(def, data, opts, async (event, message) => {
        const delayMs = delayOf(opts);
        if (outbox) await outbox.add(tx, message, delayMs);
        else await transport.publish([message], { tx, ...(delayMs === undefined ? {} : { delayMs }) });
        tx.afterCommit(() => published(def.type));
        return event;
      });
    },
    /**
     * Publishes `entries` within `tx`, in order, as one write: every event is built and checked
     * first (a refused one writes nothing), then all go to the outbox or the store-backed queue
     * together (one bindings read, multi-row inserts, one wake-up). Each event's producer span
     * covers its building, not the shared write.
     */
    async publishManyIn(tx: StoreTx, entries: readonly PublishEntry[]): Promise<CloudEvent<unknown>[]> {
      const built = await Promise.all(
        entries.map((entry) => {
          const opts = entry.options ?? {};
          const delayMs = delayOf(opts);
          return withMessage(entry.event, entry.data, opts, (event, message) =>
            Promise.resolve({ event, message, delayMs }),
          );
        }),
      );
      if (built.length === 0) return [];
      if (outbox) await outbox.addMany(tx, built);
      else {
        // One transport publish per run of equal delays, so the messages keep their order.
        for (let i = 0; i < built.length;) {
          const delayMs = built[i]!.delayMs;
          let end = i + 1;
          while (end < built.length && built[end]!.delayMs === delayMs) end++;
          await transport.publish(
            built.slice(i, end).map((b) => b.message),
            { tx, ...(delayMs === undefined ? {} : { delayMs }) },
          );
          i = end;
        }
      }
      tx.afterCommit(() => {
        for (const b of built) published(b.event.type);
      });
      return built.map((b) => b.event);
    },
  };
}
