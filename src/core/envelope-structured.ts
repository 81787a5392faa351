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
  if (data instanceof Uint8Array) return serializeBytes(event, data);
  if (!isJsonContentType(event.datacontenttype) && typeof data !== "string") {
    throw new EnvelopeError(
      `invalid CloudEvent: attribute "data" must be a string or bytes for datacontenttype ${JSON.stringify(event.datacontenttype)}, got ${typeof data}`,
      "data",
    );
  }
  return stringifyExactly(event, data);
}

/**
 * `JSON.stringify(event)`, refusing data JSON cannot carry as it is instead of changing it: a
 * bigint or a cycle (which JSON.stringify throws on with a bare TypeError), and a non-finite
 * number or an `undefined`, function or symbol in an array (which it writes as `null`). Every
 * such change writes a `null`, so data is walked only when the text holds one.
 */
function stringifyExactly(event: CloudEvent, data: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(event);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new EnvelopeError(
      `invalid CloudEvent: attribute "data" cannot be written as JSON: ${reason}`,
      "data",
      {
        cause,
      },
    );
  }
  if (text.includes("null")) {
    const where = changedByJson(data, "data");
    if (where !== undefined) {
      throw new EnvelopeError(
        `invalid CloudEvent: ${where} cannot be written as JSON as it is (JSON would write null); use a string or leave it out`,
        "data",
      );
    }
  }
  return text;
}

/** The path of the first value JSON.stringify would write as `null` though it is not null. */
function changedByJson(value: unknown, path: string): string | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? undefined : `${path} (${value})`;
  if (typeof value !== "object" || value === null) return undefined;
  // What serialises itself (a Date) is written as it says.
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === undefined || typeof item === "function" || typeof item === "symbol")
        return `${path}[${i}] (${typeof item})`;
      const found = changedByJson(item, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const found = changedByJson((value as Record<string, unknown>)[key], `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** An event whose data are bytes: `data_base64`, or parsed JSON when declared JSON. */
function serializeBytes(event: CloudEvent, data: Uint8Array): string {
  // Bytes with no declared content type are opaque bytes (as in binary mode), not JSON text.
  const json = isJsonContentType(event.datacontenttype) && event.datacontenttype !== undefined;
  const { data: _bytes, ...attributes } = event;
  if (!json) return JSON.stringify({ ...attributes, data_base64: Buffer.from(data).toString("base64") });
  return JSON.stringify({ ...attributes, data: parseJson(data, "data") });
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
