/**
 * A tiny tagged-template SQL builder for Patchbay's own statements, so one repository works on
 * every dialect: interpolated values become parameters in the dialect's placeholder style, and
 * {@link raw} fragments (already-quoted identifiers only) are inlined.
 */
import { InvalidArgumentError } from "../core/errors.js";

// Registered (Symbol.for): a fragment made by one copy of this module (an adapter built against
// another copy of Patchbay, a bench loading src and dist) is still inlined, never bound as a value.
const RAW = Symbol.for("patchbay.sql.raw");

/** A fragment inlined as-is. Only for identifiers the code itself quoted — never user values. */
export interface RawSql {
  readonly [RAW]: string;
}

/** Marks already-quoted SQL text to be inlined. */
export function raw(text: string): RawSql {
  return { [RAW]: text };
}

/** A statement and its parameters, not yet bound to a dialect. */
export interface SqlStatement {
  readonly strings: readonly string[];
  readonly values: readonly unknown[];
}

/** Builds a {@link SqlStatement}: ``sql`select * from ${raw(t)} where key = ${key}` ``. */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): SqlStatement {
  return { strings, values };
}

/** Concatenates statements (for conditions built up piece by piece). */
export function join(...parts: SqlStatement[]): SqlStatement {
  const strings: string[] = [];
  const values: unknown[] = [];
  for (const part of parts) {
    if (strings.length === 0) strings.push(...part.strings);
    else {
      strings[strings.length - 1] += part.strings[0] ?? "";
      strings.push(...part.strings.slice(1));
    }
    values.push(...part.values);
  }
  return { strings, values };
}

/** Concatenates statements with `separator` between them: ``joinWith(sql`, `, rows)``. */
export function joinWith(separator: SqlStatement, parts: readonly SqlStatement[]): SqlStatement {
  return join(...parts.flatMap((part, i) => (i === 0 ? [part] : [separator, part])));
}

/** Renders a statement for a placeholder style: `$1, $2` (`"numbered"`) or `?, ?` (`"question"`). */
export function render(
  statement: SqlStatement,
  placeholders: "numbered" | "question",
): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  let text = statement.strings[0] ?? "";
  statement.values.forEach((value, i) => {
    if (typeof value === "object" && value !== null && RAW in value) {
      text += (value as RawSql)[RAW];
    } else {
      params.push(value);
      text += placeholders === "numbered" ? `$${params.length}` : "?";
    }
    text += statement.strings[i + 1] ?? "";
  });
  return { text, params };
}

/** The SQL text of a {@link raw} fragment; `undefined` for a value. */
export function rawText(value: unknown): string | undefined {
  return typeof value === "object" && value !== null && RAW in value ? (value as RawSql)[RAW] : undefined;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Quotes a SQL identifier after checking it is a plain name (letters, digits, `_`, at most 63
 * chars). A table or schema name from configuration is never SQL.
 */
export function quoteIdentifier(name: string, what = "identifier"): string {
  if (typeof name !== "string" || !IDENTIFIER.test(name)) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(name)} is not a plain SQL name (letters, digits and _, starting with a letter or _, at most 63 chars)`,
      what,
    );
  }
  return `"${name}"`;
}
