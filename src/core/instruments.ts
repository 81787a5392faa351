/**
 * The measurements the parts report (bus, sagas, pipelines, webhooks, breakers, HTTP client), and
 * a process-wide hook to listen to them. `createMetrics()` (src/ops/metrics.ts) turns them into
 * Prometheus metrics; the parts do not know who listens. With no listener, `measure` is one
 * check and no allocation: it sits on the path of every message.
 */

/** What each measurement's labels are. Values are low-cardinality: names, groups, outcomes — never ids. */
export interface MeasurementLabels {
  "bus.published": { type: string };
  "bus.delivered": { group: string };
  "bus.acked": { group: string; duplicate: string };
  "bus.retried": { group: string };
  "bus.dead_lettered": { group: string };
  "bus.dead_letter_failed": { group: string };
  /** value: seconds. */
  "bus.handler_duration": { group: string };
  "saga.started": { saga: string };
  /** status: completed | compensated | failed. */
  "saga.finished": { saga: string; status: string };
  /** An operator marked a saga resolved (settled by hand), one or in bulk. */
  "saga.resolved": { saga: string };
  /** value: seconds; status: the step record's final status. */
  "saga.step_duration": { saga: string; step: string; phase: string; status: string };
  /** value: seconds; status: succeeded | failed | cancelled. */
  "pipeline.run": { pipeline: string; status: string };
  "pipeline.rows_read": { pipeline: string };
  "pipeline.rows_written": { pipeline: string };
  "pipeline.rows_quarantined": { pipeline: string };
  /**
   * value: the time (ms since the epoch) of the pipeline's committed incremental cursor, for a
   * source whose cursor is a time (`cursorTime`); NaN when the pipeline was reset.
   */
  "pipeline.cursor_time": { pipeline: string };
  /** outcome: delivered | retrying | failed | superseded; status_class: 2xx..5xx or "none" (no response). */
  "webhook.attempt": { endpoint: string; outcome: string; status_class: string };
  /** value: 1 when the breaker's state is `state`. */
  "breaker.state": { breaker: string; state: string };
  /** outcome: success | error. */
  "http.request": { host: string; method: string; outcome: string };
  "http.retries": { host: string; method: string };
}

/** The name of a measurement. */
export type MeasurementName = keyof MeasurementLabels;

/** Receives every measurement of the process. */
export type MeasurementListener = <N extends MeasurementName>(
  name: N,
  value: number,
  labels: MeasurementLabels[N],
) => void;

const listeners = new Set<MeasurementListener>();

/** Whether anything listens (check it before building labels on a hot path). */
export const measuring = (): boolean => listeners.size > 0;

/** Reports one measurement to every listener; a listener that throws is ignored. */
export function measure<N extends MeasurementName>(
  name: N,
  value: number,
  labels: MeasurementLabels[N],
): void {
  if (listeners.size === 0) return;
  for (const listener of listeners) {
    try {
      listener(name, value, labels);
    } catch {
      // Metrics must never break the work they measure.
    }
  }
}

/** Listens to every measurement of the process; returns the function that stops listening. */
export function onMeasurement(listener: MeasurementListener): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** `"2xx"` .. `"5xx"` for an HTTP status, `"none"` when there was no response. */
export const statusClass = (status: number | undefined): string =>
  status === undefined || status < 100 || status > 599 ? "none" : `${Math.floor(status / 100)}xx`;
