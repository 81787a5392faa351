import { isJsonContentType, isTextContentType } from "./content-type.js";
import type { CloudEvent } from "./envelope.js";
import { parseJson } from "./envelope-structured.js";
import { validateEnvelope } from "./envelope-validate.js";
import { EnvelopeError } from "./errors.js";

/** Attribute header prefix of the CloudEvents HTTP binding: `ce-id`, `ce-type`, ... */
export const HTTP_BINARY = "ce-";
/** Application-property prefix of the CloudEvents AMQP binding: `cloudEvents:id`, ... */
export const AMQP_BINARY = "cloudEvents:";
/** Header prefix of the CloudEvents NATS binding (same as HTTP). */
export const NATS_BINARY = "ce-";

/** How attributes map to message headers in binary mode. */
export interface BinaryModeOptions {
  /** Prefix of the attribute headers: {@link HTTP_BINARY} (default), {@link AMQP_BINARY}, {@link NATS_BINARY}. */
  prefix?: string;
  /**
   * Percent-encode header values as the HTTP binding requires (space, `"`, `%` and non-ASCII).
   * Default: on for the `ce-` prefix, off otherwise (AMQP properties carry any string).
   */
  percentEncode?: boolean;
  /**
   * Also write `datacontenttype` as a `content-type` header. Default: on, except for the AMQP
   * prefix, where it belongs in the message's content-type property (see {@link BinaryMessage.contentType}).
   */
  contentTypeHeader?: boolean;
}

/** Options of {@link fromBinary}. */
export interface FromBinaryOptions extends BinaryModeOptions {
  /** The message's content type when it travels outside the headers (the AMQP content-type property). */
  contentType?: string | undefined;
}

/** A CloudEvent in binary mode: attributes as headers, data as the body. */
export interface BinaryMessage {
  /** Attribute headers (`ce-id`, ...), plain W3C `traceparent`/`tracestate`, and maybe `content-type`. */
  headers: Record<string, string>;
  /** The data: JSON text for JSON content types, the string for text, the bytes otherwise; `""` when there is no data. */
  body: Uint8Array | string;
  /** The content type of `body` (the event's `datacontenttype`, or the one implied by its data). */
  contentType: string | undefined;
}

const TRACE_HEADERS = new Set(["traceparent", "tracestate"]);
const encoder = new TextEncoder();

const isHttpStyle = (prefix: string) => prefix.toLowerCase() === "ce-";
const isAmqpStyle = (prefix: string) => prefix.toLowerCase().startsWith("cloudevents");

/**
 * Maps an event to message headers and a body (binary content mode). `datacontenttype` becomes
 * the content type, every other attribute a `<prefix><name>` header; `traceparent`/`tracestate`
 * are also written as the plain W3C headers. Validates first: throws {@link EnvelopeError} (`ENVELOPE_INVALID`).
 *
 * @example
 * const { headers, body, contentType } = toBinary(ev, { prefix: AMQP_BINARY });
 * channel.publish(exchange, key, Buffer.from(body), { headers, contentType });
 */
export function toBinary(event: CloudEvent, options: BinaryModeOptions = {}): BinaryMessage {
  const prefix = options.prefix ?? HTTP_BINARY;
  const encode = options.percentEncode ?? isHttpStyle(prefix);
  const { data, datacontenttype, ...attributes } = validateEnvelope(event);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(attributes)) {
    const text = encode ? percentEncode(String(value)) : String(value);
    headers[prefix + name] = text;
    // Distributed tracing extension: the attribute is the `<prefix>traceparent` header (the
    // event's origin); the plain W3C header is the hop's context, the same until a sender's
    // span replaces it.
    if (TRACE_HEADERS.has(name)) headers[name] = text;
  }
  const contentType =
    datacontenttype ??
    (data === undefined
      ? undefined
      : data instanceof Uint8Array
        ? "application/octet-stream"
        : "application/json");
  if (contentType !== undefined && (options.contentTypeHeader ?? !isAmqpStyle(prefix))) {
    headers["content-type"] = contentType; // a plain HTTP header: never percent-encoded
  }
  return { headers, body: encodeBody(data, contentType), contentType };
}

