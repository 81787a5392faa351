/**
 * The contract between a circuit breaker and the rule that decides when it opens. Strategies are
 * descriptions: each breaker asks its strategy for its own fresh {@link BreakerCounts}, so one
 * strategy value can configure many breakers without them sharing counts.
 */

/** A rule for opening a circuit: {@link consecutive} or {@link failureRate}. */
export interface BreakerStrategy {
  /** Makes the counts of one breaker. */
  create(): BreakerCounts;
}

/** The failure counts of one closed circuit. */
export interface BreakerCounts {
  /** Records a success at time `now` (ms since the epoch). */
  success(now: number): void;
  /** Records a failure at time `now`; true when the circuit should open. */
  failure(now: number): boolean;
  /** Forgets every count (the circuit opened or closed again). */
  reset(): void;
  /** The counts as plain JSON, for {@link CircuitBreakerPolicy.toJSON}. */
  toJSON(): unknown;
  /** Loads counts saved by `toJSON()`; throws `INVALID_ARGUMENT` when they cannot be read. */
  restore(saved: unknown): void;
}
