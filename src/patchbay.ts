/**
 * `createPatchbay()`: the one front door. It owns the store, the event bus, the sagas, the
 * pipelines and the outbound webhooks of an application, and starts and stops them together.
 *
 * One rule for every part: a part registered before `start()` starts with it; one registered
 * after `start()` starts at once; one registered after `stop()` is refused with `STOPPED`.
 */
import { sqlite } from "./adapters/sqlite/index.js";
import { createEventBus, type AnyEventDefinition, type EventBus } from "./bus/bus.js";
import { localTransport, type LocalTransportOptions } from "./bus/local-transport.js";
import type { Transport } from "./bus/transport.js";
import { systemClock, type Clock } from "./core/clock.js";
import type { Duration } from "./core/duration.js";
import { InvalidArgumentError } from "./core/errors.js";
import { createLifecycle, type Lifecycle } from "./core/lifecycle.js";
import { createLogger, type Logger } from "./core/logger.js";
import { createConsole, type ConsoleHandler, type ConsoleOptions } from "./ops/console.js";
import { checkReadiness, type ReadinessReport, type WorkersState } from "./ops/health.js";
import { createMetrics, type MetricsOptions, type PatchbayMetrics } from "./ops/metrics.js";
import type { SagaDefinition, SagaOptions } from "./saga/definition.js";
import { createSagaRunner, type SagaHandle, type SagaRunner, type SagaRunnerOptions } from "./saga/runner.js";
import type { SqlStore } from "./store/sql-store.js";
import { pipeline as createPipeline, type Pipeline, type PipelineOptions } from "./sync/pipeline.js";
import { createWebhooks, type Webhooks, type WebhooksOptions } from "./webhooks/webhooks.js";

/** Options of the saga runner `createPatchbay` makes (the store, bus, clock, logger and random are its own). */
export type PatchbaySagaOptions = Omit<SagaRunnerOptions, "store" | "bus" | "clock" | "logger" | "random">;

/** Options of `pb.webhooks()` (the store, bus, clock, logger and random are the Patchbay's). */
export type PatchbayWebhooksOptions = Omit<WebhooksOptions, "store" | "bus" | "clock" | "logger" | "random">;

/** Options of {@link createPatchbay}. */
export interface PatchbayOptions {
  /** Durable state. Default: the embedded SQLite store at `.patchbay/patchbay.db`. */
  store?: SqlStore;
  /**
   * The bus's transport: a transport (e.g. `rabbitmq({ url })`), or a factory given the store.
   * Default: the store's own durable queue.
   */
  transport?: Transport | ((store: SqlStore) => Transport);
  /** Options of the default local transport. */
  localTransport?: LocalTransportOptions;
  /** Event definitions consumers should upcast and validate (published ones are learnt as they are used). */
  events?: readonly AnyEventDefinition[];
  /** CloudEvents `source` of published events. Default `/patchbay`. */
  source?: string;
  /** The largest message the bus publishes, in bytes (see `EventBusOptions.maxMessageBytes`). Default 1 MiB. */
  maxMessageBytes?: number;
  /**
   * How soon the bus sees a consumer group paused or resumed elsewhere (`pb.bus.pause`, the
   * console, `patchbay bus pause`; see `EventBusOptions.pausePollInterval`). Default 500 ms.
   */
  pausePollInterval?: Duration;
  /** Options of the saga runner (`concurrency`, `lease`, `pollInterval`, `sagas`). */
  sagas?: PatchbaySagaOptions;
  /** Uniform numbers in [0, 1) for the jitter of every part's retries. Default `Math.random`. */
  random?: () => number;
  /**
   * Prometheus metrics (`pb.metrics()`), counted from `start()`: options, or `false` to count
   * nothing (then `pb.metrics()` serves only what the store holds). Default on.
   */
  metrics?: MetricsOptions | false;
  clock?: Clock;
  logger?: Logger;
}

/** An application's Patchbay. */
export interface Patchbay extends Pick<EventBus, "publish" | "transaction" | "subscribe">, Lifecycle {
  readonly store: SqlStore;
  readonly bus: EventBus;
  /**
   * Registers a saga (a definition from `defineSaga`, or a name and its options) and returns its
   * handle. Its workers run from `start()` (at once when registered after it). {@link SagaRunner}
   * for inspection and operator actions.
   */
  saga<I>(definition: SagaDefinition<I>): SagaHandle<I>;
  saga<I>(name: string, options: SagaOptions<I>): SagaHandle<I>;
  /** The saga runner (created on first use). */
  readonly sagas: SagaRunner;
  /**
   * A data-sync pipeline on this Patchbay's store. A scheduled one runs from `start()` (at once
   * when registered after it) to `stop()`, which also closes its source and destination.
   */
  pipeline(name: string, options: Omit<PipelineOptions, "store">): Pipeline;
  /**
   * Outbound webhooks: every event published on the bus fans out to the matching endpoints. The
   * first call creates them (with `options`); later calls without options return the same object.
   */
  webhooks(options?: PatchbayWebhooksOptions): Webhooks;
  /**
   * The web console over this Patchbay's store, bus, sagas and pipelines, as a request handler
   * for node `http`, Express (`app.use("/ops", pb.console())`) or Fastify (docs/console.md).
   */
  console(options?: Omit<ConsoleOptions, "store" | "bus">): ConsoleHandler;
  /** Prometheus metrics of this Patchbay (created on first call): serve them with `opsHandler(pb)`. */
  metrics(): PatchbayMetrics;
  /** Readiness: store reachable and migrated, transport connected, workers running (what `/readyz` answers). */
  health(): Promise<ReadinessReport>;
  /** Opens the store (migrating it) and starts every part. A no-op when started; `STOPPED` after `stop()`. */
  start(): Promise<void>;
  /**
   * Stops every part (pipelines, webhooks, sagas, then the bus), draining work in flight up to
   * `timeout` (default 30 s) each, then closes the store. Safe twice.
   */
  stop(options?: { timeout?: Duration }): Promise<void>;
}

