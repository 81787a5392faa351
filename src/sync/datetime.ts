/**
 * Date/time text between databases: the one rule every sync destination applies when a column
 * has no time zone. An instant (a value with an offset) is written as its UTC wall-clock time;
 * PostgreSQL would drop the offset and keep the local time, MariaDB would refuse it.
 */

const pad = (n: number, width = 2) => String(n).padStart(width, "0");
const ZONED =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/i;

/**
 * A date/time for a column without a time zone (PostgreSQL `timestamp`, MariaDB DATETIME, and
 * TIMESTAMP in the sync's UTC sessions), as `YYYY-MM-DD HH:MM:SS.ffffff`: JS Dates and strings with a zone (`...Z`,
 * `...+02`, `...-04:56:02`) become their UTC time, zone-less text is kept as the wall-clock time
 * it is (only a `T` becomes a space); the fraction's digits are kept. Anything else is returned
 * as it is.
 */
export function utcDateTime(value: unknown): unknown {
  if (value instanceof Date) {
    return `${pad(value.getUTCFullYear(), 4)}-${pad(value.getUTCMonth() + 1)}-${pad(value.getUTCDate())} ${pad(value.getUTCHours())}:${pad(value.getUTCMinutes())}:${pad(value.getUTCSeconds())}.${pad(value.getUTCMilliseconds(), 3)}`;
  }
  if (typeof value !== "string") return value;
  const m = ZONED.exec(value.trim());
  if (!m) return value;
  const [, y, mo, d, h, mi, s, fraction = "", zone] = m;
  if (!zone) return `${y}-${mo}-${d} ${h}:${mi}:${s}${fraction}`;
  let offsetSeconds = 0;
  if (zone.toUpperCase() !== "Z") {
    // PostgreSQL writes historical offsets to the second (`-04:56:02`, New York before 1883).
    const digits = zone.replace(/:/g, "");
    offsetSeconds =
      (digits[0] === "-" ? -1 : 1) *
      (Number(digits.slice(1, 3)) * 3600 +
        Number(digits.slice(3, 5) || 0) * 60 +
        Number(digits.slice(5, 7) || 0));
  }
  // setUTCFullYear: Date.UTC would read the years 0-99 as 1900-1999.
  const utc = new Date(0);
  utc.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  utc.setUTCHours(Number(h), Number(mi), Number(s) - offsetSeconds);
  return `${pad(utc.getUTCFullYear(), 4)}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())} ${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}${fraction}`;
}
