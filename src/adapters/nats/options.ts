import { toMs, type Duration } from "../../core/duration.js";
import { InvalidArgumentError } from "../../core/errors.js";
import { silentLogger, type Logger } from "../../core/logger.js";
import { exponential, type Backoff } from "../../resilience/backoff.js";

/** Options of {@link nats}. */
export interface NatsTransportOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222` (comma-separated for a cluster). Default `nats://127.0.0.1:4222`. */
  url?: string;
  /**
   * Names every JetStream object: the stream `<prefix>` on subjects `<prefix>.>`, its durable
   * consumer per group `<group>`, the delay stream `<prefix>_delay` and the parked stream
   * `<prefix>_parked`. Letters, digits, `_` and `-`. Default `patchbay`.
   */
  prefix?: string;
  /** Shown by the server (`nats server report connections`). Default `patchbay <prefix>`. */
  connectionName?: string;
  /** How long `open()` tries to connect before failing. Default 10 s. */
  connectTimeout?: Duration;
  /** How long a publish waits for the stream's acknowledgement (a reconnection included). Default 30 s. */
  publishTimeout?: Duration;
  /**
   * How long the server waits for an ack before it redelivers (the consumer's `ack_wait`); a
   * handler running longer keeps its delivery with `working()` heartbeats, so this only decides
   * how soon the deliveries of a process that died come back. Fixed when the consumer is made. Default 30 s.
   */
  ackWait?: Duration;
  /** The stream's duplicate window: a publish with a `Nats-Msg-Id` seen this recently is dropped. Default 2 min. */
  duplicateWindow?: Duration;
  /**
   * Deliveries of one message that end without being settled — the consumer process died each
   * time — after which the transport hands it to the bus as undecodable, which dead-letters it
   * in the store at once (a message that kills every consumer must not stop the group forever).
   * Only its own count: after its first, a redelivered message runs alone in its process, and
   * only those runs that ended with the process count, so the messages in flight beside a poison
   * message are not dead-lettered with it. Handler failures go through the bus's retries and
   * never come near this. Default 50.
   */
  deliveryLimit?: number;
  /** Wait before a delivery the consumer could not settle (the store was down) is tried again. Default exponential 1 s → 1 min. */
  unsettledRetry?: Backoff;
  logger?: Logger;
}

const PREFIX = /^[A-Za-z0-9_-]{1,64}$/;
const GROUP = /^[A-Za-z0-9_.-]{1,100}$/;

/** The options with defaults applied and checked. */
export function resolveOptions(options: NatsTransportOptions) {
  const prefix = options.prefix ?? "patchbay";
  if (typeof prefix !== "string" || !PREFIX.test(prefix)) {
    throw new InvalidArgumentError("prefix must be 1-64 characters of letters, digits, _ -", "prefix");
  }
  const url = options.url ?? "nats://127.0.0.1:4222";
  const servers = url.split(",").map((s) => s.trim());
  for (const s of servers) {
    let u: URL;
    try {
      u = new URL(s.includes("://") ? s : `nats://${s}`);
    } catch (e) {
      throw new InvalidArgumentError("url must be a nats:// URL", "url", { cause: e });
    }
    if (!["nats:", "tls:", "ws:", "wss:"].includes(u.protocol)) {
      throw new InvalidArgumentError(`url must be a nats:// URL, got ${u.protocol}`, "url");
    }
  }
  const deliveryLimit = options.deliveryLimit ?? 50;
  if (!Number.isInteger(deliveryLimit) || deliveryLimit < 1) {
    throw new InvalidArgumentError("deliveryLimit must be a positive integer", "deliveryLimit");
  }
  const where = servers
    .map((s) => {
      try {
        const u = new URL(s.includes("://") ? s : `nats://${s}`);
        return `${u.hostname}:${u.port || 4222}`;
      } catch {
        return s;
      }
    })
    .join(",");
  return {
    servers,
    where,
    prefix,
    connectionName: options.connectionName ?? `patchbay ${prefix}`,
    connectTimeoutMs: toMs(options.connectTimeout ?? "10s", "connectTimeout"),
    publishTimeoutMs: toMs(options.publishTimeout ?? "30s", "publishTimeout"),
    ackWaitMs: toMs(options.ackWait ?? "30s", "ackWait"),
    duplicateWindowMs: toMs(options.duplicateWindow ?? "2m", "duplicateWindow"),
    deliveryLimit,
    unsettled: options.unsettledRetry ?? exponential({ initial: "1s", max: "1m" }),
    logger: options.logger ?? silentLogger,
  };
}

export type ResolvedOptions = ReturnType<typeof resolveOptions>;

/**
 * A group's name as one NATS token (its durable consumer's name, a subject token): `.` is not
 * allowed there, so `_` becomes `__` and `.` becomes `_d` (one to one).
 */
export const groupToken = (group: string) => group.replace(/_/g, "__").replace(/\./g, "_d");

/** Checks a group name (it names the group's durable consumer and a subject token). */
export function assertGroup(group: string): void {
  if (typeof group !== "string" || !GROUP.test(group)) {
    throw new InvalidArgumentError("group must be 1-100 characters of letters, digits, _ . -", "group");
  }
}
