/** An array parameter's text form (`{"a","b"}`), as `pg` would send it; strings and numbers only. */
function arrayText(values: readonly unknown[]): string | undefined {
  const items: string[] = [];
  for (const v of values) {
    if (v === null) items.push("NULL");
    else if (typeof v === "number" && Number.isFinite(v)) items.push(String(v));
    else if (typeof v === "string") items.push(`"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`);
    else return undefined;
  }
  return `{${items.join(",")}}`;
}

/**
 * A value as the literal PostgreSQL reads as it reads that value sent as a text parameter: an
 * untyped string literal ('…', typed by its context or cast, like `$1`), or NULL. Strings,
 * finite numbers, bigints, booleans and flat arrays of strings and numbers; anything else (a
 * Buffer, an object, a NUL character PostgreSQL text cannot hold) is `undefined`. For the sync
 * source's and the CDC copy's statements, which write their cursor values in.
 */
export function postgresLiteral(value: unknown): string | undefined {
  if (value === null || value === undefined) return "NULL";
  let text: string | undefined;
  if (typeof value === "string") text = value;
  else if (typeof value === "number") text = Number.isFinite(value) ? String(value) : undefined;
  else if (typeof value === "bigint") text = String(value);
  else if (typeof value === "boolean") text = value ? "true" : "false";
  else if (Array.isArray(value)) text = arrayText(value);
  if (text === undefined || text.includes("\u0000")) return undefined;
  return escapeLiteral(text);
}

/**
 * `text` as a PostgreSQL string literal, by the rules of `pg`'s `escapeLiteral`: quotes doubled;
 * with a backslash, backslashes doubled too and the literal written as an escape string (` E'…'`),
 * so it reads the same whatever `standard_conforming_strings` is.
 */
function escapeLiteral(text: string): string {
  const quoted = `'${text.replaceAll("'", "''").replaceAll("\\", "\\\\")}'`;
  return text.includes("\\") ? ` E${quoted}` : quoted;
}
