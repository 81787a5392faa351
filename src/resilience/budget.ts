/**
 * A retry budget shared by many calls: during an outage, when most calls fail, it stops retries so
 * they cannot multiply the load on a struggling dependency (gRPC retry throttling).
 */
import { checkRange } from "./internal.js";

/** Options of {@link retryBudget}. */
export interface RetryBudgetOptions {
  /** The bucket size; it starts full. Default 10. */
  maxTokens?: number;
  /** Tokens a success gives back, in (0, 1]. Default 0.1: ten successes refund one failure. */
  tokenRatio?: number;
}

/** A token bucket deciding whether retries are allowed right now. */
export interface RetryBudget {
  /** Tokens left, in [0, maxTokens]. */
  readonly tokens: number;
  /** True while tokens > maxTokens / 2: a retry may be made. */
  canRetry(): boolean;
  /** A failed attempt: costs one token. */
  recordFailure(): void;
  /** A successful attempt: gives `tokenRatio` back, up to `maxTokens`. */
  recordSuccess(): void;
}

/**
 * A retry budget in the style of gRPC retry throttling: tokens start at `maxTokens`; each failed
 * attempt costs 1, each success gives back `tokenRatio` (capped at `maxTokens`); a retry is allowed
 * only while tokens > maxTokens / 2. Share one budget across the calls (and policies) that hit the
 * same dependency.
 *
 * @example
 * const budget = retryBudget();
 * const a = retry({ budget }), b = retry({ budget });
 */
export function retryBudget(options: RetryBudgetOptions = {}): RetryBudget {
  // Whole thousandths of a token, as gRPC does, so 0.1 added ten times is exactly 1.
  const max = Math.round(checkRange(options.maxTokens ?? 10, "maxTokens", 0.001, 1_000_000) * 1000);
  const ratio = Math.round(checkRange(options.tokenRatio ?? 0.1, "tokenRatio", 0.001, 1) * 1000);
  let tokens = max;
  return {
    get tokens() {
      return tokens / 1000;
    },
    canRetry: () => tokens > max / 2,
    recordFailure() {
      tokens = Math.max(0, tokens - 1000);
    },
    recordSuccess() {
      tokens = Math.min(max, tokens + ratio);
    },
  };
}
