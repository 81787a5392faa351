import { DurationError } from "./errors.js";

/** A span of time: milliseconds as a number, or a string such as `"250ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"7d"`. */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;

/**
 * Converts a {@link Duration} to whole milliseconds.
 *
 * Accepts non-negative finite numbers (ms) and strings made of `<number><unit>` parts, units
 * `ms s m h d w` (`"1h30m"`). Anything else throws a {@link DurationError} (`DURATION_INVALID`).
 *
 * @example toMs("30s") === 30_000; toMs(250) === 250; toMs("1h30m") === 5_400_000
 */
export function toMs(duration: Duration, what = "duration"): number {
  if (typeof duration === "number") {
    if (!Number.isFinite(duration) || duration < 0) {
      throw new DurationError(
        `${what} must be a finite number of milliseconds >= 0, got ${duration}`,
        duration,
      );
    }
    return Math.round(duration);
  }
  if (typeof duration !== "string") {
    throw new DurationError(
      `${what} must be a number (ms) or a string like "30s", got ${typeof duration}`,
      duration,
    );
  }
  const text = duration.trim();
  let total = 0;
  // A bare number in a string is milliseconds, as a number would be.
  if (/^\d+(\.\d+)?$/.test(text)) total = Number(text);
  else {
    PART.lastIndex = 0;
    let consumed = 0;
    for (let m = PART.exec(text); m !== null; m = PART.exec(text)) {
      total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
      consumed = PART.lastIndex;
    }
    if (text.length === 0 || consumed !== text.length) {
      throw new DurationError(
        `${what} ${JSON.stringify(duration)} is not a duration; use ms as a number or units ms, s, m, h, d, w (e.g. "30s", "1h30m")`,
        duration,
      );
    }
  }
  if (!Number.isFinite(total))
    throw new DurationError(`${what} ${JSON.stringify(duration)} is too large`, duration);
  return Math.round(total);
}
