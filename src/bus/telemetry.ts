/**
 * Tracing and metrics for the bus through the OpenTelemetry API: no-ops unless the application
 * installs an SDK. Producer spans inject W3C `traceparent` into the event and its headers;
 * consumer spans continue the producer's trace.
 */
import {
  context,
  isSpanContextValid,
  metrics,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
} from "@opentelemetry/api";
import { measure, measuring, type MeasurementLabels, type MeasurementName } from "../core/instruments.js";
import { invoke } from "../core/invoke.js";

const tracer = trace.getTracer("patchbay");
const meter = metrics.getMeter("patchbay");

/** An OpenTelemetry instrument that also reports to the process's measurement listeners. */
type Tee = { add(value: number, attributes: Attributes): void };
const counter = (name: string, description: string, as: BusCounter): Tee => {
  const otel = meter.createCounter(name, { description });
  return {
    add(value, attributes) {
      otel.add(value, attributes);
      if (measuring()) measure(as, value, attributes as MeasurementLabels[typeof as]);
    },
  };
};
type BusCounter = Exclude<Extract<MeasurementName, `bus.${string}`>, "bus.handler_duration">;
const handlerDuration = meter.createHistogram("patchbay.bus.handler.duration", {
  description: "Handler run time",
  unit: "ms",
});

export const busMetrics = {
  published: counter("patchbay.bus.published", "Events made durable by publish", "bus.published"),
  delivered: counter("patchbay.bus.delivered", "Deliveries handed to handlers", "bus.delivered"),
  acked: counter("patchbay.bus.acked", "Deliveries acknowledged", "bus.acked"),
  retried: counter("patchbay.bus.retried", "Deliveries scheduled for a delayed retry", "bus.retried"),
  deadLettered: counter("patchbay.bus.dead_lettered", "Messages moved to dead letters", "bus.dead_lettered"),
  deadLetterFailed: counter(
    "patchbay.bus.dead_letter_failed",
    "Dead letters the store could not take (alarm: the message went back or was parked)",
    "bus.dead_letter_failed",
  ),
  handlerDuration: {
    record(ms: number, attributes: Attributes) {
      handlerDuration.record(ms, attributes);
      if (measuring()) measure("bus.handler_duration", ms / 1000, attributes as { group: string });
    },
  },
};

const producerAttributes = (type: string) => ({
  "messaging.system": "patchbay",
  "messaging.destination.name": type,
});

/**
 * Whether a span can be left out of the context altogether: it records nothing and carries no
 * trace (what every span is while the application installed no OpenTelemetry SDK). Then `fn`
 * runs without a context switch or a wrapper promise — this is on the path of every message.
 */
const inert = (span: Span) => !span.isRecording() && !isSpanContextValid(span.spanContext());

/** Runs `fn` in a producer span and gives it the headers that carry the span's context. */
export function withProducerSpan<T>(
  type: string,
  fn: (carrier: Record<string, string>) => Promise<T>,
): Promise<T> {
  const active = context.active();
  const span = tracer.startSpan(
    `publish ${type}`,
    { kind: SpanKind.PRODUCER, attributes: producerAttributes(type) },
    active,
  );
  const carrier: Record<string, string> = {};
  if (inert(span)) {
    propagation.inject(active, carrier); // baggage, say, still travels
    return invoke(() => fn(carrier));
  }
  const spanContext = trace.setSpan(active, span);
  propagation.inject(spanContext, carrier);
  return context.with(spanContext, () => ended(span, () => fn(carrier)));
}

/** Runs `fn` in a consumer span whose parent is the context carried in `headers`. */
export function withConsumerSpan<T>(
  type: string,
  group: string,
  headers: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  const active = context.active();
  const parent = propagation.extract(active, headers);
  const span = tracer.startSpan(
    `process ${type}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: { ...producerAttributes(type), "messaging.consumer.group.name": group },
    },
    parent,
  );
  // Nothing came with the message (the parent is the active context) and nothing records.
  if (parent === active && inert(span)) return invoke(fn);
  return context.with(trace.setSpan(parent, span), () => ended(span, fn));
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
