import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { TimeoutError } from "./errors.js";
import {
  abortReason,
  isAborted,
  LazyContext,
  NEVER_ABORTED,
  ROOT_CONTEXT,
  rootContext,
  RUN,
  type ContextPolicy,
} from "./internal.js";
import type { Policy, PolicyContext, PolicyFn } from "./policy.js";

/**
 * `"cooperative"`: when the time is up, abort the call's signal and wait for the callee to settle
 * (it should stop promptly), then reject with the TimeoutError. Nothing keeps running unseen.
 * `"aggressive"`: reject at the deadline (or the caller's abort) without waiting; the callee, told
 * through its signal, finishes in the background and its result is dropped.
 */
export type TimeoutStrategy = "cooperative" | "aggressive";

/** Options of {@link timeout}. */
export interface TimeoutOptions {
  /** Default `"cooperative"`. */
  strategy?: TimeoutStrategy;
  /** The source of time for the deadline. Default the system clock. */
  clock?: Clock;
}

/** A {@link Policy} that bounds how long a call may take. */
export interface TimeoutPolicy extends Policy {
  /** The time each call is allowed, in ms. */
  readonly timeoutMs: number;
}

/** Longest delay `setTimeout` takes as such; longer ones go through `clock.sleep`, which chunks them. */
const MAX_TIMER_MS = 2_147_483_647;
/** The reason we abort a finished call's timer sleep with; never seen by anyone. */
const CALL_SETTLED = Object.freeze({ reason: "call settled" });
const ignore = (): void => undefined;

/**
 * Bounds each call to `duration`. Every call gets its own AbortSignal, which aborts with a
 * {@link TimeoutError} (`TIMEOUT`, retryable) at the deadline, or with the caller's reason when the
 * caller's signal aborts first. Pass it to the work (`fetch(url, { signal })`) so it really stops.
 *
 * @example
 * const perAttempt = timeout("2s");
 * await perAttempt.execute(({ signal }) => fetch(url, { signal }));
 */
export function timeout(duration: Duration, options: TimeoutOptions = {}): TimeoutPolicy {
  const ms = toMs(duration, "timeout");
  const strategy = options.strategy ?? "cooperative";
  if (strategy !== "cooperative" && strategy !== "aggressive") {
    throw new InvalidArgumentError(
      `timeout strategy must be "cooperative" or "aggressive", got ${JSON.stringify(strategy)}`,
      "strategy",
    );
  }
  const clock = options.clock ?? systemClock;

  async function cooperative<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T> {
    if (isAborted(parent)) throw abortReason(parent);
    const call = new TimedCall(ms, clock, parent);
    try {
      const value = await fn(call);
      if (call.timeoutError !== undefined) throw call.timeoutError;
      return value;
    } catch (error) {
      // The callee stopped with its own error (e.g. a driver's AbortError) after our deadline.
      if (call.timeoutError !== undefined && error !== call.timeoutError) {
        throw new TimeoutError(ms, { cause: error });
      }
      throw error;
    } finally {
      call.dispose();
    }
  }

  function aggressive<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // The callee's error passes through unchanged, whatever it is (not necessarily an Error).
      const fail: (reason: unknown) => void = reject;
      if (isAborted(parent)) {
        fail(abortReason(parent));
        return;
      }
      const call = new TimedCall(ms, clock, parent);
      call.watch(() => {
        call.dispose();
        fail(call.reason);
      });
      let result: PromiseLike<T> | T;
      try {
        result = fn(call);
      } catch (error) {
        call.dispose();
        fail(error);
        return;
      }
      // After a timeout the late outcome lands on a settled promise: dropped, never unhandled.
      Promise.resolve(result).then(
        (value) => {
          call.dispose();
          resolve(value);
        },
        (error: unknown) => {
          call.dispose();
          fail(error);
        },
      );
    });
  }

  const run = strategy === "cooperative" ? cooperative : aggressive;
  const policy: TimeoutPolicy & ContextPolicy = {
    timeoutMs: ms,
    [RUN]: run,
    execute: (fn, signal) => run(fn, rootContext(signal)),
  };
  return policy;
}

/**
 * The context of one timed call. Its AbortSignal is created only when the callee reads `signal`
 * (an AbortController costs microseconds on Node 20; most callees never look on the success
 * path); until then the deadline and the parent's abort are tracked as plain fields. Once
 * created, the signal is linked to the parent's (as its `abort` listener, via `handleEvent`, so
 * no closure is allocated) and aborts at the deadline.
 */
class TimedCall extends LazyContext {
  readonly attempt: number;
  readonly #ms: number;
  readonly #parent: PolicyContext;
  #controller: AbortController | undefined;
  #linked = false;
  #disposed = false;
  #onAbort: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sleep: AbortController | undefined;
  /** Set when the deadline (not the parent) ended the call. */
  timeoutError: TimeoutError | undefined;

  constructor(ms: number, clock: Clock, parent: PolicyContext) {
    super();
    this.#ms = ms;
    this.#parent = parent;
    this.attempt = parent.attempt;
    if (clock === systemClock && ms <= MAX_TIMER_MS) {
      // The system clock's sleep is this timer; skip its promise and abort plumbing on the hot path.
      this.#timer = setTimeout(expire, ms, this);
    } else {
      this.#sleep = new AbortController();
      clock.sleep(ms, this.#sleep.signal).then(() => this.expire(), ignore);
    }
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
      else this.#link();
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.timeoutError !== undefined || isAborted(this.#parent);
  }

  get reason(): unknown {
    return this.timeoutError ?? abortReason(this.#parent);
  }

  /** Calls `onAbort` once when the deadline passes or the parent aborts. */
  watch(onAbort: () => void): void {
    this.#onAbort = onAbort;
    this.#link();
  }

  /** The parent's signal aborted: pass its reason on. */
  handleEvent(): void {
    if (this.timeoutError !== undefined) return;
    this.#controller?.abort(abortReason(this.#parent));
    this.#onAbort?.();
  }

  expire(): void {
    if (this.aborted) return;
    this.timeoutError = new TimeoutError(this.#ms);
    this.#controller?.abort(this.timeoutError);
    this.#onAbort?.();
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#sleep?.abort(CALL_SETTLED);
    if (this.#linked) this.#parent.signal.removeEventListener("abort", this);
    this.#linked = false;
    this.#disposed = true;
    this.#onAbort = undefined;
  }

  #link(): void {
    // After the call settled (a callee reading its signal late) there is nothing left to abort.
    if (this.#linked || this.#disposed || this.#parent === ROOT_CONTEXT) return;
    const parentSignal = this.#parent.signal;
    if (parentSignal === NEVER_ABORTED) return;
    this.#linked = true;
    parentSignal.addEventListener("abort", this);
  }
}

function expire(call: TimedCall): void {
  call.expire();
}
