import type { CloudEvent } from "./envelope.js";
import { EnvelopeError } from "./errors.js";

/** Options of {@link validateEnvelope}. */
export interface ValidateEnvelopeOptions {
  /**
   * The event was received, not made here: accept extension names longer than 20 characters
   * (CloudEvents says they SHOULD NOT be, not MUST NOT). Events Patchbay writes keep the limit.
   */
  reading?: boolean;
}

/** The context attributes CloudEvents 1.0 defines; every other top-level member is an extension. */
export const CONTEXT_ATTRIBUTES: ReadonlySet<string> = new Set([
  "specversion",
  "id",
  "source",
  "type",
  "time",
  "datacontenttype",
  "dataschema",
  "subject",
  "data",
  "data_base64",
]);

const REQUIRED = ["id", "source", "type"] as const;
const OPTIONAL_STRINGS = ["datacontenttype", "subject"] as const;
/** Extensions Patchbay reads, with their expected value type. */
const STRING_EXTENSIONS = ["traceparent", "tracestate", "correlationid", "causationid"] as const;

const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;
/** When reading: the spec says names SHOULD NOT exceed 20 characters, not MUST NOT. */
const EXTENSION_NAME_READ = /^[a-z0-9]+$/;
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/;
const MEDIA_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+\s*(;.*)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Characters a CloudEvents String MUST NOT hold: C0 and C1 controls (DEL included). */
// eslint-disable-next-line no-control-regex -- the control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A lone surrogate (with the `u` flag, a pair is one code point and does not match). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * CloudEvents 1.0's String type: no control character, no lone surrogate. Such an id or subject
 * is not carried alike by every transport and store (PostgreSQL text refuses NUL; UTF-8 turns a
 * lone surrogate into U+FFFD), so an event holding one was published and then failed downstream.
 */
function checkText(attribute: string, text: string): void {
  if (CONTROL.test(text)) fail(attribute, `must not contain control characters, got ${JSON.stringify(text)}`);
  if (LONE_SURROGATE.test(text))
    fail(attribute, `must not contain a lone surrogate, got ${JSON.stringify(text)}`);
}

function fail(attribute: string, problem: string): never {
  const label = attribute.startsWith("(") ? attribute : `attribute "${attribute}"`;
  throw new EnvelopeError(`invalid CloudEvent: ${label} ${problem}`, attribute);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? JSON.stringify(value) : typeof value;
}

let lastValidTime = "";

/** True when `text` is an RFC 3339 date-time whose fields are in range (Feb 30 and 25:00 fail). */
export function isRfc3339(text: string): boolean {
  // Events made in one millisecond share their time: remember the last valid one.
  if (text === lastValidTime) return true;
  const m = RFC3339.exec(text);
  if (m === null) return false;
  const f = (i: number) => Number(m[i]);
  const daysInMonth = new Date(Date.UTC(f(1), f(2), 0)).getUTCDate();
  if (f(2) < 1 || f(2) > 12 || f(3) < 1 || f(3) > daysInMonth) return false;
  if (f(4) > 23 || f(5) > 59 || f(6) > 60) return false;
  if (m[7] !== undefined && (f(8) > 23 || f(9) > 59)) return false;
  lastValidTime = text;
  return true;
}

function checkExtension(name: string, value: unknown, reading: boolean): void {
  if (reading ? !EXTENSION_NAME_READ.test(name) : !EXTENSION_NAME.test(name)) {
    fail(
      `extension:${name}`,
      reading
        ? "has an invalid name: extension names are made of a-z and 0-9"
        : "has an invalid name: extension names are 1-20 characters of a-z and 0-9 (longer ones are read, never written)",
    );
  }
  const attribute = (STRING_EXTENSIONS as readonly string[]).includes(name) ? name : `extension:${name}`;
  if (name === "dataversion") {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > INT32_MAX) {
      fail("dataversion", `must be an integer >= 1, got ${describe(value)}`);
    }
  } else if (attribute === name) {
    if (typeof value !== "string") fail(name, `must be a string, got ${describe(value)}`);
  } else if (typeof value === "number") {
    if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
      fail(attribute, `must be a 32-bit integer (CloudEvents has no other number type), got ${value}`);
    }
  } else if (typeof value !== "string" && typeof value !== "boolean") {
    fail(attribute, `must be a string, boolean or integer, got ${describe(value)}`);
  }
}

/**
 * Checks `value` against the CloudEvents 1.0 rules and returns it as a {@link CloudEvent}: a
 * shallow copy without `undefined`/`null` optional attributes, with `data_base64` decoded into
 * `data` as a `Uint8Array`.
 *
 * Throws {@link EnvelopeError} (`ENVELOPE_INVALID`) naming the attribute at fault when `value` is
 * not an object, a required attribute (`specversion`, `id`, `source`, `type`) is missing or empty,
 * `specversion` is not `"1.0"`, `time` is not RFC 3339, `dataschema` is not an absolute URI, an
 * extension's name or value breaks the rules, or `data` and `data_base64` are both present.
 */
export function validateEnvelope(value: unknown, options: ValidateEnvelopeOptions = {}): CloudEvent {
  const reading = options.reading === true;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("(envelope)", `must be a JSON object, got ${describe(value)}`);
  }
  const input = value as Record<string, unknown>;
  if (input.specversion !== "1.0") {
    fail(
      "specversion",
      input.specversion == null ? "is missing" : `must be "1.0", got ${describe(input.specversion)}`,
    );
  }
  for (const name of REQUIRED) {
    const v = input[name];
    if (v == null) fail(name, "is missing");
    if (typeof v !== "string" || v.length === 0) fail(name, `must be a non-empty string, got ${describe(v)}`);
    checkText(name, v);
  }
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(input)) {
    const v = input[name];
    if (v === undefined || v === null || name === "data") continue;
    if (!CONTEXT_ATTRIBUTES.has(name)) checkExtension(name, v, reading);
    out[name] = v;
  }
  // `data` last: the event serialises as it is, payload after the attributes.
  if (input.data !== undefined) out.data = input.data;
  for (const name of OPTIONAL_STRINGS) {
    const v = out[name];
    if (v !== undefined && (typeof v !== "string" || v.length === 0)) {
      fail(name, `must be a non-empty string, got ${describe(v)}`);
    }
    if (v !== undefined) checkText(name, v);
  }
  if (out.datacontenttype !== undefined && !MEDIA_TYPE.test(out.datacontenttype as string)) {
    fail(
      "datacontenttype",
      `must be a media type such as "application/json", got ${describe(out.datacontenttype)}`,
    );
  }
  if (out.time !== undefined && (typeof out.time !== "string" || !isRfc3339(out.time))) {
    fail("time", `must be an RFC 3339 timestamp such as "2025-01-01T12:00:00Z", got ${describe(out.time)}`);
  }
  if (
    out.dataschema !== undefined &&
    (typeof out.dataschema !== "string" || !ABSOLUTE_URI.test(out.dataschema))
  ) {
    fail("dataschema", `must be an absolute URI, got ${describe(out.dataschema)}`);
  }
  if (out.data_base64 !== undefined) {
    if ("data" in out) fail("data", 'and "data_base64" are mutually exclusive; an event carries at most one');
    if (typeof out.data_base64 !== "string" || !BASE64.test(out.data_base64)) {
      fail("data_base64", `must be a base64 string, got ${describe(out.data_base64)}`);
    }
    out.data = Uint8Array.from(Buffer.from(out.data_base64, "base64"));
    delete out.data_base64;
  }
  return out as CloudEvent;
}
