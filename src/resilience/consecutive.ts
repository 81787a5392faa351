import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { BreakerCounts, BreakerStrategy } from "./breaker-strategy.js";
import { checkCount } from "./internal.js";

/** Options of {@link consecutive}. */
export interface ConsecutiveOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  threshold?: number;
  /** Failures older than this are forgotten, so a few failures a day never open it. Default `"1m"`. */
  window?: Duration;
}

/**
 * Opens the circuit after `threshold` failures in a row, all within `window`. A success resets
 * the count; a failure older than `window` no longer counts.
 *
 * @example circuitBreaker({ strategy: consecutive({ threshold: 5, window: "1m" }) })
 */
export function consecutive(options: ConsecutiveOptions = {}): BreakerStrategy {
  const threshold = checkCount(options.threshold ?? 5, "consecutive threshold", 1);
  const windowMs = toMs(options.window ?? "1m", "consecutive window");
  return { create: () => new ConsecutiveCounts(threshold, windowMs) };
}

class ConsecutiveCounts implements BreakerCounts {
  /** Times of the current run of failures, oldest first; never longer than `threshold`. */
  #failures: number[] = [];

  constructor(
    readonly threshold: number,
    readonly windowMs: number,
  ) {}

  success(): void {
    if (this.#failures.length > 0) this.#failures = [];
  }

  failure(now: number): boolean {
    const failures = this.#failures;
    failures.push(now);
    if (failures.length > this.threshold) failures.shift();
    while (failures.length > 0 && (failures[0] as number) <= now - this.windowMs) failures.shift();
    return failures.length >= this.threshold;
  }

  reset(): void {
    this.#failures = [];
  }

  toJSON(): unknown {
    return { failures: [...this.#failures] };
  }

  restore(saved: unknown): void {
    const failures = (saved as { failures?: unknown } | null)?.failures;
    if (!Array.isArray(failures) || !failures.every((t) => typeof t === "number" && Number.isFinite(t))) {
      throw new InvalidArgumentError(
        "initialState.counts of a consecutive breaker must be { failures: number[] }",
        "initialState.counts",
      );
    }
    this.#failures = (failures as number[]).slice(-this.threshold);
  }
}
