import type { JsonValue } from "./contracts.js";
import { canonicalDecimal } from "./exact.js";

const json = JSON as unknown as {
  rawJSON(source: string): unknown;
  isRawJSON(value: unknown): value is { rawJSON: string };
};

/**
 * A JSON-safe copy of any value, for quarantine records and run records: Dates become ISO
 * strings, bigints strings, bytes `{ base64 }`, non-finite numbers and functions null, cycles
 * `"[Circular]"`. Never throws.
 */
export function toJsonSafe(value: unknown, seen = new Set<object>()): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : null;
    case "bigint":
      return value.toString();
    case "object":
      break;
    default:
      return null;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  // A number kept as its text (parseExactJson): JSON.stringify writes it as it came.
  if (json.isRawJSON(value)) return value;
  if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString("base64") };
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => toJsonSafe(v, seen));
    const out: { [key: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonSafe(v, seen);
    return out;
  } finally {
    seen.delete(value);
  }
}

/** `{ code?, message }` of any thrown value. */
export function errorInfo(e: unknown): { code?: string; message: string } {
  if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string") {
    const { code, message } = e as { code?: unknown; message: string };
    return typeof code === "string" ? { code, message } : { message };
  }
  return { message: String(e) };
}

/**
 * Parses JSON text without rounding a number: a number whose JS value would not write back as
 * its source text (12345678901234567890, 0.1000000000000000055511151231257827) becomes a
 * `JSON.rawJSON` of that text, which `JSON.stringify` writes back exactly. For a transform that
 * changes a JSON column (the sync sources hand JSON columns over as their text).
 *
 * @example
 * transform: (row) => {
 *   const order = parseExactJson(row.payload as string) as Record<string, unknown>;
 *   order.seen = true;
 *   return { ...row, payload: JSON.stringify(order) }; // big numbers written as they came
 * }
 */
export function parseExactJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === "number" && context?.source !== undefined && String(value) !== context.source
      ? json.rawJSON(context.source)
      : value,
  );
}

/**
 * Parses JSON text keeping every number a JS number would change: one whose value differs from
 * its text's (12345678901234567890, 9007199254740993) is a `JSON.rawJSON` of its text, which
 * `JSON.stringify` writes back exactly. Other numbers (`1E2`, `2.0`) are JS numbers.
 */
export function parseExactNumbers(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) => {
    if (typeof value !== "number" || context?.source === undefined) return value;
    // Most numbers write back as they came: no need to compare their digits.
    if (String(value) === context.source) return value;
    return canonicalDecimal(String(value)) === canonicalDecimal(context.source)
      ? value
      : json.rawJSON(context.source);
  }) as unknown;
}

/** A raw JSON number's text, or the value as it is. */
export const rawText = (value: unknown): unknown => (json.isRawJSON(value) ? value.rawJSON : value);

/**
 * A parsed object as a row: a column holding a raw JSON number (see {@link parseExactNumbers})
 * gets a string of its digits, as a SQL source gives a bigint or numeric; raw numbers nested in
 * an object or array stay raw, written exactly in the JSON made of them. Other values as they are.
 */
export function exactColumns(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  for (const [column, v] of Object.entries(value)) {
    // defineProperty: a column named `__proto__` is a column like any other.
    if (json.isRawJSON(v))
      Object.defineProperty(value, column, {
        value: v.rawJSON,
        writable: true,
        enumerable: true,
        configurable: true,
      });
  }
  return value;
}

/** Parses a JSON object's text (an NDJSON line) into a row without rounding a number: see {@link exactColumns}. */
export const parseExactRow = (text: string): unknown => exactColumns(parseExactNumbers(text));
