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
    async (span) => {
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      try {
        return await fn(carrier);
      } catch (e) {
        fail(span, e);
        throw e;
      } finally {
        span.end();
      }
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
    async (span) => {
      try {
        return await fn();
      } catch (e) {
        fail(span, e);
        throw e;
      } finally {
        span.end();
      }
    },
  );
}

function fail(span: Span, e: unknown) {
  span.recordException(e instanceof Error ? e : String(e));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
}
