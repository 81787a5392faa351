/**
 * `createWebhooks()`: outbound webhooks on a store and an event bus — endpoints, fan-out of
 * published events, signed durable delivery with retries, endpoint health, replay and recovery,
 * SSRF protection.
 */
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { createLifecycle, type Lifecycle } from "../core/lifecycle.js";
import { silentLogger, type Logger } from "../core/logger.js";
import type { EventBus } from "../bus/bus.js";
import type { SqlStore } from "../store/sql-store.js";
import { createWakeSignal } from "../store/wake-signal.js";
import { createClaimer } from "./claim.js";
import { createHttpConnector, type WebhookConnector } from "./connector.js";
import { createWebhookDeliveries, type WebhookDeliveries } from "./deliveries.js";
import { createWebhookEndpoints, type WebhookEndpoints } from "./endpoints.js";
import { createFanOut } from "./fan-out.js";
import { webhookRequest, type WebhookPayloadFormat } from "./payload.js";
import { createRecorder } from "./record.js";
import { retrySchedule, type RetryScheduleOptions } from "./schedule.js";
import { createSender } from "./sender.js";
import { createTargetPolicy, type WebhookResolver } from "./ssrf.js";
import { webhookMetrics } from "./telemetry.js";
import { WAKE_CHANNEL } from "./tables.js";
import { createTestSender } from "./test-event.js";
import { startWorker, type Worker } from "./worker.js";

/** Options of {@link createWebhooks}. */
export interface WebhooksOptions {
  /** Where endpoints, messages, deliveries and attempts live (the same store as the bus's). */
  store: SqlStore;
  /**
   * The bus whose events fan out to endpoints, and on which `patchbay.webhook.endpoint_disabled`
   * is published. It subscribes (before or after `bus.start()`). Without a bus, nothing fans out (an admin or delivery-only instance, such as the CLI's).
   */
  bus?: EventBus;
  /** The bus consumer group of the fan-out. Default `"patchbay.webhooks"`. */
  group?: string;
  /** Events fanned out at once in this process. Default 4. */
  fanOutConcurrency?: number;
  /**
   * The request made of each event. Default `"standard"` (`{"type","timestamp","data"}`);
   * `"cloudevents"` (structured mode) or `"cloudevents-binary"` (binary mode) for the CloudEvents
   * HTTP binding. Give every process of an app the same format.
   */
  format?: WebhookPayloadFormat;
  /** The retry schedule (`delays`, `jitter`, `maxRetryAfter`). Default: at once, 5 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h, ±10 %. */
  retry?: RetryScheduleOptions;
  /** An endpoint failing without a single success for this long is disabled. Default `"5d"`. */
  disableAfter?: Duration;
  /** Per-attempt timeout: a 2xx must arrive within it. Default `"15s"`. */
  timeout?: Duration;
  /** Deliveries in flight at once in this process. Default 32. */
  concurrency?: number;
  /** Concurrency of endpoints created without one. Default 10. */
  endpointConcurrency?: number;
  /** How long a claimed delivery is held before another worker may take it (the holder is presumed dead). Default timeout + 30 s. */
  lease?: Duration;
  /** How often an idle worker looks for work no one woke it for. Default 1 s (5 s on PostgreSQL, which notifies). */
  pollInterval?: Duration;
  /** Largest request body sent; bigger messages fail with `WEBHOOK_PAYLOAD_TOO_LARGE`. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** How much of each response is kept in the attempt log. Default 2048 bytes. */
  maxResponseBytes?: number;
  /** SSRF allowlist, for development only: CIDRs, addresses, host names, `*.domain`. Default none. */
  allow?: readonly string[];
  /** Refuse `http:` endpoint URLs. Default `false`. */
  httpsOnly?: boolean;
  /** Resolves endpoint host names (tests inject one). Default `dns.lookup`. */
  resolver?: WebhookResolver;
  /** Sends requests to checked addresses (tests inject one). Default: keep-alive `http`/`https` agents. */
  connector?: WebhookConnector;
  /** `User-Agent` of requests. Default `"patchbay-webhooks"`. */
  userAgent?: string;
  /** Source of the retry jitter. Default `Math.random`. */
  random?: () => number;
  clock?: Clock;
  logger?: Logger;
}

/** Outbound webhooks. */
export interface Webhooks extends Lifecycle {
  readonly endpoints: WebhookEndpoints;
  readonly deliveries: WebhookDeliveries;
  /** {@link WebhookDeliveries.replay}: sends one message again, to its endpoints or to one. */
  replay(messageId: string, options?: { endpointId?: string }): Promise<number>;
  /** {@link WebhookDeliveries.recover}: sends an endpoint's failed messages since a time again. */
  recover(endpointId: string, since: number | Date): Promise<number>;
  /**
   * Sends a test event (`patchbay.webhook.test`, data `{ endpointId, test: true }`) to one
   * endpoint, whatever its event filters: a real delivery, due now, signed and retried like any
   * other and visible in the attempt log. A disabled endpoint gets it once enabled.
   */
  sendTest(endpointId: string): Promise<{ messageId: string }>;
  /**
   * Opens the store and starts delivering (a no-op when started; `STOPPED` after `stop()`).
   * Fan-out runs with the bus (`bus.start()`).
   */
  start(): Promise<void>;
  /** Stops claiming, lets attempts in flight finish up to `timeout` (default 30 s), records them. Safe twice. */
  stop(options?: { timeout?: Duration }): Promise<void>;
}

