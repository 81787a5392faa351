import { isAborted, rootContext, RUN, type ContextPolicy } from "./internal.js";
import type { PolicyContext, PolicyFn } from "./policy.js";

/** Options of {@link fallback}. */
export interface FallbackOptions {
  /** Which errors the fallback answers; the others pass through. Default: every error. */
  handle?: (error: unknown) => boolean;
}

/**
 * A policy that answers with a fallback instead of failing. Its result type widens by `R`, so it
 * is not a plain {@link Policy}; {@link wrap} carries `R` into the composed result type.
 */
export interface FallbackPolicy<R> {
  /** Runs `fn`; on a handled error, settles with the fallback instead. */
  execute<T>(fn: PolicyFn<T>, signal?: AbortSignal): Promise<T | R>;
}

/**
 * Returns a fallback when the call fails: a value, or a function of the error (sync or async).
 * A call the caller aborted is never answered with a fallback: its error passes through.
 *
 * @example
 * const prices = wrap(fallback(() => cache.lastPrices()), retry(), breaker);
 * const list = await prices.execute(({ signal }) => api.prices({ signal }));
 */
export function fallback<R>(
  valueOrFn: ((error: unknown) => PromiseLike<R> | R) | R,
  options: FallbackOptions = {},
): FallbackPolicy<R> {
  const { handle } = options;
  const answer =
    typeof valueOrFn === "function"
      ? (valueOrFn as (error: unknown) => PromiseLike<R> | R)
      : (): R => valueOrFn;
  async function run<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T | R> {
    try {
      return await fn(parent);
    } catch (error) {
      if (isAborted(parent) || (handle !== undefined && !handle(error))) throw error;
      return await answer(error);
    }
  }
  const policy: FallbackPolicy<R> & ContextPolicy<R> = {
    [RUN]: run,
    execute: (fn, signal) => run(fn, rootContext(signal)),
  };
  return policy;
}
