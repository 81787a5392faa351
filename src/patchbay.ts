/**
 * `createPatchbay()`: one object that owns the store, the event bus and (as they are added) the
 * sagas, pipelines and webhooks of an application, and starts and stops them together.
 */
import { sqlite } from "./adapters/sqlite/index.js";
import { createEventBus, type AnyEventDefinition, type EventBus } from "./bus/bus.js";
import { localTransport, type LocalTransportOptions } from "./bus/local-transport.js";
import type { Transport } from "./bus/transport.js";
import { systemClock, type Clock } from "./core/clock.js";
import type { Duration } from "./core/duration.js";
import { createLogger, type Logger } from "./core/logger.js";
import { createConsole, type ConsoleHandler, type ConsoleOptions } from "./ops/console.js";
import { checkReadiness, type ReadinessReport, type WorkersState } from "./ops/health.js";
import { createMetrics, type MetricsOptions, type PatchbayMetrics } from "./ops/metrics.js";
import type { SagaDefinition, SagaOptions } from "./saga/definition.js";
import { createSagaRunner, type SagaHandle, type SagaRunner } from "./saga/runner.js";
import type { SqlStore } from "./store/sql-store.js";
import { pipeline as createPipeline, type Pipeline, type PipelineOptions } from "./sync/pipeline.js";

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
  clock?: Clock;
  logger?: Logger;
  /**
   * Prometheus metrics (`pb.metrics()`), counted from `start()`: options, or `false` to count
   * nothing (then `pb.metrics()` serves only what the store holds). Default on.
   */
  metrics?: MetricsOptions | false;
}

/** An application's Patchbay. */
export interface Patchbay extends Pick<EventBus, "publish" | "transaction" | "subscribe"> {
  readonly store: SqlStore;
  readonly bus: EventBus;
  /**
   * Registers a saga (a definition from `defineSaga`, or a name and its options) and returns its
   * handle; `start()` runs the saga workers. {@link SagaRunner} for inspection and operator actions.
   */
  saga<I>(definition: SagaDefinition<I>): SagaHandle<I>;
  saga<I>(name: string, options: SagaOptions<I>): SagaHandle<I>;
  /** The saga runner (created on first use). */
  readonly sagas: SagaRunner;
  /** A data-sync pipeline on this Patchbay's store; a scheduled one runs between `start()` and `stop()`. */
  pipeline(name: string, options: Omit<PipelineOptions, "store">): Pipeline;
  /**
   * The web console over this Patchbay's store, bus, sagas and pipelines, as a request handler
   * for node `http`, Express (`app.use("/ops", pb.console())`) or Fastify (docs/console.md).
   */
  console(options?: Omit<ConsoleOptions, "store" | "bus">): ConsoleHandler;
  /** Prometheus metrics of this Patchbay (created on first call): serve them with `opsHandler(pb)`. */
  metrics(): PatchbayMetrics;
  /** Readiness: store reachable and migrated, transport connected, workers running (what `/readyz` answers). */
  health(): Promise<ReadinessReport>;
  /** Opens the store (migrating it) and starts every part. */
  start(): Promise<void>;
  /** Stops every part, draining work in flight up to `timeout` (default 30 s), then closes the store. Safe twice. */
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
    ...(options.events ? { events: options.events } : {}),
    ...(options.source ? { source: options.source } : {}),
    ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
  });
  let stopping: Promise<void> | undefined;
  let sagaRunner: SagaRunner | undefined;
  const runner = () => (sagaRunner ??= createSagaRunner({ store, bus, clock, logger }));
  const pipelines: Array<{ pipeline: Pipeline; scheduled: boolean }> = [];
  let workers: WorkersState = "new";
  let metrics: PatchbayMetrics | undefined;

  return {
    store,
    bus,
    publish: (event, data, publishOptions) => bus.publish(event, data, publishOptions),
    transaction: (fn) => bus.transaction(fn),
    subscribe: (pattern, subscribeOptions, handler) => bus.subscribe(pattern, subscribeOptions, handler),
    saga<I>(nameOrDefinition: string | SagaDefinition<I>, sagaOptions?: SagaOptions<I>): SagaHandle<I> {
      return typeof nameOrDefinition === "string"
        ? runner().saga(nameOrDefinition, sagaOptions as SagaOptions<I>)
        : runner().saga(nameOrDefinition);
    },
    get sagas() {
      return runner();
    },
    pipeline(name, pipelineOptions) {
      const p = createPipeline(name, { clock, logger, ...pipelineOptions, store });
      pipelines.push({ pipeline: p, scheduled: pipelineOptions.schedule !== undefined });
      return p;
    },
    console(consoleOptions = {}) {
      return createConsole({
        clock,
        // Only a runner the app made: creating one here would start saga workers with no definitions.
        ...(sagaRunner ? { sagas: sagaRunner } : {}),
        pipelines: () => pipelines.map((p) => p.pipeline),
        ...consoleOptions,
        store,
        bus,
      });
    },
    metrics: () => (metrics ??= createMetrics({ store, transport, ...options.metrics })),
    health: () => checkReadiness({ store, transport, workers: () => workers }),
    async start() {
      workers = "starting";
      if (options.metrics !== false) metrics ??= createMetrics({ store, transport, ...options.metrics });
      await store.open();
      await bus.start();
      await sagaRunner?.start();
      for (const p of pipelines) if (p.scheduled) p.pipeline.start();
      workers = "started";
    },
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        workers = "stopping";
        try {
          await Promise.all(pipelines.map((p) => p.pipeline.close()));
          await sagaRunner?.stop(stopOptions);
          await bus.stop(stopOptions);
        } finally {
          metrics?.close();
          workers = "stopped";
          await store.close();
        }
      })();
      return stopping;
    },
  };
}
