import {
  decodeStructured,
  encodeStructured,
  STRUCTURED_CONTENT_TYPE,
  toBinary,
  type CloudEvent,
} from "../core/envelope.js";
import { InvalidArgumentError } from "../core/errors.js";

/**
 * The body of webhook requests, built once per event and then sent byte for byte on every attempt:
 * - `"standard"` (default): the Standard Webhooks payload `{"type", "timestamp", "data"}`;
 * - `"cloudevents"`: the whole CloudEvent in structured mode of the CloudEvents HTTP binding
 *   (`content-type: application/cloudevents+json`);
 * - `"cloudevents-binary"`: the CloudEvent in binary mode: the attributes as `ce-*` headers
 *   (`ce-traceparent` among them), the data as the body, its `datacontenttype` as `content-type`;
 * - a function of the event returning any JSON value.
 */
export type WebhookPayloadFormat =
  "standard" | "cloudevents" | "cloudevents-binary" | ((event: CloudEvent) => unknown);

/** What one attempt sends on top of the signature headers. */
export interface WebhookRequest {
  body: string | Uint8Array;
  headers: Record<string, string>;
}

/**
 * The body and headers of an attempt, made from the stored payload. Both CloudEvents formats
 * store the event in structured JSON; binary mode is made from it at each attempt (the same bytes
 * each time). `hop` holds the attempt span's W3C `traceparent`/`tracestate`: they go as the plain
 * headers (without a span: the event's own), while the event's own trace context (the distributed
 * tracing extension) stays in the JSON (structured) or in `ce-traceparent` (binary). A payload that is not a CloudEvent (fanned
 * out by a process with another format) goes as it is, as JSON.
 */
export function webhookRequest(
  payload: string,
  format: WebhookPayloadFormat,
  hop: Record<string, string> = {},
): WebhookRequest {
  if (format !== "cloudevents" && format !== "cloudevents-binary") {
    return { body: payload, headers: { "content-type": "application/json", ...hop } };
  }
  let event: CloudEvent;
  try {
    event = decodeStructured(payload);
  } catch {
    return { body: payload, headers: { "content-type": "application/json", ...hop } };
  }
  if (format === "cloudevents") {
    const trace: Record<string, string> = {};
    for (const name of ["traceparent", "tracestate"] as const) {
      const value = event[name];
      if (typeof value === "string") trace[name] = value;
    }
    return { body: payload, headers: { "content-type": STRUCTURED_CONTENT_TYPE, ...trace, ...hop } };
  }
  const binary = toBinary(event);
  return { body: binary.body, headers: { ...binary.headers, ...hop } };
}

/** Serializes an event as a webhook body (what is stored, see {@link webhookRequest}). */
export function formatPayload(event: CloudEvent, format: WebhookPayloadFormat, now: number): string {
  if (format === "cloudevents" || format === "cloudevents-binary") return encodeStructured(event);
  if (typeof format === "function") {
    const body = JSON.stringify(format(event));
    if (body === undefined) {
      throw new InvalidArgumentError("the payload format function returned nothing serializable", "format");
    }
    return body;
  }
  return JSON.stringify({
    type: event.type,
    timestamp: event.time ?? new Date(now).toISOString(),
    data: event.data ?? null,
  });
}
