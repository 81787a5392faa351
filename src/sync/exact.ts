/**
 * Checks of whether a destination column stores a value exactly, for the `valueCheck` of table
 * destinations: a column narrower than the value (`numeric(12,2)` given 1.005, `DATETIME(3)` given
 * microseconds, a double given 20 significant digits) would round it without an error. Each check
 * returns why the value would change, or `undefined` when it would not (or when the value is not
 * of its kind: the database then decides, and refuses what it cannot read).
 */

/** A value check for one column. */
export type ValueCheck = (value: unknown) => string | undefined;

const NUMBER = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/** A number's text as `{ sign, digits, exponent }`, no leading or trailing zeros; `undefined` when not a number. */
export function decimalParts(
  text: string,
): { negative: boolean; digits: string; exponent: number } | undefined {
  const m = NUMBER.exec(text);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return undefined;
  const all = ((m[2] ?? "") + (m[3] ?? "")).replace(/^0+/, "");
  const digits = all.replace(/0+$/, "");
  const exponent = Number(m[4] ?? 0) - (m[3] ?? "").length + (all.length - digits.length);
  return { negative: m[1] === "-" && digits !== "", digits, exponent };
}

/** A decimal's value as text equal for equal values (`1.50` and `15e-1` both `15e-1`). */
export function canonicalDecimal(text: string): string | undefined {
  const p = decimalParts(text);
  if (!p) return undefined;
  return p.digits === "" ? "0" : `${p.negative ? "-" : ""}${p.digits}e${p.exponent}`;
}

const numberText = (value: unknown): string | undefined =>
  typeof value === "string"
    ? value
    : typeof value === "bigint" || (typeof value === "number" && Number.isFinite(value))
      ? String(value)
      : undefined;

/**
 * A JS number only PostgreSQL's double precision holds (`NaN`, `Infinity`, `-Infinity`), as text;
 * `undefined` for any other value. MariaDB has none of them (mysql2 writes them as bare words),
 * SQLite stores `NaN` as NULL, JSON has no number for them. (`-0` equals `0`: it is not one.)
 */
export function specialDouble(value: unknown): string | undefined {
  return typeof value === "number" && !Number.isFinite(value) ? String(value) : undefined;
}

/** A `DECIMAL(precision, scale)` / `numeric(precision, scale)` column. */
export function decimalCheck(type: string, precision: number, scale: number): ValueCheck {
  return (value) => {
    const text = numberText(value);
    const p = text === undefined ? undefined : decimalParts(text);
    if (!p || p.digits === "") return undefined;
    const fraction = Math.max(0, -p.exponent);
    const integer = Math.max(0, p.digits.length + p.exponent);
    if (fraction > scale) return `(${type}) would round ${text?.trim()} to ${scale} decimal places`;
    if (integer > precision - scale)
      return `(${type}) cannot hold ${text?.trim()}: more than ${precision - scale} integer digits`;
    return undefined;
  };
}

/** A double-precision column: number text must read back as the same decimal, a bigint as the same integer. */
export function doubleCheck(type: string): ValueCheck {
  return (value) => {
    if (typeof value === "bigint") {
      return BigInt(Number(value)) === value
        ? undefined
        : `(${type}) would store ${value} as ${Number(value)}`;
    }
    if (typeof value !== "string") return undefined;
    const exact = canonicalDecimal(value);
    if (exact === undefined) return undefined;
    const real = Number(value);
    return Number.isFinite(real) && canonicalDecimal(String(real)) === exact
      ? undefined
      : `(${type}) would store ${value.trim()} as ${real}`;
  };
}

const FRACTION = /^\s*\d{4,}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\.(\d+)/;

/** A date/time column keeping `digits` digits of a second. */
export function fractionCheck(type: string, digits: number): ValueCheck {
  return (value) => {
    const fraction =
      value instanceof Date
        ? String(value.getUTCMilliseconds()).padStart(3, "0")
        : typeof value === "string"
          ? FRACTION.exec(value)?.[1]
          : undefined;
    const needed = fraction?.replace(/0+$/, "").length ?? 0;
    return needed > digits
      ? `(${type}) keeps ${digits} digits of a second; ${value instanceof Date ? value.toISOString() : String(value)} has ${needed}`
      : undefined;
  };
}
