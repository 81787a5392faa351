/**
 * The Transport contract: what the event bus needs from a broker or queue. Implementations:
 * the local transport on the Store (SQLite, PostgreSQL), the in-memory one in `patchbay/testing`,
 * and broker adapters (RabbitMQ, NATS). The conformance suite (`defineTransportConformance` in
 * `patchbay/adapter/conformance`) checks every invariant below against each of them, on the real
 * service.
 */
import type { StoreTx } from "../store/contracts.js";
import type { UndecodableMessageError } from "./errors.js";

/** A message as a transport carries it: a CloudEvent in structured JSON plus routing facts. */
export interface TransportMessage {
  /** The CloudEvent id; unique per message. */
  id: string;
  /** The CloudEvent type; routing matches patterns against it. */
  type: string;
  /** Ordering/partition key, if any. */
  key?: string | undefined;
  /** The whole CloudEvent, structured-mode JSON. */
  body: string;
  /** Transport headers (`traceparent`, ...). */
  headers: Record<string, string>;
  /**
   * Set by the bus on a message it publishes once under an id it has just made (`publish`
   * without an `id`, and `tx.publish` straight into a store queue; not the outbox relay, which
   * may send a message again, nor dead-letter replays). No earlier delivery can share its id,
   * so on its first delivery to a group (`attempt` 1) the consumer skips the inbox check.
   * Transports carry it with the message; one rebuilt from storage without it is checked.
   */
  fresh?: boolean;
}

/** Options of {@link Transport.publish}. */
export interface TransportPublishOptions {
  /**
   * Publish inside this store transaction (only when `capabilities.sharesStore`): the messages
   * become visible to consumers exactly when, and only if, the transaction commits.
   */
  tx?: StoreTx;
  /** Deliver no earlier than this many ms from now. */
  delayMs?: number;
  /** Deliver to this group only (a dead-letter replay), not to every group whose patterns match. */
  group?: string;
}

/** Why the last attempt failed, kept with a message across delayed retries. */
export interface FailureRecord {
  /** When the message first failed in this group (ms since epoch). */
  firstFailedAt: number;
  /** The last error, JSON-safe. */
  error: Record<string, unknown>;
}

/**
 * One delivery of a message to a group. The consumer settles it exactly once, with `ack`,
 * `retry` or `release`; a delivery left unsettled (the process died) comes back after the
 * transport's lease. Settling it a second time rejects with `BUS_STOPPED`.
 */
export interface Delivery {
  readonly message: TransportMessage;
  readonly group: string;
  /** 1 for the first delivery to this group; grows with every redelivery (retries, crashes). */
  readonly attempt: number;
  /** Present when the message failed before in this group. */
  readonly failure: FailureRecord | undefined;
  /**
   * Set when the transport could not read the message whole (corrupt headers or bookkeeping, a
   * body that is not UTF-8): `message` holds what could be read (`headers` `{}` when they were
   * at fault) and the bus dead-letters the delivery at once with this error. A transport never
   * throws out of its consumer, nor stops, because of a message it cannot read.
   */
  readonly undecodable?: UndecodableMessageError | undefined;
  /**
   * Removes the message from the group's queue. With `tx` (only when `capabilities.sharesStore`)
   * the removal commits with that transaction, atomically with the handler's writes, and the
   * delivery counts as settled only once it committed: when the transaction rolls back (its
   * COMMIT refused, e.g. by a deferred constraint) the delivery is still open for `retry`.
   */
  ack(tx?: StoreTx): Promise<void>;
  /** Redelivers the message to this group after `delayMs`, durably, keeping the failure record. */
  retry(delayMs: number, failure: FailureRecord): Promise<void>;
  /**
   * Hands the message back unfinished (a stop): due again at once, to any consumer of the group —
   * not after a lease — with its failure record as it was. The delivery does not count as an
   * attempt where the transport can undo it (the store queue, in-memory); on RabbitMQ the
   * requeue counts in the quorum queue's `x-delivery-count`, so the next `attempt` is one more.
   */
  release(): Promise<void>;
}

/** A running consumer of one group. */
export interface Consumer {
  /**
   * Stops at once handing deliveries to `onDelivery` (whatever it fetched but had not handed
   * over is released), waits for the ones in flight, then detaches — all within `timeoutMs`
   * (default 30 s): it resolves by then whatever is still running. A delivery still in flight
   * then is abandoned like one of a process that died (no lease is kept for it): it comes back
   * to the group, and settling it later may do nothing. Safe to call twice.
   */
  stop(timeoutMs?: number): Promise<void>;
}

/** Options of {@link Transport.consume}. */
export interface ConsumeOptions {
  /** Deliveries in flight at once (the prefetch). */
  concurrency: number;
}

/** What a transport can do, as data. */
export interface TransportCapabilities {
  /** The queue lives in the Store: `publish({ tx })` and `ack(tx)` join store transactions. */
  readonly sharesStore: boolean;
  /** Messages survive a restart of the process (false only for the in-memory transport). */
  readonly durable: boolean;
}

/**
 * A transport.
 *
 * Invariants every implementation keeps (and the conformance suite checks):
 * - `publish` resolves only once every message is durable (broker confirm, committed row); if it
 *   rejects, the caller must assume none or some were stored and may publish again — consumers
 *   dedupe by message id.
 * - Each group bound to a pattern gets every matching message published after the binding
 *   (fan-out); consumers of one group compete; messages wait while a group has no consumer.
 * - Delivery is at least once: a delivery neither acked nor retried (a crash, a lost connection)
 *   is delivered again; `retry` delays are durable.
 * - At most `concurrency` deliveries per consumer are in flight; a backlog stays in the
 *   transport, not in the consumer's memory.
 * - `release` makes a message due again at once; nothing reaches `onDelivery` once the
 *   consumer's `stop` began, and `stop` resolves within its timeout.
 */
export interface Transport {
  readonly name: string;
  readonly capabilities: TransportCapabilities;
  open(): Promise<void>;
  /** Durably binds `group` to exactly these patterns (replacing earlier ones). */
  bind(group: string, patterns: readonly string[]): Promise<void>;
  publish(messages: readonly TransportMessage[], options?: TransportPublishOptions): Promise<void>;
  consume(
    group: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => Promise<void>,
  ): Promise<Consumer>;
  /** Closes connections; consumers should be stopped first. Safe to call twice. */
  close(): Promise<void>;
  /** Whether the transport is connected now (a broker's), for `/readyz`. Optional: a store-backed transport is the store. */
  health?(): Promise<{ ok: boolean; error?: string }>;
}
