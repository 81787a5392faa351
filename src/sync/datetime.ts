/**
 * Date/time text between databases: the one rule every sync destination applies when a column
 * has no time zone. An instant (a value with an offset) is written as its UTC wall-clock time;
 * PostgreSQL would drop the offset and keep the local time, MariaDB would refuse it.
 */

const pad = (n: number, width = 2) => String(n).padStart(width, "0");
// PostgreSQL writes years past 9999 with more digits (`10000-01-01`, up to 294276) and years
// before 1 AD with a suffix (`0044-03-15 12:00:00+00 BC`, the year 44 BC: astronomical -43).
const ZONED =
  /^(\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?(\s+BC)?$/i;

/** An astronomical year as text: four digits at least, ` BC` (as PostgreSQL writes it) for 0 and before. */
const yearText = (year: number) =>
  year > 0 ? { text: pad(year, 4), era: "" } : { text: pad(1 - year, 4), era: " BC" };

/**
 * A date/time for a column without a time zone (PostgreSQL `timestamp`, MariaDB DATETIME, and
 * TIMESTAMP in the sync's UTC sessions), as `YYYY-MM-DD HH:MM:SS.ffffff`: JS Dates and strings with a zone (`...Z`,
 * `...+02`, `...-04:56:02`) become their UTC time, zone-less text is kept as the wall-clock time
 * it is (only a `T` becomes a space); the fraction's digits are kept. Anything else is returned
 * as it is.
 */
export function utcDateTime(value: unknown): unknown {
  if (value instanceof Date) {
    const { text, era } = yearText(value.getUTCFullYear());
    return `${text}-${pad(value.getUTCMonth() + 1)}-${pad(value.getUTCDate())} ${pad(value.getUTCHours())}:${pad(value.getUTCMinutes())}:${pad(value.getUTCSeconds())}.${pad(value.getUTCMilliseconds(), 3)}${era}`;
  }
  if (typeof value !== "string") return value;
  const m = ZONED.exec(value.trim());
  if (!m) return value;
  const [, y, mo, d, h, mi, s, fraction = "", zone, bc] = m;
  if (!zone) return `${y}-${mo}-${d} ${h}:${mi}:${s}${fraction}${bc ? " BC" : ""}`;
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
  // Calendar arithmetic of its own: a JS Date ends at the year 275760, PostgreSQL at 294276.
  const seconds =
    daysFromCivil(bc ? 1 - Number(y) : Number(y), Number(mo), Number(d)) * 86_400 +
    Number(h) * 3600 +
    Number(mi) * 60 +
    Number(s) -
    offsetSeconds;
  const days = Math.floor(seconds / 86_400);
  const time = seconds - days * 86_400;
  const [year, month, day] = civilFromDays(days);
  const { text, era } = yearText(year);
  return `${text}-${pad(month)}-${pad(day)} ${pad(Math.floor(time / 3600))}:${pad(Math.floor(time / 60) % 60)}:${pad(time % 60)}${fraction}${era}`;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 0 is 1 BC). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The date of a day since 1970-01-01: [astronomical year, month, day]. */
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}
