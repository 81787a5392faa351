import { invoke } from "../core/invoke.js";
import { BulkheadRejectedError } from "./errors.js";
import { abortReason, checkCount, isAborted, rootContext, RUN, type ContextPolicy } from "./internal.js";
import type { Policy, PolicyContext, PolicyFn } from "./policy.js";

/** Options of {@link bulkhead}. */
export interface BulkheadOptions {
  /** Calls that may run at once. */
  limit: number;
  /** Calls that may wait for a slot, first in first out; `Infinity` for no bound. Default 0. */
  queue?: number;
}

/** A {@link Policy} that caps concurrency. */
export interface BulkheadPolicy extends Policy {
  /** Calls running now. */
  readonly executing: number;
  /** Calls waiting for a slot. */
  readonly queued: number;
}

interface Waiter {
  admit: () => void;
  onAbort: () => void;
}

/**
 * Caps concurrent calls at `limit`, with up to `queue` calls waiting in order; beyond that a call
 * rejects at once with a {@link BulkheadRejectedError} (`BULKHEAD_FULL`). A waiting call whose
 * signal aborts leaves the queue and rejects with the signal's reason. Keeps one slow dependency
 * from taking every socket, worker and byte of memory.
 *
 * @example const reports = bulkhead({ limit: 4, queue: 20 });
 */
export function bulkhead(options: BulkheadOptions): BulkheadPolicy {
  const limit = checkCount(options.limit, "bulkhead limit", 1);
  const queueLimit = checkCount(options.queue ?? 0, "bulkhead queue", 0, true);
  const waiting: Waiter[] = [];
  let executing = 0;

  const release = (): void => {
    // Hand the slot straight to the next waiter, so a newcomer cannot jump the queue.
    const next = waiting.shift();
    if (next === undefined) executing--;
    else next.admit();
  };

  const wait = (signal: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          signal.removeEventListener("abort", waiter.onAbort);
          resolve();
        },
        onAbort: () => {
          waiting.splice(waiting.indexOf(waiter), 1);
          reject(signal.reason as Error);
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      waiting.push(waiter);
    });

  function run<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T> {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the signal's own reason, passed through
    if (isAborted(parent)) return Promise.reject(abortReason(parent));
    if (executing < limit) {
      // A free slot (the common case): no async step before fn starts.
      executing++;
      return occupy(fn, parent);
    }
    if (waiting.length < queueLimit) return wait(parent.signal).then(() => occupy(fn, parent));
    return Promise.reject(new BulkheadRejectedError(limit, queueLimit));
  }

  /** Runs fn in the slot it was given and hands the slot on when fn settles, however it ends. */
  function occupy<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T> {
    return invoke(() => fn(parent)).then(
      (value) => {
        release();
        return value;
      },
      (e: unknown) => {
        release();
        throw e;
      },
    );
  }

  const policy: BulkheadPolicy & ContextPolicy = {
    get executing() {
      return executing;
    },
    get queued() {
      return waiting.length;
    },
    [RUN]: run,
    execute: (fn, signal) => run(fn, rootContext(signal)),
  };
  return policy;
}
