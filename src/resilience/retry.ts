import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { exponential, type Backoff } from "./backoff.js";
import type { RetryBudget } from "./budget.js";
import { isRetryableError, retryAfterMsOf, retryWait } from "./classify.js";
import {
  abortReason,
  AttemptContext,
  checkCount,
  checkFunction,
  isAborted,
  Listeners,
  ROOT_CONTEXT,
  rootContext,
  RUN,
  type ContextPolicy,
} from "./internal.js";
import type { Policy, PolicyContext, PolicyFn } from "./policy.js";

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Total attempts, the first one included; `Infinity` to rely on `deadline`/`budget`. Default 3. */
  maxAttempts?: number;
  /** The wait before each retry. Default `exponential()` (100 ms doubling to 30 s, full jitter). */
  backoff?: Backoff;
  /** Whether an error is worth another attempt. Default {@link isRetryableError}. */
  retryOn?: (error: unknown) => boolean;
  /**
   * The overall time allowed, across attempts and waits. Retrying stops (at once, without waiting)
   * when the next wait would end past it. It does not cut a running attempt short: put a
   * `timeout()` outside the retry for that.
   */
  deadline?: Duration;
  /** A retry budget to share with other calls; retries stop while it is exhausted. */
  budget?: RetryBudget;
  /** The source of time for waits and the deadline. Default the system clock. */
  clock?: Clock;
  /** Uniform numbers in [0, 1) for jitter. Default `Math.random`. */
  random?: () => number;
}

/** Emitted before each wait. */
export interface RetryEvent {
  /** The error of the attempt that failed. */
  readonly error: unknown;
  /** The number of the attempt that failed (1 for the first); the next attempt is `attempt + 1`. */
  readonly attempt: number;
  /** How long the policy waits before the next attempt. */
  readonly delayMs: number;
}

/** Why a retry policy stopped retrying. */
export type GiveUpReason = "attempts" | "deadline" | "budget" | "not-retryable" | "aborted";

/** Emitted once when a call ends in failure. */
export interface GiveUpEvent {
  /** The last error; the call rejects with it (or with the abort reason, for `"aborted"`). */
  readonly error: unknown;
  /** Attempts made. */
  readonly attempts: number;
  /** Why no further attempt is made. */
  readonly reason: GiveUpReason;
}

/** A {@link Policy} that retries failed attempts. */
export interface RetryPolicy extends Policy {
  /** Listens to every retry (before its wait); returns a function that unsubscribes. */
  onRetry(listener: (event: RetryEvent) => void): () => void;
  /** Listens to calls that end in failure; returns a function that unsubscribes. */
  onGiveUp(listener: (event: GiveUpEvent) => void): () => void;
}

/**
 * Retries a function while its errors are transient, with backoff between attempts.
 *
 * - Only errors `retryOn` accepts are retried (default {@link isRetryableError}: never
 *   programming errors, aborts, validation errors or an open circuit).
 * - An error carrying `retryAfterMs` (a `Retry-After` header, an open breaker's time to half-open)
 *   stretches the wait to it; it never shortens the backoff (see {@link retryWait}).
 * - The caller's signal stops a wait at once (the call rejects with the signal's reason) and is
 *   handed unchanged to each attempt.
 * - When retrying stops for the budget, the deadline or the attempt limit, the call rejects with
 *   the last error unchanged; `onGiveUp` says why.
 *
 * @example
 * const policy = retry({ maxAttempts: 5, deadline: "20s", backoff: exponential({ max: "5s" }) });
 * const res = await policy.execute(({ signal }) => fetchJson(url, signal), signal);
 */
export function retry(options: RetryOptions = {}): RetryPolicy {
  const maxAttempts = checkCount(options.maxAttempts ?? 3, "maxAttempts", 1, true);
  const backoff = options.backoff ?? exponential();
  const retryOn = checkFunction(options.retryOn ?? isRetryableError, "retryOn");
  const deadlineMs = options.deadline === undefined ? undefined : toMs(options.deadline, "retry deadline");
  const { budget } = options;
  const clock = options.clock ?? systemClock;
  const random = checkFunction(options.random ?? Math.random, "random");
  const retries = new Listeners<RetryEvent>();
  const giveUps = new Listeners<GiveUpEvent>();

  const giveUp = (error: unknown, attempts: number, reason: GiveUpReason): void => {
    if (giveUps.active) giveUps.emit({ error, attempts, reason });
  };

  async function run<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T> {
    const deadlineAt = deadlineMs === undefined ? Number.POSITIVE_INFINITY : clock.now() + deadlineMs;
    let previousDelay: number | undefined;
    if (isAborted(parent)) throw abortReason(parent);
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await fn(new AttemptContext(parent, attempt));
        budget?.recordSuccess();
        return value;
      } catch (error) {
        if (isAborted(parent)) {
          giveUp(error, attempt, "aborted");
          throw error;
        }
        if (!retryOn(error)) {
          giveUp(error, attempt, "not-retryable");
          throw error;
        }
        budget?.recordFailure();
        if (attempt >= maxAttempts) {
          giveUp(error, attempt, "attempts");
          throw error;
        }
        if (budget !== undefined && !budget.canRetry()) {
          giveUp(error, attempt, "budget");
          throw error;
        }
        const delayMs = retryWait(backoff.delay(attempt, previousDelay, random), retryAfterMsOf(error));
        // An endless wait (Retry-After: Infinity) can never fit a deadline: give up rather than hang.
        if (!Number.isFinite(delayMs) || clock.now() + delayMs > deadlineAt) {
          giveUp(error, attempt, "deadline");
          throw error;
        }
        if (retries.active) retries.emit({ error, attempt, delayMs });
        previousDelay = delayMs;
        try {
          if (delayMs > 0) await clock.sleep(delayMs, parent === ROOT_CONTEXT ? undefined : parent.signal);
          if (isAborted(parent)) throw abortReason(parent);
        } catch (reason) {
          giveUp(error, attempt, "aborted");
          throw reason;
        }
      }
    }
  }

  const policy: RetryPolicy & ContextPolicy = {
    [RUN]: run,
    execute: (fn, signal) => run(fn, rootContext(signal)),
    onRetry: (listener) => retries.add(listener),
    onGiveUp: (listener) => giveUps.add(listener),
  };
  return policy;
}
