import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { BreakerCounts, BreakerStrategy } from "./breaker-strategy.js";
import { checkCount, checkRange } from "./internal.js";

/** Options of {@link failureRate}. */
export interface FailureRateOptions {
  /** The failure ratio in (0, 1] that opens the circuit. Default 0.5. */
  threshold?: number;
  /** Calls the window must hold before the ratio is trusted. Default 20. */
  minimumCalls?: number;
  /** How far back calls count. Default `"1m"`. */
  window?: Duration;
  /** Time slices of the window; the oldest drops out as time moves. Default 10. */
  buckets?: number;
}

/**
 * Opens the circuit when, over a sliding `window`, at least `minimumCalls` calls were made and the
 * share of failures reaches `threshold`. The window is `buckets` time slices; old slices drop out
 * as time passes, so old failures decay and a handful spread over days never open it.
 *
 * @example circuitBreaker({ strategy: failureRate({ threshold: 0.5, minimumCalls: 20, window: "30s" }) })
 */
export function failureRate(options: FailureRateOptions = {}): BreakerStrategy {
  const threshold = checkRange(options.threshold ?? 0.5, "failureRate threshold", Number.MIN_VALUE, 1);
  const minimumCalls = checkCount(options.minimumCalls ?? 20, "failureRate minimumCalls", 1);
  const windowMs = toMs(options.window ?? "1m", "failureRate window");
  const buckets = checkCount(options.buckets ?? 10, "failureRate buckets", 1);
  const bucketMs = windowMs / buckets;
  if (!(bucketMs >= 1)) {
    throw new InvalidArgumentError(
      `failureRate window (${windowMs} ms) must be at least 1 ms per bucket (${buckets} buckets)`,
      "window",
    );
  }
  return { create: () => new FailureRateCounts(threshold, minimumCalls, bucketMs, buckets) };
}

/** One time slice: `slot` is the absolute slice number, floor(time / bucketMs). */
interface Bucket {
  slot: number;
  successes: number;
  failures: number;
}

class FailureRateCounts implements BreakerCounts {
  #ring: Bucket[];

  constructor(
    readonly threshold: number,
    readonly minimumCalls: number,
    readonly bucketMs: number,
    readonly buckets: number,
  ) {
    this.#ring = Array.from({ length: buckets }, () => ({ slot: -1, successes: 0, failures: 0 }));
  }

  success(now: number): void {
    this.#bucket(now).successes++;
  }

  failure(now: number): boolean {
    this.#bucket(now).failures++;
    const oldest = Math.floor(now / this.bucketMs) - this.buckets;
    let calls = 0;
    let failures = 0;
    for (const b of this.#ring) {
      if (b.slot > oldest) {
        calls += b.successes + b.failures;
        failures += b.failures;
      }
    }
    return calls >= this.minimumCalls && failures / calls >= this.threshold;
  }

  reset(): void {
    for (const b of this.#ring) b.slot = -1;
  }

  /** The bucket for `now`, recycled from the slice it held a full window ago. */
  #bucket(now: number): Bucket {
    const slot = Math.floor(now / this.bucketMs);
    const bucket = this.#ring[slot % this.buckets] as Bucket;
    if (bucket.slot !== slot) {
      bucket.slot = slot;
      bucket.successes = 0;
      bucket.failures = 0;
    }
    return bucket;
  }

  toJSON(): unknown {
    return {
      buckets: this.#ring
        .filter((b) => b.slot >= 0)
        .sort((a, b) => a.slot - b.slot)
        .map((b) => ({ start: b.slot * this.bucketMs, successes: b.successes, failures: b.failures })),
    };
  }

  restore(saved: unknown): void {
    const buckets = (saved as { buckets?: unknown } | null)?.buckets;
    const valid =
      Array.isArray(buckets) &&
      buckets.every((b: unknown) => {
        const { start, successes, failures } = (b ?? {}) as Record<string, unknown>;
        return [start, successes, failures].every(
          (n) => typeof n === "number" && Number.isFinite(n) && n >= 0,
        );
      });
    if (!valid) {
      throw new InvalidArgumentError(
        "initialState.counts of a failureRate breaker must be { buckets: { start, successes, failures }[] }",
        "initialState.counts",
      );
    }
    this.reset();
    for (const b of buckets as { start: number; successes: number; failures: number }[]) {
      const bucket = this.#bucket(b.start);
      bucket.successes += b.successes;
      bucket.failures += b.failures;
    }
  }
}