/**
 * Creates an application's Patchbay: embedded by default (SQLite, the store's own queue), on
 * PostgreSQL and a broker when given them — with the same application code.
 *
 * @example
 * const pb = createPatchbay(); // .patchbay/patchbay.db
 * pb.subscribe(OrderCreated, { group: "email" }, async (event) => sendConfirmation(event.data));
 * await pb.start();
 * await pb.transaction(async (tx) => {
 *   await tx.query("insert into orders (id) values (?)", [id]);
 *   await tx.publish(OrderCreated, { orderId: id });
 * });
 */
export function createPatchbay(options: PatchbayOptions = {}): Patchbay {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ name: "patchbay" });
  const random = options.random ?? Math.random;
  const store = options.store ?? sqlite({ clock, logger });
  const transport =
    typeof options.transport === "function"
      ? options.transport(store)
      : (options.transport ?? localTransport(store, { clock, logger, ...options.localTransport }));
  const bus = createEventBus({
    store,
    transport,
    clock,
    logger,
    random,
    ...(options.events ? { events: options.events } : {}),
    ...(options.source ? { source: options.source } : {}),
    ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
    ...(options.pausePollInterval === undefined ? {} : { pausePollInterval: options.pausePollInterval }),
  });
  /** Every part, in start order (stopped in reverse). */
  const parts: Lifecycle[] = [bus];
  /** Pipelines, closed (source and destination) on stop, scheduled or not. */
  const pipelines: Pipeline[] = [];
  let sagaRunner: SagaRunner | undefined;
  let webhooks: Webhooks | undefined;
  let workers: WorkersState = "new";
  let metrics: PatchbayMetrics | undefined;

  const life = createLifecycle("patchbay", {
    async start() {
      workers = "starting";
      if (options.metrics !== false) metrics ??= createMetrics({ store, transport, ...options.metrics });
      await store.open();
      // Parts registered while this runs are started by the loop (or by their own registration).
      for (let i = 0; i < parts.length; i++) await parts[i]!.start();
      workers = "started";
    },
    async stop(timeoutMs) {
      workers = "stopping";
      try {
        for (const part of [...parts].reverse()) {
          try {
            await part.stop({ timeout: timeoutMs });
          } catch (e) {
            logger.error({ err: e }, "patchbay: a part failed to stop");
          }
        }
        await Promise.allSettled(pipelines.map((p) => p.close()));
      } finally {
        metrics?.close();
        workers = "stopped";
        await store.close();
      }
    },
  });

  /** Adds a part: it starts with the Patchbay, or at once when the Patchbay runs. */
  function add<P extends Lifecycle>(part: P): P {
    parts.push(part);
    if (life.running) {
      life
        .start()
        .then(() => part.start())
        .catch((e: unknown) =>
          logger.error({ err: e }, "patchbay: a part registered after start() failed to start"),
        );
    }
    return part;
  }

  const runner = () =>
    (sagaRunner ??= add(createSagaRunner({ ...options.sagas, store, bus, clock, logger, random })));

  return {
    store,
    bus,
    publish: (event, data, publishOptions) => bus.publish(event, data, publishOptions),
    transaction: (fn) => bus.transaction(fn),
    subscribe: (pattern, subscribeOptions, handler) => {
      life.assertNotStopped();
      return bus.subscribe(pattern, subscribeOptions, handler);
    },
    saga<I>(nameOrDefinition: string | SagaDefinition<I>, sagaOptions?: SagaOptions<I>): SagaHandle<I> {
      life.assertNotStopped();
      return typeof nameOrDefinition === "string"
        ? runner().saga(nameOrDefinition, sagaOptions as SagaOptions<I>)
        : runner().saga(nameOrDefinition);
    },
    get sagas() {
      return runner();
    },
    pipeline(name, pipelineOptions) {
      life.assertNotStopped();
      const p = createPipeline(name, { clock, logger, ...pipelineOptions, store });
      pipelines.push(p);
      if (pipelineOptions.schedule !== undefined) add(p);
      return p;
    },
    webhooks(webhooksOptions) {
      life.assertNotStopped();
      if (webhooks) {
        if (webhooksOptions !== undefined) {
          throw new InvalidArgumentError(
            "pb.webhooks(options) was called before: its options are set by the first call",
            "options",
          );
        }
        return webhooks;
      }
      return (webhooks = add(createWebhooks({ ...webhooksOptions, store, bus, clock, logger, random })));
    },
    console(consoleOptions = {}) {
      return createConsole({
        clock,
        // Only a runner the app made: creating one here would start saga workers with no definitions.
        ...(sagaRunner ? { sagas: sagaRunner } : {}),
        ...(webhooks ? { webhooks } : {}),
        pipelines: () => pipelines,
        ...consoleOptions,
        store,
        bus,
      });
    },
    metrics: () => (metrics ??= createMetrics({ store, transport, ...(options.metrics || {}) })),
    health: () => checkReadiness({ store, transport, workers: () => workers }),
    start: () => life.start(),
    stop: (stopOptions) => life.stop(stopOptions),
  };
}
