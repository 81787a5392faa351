import { systemClock, type Clock } from "./clock.js";
import { CONTEXT_ATTRIBUTES, validateEnvelope } from "./envelope-validate.js";
import { EnvelopeError } from "./errors.js";
import { uuidv7 } from "./ids.js";

export { validateEnvelope } from "./envelope-validate.js";
export { encodeStructured, decodeStructured, STRUCTURED_CONTENT_TYPE } from "./envelope-structured.js";
export {
  toBinary,
  fromBinary,
  HTTP_BINARY,
  AMQP_BINARY,
  NATS_BINARY,
  type BinaryMessage,
  type BinaryModeOptions,
  type FromBinaryOptions,
} from "./envelope-binary.js";
export { isJsonContentType } from "./content-type.js";

/** A CloudEvents extension attribute value: string, boolean, or a 32-bit integer. */
export type CloudEventExtensionValue = string | number | boolean;

/**
 * A CloudEvents 1.0 event, in memory. Binary data (`data_base64` on the wire) is a `Uint8Array`
 * in `data`.
 *
 * Extension attributes sit beside the context attributes, as the spec puts them: names are 1–20
 * characters of `a-z0-9`, values are strings, booleans or integers. The ones Patchbay uses are
 * typed below; {@link validateEnvelope} checks the rest.
 */
export interface CloudEvent<T = unknown> {
  /** The CloudEvents spec version; always `"1.0"`. */
  specversion: "1.0";
  /** Unique per `source`; consumers dedupe on `source` + `id`. A UUIDv7 by default. */
  id: string;
  /** URI-reference of the producer, e.g. `"/shop/orders"` or `"urn:patchbay:shop"`. */
  source: string;
  /** The event type, e.g. `"order.created"`. */
  type: string;
  /** When the occurrence happened, RFC 3339 (`"2025-01-01T12:00:00.000Z"`). */
  time?: string;
  /** Media type of `data`; absent means `application/json`. */
  datacontenttype?: string;
  /** URI of the schema `data` adheres to. */
  dataschema?: string;
  /** The subject of the event within `source`, e.g. the order id. */
  subject?: string;
  /** The payload. */
  data?: T;
  /** W3C Trace Context `traceparent` of the producing span (distributed tracing extension). */
  traceparent?: string;
  /** W3C Trace Context `tracestate`. */
  tracestate?: string;
  /** Groups the events of one business conversation (e.g. one checkout). */
  correlationid?: string;
  /** The `id` of the event or command that caused this one. */
  causationid?: string;
  /** The version of the event's data schema (an integer >= 1); absent means 1. */
  dataversion?: number;
  /** Any other extension attribute. */
  [extension: string]: unknown;
}

/** What {@link createEnvelope} needs; everything but `type` and `source` is optional. */
export interface CreateEnvelopeInput<T = unknown> {
  type: string;
  source: string;
  data?: T;
  subject?: string;
  /** Defaults to a new {@link uuidv7}. */
  id?: string;
  /** Defaults to the clock's now. */
  time?: string | Date;
  datacontenttype?: string;
  dataschema?: string;
  traceparent?: string;
  tracestate?: string;
  correlationid?: string;
  causationid?: string;
  dataversion?: number;
  /** Further extension attributes (lowercase `a-z0-9` names, at most 20 characters). */
  extensions?: Record<string, CloudEventExtensionValue | undefined>;
}

/** `new Date(ms).toISOString()`, remembering the last one (events made in one millisecond share it). */
function isoTime(ms: number): string {
  if (ms !== lastIso.ms) lastIso = { ms, text: new Date(ms).toISOString() };
  return lastIso.text;
}
let lastIso = { ms: Number.NaN, text: "" };

/**
 * Builds a valid CloudEvent: `id` defaults to a UUIDv7 and `time` to the clock's now. Throws
 * {@link EnvelopeError} (`ENVELOPE_INVALID`) when the result breaks a CloudEvents rule.
 *
 * @example
 * const ev = createEnvelope({ type: "order.created", source: "/shop", data: { orderId: "o-1" } });
 */
export function createEnvelope<T>(input: CreateEnvelopeInput<T>, clock: Clock = systemClock): CloudEvent<T> {
  const { extensions, time, id } = input;
  const event: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(extensions ?? {})) {
    if (CONTEXT_ATTRIBUTES.has(name) || (name in input && name !== "extensions")) {
      throw new EnvelopeError(
        `invalid CloudEvent: extension "${name}" clashes with the attribute of that name; set it directly`,
        `extension:${name}`,
      );
    }
    event[name] = value;
  }
  if (time instanceof Date && Number.isNaN(time.getTime())) {
    throw new EnvelopeError('invalid CloudEvent: attribute "time" is an invalid Date', "time");
  }
  // Copied member by member (no spreads): this runs once per published event.
  for (const name of Object.keys(input)) {
    if (name !== "extensions" && name !== "time" && name !== "id")
      event[name] = input[name as keyof typeof input];
  }
  event.specversion = "1.0";
  event.id = id ?? uuidv7(clock);
  event.time = time instanceof Date ? time.toISOString() : (time ?? isoTime(clock.now()));
  return validateEnvelope(event) as CloudEvent<T>;
}
