/**
 * SQLite column affinity, and which values a column would change on the way in. A column
 * declared `NUMERIC`, `DECIMAL(40,20)`, `INTEGER` or `REAL` converts text that looks like a number
 * into an INTEGER or a REAL: `12345678901234567890.123456789012345678` becomes the REAL
 * 12345678901234567000, silently. The sync destination quarantines such rows instead.
 */

import { canonicalDecimal, specialDouble } from "../../sync/exact.js";

/** The affinity of a declared column type (the rules of https://sqlite.org/datatype3.html, 3.1). */
export type Affinity = "INTEGER" | "TEXT" | "BLOB" | "REAL" | "NUMERIC";

export function affinity(declared: string): Affinity {
  const t = declared.toUpperCase();
  if (t.includes("INT")) return "INTEGER";
  if (t.includes("CHAR") || t.includes("CLOB") || t.includes("TEXT")) return "TEXT";
  if (t.includes("BLOB") || t.trim() === "") return "BLOB";
  if (t.includes("REAL") || t.includes("FLOA") || t.includes("DOUB")) return "REAL";
  return "NUMERIC";
}

const INTEGER = /^\s*[+-]?\d+\s*$/;
const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/**
 * For a column of this declared type, a function telling why it would not store a value exactly
 * (or `undefined` when it would); `undefined` for TEXT and BLOB columns, which store every value
 * as it is. Only number-like text and big integers are at risk in the others: text that is not a
 * number stays text, and an integer within 64 bits is stored as an INTEGER (in any but a REAL
 * column). Number text that becomes a REAL is exact when the REAL reads back as the same decimal.
 */
export function numericCheck(declared: string): ((value: unknown) => string | undefined) | undefined {
  const kind = affinity(declared);
  if (kind === "TEXT" || kind === "BLOB") return undefined;
  const refuse = (value: string | bigint, real: number) =>
    `(${declared || "no type"}, ${kind} affinity) would store ${value} as the REAL ${real}; declare it TEXT to keep the exact text`;
  return (given) => {
    // Beyond 64 bits a bigint is bound as its text (see the destination's bindable()).
    const value =
      typeof given === "bigint" && (given > INT64_MAX || given < INT64_MIN) ? String(given) : given;
    if (typeof value === "bigint") {
      return kind !== "REAL" || BigInt(Number(value)) === value ? undefined : refuse(value, Number(value));
    }
    if (typeof value !== "string") return undefined;
    const exact = canonicalDecimal(value);
    if (exact === undefined) return undefined; // not a number: stored as the text it is
    if (kind !== "REAL" && INTEGER.test(value)) {
      const n = BigInt(value.trim());
      if (n <= INT64_MAX && n >= INT64_MIN) return undefined;
    }
    const real = Number(value);
    return Number.isFinite(real) && canonicalDecimal(String(real)) === exact
      ? undefined
      : refuse(value.trim(), real);
  };
}

/**
 * {@link numericCheck}, and for any column a JS number SQLite would not keep: `NaN` (stored as
 * NULL), an infinity in a TEXT or BLOB column (stored as the text `Inf`).
 */
export function valueCheck(declared: string): ((value: unknown) => string | undefined) | undefined {
  const check = numericCheck(declared);
  const kind = affinity(declared);
  return (value) => {
    const special = specialDouble(value);
    const kept = (value === Infinity || value === -Infinity) && kind !== "TEXT" && kind !== "BLOB";
    return special === undefined || kept
      ? check?.(value)
      : `(${declared || "no type"}, ${kind} affinity) would not store the double ${special}`;
  };
}
