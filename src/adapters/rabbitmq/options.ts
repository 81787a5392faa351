import { toMs, type Duration } from "../../core/duration.js";
import { InvalidArgumentError } from "../../core/errors.js";
import { silentLogger, type Logger } from "../../core/logger.js";
import { exponential, type Backoff } from "../../resilience/backoff.js";

/** Options of {@link rabbitmq}. */
export interface RabbitmqTransportOptions {
  /** AMQP URL, e.g. `amqp://user:pass@host:5672/vhost`. Default `amqp://guest:guest@127.0.0.1:5672`. */
  url?: string;
  /**
   * Names every broker object: the topic exchange is `<prefix>`, group queues
   * `<prefix>.group.<group>`, delay tiers `<prefix>.delay.<ms>`. Default `patchbay`.
   */
  prefix?: string;
  /** Shown by the broker (`rabbitmqctl list_connections user_provided_name`). Default `patchbay <prefix>`. */
  connectionName?: string;
  /** AMQP heartbeat in seconds: how soon a dead connection is noticed. Default 10 (a `heartbeat` in the URL wins). */
  heartbeat?: number;
  /** How long `open()` (and a first publish) tries to connect before failing. Default 10 s. */
  connectTimeout?: Duration;
  /** Wait between reconnection attempts. Default exponential 100 ms → 10 s, full jitter. */
  reconnect?: Backoff;
  /** Publishes made while disconnected wait here for a reconnection. */
  publishBuffer?: {
    /** Messages that may wait at once; a publish beyond is refused with `PUBLISH_FAILED` at once. Default 10,000. */
    maxMessages?: number;
    /** How long a publish waits for a connection before failing with `PUBLISH_FAILED`. Default 30 s. */
    timeout?: Duration;
  };
  /**
   * How long a publish waits for the broker's confirm (e.g. under a memory alarm). Default 30 s.
   * Checked once a second (a quarter of it when shorter), so it may end up to that much later.
   */
  confirmTimeout?: Duration;
  /**
   * Deliveries of one message that end without an ack — the connection or the consumer process
   * died while it was in flight — before the broker moves it to the group's broker dead-letter
   * queue `<prefix>.dlq.<group>` (a message that crashes every consumer must not stop the group
   * forever). Handler failures never count here: they go through the bus's retries and its dead
   * letters in the store. Fixed when the group's queue is first declared. Default 50.
   */
  deliveryLimit?: number;
  /** Wait before a delivery the consumer could not settle (the store was down) is tried again. Default exponential 1 s → 1 min. */
  unsettledRetry?: Backoff;
  logger?: Logger;
}

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** The options with defaults applied and checked. */
export function resolveOptions(options: RabbitmqTransportOptions) {
  const prefix = options.prefix ?? "patchbay";
  if (typeof prefix !== "string" || !NAME.test(prefix)) {
    throw new InvalidArgumentError("prefix must be 1-100 characters of letters, digits, _ . -", "prefix");
  }
  const rawUrl = options.url ?? "amqp://guest:guest@127.0.0.1:5672";
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch (e) {
    throw new InvalidArgumentError("url must be an amqp:// or amqps:// URL", "url", { cause: e });
  }
  if (url.protocol !== "amqp:" && url.protocol !== "amqps:") {
    throw new InvalidArgumentError(`url must be an amqp:// or amqps:// URL, got ${url.protocol}`, "url");
  }
  const heartbeat = options.heartbeat ?? 10;
  if (!Number.isInteger(heartbeat) || heartbeat < 0) {
    throw new InvalidArgumentError("heartbeat must be a whole number of seconds >= 0", "heartbeat");
  }
  if (!url.searchParams.has("heartbeat")) url.searchParams.set("heartbeat", String(heartbeat));
  const maxBuffered = options.publishBuffer?.maxMessages ?? 10_000;
  if (!Number.isInteger(maxBuffered) || maxBuffered < 0) {
    throw new InvalidArgumentError(
      "publishBuffer.maxMessages must be an integer >= 0",
      "publishBuffer.maxMessages",
    );
  }
  const deliveryLimit = options.deliveryLimit ?? 50;
  if (!Number.isInteger(deliveryLimit) || deliveryLimit < 1) {
    throw new InvalidArgumentError("deliveryLimit must be a positive integer", "deliveryLimit");
  }
  return {
    url: url.toString(),
    where: `${url.hostname}:${url.port || (url.protocol === "amqps:" ? 5671 : 5672)}${url.pathname || "/"}`,
    prefix,
    connectionName: options.connectionName ?? `patchbay ${prefix}`,
    connectTimeoutMs: toMs(options.connectTimeout ?? "10s", "connectTimeout"),
    reconnect: options.reconnect ?? exponential({ initial: "100ms", max: "10s" }),
    maxBuffered,
    bufferTimeoutMs: toMs(options.publishBuffer?.timeout ?? "30s", "publishBuffer.timeout"),
    confirmTimeoutMs: toMs(options.confirmTimeout ?? "30s", "confirmTimeout"),
    deliveryLimit,
    unsettled: options.unsettledRetry ?? exponential({ initial: "1s", max: "1m" }),
    logger: options.logger ?? silentLogger,
  };
}

/** Checks a group name (it becomes part of queue names). */
export function assertGroup(group: string): void {
  if (typeof group !== "string" || !NAME.test(group)) {
    throw new InvalidArgumentError("group must be 1-100 characters of letters, digits, _ . -", "group");
  }
}
