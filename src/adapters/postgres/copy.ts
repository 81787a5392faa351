/**
 * Encoding rows for `COPY ... FROM STDIN` in PostgreSQL's text format: one line per row, columns
 * separated by tabs, `\N` for NULL, backslash escapes for backslash, tab, newline and carriage return.
 */

const NEEDS_ESCAPE = /[\\\n\r\t]/;

function escapeText(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(/[\\\n\r\t]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t",
  );
}

/** A JS array as a PostgreSQL array literal: `{1,"two",NULL}`. */
export function arrayLiteral(values: readonly unknown[]): string {
  const items = values.map((v) => {
    if (v === null || v === undefined) return "NULL";
    if (Array.isArray(v)) return arrayLiteral(v);
    const text = scalarText(v);
    return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  });
  return `{${items.join(",")}}`;
}

/** `String(-0)` is `"0"`: PostgreSQL's double precision keeps the sign. */
const numberText = (value: number | bigint) => (Object.is(value, -0) ? "-0" : String(value));

function scalarText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "bigint":
      return numberText(value);
    case "boolean":
      return value ? "t" : "f";
    default:
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString("hex")}`;
      return JSON.stringify(value);
  }
}

/**
 * One value in COPY text format. `arrayColumn`: the column is a PostgreSQL array, so a JS array
 * becomes an array literal (otherwise JSON, for json/jsonb columns).
 */
export function copyValue(value: unknown, arrayColumn: boolean): string {
  if (value === null || value === undefined) return "\\N";
  if (typeof value === "string") return escapeText(value);
  if (typeof value === "number" || typeof value === "bigint") return numberText(value);
  if (Array.isArray(value) && arrayColumn) return escapeText(arrayLiteral(value));
  return escapeText(scalarText(value));
}

/** The COPY text of `rows` for `columns`, in chunks of about 1 MB. */
export function copyChunks(
  rows: readonly Record<string, unknown>[],
  columns: readonly string[],
  arrayColumns: ReadonlySet<string>,
): Generator<string> {
  const isArray = columns.map((c) => arrayColumns.has(c));
  return linesToChunks(rows.map((row) => copyLine(row, columns, isArray)));
}

const UNESCAPE: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };

/** One COPY text field back to its text (`\N` is NULL). */
export function decodeCopyField(field: string): string | null {
  if (field === "\\N") return null;
  if (!field.includes("\\")) return field;
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === "x") return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return UNESCAPE[e] ?? e;
  });
}

/** The n-th field of a COPY text line, still escaped. */
export function copyField(line: string, n: number): string {
  let start = 0;
  for (let i = 0; i < n; i++) {
    start = line.indexOf("\t", start) + 1;
    if (start === 0) return "";
  }
  const end = line.indexOf("\t", start);
  return end === -1 ? line.slice(start) : line.slice(start, end);
}

/** The lines of COPY text chunks (without their newlines). */
export function copyLines(chunks: readonly Buffer[]): string[] {
  const text = Buffer.concat(chunks).toString("utf8");
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** Lines joined back into COPY chunks of about 1 MB. */
export function* linesToChunks(lines: readonly string[]): Generator<string> {
  let chunk = "";
  for (const line of lines) {
    chunk += line + "\n";
    if (chunk.length >= 1 << 20) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk.length > 0) yield chunk;
}

/** One row as a COPY text line (no newline). */
export function copyLine(
  row: Record<string, unknown>,
  columns: readonly string[],
  isArray: readonly boolean[],
): string {
  let line = "";
  for (let i = 0; i < columns.length; i++) {
    if (i > 0) line += "\t";
    line += copyValue(row[columns[i] as string], isArray[i] as boolean);
  }
  return line;
}
