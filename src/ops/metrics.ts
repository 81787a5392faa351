/**
 * Prometheus metrics of a Patchbay, with `prom-client`: counters and histograms fed by the
 * measurements every part reports (src/core/instruments.ts), gauges read from the store when
 * scraped (queue depth and age, dead letters, saga instances, last pipeline success, webhook
 * endpoints), and Node's default process metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Transport } from "../bus/transport.js";
import { onMeasurement, type MeasurementLabels, type MeasurementName } from "../core/instruments.js";
import type { CircuitBreakerPolicy, CircuitState } from "../resilience/breaker.js";
import type { SqlStore } from "../store/sql-store.js";
import { storeGauges } from "./metrics-store.js";

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** The store whose tables are read when scraped (queues of the local transport, sagas, pipelines, webhooks). */
  store?: SqlStore;
  /** The bus's transport: queue depth is read from the store only when the transport keeps its queue there. */
  transport?: Transport;
  /** Node's default process metrics (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`, ...). Default `true`. */
  defaultMetrics?: boolean;
  /** Labels added to every series (e.g. `{ service: "shop" }`). */
  labels?: Record<string, string>;
}

/** A Prometheus registry fed by a Patchbay. */
export interface PatchbayMetrics {
  /** The `prom-client` registry: merge it with your own (`Registry.merge`) or register more metrics on it. */
  readonly registry: Registry;
  /** The `Content-Type` of {@link scrape}'s text (Prometheus text exposition format 0.0.4). */
  readonly contentType: string;
  /** The metrics in the Prometheus text exposition format. */
  scrape(): Promise<string>;
  /** Reports a breaker's state as `patchbay_circuit_breaker_state{breaker=name}`; returns the function that stops. */
  trackBreaker(name: string, breaker: CircuitBreakerPolicy): () => void;
  /** Stops listening to measurements (the registry keeps its last values). Safe twice. */
  close(): void;
}

/** Buckets for handler, step and run durations: 5 ms to 5 minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const BREAKER_STATES: readonly CircuitState[] = ["closed", "open", "half-open", "isolated"];
const GROUP = "messaging_consumer_group_name";

/**
 * Creates a registry fed by every part of this process, with gauges read from `store` at scrape
 * time. Serve it with {@link metricsHandler} or `opsHandler` (src/ops/health.ts).
 *
 * @example
 * const metrics = createMetrics({ store: pb.store, transport: pb.bus.transport });
 * http.createServer(metricsHandler(metrics)).listen(9464);
 */
