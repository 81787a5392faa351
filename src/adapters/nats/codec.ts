/**
 * How a {@link TransportMessage} travels as a JetStream message: the CloudEvent JSON as the
 * payload, our bookkeeping in `Patchbay-*` headers, and the user's headers as one JSON header
 * (`Patchbay-Headers`), so a header of any name and value round-trips unchanged (NATS header
 * names are tokens and values one line).
 */
import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { UndecodableMessageError } from "../../bus/errors.js";
import type { FailureRecord, TransportMessage } from "../../bus/transport.js";

export const H = {
  id: "Patchbay-Id",
  type: "Patchbay-Type",
  key: "Patchbay-Key",
  headers: "Patchbay-Headers",
  fresh: "Patchbay-Fresh",
  retries: "Patchbay-Retries",
  failure: "Patchbay-Failure",
  group: "Patchbay-Group",
  due: "Patchbay-Due",
  to: "Patchbay-To",
} as const;

/** What the transport adds to a message on its way. */
export interface Bookkeeping {
  /** Deliveries that ended in a retry (or a redelivery we scheduled ourselves). */
  retries?: number;
  failure?: FailureRecord | undefined;
  /** Only for this group (a targeted publish, a retry). */
  group?: string | undefined;
  /** In the delay stream: when it is due (ms since epoch) and the subject it goes to then. */
  due?: number | undefined;
  to?: string | undefined;
}

/** The headers of `m` plus bookkeeping, as name → value. */
export function encodeHeaders(m: TransportMessage, extra: Bookkeeping = {}): Array<[string, string]> {
  const out: Array<[string, string]> = [
    [H.id, m.id],
    [H.type, m.type],
  ];
  if (m.key !== undefined) out.push([H.key, m.key]);
  for (const _ in m.headers) {
    out.push([H.headers, JSON.stringify(m.headers)]);
    break;
  }
  // Not through the delay stream: its forwarder may send a message on twice.
  if (m.fresh === true && extra.due === undefined) out.push([H.fresh, "1"]);
  if (extra.retries) out.push([H.retries, String(extra.retries)]);
  if (extra.failure) out.push([H.failure, JSON.stringify(extra.failure)]);
  if (extra.group !== undefined) out.push([H.group, extra.group]);
  if (extra.due !== undefined) out.push([H.due, String(extra.due)]);
  if (extra.to !== undefined) out.push([H.to, extra.to]);
  return out;
}

/** The parts of a received message that {@link decode} reads. */
export interface Incoming {
  subject: string;
  data: Uint8Array;
  /** Header value by name (the first), undefined when absent. */
  header(name: string): string | undefined;
}

/** A message as received, with the transport's bookkeeping read back. */
export interface Decoded {
  message: TransportMessage;
  retries: number;
  failure: FailureRecord | undefined;
  group: string | undefined;
  due: number | undefined;
  to: string | undefined;
  undecodable?: UndecodableMessageError | undefined;
}

const int = (v: string | undefined): number => {
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
};

function parseJson(v: string | undefined): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return undefined;
  }
}

function failureOf(v: string | undefined): FailureRecord | undefined {
  const f = parseJson(v) as Partial<FailureRecord> | undefined;
  if (!f || typeof f !== "object" || typeof f.firstFailedAt !== "number") return undefined;
  if (!f.error || typeof f.error !== "object") return undefined;
  return { firstFailedAt: f.firstFailedAt, error: f.error };
}

const isStringRecord = (v: unknown): v is Record<string, string> =>
  typeof v === "object" &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((h) => typeof h === "string");

const digestId = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * Reads a message back; tolerant of messages from other producers (no `Patchbay-*` headers: the
 * type is the subject after `typePrefix`). A part it cannot read marks the message undecodable
 * (the bus dead-letters it) rather than being skipped or read wrongly.
 */
export function decode(msg: Incoming, typePrefix: string): Decoded {
  const buffer = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  const body = buffer.toString("utf8");
  const where = msg.subject;
  let undecodable: UndecodableMessageError | undefined;
  if (!isUtf8(buffer)) {
    undecodable = new UndecodableMessageError(
      `the body of a message on ${where} cannot be read`,
      "body",
      buffer.toString("base64"),
      "base64",
    );
  }
  let headers: Record<string, string> = {};
  const rawHeaders = msg.header(H.headers);
  if (rawHeaders !== undefined) {
    const parsed = parseJson(rawHeaders);
    if (isStringRecord(parsed)) headers = parsed;
    else {
      undecodable ??= new UndecodableMessageError(
        `the ${H.headers} header of a message on ${where} cannot be read`,
        H.headers,
        rawHeaders,
      );
    }
  }
  const rawFailure = msg.header(H.failure);
  const failure = failureOf(rawFailure);
  if (rawFailure !== undefined && failure === undefined) {
    undecodable ??= new UndecodableMessageError(
      `the ${H.failure} header of a message on ${where} cannot be read`,
      H.failure,
      rawFailure,
    );
  }
  const id = msg.header(H.id) ?? msg.header("Nats-Msg-Id") ?? digestId(msg.data);
  const type =
    msg.header(H.type) ??
    (msg.subject.startsWith(typePrefix) ? msg.subject.slice(typePrefix.length) : msg.subject);
  const key = msg.header(H.key);
  const due = msg.header(H.due);
  return {
    message: {
      id,
      type,
      ...(key === undefined ? {} : { key }),
      body,
      headers,
      ...(msg.header(H.fresh) === "1" ? { fresh: true } : {}),
    },
    retries: int(msg.header(H.retries)),
    failure,
    group: msg.header(H.group),
    due: due === undefined ? undefined : int(due),
    to: msg.header(H.to),
    ...(undecodable ? { undecodable } : {}),
  };
}

/** What can be said of a message {@link decode} threw on (it should not). */
export function decodeFallback(msg: Incoming, error: unknown): Decoded {
  const buffer = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  return {
    message: { id: digestId(msg.data), type: msg.subject, body: buffer.toString("utf8"), headers: {} },
    retries: 0,
    failure: undefined,
    group: undefined,
    due: undefined,
    to: undefined,
    undecodable: new UndecodableMessageError(
      `a message on ${msg.subject} cannot be read`,
      "message",
      buffer.toString("base64"),
      "base64",
      { cause: error },
    ),
  };
}
