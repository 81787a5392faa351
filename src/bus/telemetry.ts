/**
 * Tracing and metrics for the bus through the OpenTelemetry API: no-ops unless the application
 * installs an SDK. Producer spans inject W3C `traceparent` into the event and its headers;
 * consumer spans continue the producer's trace.
 */
import {
  context,
  metrics,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
} from "@opentelemetry/api";
import { invoke } from "../core/invoke.js";

const tracer = trace.getTracer("patchbay");
const meter = metrics.getMeter("patchbay");

export const busMetrics = {
  published: meter.createCounter("patchbay.bus.published", { description: "Events made durable by publish" }),
  delivered: meter.createCounter("patchbay.bus.delivered", { description: "Deliveries handed to handlers" }),
  acked: meter.createCounter("patchbay.bus.acked", { description: "Deliveries acknowledged" }),
  retried: meter.createCounter("patchbay.bus.retried", {
    description: "Deliveries scheduled for a delayed retry",
  }),
  deadLettered: meter.createCounter("patchbay.bus.dead_lettered", {
    description: "Messages moved to dead letters",
  }),
  handlerDuration: meter.createHistogram("patchbay.bus.handler.duration", {
    description: "Handler run time",
    unit: "ms",
  }),
};

/** Runs `fn` in a producer span and gives it the headers that carry the span's context. */
export function withProducerSpan<T>(
  type: string,
  fn: (carrier: Record<string, string>) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(
    `publish ${type}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: { "messaging.system": "patchbay", "messaging.destination.name": type },
    },
    (span) => {
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      return ended(span, () => fn(carrier));
    },
  );
}

/** Runs `fn` in a consumer span whose parent is the context carried in `headers`. */
export function withConsumerSpan<T>(
  type: string,
  group: string,
  headers: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  const parent = propagation.extract(context.active(), headers);
  return tracer.startActiveSpan(
    `process ${type}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        "messaging.system": "patchbay",
        "messaging.destination.name": type,
        "messaging.consumer.group.name": group,
      },
    },
    parent,
    (span) => ended(span, fn),
  );
}

/**
 * Runs `fn` and ends `span` when its promise settles, recording a failure. A `then` rather than
 * an async wrapper: this runs twice per message, and every promise counts on that path.
 */
function ended<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  return invoke(fn).then(
    (value) => {
      span.end();
      return value;
    },
    (e: unknown) => {
      fail(span, e);
      span.end();
      throw e;
    },
  );
}

function fail(span: Span, e: unknown) {
  span.recordException(e instanceof Error ? e : String(e));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
}
