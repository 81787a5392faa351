import { AttemptContext, hasRun, rootContext, RUN, type ContextPolicy } from "./internal.js";
import type { FallbackPolicy } from "./fallback.js";
import type { Policy, PolicyContext, PolicyFn } from "./policy.js";

/** Runs `fn` with no policy around it, as a promise (a sync throw becomes a rejection). */
async function bare<T>(fn: PolicyFn<T>, ctx: PolicyContext): Promise<T> {
  return await fn(ctx);
}

/** Anything {@link wrap} composes: a {@link Policy} or a {@link FallbackPolicy}. */
export type AnyPolicy = Policy | FallbackPolicy<unknown>;

/** The extra result type the fallbacks among `P` may produce (`never` when there are none). */
export type FallbackResult<P> = P extends FallbackPolicy<infer R> ? (P extends Policy ? never : R) : never;

/** Policies composed by {@link wrap}; a plain {@link Policy} when no fallback is among them. */
export interface WrappedPolicy<R = never> {
  /** The composed policies, outermost first. */
  readonly policies: readonly AnyPolicy[];
  /** Runs `fn` through every policy, outermost first. */
  execute<T>(fn: PolicyFn<T>, signal?: AbortSignal): Promise<T | R>;
}

/**
 * Composes policies; the first is the OUTERMOST (it sees the whole call, retries included), the
 * last the innermost (it sees each single attempt). The context reaching `fn` carries the
 * innermost signal (every outer signal combined into it) and the attempt number of the innermost
 * retry policy among them.
 *
 * Recommended order:
 *
 * ```ts
 * wrap(bulkhead({ limit: 10 }), timeout("10s"), retry(), circuitBreaker(), timeout("2s"))
 * ```
 *
 * - the bulkhead outermost, so a call holds one slot for all its attempts and waits;
 * - the overall timeout outside the retry bounds attempts and backoff waits together;
 * - the breaker inside the retry sees every attempt, so each failure counts;
 * - the per-attempt timeout inside the breaker: a hung attempt becomes a `TIMEOUT` failure the
 *   breaker counts (and the retry retries);
 * - an open breaker's `CIRCUIT_OPEN` is not retryable, so the retry stops at once instead of
 *   spinning against it.
 *
 * @example
 * const policy = wrap(timeout("10s"), retry({ maxAttempts: 4 }), circuitBreaker(), timeout("2s"));
 * const body = await policy.execute(({ signal, attempt }) => get(url, { signal, attempt }), signal);
 */
export function wrap<const P extends readonly AnyPolicy[]>(
  ...policies: P
): WrappedPolicy<FallbackResult<P[number]>> {
  const layers = [...policies] as Policy[];
  const count = layers.length;

  const runFrom = <T>(index: number, fn: PolicyFn<T>, parent: PolicyContext): PromiseLike<T> | T => {
    if (index === count) return fn(parent);
    const layer = layers[index] as Policy;
    // The fallbacks' extra result type is accounted for in wrap's return type.
    if (hasRun(layer)) return layer[RUN]((ctx) => runFrom(index + 1, fn, ctx), parent) as Promise<T>;
    // A foreign policy: hand it a real signal; it reports attempt 1 unless it retries itself.
    return layer.execute(
      (ctx) =>
        runFrom(
          index + 1,
          fn,
          ctx.attempt === 1 && parent.attempt !== 1 ? new AttemptContext(ctx, parent.attempt) : ctx,
        ),
      parent.signal,
    );
  };

  const run = <T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T> =>
    count === 0 ? bare(fn, parent) : (runFrom(0, fn, parent) as Promise<T>);

  const wrapped: WrappedPolicy & ContextPolicy = {
    policies: layers,
    [RUN]: run,
    execute: (fn, signal) => run(fn, rootContext(signal)),
  };
  return wrapped;
}
