/**
 * How a {@link TransportMessage} travels as an AMQP message: the CloudEvent JSON as the body,
 * `messageId` and `type` as properties, the key and our bookkeeping in `patchbay-*` headers, the
 * user's headers as AMQP headers. A user header whose name could clash with ours or the broker's
 * (`patchbay-*`, `x-*`, `CC`, `BCC`) travels inside the `patchbay-headers` JSON header instead,
 * so every header round-trips unchanged.
 */
import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { UndecodableMessageError } from "../../bus/errors.js";
import type { FailureRecord, TransportMessage } from "../../bus/transport.js";
import type { Message, PublishOptions } from "./load.js";
import { H } from "./topology.js";

const CONTENT_TYPE = "application/cloudevents+json";

const reserved = (name: string) => {
  // Ours are lower case already: no lower-cased copy of every header name of every message.
  if (name.startsWith("patchbay-")) return true;
  const lower = name.toLowerCase();
  return lower.startsWith("x-") || lower.startsWith("patchbay-") || lower === "cc" || lower === "bcc";
};

/** What the transport adds to a message on its way. */
export interface Bookkeeping {
  /** Deliveries that ended in a retry (or a redelivery we scheduled ourselves). */
  retries?: number;
  failure?: FailureRecord | undefined;
  /** Not to be handled before this time (ms since epoch). */
  due?: number | undefined;
  /** The delay tier to enter and who gets the message when it leaves it. */
  tier?: { ms: number; to: string } | undefined;
}

/** AMQP publish options for `m` plus bookkeeping. */
export function encode(m: TransportMessage, extra: Bookkeeping = {}): PublishOptions {
  const headers: Record<string, unknown> = {};
  let escaped: Record<string, string> | undefined;
  for (const name in m.headers) {
    const value = m.headers[name]!;
    if (reserved(name)) (escaped ??= {})[name] = value;
    else headers[name] = value;
  }
  if (escaped) headers[H.headers] = JSON.stringify(escaped);
  if (m.key !== undefined) headers[H.key] = m.key;
  // Not into a delay tier: its at-least-once dead-lettering may bring a message back twice.
  if (m.fresh === true && !extra.tier) headers[H.fresh] = true;
  if (extra.retries) headers[H.retries] = extra.retries;
  if (extra.failure) headers[H.failure] = JSON.stringify(extra.failure);
  if (extra.due !== undefined) headers[H.due] = extra.due;
  if (extra.tier) {
    headers[H.tier] = String(extra.tier.ms);
    headers[H.to] = extra.tier.to;
  }
  return { persistent: true, messageId: m.id, type: m.type, contentType: CONTENT_TYPE, headers };
}

/** A message as received, with the transport's bookkeeping read back. */
export interface Decoded {
  message: TransportMessage;
  retries: number;
  /** The quorum queue's count of earlier deliveries that were not settled (0 on a first delivery). */
  deliveryCount: number;
  failure: FailureRecord | undefined;
  due: number | undefined;
  /** Set when a part could not be read: the bus dead-letters the message at once. */
  undecodable?: UndecodableMessageError | undefined;
}

const int = (v: unknown): number => {
  const n =
    typeof v === "number" ? v : typeof v === "bigint" || typeof v === "string" ? Number(v) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
};

const text = (v: unknown): string | undefined =>
  typeof v === "string" ? v : Buffer.isBuffer(v) ? v.toString("utf8") : undefined;

function parseJson(v: unknown): unknown {
  const s = text(v);
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return undefined;
  }
}

function failureOf(v: unknown): FailureRecord | undefined {
  const f = parseJson(v) as Partial<FailureRecord> | undefined;
  if (!f || typeof f !== "object" || typeof f.firstFailedAt !== "number") return undefined;
  if (!f.error || typeof f.error !== "object") return undefined;
  return { firstFailedAt: f.firstFailedAt, error: f.error };
}

const unreadable = (msg: Message, part: string, raw: string, encoding: "text" | "base64" = "text") =>
  new UndecodableMessageError(
    `the ${part} of a message on ${msg.fields.routingKey || "(default exchange)"} cannot be read`,
    part,
    raw,
    encoding,
  );

/** The id of a message without a usable `messageId`: its content's digest (the same every delivery). */
const digestId = (msg: Message) => `sha256:${createHash("sha256").update(msg.content).digest("hex")}`;

/**
 * Reads an AMQP message back; tolerant of messages from other producers (missing properties).
 * A part it cannot read — our own headers corrupt, a body that is not UTF-8 — marks the message
 * undecodable (the bus dead-letters it) rather than being skipped or read wrongly.
 */
export function decode(msg: Message): Decoded {
  const raw = msg.properties.headers ?? {};
  const body = msg.content.toString("utf8");
  let undecodable: UndecodableMessageError | undefined;
  // Not UTF-8: the text above replaced bytes; the exact ones go with the error, in base64.
  if (!isUtf8(msg.content)) undecodable = unreadable(msg, "body", msg.content.toString("base64"), "base64");
  const headers: Record<string, string> = {};
  for (const name in raw) {
    if (reserved(name)) continue;
    const value: unknown = raw[name];
    if (typeof value === "string") headers[name] = value;
    else if (typeof value === "number" || typeof value === "boolean") headers[name] = String(value);
    else if (Buffer.isBuffer(value)) headers[name] = value.toString("utf8");
  }
  if (raw[H.headers] !== undefined) {
    const escaped = parseJson(raw[H.headers]);
    if (isStringRecord(escaped)) Object.assign(headers, escaped);
    else undecodable ??= unreadable(msg, H.headers, text(raw[H.headers]) ?? String(raw[H.headers]));
  }
  const failure = failureOf(raw[H.failure]);
  if (raw[H.failure] !== undefined && failure === undefined) {
    undecodable ??= unreadable(msg, H.failure, text(raw[H.failure]) ?? String(raw[H.failure]));
  }
  const id = text(msg.properties.messageId) ?? digestId(msg);
  const type = text(msg.properties.type) ?? msg.fields.routingKey;
  const key = text(raw[H.key]);
  const due = raw[H.due] === undefined ? undefined : int(raw[H.due]);
  return {
    message: {
      id,
      type,
      ...(key === undefined ? {} : { key }),
      body,
      headers,
      ...(raw[H.fresh] === true ? { fresh: true } : {}),
    },
    retries: int(raw[H.retries]),
    deliveryCount: int(raw["x-delivery-count"]),
    failure,
    due,
    ...(undecodable ? { undecodable } : {}),
  };
}

/**
 * What can be said of a message {@link decode} threw on (it should not): its content, its
 * digest as id, its routing key as type, no headers — marked undecodable with `error`.
 */
export function decodeFallback(msg: Message, error: unknown): Decoded {
  const undecodable = new UndecodableMessageError(
    `a message on ${msg.fields.routingKey || "(default exchange)"} cannot be read`,
    "message",
    msg.content.toString("base64"),
    "base64",
    { cause: error },
  );
  return {
    message: {
      id: digestId(msg),
      type: msg.fields.routingKey,
      body: msg.content.toString("utf8"),
      headers: {},
    },
    retries: 0,
    deliveryCount: int(msg.properties.headers?.["x-delivery-count"]),
    failure: undefined,
    due: undefined,
    undecodable,
  };
}

const isStringRecord = (v: unknown): v is Record<string, string> =>
  typeof v === "object" &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((h) => typeof h === "string");
