/**
 * The one lifecycle every long-lived part follows (the bus, the saga runner, the webhooks worker,
 * a scheduled pipeline, and `createPatchbay` over them):
 *
 * - `start()` returns a promise that resolves once the part runs. Starting a part that is
 *   starting or started is a no-op: it resolves when the first start does (a second caller need
 *   not know whether someone started it before).
 * - `stop({ timeout })` drains work in flight within `timeout` (default 30 s) and resolves; a
 *   second call returns the first call's promise. Stopping a part that never started only marks
 *   it stopped.
 * - A stopped part stays stopped: `start()`, and whatever would begin new work, is refused with
 *   {@link StoppedError} (`STOPPED`), the same code in every part.
 */
import { toMs, type Duration } from "./duration.js";
import { PatchbayError, type PatchbayErrorOptions } from "./errors.js";

/** Options of every part's `stop()`. */
export interface StopOptions {
  /** How long work in flight may take to finish. Default `"30s"`. */
  timeout?: Duration;
}

/** What every long-lived part implements. */
export interface Lifecycle {
  /** Starts the part (a no-op when it is starting or started); rejects with `STOPPED` after `stop()`. */
  start(): Promise<void>;
  /** Stops the part within `timeout`, draining work in flight. Safe twice. */
  stop(options?: StopOptions): Promise<void>;
}

/** Where a part is in its life. */
export type LifecycleState = "new" | "starting" | "started" | "stopping" | "stopped";

/**
 * The part was stopped (or is stopping): it starts no new work. Also the reason the `signal` of
 * work still running aborts when `stop()` reaches its timeout. Not retryable: a stopped part
 * never starts again — make a new one.
 *
 * @example if (isPatchbayError(e, "STOPPED")) console.log(`${e.part} is stopped`);
 */
export class StoppedError extends PatchbayError {
  constructor(
    /** The part that is stopped, e.g. `"bus"`, `"saga runner"`, `"webhooks"`, `"patchbay"`. */
    readonly part: string,
    message = `the ${part} is stopped`,
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super("STOPPED", message, options);
  }
}

declare module "./errors.js" {
  interface PatchbayErrorCodes {
    STOPPED: StoppedError;
  }
}

/** The default `stop()` timeout of every part. */
export const DEFAULT_STOP_TIMEOUT: Duration = "30s";

/** What a part does when it starts and stops; {@link createLifecycle} supplies the rules. */
export interface LifecycleHooks {
  start(): Promise<void>;
  /** Drains and releases within `timeoutMs`; called once, also for a part that never started. */
  stop(timeoutMs: number): Promise<void>;
}

/** A {@link Lifecycle} with its state, for the part that owns it. */
export interface LifecycleControl extends Lifecycle {
  readonly state: LifecycleState;
  /** True between the start of `start()` and the call of `stop()`. */
  readonly running: boolean;
  /** Throws `STOPPED` once `stop()` was called (guards calls that would begin new work). */
  assertNotStopped(message?: string): void;
}

/**
 * Implements the lifecycle rules over a part's own start and stop.
 *
 * @example
 * const life = createLifecycle("bus", { start: openAndConsume, stop: drain });
 * return { start: life.start, stop: life.stop, publish(...) { life.assertNotStopped(); ... } };
 */
export function createLifecycle(part: string, hooks: LifecycleHooks): LifecycleControl {
  let state: LifecycleState = "new";
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const stoppedError = (message?: string) => new StoppedError(part, message);

  const control: LifecycleControl = {
    get state() {
      return state;
    },
    get running() {
      return state === "starting" || state === "started";
    },
    assertNotStopped(message) {
      if (state === "stopping" || state === "stopped") throw stoppedError(message);
    },
    start() {
      if (state === "stopping" || state === "stopped")
        return Promise.reject(stoppedError(`the ${part} is stopped; a stopped ${part} does not start again`));
      if (starting) return starting;
      state = "starting";
      starting = (async () => {
        try {
          await hooks.start();
        } catch (e) {
          // A start that failed may be tried again (the store was down, say).
          if (state === "starting") state = "new";
          starting = undefined;
          throw e;
        }
        if (state === "starting") state = "started";
      })();
      return starting;
    },
    stop(options = {}) {
      if (stopping) return stopping;
      let timeoutMs: number;
      try {
        timeoutMs = toMs(options.timeout ?? DEFAULT_STOP_TIMEOUT, "timeout");
      } catch (e) {
        // Nothing stopped: a valid call may follow.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- toMs's own DURATION_INVALID, passed through
        return Promise.reject(e);
      }
      const startedBefore = starting;
      state = "stopping";
      stopping = (async () => {
        // A start in progress finishes first, so the stop sees every consumer it made.
        await startedBefore?.catch(() => undefined);
        try {
          await hooks.stop(timeoutMs);
        } finally {
          state = "stopped";
        }
      })();
      return stopping;
    },
  };
  return control;
}
