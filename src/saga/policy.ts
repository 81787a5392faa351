/**
 * When a failed step (or compensation) is tried again, and when the saga gives up on it. Pure:
 * the runner stores the decision (the attempt count and the next run time), so a restart neither
 * resets nor loses a retry.
 */
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import { exponential, type Backoff } from "../resilience/backoff.js";
import { retryAfterMsOf, retryWait } from "../resilience/classify.js";

/** How a step (or its compensation) is retried. Every retry is durable: attempts and due times live in the store. */
export interface SagaRetryOptions {
  /** Attempts in all, the first included. Default 3 for steps, 10 for compensations. */
  maxAttempts?: number;
  /** Wait before each retry. Default exponential 1 s → 1 min (steps), 1 s → 5 min (compensations), full jitter. */
  backoff?: Backoff;
  /**
   * Whether an error is worth another attempt. Default: every error except non-retryable Patchbay
   * errors (`NonRetryableError`, `SCHEMA_INVALID`, ...) — throw a `NonRetryableError` to compensate at once.
   */
  retryOn?: (error: unknown) => boolean;
}

/** A {@link SagaRetryOptions} with every field decided. */
export interface RetrySettings {
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  readonly retryOn: (error: unknown) => boolean;
}

/** The default `retryOn`: all but Patchbay errors that say they are not retryable. */
export const retryUnlessNonRetryable = (e: unknown): boolean => !(isPatchbayError(e) && !e.retryable);

/** Defaults of a step's `retry`. */
export const STEP_RETRY: RetrySettings = {
  maxAttempts: 3,
  backoff: exponential({ initial: "1s", max: "1m" }),
  retryOn: retryUnlessNonRetryable,
};

/** Defaults of a step's `compensateRetry`: a compensation tries harder before the saga is stuck. */
export const COMPENSATE_RETRY: RetrySettings = {
  maxAttempts: 10,
  backoff: exponential({ initial: "1s", max: "5m" }),
  retryOn: retryUnlessNonRetryable,
};

/** Fills `options` over `base`, checking every field. `what` names the option in errors. */
export function retrySettings(
  options: SagaRetryOptions | undefined,
  base: RetrySettings,
  what: string,
): RetrySettings {
  if (options === undefined) return base;
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`${what} must be an object`, what);
  }
  const maxAttempts = options.maxAttempts ?? base.maxAttempts;
  if (!(Number.isSafeInteger(maxAttempts) || maxAttempts === Number.POSITIVE_INFINITY) || maxAttempts < 1) {
    throw new InvalidArgumentError(
      `${what}.maxAttempts must be an integer >= 1 (or Infinity)`,
      `${what}.maxAttempts`,
    );
  }
  const backoff = options.backoff ?? base.backoff;
  if (typeof backoff?.delay !== "function") {
    throw new InvalidArgumentError(
      `${what}.backoff must be a Backoff (exponential(), constant(), ...)`,
      `${what}.backoff`,
    );
  }
  const retryOn = options.retryOn ?? base.retryOn;
  if (typeof retryOn !== "function") {
    throw new InvalidArgumentError(`${what}.retryOn must be a function`, `${what}.retryOn`);
  }
  return { maxAttempts, backoff, retryOn };
}

/** After the pivot the saga can only go forward: retryable failures are retried without limit. */
export function forever(settings: RetrySettings): RetrySettings {
  return { ...settings, maxAttempts: Number.POSITIVE_INFINITY };
}

/** What to do after an attempt failed. */
export type FailureDecision =
  { kind: "retry"; delayMs: number } | { kind: "give-up"; reason: "attempts" | "not-retryable" };

/**
 * Decides what follows failed attempt number `attempt` (1 for the first). A `retryAfterMs` on the
 * error (an HTTP client sets it from `Retry-After`, a breaker from its open time) stretches the
 * backoff's wait to it and never shortens it, as in `retry()` (see `retryWait`).
 */
export function decideAfterFailure(
  settings: RetrySettings,
  attempt: number,
  error: unknown,
  previousDelayMs: number | undefined,
  random: () => number = Math.random,
): FailureDecision {
  if (!settings.retryOn(error)) return { kind: "give-up", reason: "not-retryable" };
  if (attempt >= settings.maxAttempts) return { kind: "give-up", reason: "attempts" };
  const backoff = settings.backoff.delay(attempt, previousDelayMs, random);
  const waited = retryWait(backoff, retryAfterMsOf(error));
  // An endless hint (a breaker isolated by hand) must not park the saga forever: the backoff then.
  const delayMs = Number.isFinite(waited) ? waited : retryWait(backoff, undefined);
  return { kind: "retry", delayMs: Math.round(delayMs) };
}

/** When a retry runs: `now + delay`, but never past the saga's deadline (it compensates then). */
export function retryAt(now: number, delayMs: number, deadline: number | undefined): number {
  const at = now + delayMs;
  return deadline === undefined ? at : Math.min(at, deadline);
}
