import { encodeStructured, type CloudEvent } from "../core/envelope.js";
import { InvalidArgumentError } from "../core/errors.js";

/**
 * The body of webhook requests, built once per event and then sent byte for byte on every attempt:
 * - `"standard"` (default): the Standard Webhooks payload `{"type", "timestamp", "data"}`;
 * - `"cloudevents"`: the whole CloudEvent in structured JSON (`id`, `source`, `type`, `time`, `data`, ...);
 * - a function of the event returning any JSON value.
 */
export type WebhookPayloadFormat = "standard" | "cloudevents" | ((event: CloudEvent) => unknown);

/** Serializes an event as a webhook body. */
export function formatPayload(event: CloudEvent, format: WebhookPayloadFormat, now: number): string {
  if (format === "cloudevents") return encodeStructured(event);
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
