/**
 * A repeating timer on the injected clock: `fn` runs every `ms` of the clock's time until the
 * signal aborts. On the system clock it is an interval timer that never keeps the process alive;
 * on any other clock (a test's fake clock) a chain of `clock.sleep`s, each started before `fn`
 * runs, so one `advance()` over several periods fires each of them.
 */
import { systemClock, type Clock } from "./clock.js";

export function every(clock: Clock, ms: number, fn: () => void, signal: AbortSignal): void {
  if (signal.aborted) return;
  if (clock === systemClock) {
    const timer = setInterval(fn, ms).unref();
    signal.addEventListener("abort", () => clearInterval(timer), { once: true });
    return;
  }
  const tick = () =>
    clock.sleep(ms, signal).then(
      () => {
        void tick();
        fn();
      },
      () => undefined, // aborted: the timer ends
    );
  void tick();
}
