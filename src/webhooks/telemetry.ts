/**
 * Tracing and metrics of webhook delivery through the OpenTelemetry API (no-ops without an SDK):
 * a client span per attempt, child of the event's producer span, whose context travels to the
 * receiver in `traceparent`.
 */
import { context, metrics, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { AttemptOutcome } from "./sender.js";

const tracer = trace.getTracer("patchbay");
const meter = metrics.getMeter("patchbay");

/** Webhook counters and histograms. */
export const webhookMetrics = {
  attempts: meter.createCounter("patchbay.webhooks.attempts", {
    description: "Delivery attempts, by outcome",
  }),
  latency: meter.createHistogram("patchbay.webhooks.attempt.duration", {
    description: "Delivery attempt time",
    unit: "ms",
  }),
  fannedOut: meter.createCounter("patchbay.webhooks.deliveries.created", {
    description: "Deliveries created by fan-out",
  }),
};

/** Runs one attempt in a client span whose parent is the event's `traceparent`; `fn` gets the headers to send. */
export function withAttemptSpan(
  eventType: string,
  traceparent: string | undefined,
  fn: (headers: Record<string, string>) => Promise<AttemptOutcome>,
): Promise<AttemptOutcome> {
  const parent = traceparent ? propagation.extract(context.active(), { traceparent }) : context.active();
  return tracer.startActiveSpan(
    `webhook ${eventType}`,
    {
      kind: SpanKind.CLIENT,
      attributes: { "messaging.system": "patchbay", "patchbay.webhook.event_type": eventType },
    },
    parent,
    async (span) => {
      const headers: Record<string, string> = {};
      propagation.inject(context.active(), headers);
      try {
        const outcome = await fn(headers);
        if (outcome.status !== undefined) span.setAttribute("http.response.status_code", outcome.status);
        if (!outcome.ok)
          span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error?.message ?? "failed" });
        return outcome;
      } finally {
        span.end();
      }
    },
  );
}
