/**
 * The one interface every resilience policy implements, so policies compose with {@link wrap}
 * and the HTTP client can take any of them.
 */

/**
 * What a policy hands to the function it runs. Read its fields (or destructure them); do not
 * spread or copy the object: `signal` may be created on first read.
 */
export interface PolicyContext {
  /**
   * Aborts when the call should stop: the caller's signal, combined by a timeout policy with its
   * own deadline. Pass it on to `fetch`, database drivers and sleeps. Never `undefined`: when the
   * caller gave none, it is a signal that never aborts.
   */
  readonly signal: AbortSignal;
  /** The attempt number given by the nearest retry policy around the call: 1, 2, ...; 1 without one. */
  readonly attempt: number;
}

/** The function a policy runs. It may return a value or a promise. */
export type PolicyFn<T> = (ctx: PolicyContext) => PromiseLike<T> | T;

/**
 * A resilience policy: runs a function under some rule (retry, circuit breaker, timeout, ...).
 *
 * @example
 * const user = await policy.execute(({ signal }) => fetch(url, { signal }).then((r) => r.json()), signal);
 */
export interface Policy {
  /**
   * Runs `fn` under this policy and settles with its result, or with the error that ended it.
   * @param signal the caller's signal: aborting it stops the call (waits end at once).
   */
  execute<T>(fn: PolicyFn<T>, signal?: AbortSignal): Promise<T>;
}