export function createMetrics(options: MetricsOptions = {}): PatchbayMetrics {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters, which `promtool check metrics` rejects; the same counts stay
    // as nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
    for (const name of [
      "nodejs_active_handles_total",
      "nodejs_active_requests_total",
      "nodejs_active_resources_total",
    ])
      registry.removeSingleMetric(name);
  }
  const registers = [registry];

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Histogram<L>({ name, help, labelNames, buckets: DURATION_BUCKETS, registers });

  const bus = {
    published: counter("patchbay_bus_published_total", "Events made durable by publish", [
      "messaging_destination_name",
    ]),
    delivered: counter("patchbay_bus_delivered_total", "Deliveries handed to handlers", [GROUP]),
    acked: counter("patchbay_bus_acked_total", "Deliveries acknowledged (duplicate: inbox hit)", [
      GROUP,
      "duplicate",
    ]),
    retried: counter("patchbay_bus_retried_total", "Deliveries scheduled for a delayed retry", [GROUP]),
    deadLettered: counter("patchbay_bus_dead_lettered_total", "Messages moved to dead letters", [GROUP]),
    deadLetterFailed: counter(
      "patchbay_bus_dead_letter_failed_total",
      "Dead letters the store could not take (the message went back or was parked)",
      [GROUP],
    ),
    handler: histogram("patchbay_bus_handler_duration_seconds", "Run time of handlers that succeeded", [
      GROUP,
    ]),
  };
  const saga = {
    started: counter("patchbay_saga_started_total", "Saga instances started", ["saga"]),
    completed: counter("patchbay_saga_completed_total", "Saga instances completed", ["saga"]),
    compensated: counter("patchbay_saga_compensated_total", "Saga instances compensated", ["saga"]),
    failed: counter("patchbay_saga_failed_total", "Saga instances failed (need a person)", ["saga"]),
    resolved: counter("patchbay_saga_resolved_total", "Saga instances an operator marked resolved", ["saga"]),
    step: histogram("patchbay_saga_step_duration_seconds", "Saga step attempt time, by final status", [
      "saga",
      "step",
      "phase",
      "status",
    ]),
  };
  const pipeline = {
    runs: counter("patchbay_pipeline_runs_total", "Pipeline runs finished, by status", [
      "pipeline",
      "status",
    ]),
    duration: histogram("patchbay_pipeline_run_duration_seconds", "Pipeline run time", [
      "pipeline",
      "status",
    ]),
    read: counter("patchbay_pipeline_rows_read_total", "Rows read from sources", ["pipeline"]),
    written: counter("patchbay_pipeline_rows_written_total", "Rows written to destinations", ["pipeline"]),
    quarantined: counter("patchbay_pipeline_rows_quarantined_total", "Rows set aside with their errors", [
      "pipeline",
    ]),
  };
  // The time of each pipeline's committed cursor; the lag is read against the clock when scraped.
  const cursorTimes = new Map<string, number>();
  new Gauge<"pipeline">({
    name: "patchbay_pipeline_cursor_lag_seconds",
    help: "Seconds between now and the time of a pipeline's committed incremental cursor (time cursors only)",
    labelNames: ["pipeline"],
    registers,
    collect() {
      this.reset();
      const now = Date.now();
      for (const [name, at] of cursorTimes) this.set({ pipeline: name }, Math.max(0, (now - at) / 1000));
    },
  });
  const webhookAttempts = counter(
    "patchbay_webhook_attempts_total",
    "Webhook delivery attempts, by outcome and response status class",
    ["endpoint", "outcome", "status_class"],
  );
  const breakerState = new Gauge<"breaker" | "state">({
    name: "patchbay_circuit_breaker_state",
    help: "1 for the state a circuit breaker is in, 0 for the others",
    labelNames: ["breaker", "state"],
    registers,
  });
  const http = {
    requests: counter("patchbay_http_client_requests_total", "HTTP client requests, by outcome", [
      "server_address",
      "http_request_method",
      "outcome",
    ]),
    retries: counter("patchbay_http_client_retries_total", "HTTP client attempts beyond the first", [
      "server_address",
      "http_request_method",
    ]),
  };
  const setBreaker = (name: string, state: string) => {
    for (const s of BREAKER_STATES) breakerState.set({ breaker: name, state: s }, s === state ? 1 : 0);
  };
  if (options.store) storeGauges(registry, options.store, options.transport);

  const on: { [N in MeasurementName]: (value: number, labels: MeasurementLabels[N]) => void } = {
    "bus.published": (v, l) => bus.published.inc({ messaging_destination_name: l.type }, v),
    "bus.delivered": (v, l) => bus.delivered.inc({ [GROUP]: l.group }, v),
    "bus.acked": (v, l) => bus.acked.inc({ [GROUP]: l.group, duplicate: l.duplicate }, v),
    "bus.retried": (v, l) => bus.retried.inc({ [GROUP]: l.group }, v),
    "bus.dead_lettered": (v, l) => bus.deadLettered.inc({ [GROUP]: l.group }, v),
    "bus.dead_letter_failed": (v, l) => bus.deadLetterFailed.inc({ [GROUP]: l.group }, v),
    "bus.handler_duration": (v, l) => bus.handler.observe({ [GROUP]: l.group }, v),
    "saga.started": (v, l) => saga.started.inc(l, v),
    "saga.finished": (v, l) => {
      const c =
        l.status === "completed" ? saga.completed : l.status === "failed" ? saga.failed : saga.compensated;
      c.inc({ saga: l.saga }, v);
    },
    "saga.resolved": (v, l) => saga.resolved.inc(l, v),
    "saga.step_duration": (v, l) => saga.step.observe(l, v),
    "pipeline.run": (v, l) => {
      pipeline.runs.inc(l);
      pipeline.duration.observe(l, v);
    },
    "pipeline.rows_read": (v, l) => pipeline.read.inc(l, v),
    "pipeline.rows_written": (v, l) => pipeline.written.inc(l, v),
    "pipeline.rows_quarantined": (v, l) => pipeline.quarantined.inc(l, v),
    "pipeline.cursor_time": (v, l) => {
      if (Number.isFinite(v)) cursorTimes.set(l.pipeline, v);
      else cursorTimes.delete(l.pipeline);
    },
    "webhook.attempt": (v, l) => webhookAttempts.inc(l, v),
    "breaker.state": (_v, l) => setBreaker(l.breaker, l.state),
    "http.request": (v, l) =>
      http.requests.inc({ server_address: l.host, http_request_method: l.method, outcome: l.outcome }, v),
    "http.retries": (v, l) => http.retries.inc({ server_address: l.host, http_request_method: l.method }, v),
  };
  const stops = [
    onMeasurement((name, value, labels) => {
      (on[name] as (value: number, labels: MeasurementLabels[typeof name]) => void)(value, labels);
    }),
  ];

  return {
    registry,
    contentType: registry.contentType,
    scrape: () => registry.metrics(),
    trackBreaker(name, breaker) {
      setBreaker(name, breaker.state);
      const stop = breaker.onStateChange(({ state }) => setBreaker(name, state));
      stops.push(stop);
      return stop;
    },
    close() {
      for (const stop of stops.splice(0)) stop();
    },
  };
}