const positiveInt = (value: number, name: string, max = 100_000) => {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`${name} is an integer in 1..${max}, got ${value}`, name);
  }
  return value;
};

/**
 * Creates outbound webhooks. Every event published on `bus` becomes one durable delivery per
 * endpoint whose filters match; deliveries are signed per Standard Webhooks, retried on the
 * schedule, and logged attempt by attempt.
 *
 * @example
 * const bus = createEventBus({ store });
 * const webhooks = createWebhooks({ store, bus });
 * await bus.start();
 * await webhooks.start();
 * const endpoint = await webhooks.endpoints.create({ url: "https://example.com/hooks", events: ["order.*"] });
 * console.log(endpoint.secret); // whsec_... — give it to the receiver
 * await bus.publish(OrderPaid, { orderId: "o-1" }); // delivered, signed, retried until it lands
 */
export function createWebhooks(options: WebhooksOptions): Webhooks {
  const { store, bus } = options;
  if (!store || typeof store.transaction !== "function" || !store.dialect) {
    throw new InvalidArgumentError(
      "createWebhooks needs a Patchbay SQL store (sqlite() or postgres())",
      "store",
    );
  }
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? silentLogger).child({ component: "webhooks" });
  const random = options.random ?? Math.random;
  const schedule = retrySchedule(options.retry);
  const timeoutMs = toMs(options.timeout ?? "15s", "timeout");
  const leaseMs = toMs(options.lease ?? timeoutMs + 30_000, "lease");
  if (leaseMs <= timeoutMs) {
    throw new InvalidArgumentError(
      "lease must be longer than timeout, or attempts would be stolen mid-flight",
      "lease",
    );
  }
  const pollMs = toMs(options.pollInterval ?? (store.listen ? "5s" : "1s"), "pollInterval");
  const concurrency = positiveInt(options.concurrency ?? 32, "concurrency", 1000);
  const policy = createTargetPolicy({
    ...(options.allow ? { allow: options.allow } : {}),
    ...(options.httpsOnly === undefined ? {} : { httpsOnly: options.httpsOnly }),
    ...(options.resolver ? { resolver: options.resolver } : {}),
  });
  let worker: Worker | undefined;
  const wake = () => worker?.wake();
  const wakeOthers = createWakeSignal(store, WAKE_CHANNEL, logger, "webhooks");

  const endpoints = createWebhookEndpoints(store, {
    clock,
    policy,
    defaultConcurrency: positiveInt(options.endpointConcurrency ?? 10, "endpointConcurrency", 1000),
  });
  const deliveries = createWebhookDeliveries(store, { clock, wake });

  const format = options.format ?? "standard";
  if (typeof format !== "function" && !["standard", "cloudevents", "cloudevents-binary"].includes(format)) {
    throw new InvalidArgumentError(
      `format must be "standard", "cloudevents", "cloudevents-binary" or a function, got ${JSON.stringify(format)}`,
      "format",
    );
  }
  if (bus) {
    const fanOut = createFanOut({
      dialect: store.dialect,
      clock,
      format,
      firstDelay: () => schedule.firstDelay(random),
      wake,
      wakeOthers,
    });
    bus.subscribe(
      "#",
      {
        group: options.group ?? "patchbay.webhooks",
        concurrency: positiveInt(options.fanOutConcurrency ?? 4, "fanOutConcurrency", 1000),
      },
      async (event, ctx) => {
        const n = await fanOut(event, ctx.tx);
        if (n > 0) ctx.tx.afterCommit(() => webhookMetrics.fannedOut.add(n));
      },
    );
  }

  const ownConnector = options.connector ? undefined : createHttpConnector();
  const sender = createSender({
    policy,
    connector: options.connector ?? ownConnector!.send,
    timeoutMs,
    maxPayloadBytes: positiveInt(options.maxPayloadBytes ?? 1_048_576, "maxPayloadBytes", 2 ** 30),
    maxResponseBytes: positiveInt(options.maxResponseBytes ?? 2048, "maxResponseBytes", 1_048_576),
    clock,
    userAgent: options.userAgent ?? "patchbay-webhooks",
  });
  // The stored payload becomes the request of this process's format (CloudEvents content mode).
  const send: typeof sender = (message, signal) =>
    sender({ ...message, ...webhookRequest(message.body as string, format, message.headers) }, signal);
  const life = createLifecycle("webhooks", {
    async start() {
      await store.open();
      worker = await startWorker({
        store,
        clock,
        logger,
        claim: createClaimer(store, { clock, leaseMs, maxRoundAttempts: schedule.attempts }),
        record: createRecorder(store, {
          bus,
          clock,
          schedule,
          random,
          disableAfterMs: toMs(options.disableAfter ?? "5d", "disableAfter"),
          logger,
          wakeOthers,
        }),
        send,
        concurrency,
        pollMs,
      });
    },
    async stop(timeoutMs) {
      await worker?.stop(timeoutMs);
      ownConnector?.close();
    },
  });

  return {
    endpoints,
    deliveries,
    replay: (messageId, replayOptions) => deliveries.replay(messageId, replayOptions),
    recover: (endpointId, since) => deliveries.recover(endpointId, { since }),
    sendTest: createTestSender(store, { clock, format, wake }),

    start: () => life.start(),
    stop: (stopOptions) => life.stop(stopOptions),
  };
}