function encodeBody(data: unknown, contentType: string | undefined): Uint8Array | string {
  if (data === undefined) return "";
  if (data instanceof Uint8Array) return data;
  if (isJsonContentType(contentType)) return JSON.stringify(data);
  if (typeof data === "string") return data;
  throw new EnvelopeError(
    `invalid CloudEvent: attribute "data" must be a string or bytes for datacontenttype ${JSON.stringify(contentType)}, got ${typeof data}`,
    "data",
  );
}

/**
 * Reads an event from message headers and a body (binary content mode), the inverse of
 * {@link toBinary}. Header names are matched case-insensitively; `dataversion` is read back as a
 * number. JSON bodies are parsed, `text/*` bodies become strings, others `Uint8Array`. An empty
 * body means no data. Throws {@link EnvelopeError} (`ENVELOPE_INVALID`).
 *
 * @example const ev = fromBinary(req.headers, await readBody(req));
 */
export function fromBinary(
  headers: Readonly<Record<string, unknown>>,
  body: Uint8Array | string | undefined,
  options: FromBinaryOptions = {},
): CloudEvent {
  const prefix = (options.prefix ?? HTTP_BINARY).toLowerCase();
  const decode = options.percentEncode ?? isHttpStyle(prefix);
  const event: Record<string, unknown> = {};
  const plain: Record<string, unknown> = {};
  let contentTypeHeader: string | undefined;
  for (const [rawName, rawValue] of Object.entries(headers)) {
    if (rawValue === undefined || rawValue === null) continue;
    const name = rawName.toLowerCase();
    if (name.startsWith(prefix)) {
      const attribute = name.slice(prefix.length);
      if (attribute === "data" || attribute === "data_base64") continue;
      event[attribute] = headerValue(rawValue, attribute, decode);
    } else if (TRACE_HEADERS.has(name)) {
      plain[name] = headerValue(rawValue, name, decode);
    } else if (name === "content-type") {
      contentTypeHeader = String(headerValue(rawValue, "datacontenttype", false));
    }
  }
  // Distributed tracing extension: `<prefix>traceparent` is the attribute. The plain W3C header is
  // the last hop's context; it stands in only when a producer sent no extension header.
  for (const [name, value] of Object.entries(plain)) if (event[name] === undefined) event[name] = value;
  const contentType =
    options.contentType ?? contentTypeHeader ?? (event.datacontenttype as string | undefined);
  if (contentType !== undefined) event.datacontenttype = contentType;
  if (typeof event.dataversion === "string" && /^\d+$/.test(event.dataversion)) {
    event.dataversion = Number(event.dataversion);
  }
  if (body !== undefined && body.length > 0) {
    if (isJsonContentType(contentType)) event.data = parseJson(body, "(body)");
    else if (isTextContentType(contentType)) event.data = typeof body === "string" ? body : decodeUtf8(body);
    else event.data = typeof body === "string" ? encoder.encode(body) : body;
  }
  return validateEnvelope(event, { reading: true });
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new EnvelopeError("invalid CloudEvent: the message body is not valid UTF-8 text", "(body)", {
      cause,
    });
  }
}

/** A header value as an attribute value: strings unquoted and percent-decoded, native AMQP types kept. */
function headerValue(value: unknown, attribute: string, decode: boolean): unknown {
  if (Array.isArray(value)) return headerValue(value.map(String).join(", "), attribute, decode);
  if (typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value !== "string") {
    throw new EnvelopeError(
      `invalid CloudEvent: header for attribute "${attribute}" is a ${typeof value}`,
      attribute,
    );
  }
  if (!decode) return value;
  const unquoted = /^".*"$/s.test(value) ? value.slice(1, -1).replace(/\\(.)/gs, "$1") : value;
  if (!unquoted.includes("%")) return unquoted;
  try {
    return decodeURIComponent(unquoted);
  } catch (cause) {
    throw new EnvelopeError(
      `invalid CloudEvent: header for attribute "${attribute}" is not valid percent-encoded UTF-8`,
      attribute,
      { cause },
    );
  }
}

/** Percent-encodes space, `"`, `%` and everything outside printable ASCII, as UTF-8 bytes (HTTP binding §3.1.3.2). */
function percentEncode(text: string): string {
  if (/^[\x21\x23\x24\x26-\x7e]*$/.test(text)) return text;
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    if (c > 0x20 && c < 0x7f && c !== 0x22 && c !== 0x25) {
      out += ch;
      continue;
    }
    for (const byte of encoder.encode(ch)) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
