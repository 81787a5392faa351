import { isJsonContentType } from "./content-type.js";
import type { CloudEvent } from "./envelope.js";
import { validateEnvelope } from "./envelope-validate.js";
import { EnvelopeError } from "./errors.js";

/** The content type of a message that carries a whole CloudEvent as JSON (structured mode). */
export const STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8";

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Serialises an event in the CloudEvents JSON format (structured mode). Byte data becomes
 * `data_base64`, unless `datacontenttype` is JSON, in which case the bytes are parsed and stored
 * as JSON in `data`. Validates first: throws {@link EnvelopeError} (`ENVELOPE_INVALID`).
 *
 * @example res.setHeader("content-type", STRUCTURED_CONTENT_TYPE); res.end(encodeStructured(ev));
 */
export function encodeStructured(event: CloudEvent): string {
  return serializeStructured(validateEnvelope(event));
}

/**
 * {@link encodeStructured} without validating first: only for an event that is the result of
 * `validateEnvelope` (what `createEnvelope` and `EventDefinition.toEnvelope` return). Internal.
 */
export function serializeStructured(event: CloudEvent): string {
  const data = event.data;
  // A validated event holds `data` as its last member, so the event serialises as it is (no copy
  // on the publish path); only bytes need rewriting.
  if (data === undefined) return JSON.stringify(event);
  // Bytes with no declared content type are opaque bytes (as in binary mode), not JSON text.
  const json =
    isJsonContentType(event.datacontenttype) &&
    !(data instanceof Uint8Array && event.datacontenttype === undefined);
  if (data instanceof Uint8Array) {
    const { data: _bytes, ...attributes } = event;
    if (!json) return JSON.stringify({ ...attributes, data_base64: Buffer.from(data).toString("base64") });
    return JSON.stringify({ ...attributes, data: parseJson(data, "data") });
  }
  if (!json && typeof data !== "string") {
    throw new EnvelopeError(
      `invalid CloudEvent: attribute "data" must be a string or bytes for datacontenttype ${JSON.stringify(event.datacontenttype)}, got ${typeof data}`,
      "data",
    );
  }
  return JSON.stringify(event);
}

/**
 * Reads a CloudEvent in the JSON format (structured mode) and validates it. `data_base64` comes
 * back as `Uint8Array` data. Throws {@link EnvelopeError} (`ENVELOPE_INVALID`) with attribute
 * `"(body)"` when the text is not JSON, or naming the attribute that breaks the rules.
 */
export function decodeStructured(text: string | Uint8Array): CloudEvent {
  return validateEnvelope(parseJson(text, "(body)"), { reading: true });
}

/** Parses JSON from text or UTF-8 bytes; failure is an {@link EnvelopeError} on `attribute`. */
export function parseJson(text: string | Uint8Array, attribute: string): unknown {
  try {
    return JSON.parse(typeof text === "string" ? text : decoder.decode(text)) as unknown;
  } catch (cause) {
    const what = attribute === "(body)" ? "the message body" : `attribute "${attribute}"`;
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new EnvelopeError(`invalid CloudEvent: ${what} is not valid UTF-8 JSON: ${reason}`, attribute, {
      cause,
    });
  }
}
