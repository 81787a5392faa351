/**
 * Helpers shared by the resilience policies, not exported from the package: the never-aborting
 * signal, lazy call contexts and the internal `RUN` entry point that lets `wrap()` hand contexts
 * (not signals) from policy to policy, the listener list and option checks.
 */
import { setMaxListeners } from "node:events";
import { InvalidArgumentError } from "../core/errors.js";
import type { PolicyContext, PolicyFn } from "./policy.js";

/**
 * The signal callees receive when the caller passed none: it never aborts. One shared instance
 * keeps the hot path free of allocations; its listener limit is lifted so callees that subscribe
 * per call do not trigger MaxListenersExceededWarning.
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;
setMaxListeners(0, NEVER_ABORTED);

/** The context of a call made with no signal: shared, frozen, allocation-free. */
export const ROOT_CONTEXT: PolicyContext = Object.freeze({ signal: NEVER_ABORTED, attempt: 1 });

/** The context of a top-level `execute(fn, signal)` call. */
export function rootContext(signal: AbortSignal | undefined): PolicyContext {
  return signal === undefined || signal === NEVER_ABORTED ? ROOT_CONTEXT : { signal, attempt: 1 };
}

/**
 * A context whose `signal` may be created only when first read. Creating an AbortController costs
 * microseconds on Node 20 (more than the rest of a composed policy together), and most callees of
 * a timeout never read the signal on the success path; so policies pass contexts down, check for
 * an abort with {@link isAborted}, and only a callee that reads `signal` pays for it.
 */
export abstract class LazyContext implements PolicyContext {
  abstract readonly signal: AbortSignal;
  abstract readonly attempt: number;
  /** Whether the call is aborted, without creating the signal. */
  abstract readonly aborted: boolean;
  /** The abort reason, without creating the signal (`undefined` until aborted). */
  abstract readonly reason: unknown;
}

/** Whether the call of `ctx` is aborted, without creating a lazy signal. */
export function isAborted(ctx: PolicyContext): boolean {
  return ctx instanceof LazyContext ? ctx.aborted : ctx.signal.aborted;
}

/** The abort reason of the call of `ctx`, without creating a lazy signal. */
export function abortReason(ctx: PolicyContext): unknown {
  return ctx instanceof LazyContext ? ctx.reason : ctx.signal.reason;
}

/** The context of one attempt of a retry: the parent's signal, the attempt's number. */
export class AttemptContext extends LazyContext {
  readonly #parent: PolicyContext;
  readonly attempt: number;

  constructor(parent: PolicyContext, attempt: number) {
    super();
    this.#parent = parent;
    this.attempt = attempt;
  }

  get signal(): AbortSignal {
    return this.#parent.signal;
  }

  get aborted(): boolean {
    return isAborted(this.#parent);
  }

  get reason(): unknown {
    return abortReason(this.#parent);
  }
}

/** The key of the internal entry point that {@link wrap} uses between policies of this module. */
export const RUN: unique symbol = Symbol("patchbay.resilience.run");

/** A policy of this module: runs `fn` inside a parent context, which it may hand on as is. */
export interface ContextPolicy<R = never> {
  [RUN]<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T | R>;
}

/** True when `policy` has the internal entry point. */
export function hasRun(policy: object): policy is ContextPolicy<unknown> {
  return RUN in policy;
}

/**
 * A copy-on-write list of listeners. `emit` is a no-op when nobody listens. A listener that throws
 * does not disturb the policy: like EventTarget, its error is re-thrown on a fresh microtask
 * (an uncaught exception), so a buggy listener is loud but cannot change a call's outcome.
 */
export class Listeners<E> {
  #list: readonly ((event: E) => void)[] = [];

  /** Adds a listener; returns a function that removes it (safe to call twice). */
  add(listener: (event: E) => void): () => void {
    this.#list = [...this.#list, listener];
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      const i = this.#list.indexOf(listener);
      if (i !== -1) this.#list = this.#list.toSpliced(i, 1);
    };
  }

  /** True when at least one listener is subscribed (lets callers skip building the event). */
  get active(): boolean {
    return this.#list.length > 0;
  }

  /** Calls every listener with `event`. */
  emit(event: E): void {
    for (const listener of this.#list) {
      try {
        listener(event);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/** Checks that `value` is an integer >= `min` (or, when `allowInfinity`, +Infinity). */
export function checkCount(value: number, argument: string, min: number, allowInfinity = false): number {
  const ok =
    typeof value === "number" &&
    ((Number.isInteger(value) && value >= min) || (allowInfinity && value === Number.POSITIVE_INFINITY));
  if (!ok) {
    throw new InvalidArgumentError(
      `${argument} must be an integer >= ${min}${allowInfinity ? " or Infinity" : ""}, got ${String(value)}`,
      argument,
    );
  }
  return value;
}

/** Checks that `value` is a finite number in [min, max]. */
export function checkRange(value: number, argument: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      `${argument} must be a number in [${min}, ${max}], got ${String(value)}`,
      argument,
    );
  }
  return value;
}

/** Checks that `value` is a function. */
export function checkFunction<F>(value: F, argument: string): F {
  if (typeof value !== "function") {
    throw new InvalidArgumentError(`${argument} must be a function, got ${typeof value}`, argument);
  }
  return value;
}
