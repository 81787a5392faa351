/**
 * Text any store column takes: PostgreSQL's text and jsonb hold no NUL character, and neither
 * PostgreSQL's jsonb nor MariaDB's JSON holds a lone surrogate. For diagnostics (error messages,
 * response excerpts) that must be recorded whatever they contain: each such character reads
 * U+FFFD, on every store alike.
 */
export const storableText = (s: string): string =>
  // eslint-disable-next-line no-control-regex -- NUL is what is being replaced
  s.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");

/** A JSON value with every string in it (object keys too) {@link storableText}. */
export function storableStrings<T>(value: T): T {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (typeof v === "string" ? storableText(v) : v)),
    (_k, v: unknown) =>
      typeof v === "object" && v !== null && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [storableText(k), x]))
        : v,
  ) as T;
}
