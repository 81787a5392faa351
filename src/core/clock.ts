/**
 * The source of time for everything in Patchbay that waits, expires or schedules.
 * Inject a {@link FakeClock} (from `patchbay/testing`) to test time logic without waiting.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds; rejects with the signal's reason as soon as `signal` aborts.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: `Date.now()` and timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      // setTimeout fires at once for delays over 2^31-1 ms (~24.8 days); wait in chunks instead.
      const MAX_TIMER = 2_147_483_647;
      const due = Date.now() + ms;
      let timer: NodeJS.Timeout;
      const arm = () => {
        const left = due - Date.now();
        timer = setTimeout(
          () => {
            if (due - Date.now() > 0 && left > MAX_TIMER) return arm();
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
          Math.min(Math.max(left, 0), MAX_TIMER),
        );
      };
      arm();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};
