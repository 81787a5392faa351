/**
 * A warning that can repeat thousands of times a second (every attempt an open circuit breaker
 * refuses), summarised: per key, at most one `warn` line per interval of the injected clock; the
 * occurrences in between go to `debug`, so nothing is lost at that level. Each warn line carries
 * `count`, the occurrences since the key's previous warn line (this one included), and `since`,
 * when that previous line was written.
 */
import type { Clock } from "./clock.js";
import type { Logger } from "./logger.js";

/** The default interval between two warn lines of one key: 10 s. */
export const WARN_SUMMARY_INTERVAL_MS = 10_000;

/** Logs one occurrence of `key` (see {@link summarizedWarn}). */
export type SummarizedWarn = (key: string, fields: Record<string, unknown>, msg: string) => void;

/**
 * Builds the summarising `warn`. Keys are what one line stands for (a saga step, a consumer
 * group): keep them few, since each is remembered for the life of the logger.
 *
 * @example
 * const refused = summarizedWarn(logger, clock);
 * refused(`${saga}/${step}`, { sagaId, attempt }, "step refused by an open circuit breaker");
 */
export function summarizedWarn(
  logger: Logger,
  clock: Clock,
  intervalMs = WARN_SUMMARY_INTERVAL_MS,
): SummarizedWarn {
  /** Per key: when its last warn line was written, and the occurrences logged at debug since. */
  const keys = new Map<string, { warnedAt: number; quiet: number }>();
  return (key, fields, msg) => {
    const now = clock.now();
    const last = keys.get(key);
    // A clock set back (a test's fake clock) starts a new interval rather than silencing the key.
    if (last !== undefined && now >= last.warnedAt && now - last.warnedAt < intervalMs) {
      last.quiet++;
      logger.debug(fields, msg);
      return;
    }
    keys.set(key, { warnedAt: now, quiet: 0 });
    logger.warn(
      {
        ...fields,
        count: (last?.quiet ?? 0) + 1,
        ...(last === undefined ? {} : { since: new Date(last.warnedAt).toISOString() }),
      },
      msg,
    );
  };
}
