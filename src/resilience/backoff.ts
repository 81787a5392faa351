/**
 * How long to wait before each retry. Jittered strategies spread the retries of many clients over
 * time, so a recovering dependency is not hit by synchronized waves.
 */
import { InvalidArgumentError } from "../core/errors.js";
import { toMs, type Duration } from "../core/duration.js";
import { checkRange } from "./internal.js";

/** A backoff strategy: the delay before a retry. Stateless, so one instance serves every call. */
export interface Backoff {
  /**
   * The delay in ms before retry number `attempt` (1 for the first retry).
   * @param previousMs the delay used before the previous retry (`undefined` before the first)
   * @param random a source of uniform numbers in [0, 1), such as `Math.random`
   */
  delay(attempt: number, previousMs: number | undefined, random: () => number): number;
}

/** The same delay before every retry. */
export function constant(delay: Duration): Backoff {
  const ms = toMs(delay, "constant backoff delay");
  return { delay: () => ms };
}

/** Options of {@link exponential}. */
export interface ExponentialOptions {
  /** The delay before the first retry, before jitter. Default `"100ms"`. */
  initial?: Duration;
  /** The cap on the un-jittered delay. Default `"30s"`. */
  max?: Duration;
  /** The growth per retry, >= 1. Default 2. */
  factor?: number;
  /**
   * `"full"` (default): a uniformly random delay in [0, capped delay) ("full jitter", AWS).
   * `"none"`: exactly the capped delay; only for a single client or tests.
   */
  jitter?: "full" | "none";
}

/**
 * Exponential backoff with full jitter: `random() * min(max, initial * factor^(attempt-1))`.
 *
 * The jitter is applied after the cap, so clients that have reached the cap still wait different
 * times; capping after jitter (the common bug) makes every client wait exactly `max`, together.
 *
 * @example retry({ backoff: exponential({ initial: "200ms", max: "10s" }) })
 */
export function exponential(options: ExponentialOptions = {}): Backoff {
  const initial = toMs(options.initial ?? "100ms", "exponential backoff initial");
  const max = toMs(options.max ?? "30s", "exponential backoff max");
  const factor = checkRange(options.factor ?? 2, "exponential backoff factor", 1, Number.MAX_VALUE);
  const jitter = options.jitter ?? "full";
  if (jitter !== "full" && jitter !== "none") {
    throw new InvalidArgumentError(
      `exponential backoff jitter must be "full" or "none", got ${JSON.stringify(jitter)}`,
      "jitter",
    );
  }
  return {
    delay(attempt, _previousMs, random) {
      // initial 0 * Infinity (a huge attempt number) would be NaN: 0 stays 0.
      const grown = initial === 0 ? 0 : initial * factor ** (attempt - 1);
      const capped = grown < max ? grown : max;
      return jitter === "full" ? Math.floor(random() * capped) : capped;
    },
  };
}

/** Options of {@link decorrelatedJitter}. */
export interface DecorrelatedJitterOptions {
  /** The smallest delay. Default `"100ms"`. */
  initial?: Duration;
  /** The largest delay. Default `"30s"`. */
  max?: Duration;
}

/**
 * "Decorrelated jitter" (AWS Architecture Blog): each delay is random between `initial` and three
 * times the previous delay, capped at `max`. Grows like exponential backoff on average while
 * keeping clients apart.
 */
export function decorrelatedJitter(options: DecorrelatedJitterOptions = {}): Backoff {
  const initial = toMs(options.initial ?? "100ms", "decorrelated jitter initial");
  const max = toMs(options.max ?? "30s", "decorrelated jitter max");
  if (initial > max) {
    throw new InvalidArgumentError(
      `decorrelated jitter initial (${initial} ms) must not exceed max (${max} ms)`,
      "initial",
    );
  }
  return {
    delay(_attempt, previousMs, random) {
      const high = Math.max(initial, (previousMs ?? initial) * 3);
      return Math.min(max, Math.floor(initial + random() * (high - initial)));
    },
  };
}
