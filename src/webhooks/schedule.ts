import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { retryWait } from "../resilience/classify.js";

/**
 * The default retry schedule (Standard Webhooks / Svix practice): the wait before each attempt —
 * the first at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h. Eight attempts over about
 * 27.6 hours; after the last failure the message is marked failed.
 */
export const DEFAULT_RETRY_SCHEDULE: readonly Duration[] = [
  "0s",
  "5s",
  "5m",
  "30m",
  "2h",
  "5h",
  "10h",
  "10h",
];

/** When to make the next attempt, given how the last one went. */
export interface RetrySchedule {
  /** Attempts in one round (the schedule's length). */
  readonly attempts: number;
  /** The wait before attempt 1 of a round (normally 0). */
  firstDelay(random: () => number): number;
  /**
   * The wait after attempt `attempt` (1-based, within the round) failed, or `undefined` when the
   * round is over. A `Retry-After` wait is honoured: the next attempt is never earlier than it asked
   * (up to `maxRetryAfterMs`).
   */
  nextDelay(attempt: number, random: () => number, retryAfterMs?: number): number | undefined;
}

/** Options of {@link retrySchedule}. */
export interface RetryScheduleOptions {
  /** The wait before each attempt. Default {@link DEFAULT_RETRY_SCHEDULE}. */
  delays?: readonly Duration[];
  /** Each wait varies by up to this fraction either way, so retries of many messages spread out. Default 0.1. */
  jitter?: number;
  /** The longest `Retry-After` honoured. Default 24 h. */
  maxRetryAfter?: Duration;
}

/** Builds a {@link RetrySchedule}. */
export function retrySchedule(options: RetryScheduleOptions = {}): RetrySchedule {
  const delays = (options.delays ?? DEFAULT_RETRY_SCHEDULE).map((d, i) => toMs(d, `retry schedule [${i}]`));
  if (delays.length === 0 || delays.length > 100) {
    throw new InvalidArgumentError("the retry schedule needs 1 to 100 entries", "retry.schedule");
  }
  const jitter = options.jitter ?? 0.1;
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new InvalidArgumentError(`retry jitter is a fraction in [0, 1], got ${jitter}`, "retry.jitter");
  }
  const maxRetryAfter = toMs(options.maxRetryAfter ?? "24h", "maxRetryAfter");
  const jittered = (ms: number, random: () => number) =>
    ms === 0 ? 0 : Math.max(0, Math.round(ms * (1 + jitter * (2 * random() - 1))));

  return {
    attempts: delays.length,
    firstDelay: (random) => jittered(delays[0] ?? 0, random),
    nextDelay(attempt, random, retryAfterMs) {
      const next = delays[attempt];
      if (next === undefined) return undefined;
      const scheduled = jittered(next, random);
      return retryWait(
        scheduled,
        retryAfterMs === undefined ? undefined : Math.min(retryAfterMs, maxRetryAfter),
      );
    },
  };
}
