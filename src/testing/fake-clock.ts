import type { Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";

interface Sleeper {
  due: number;
  /** Creation order: sleepers due at the same time wake in the order they started sleeping. */
  seq: number;
  resolve: () => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** 2025-01-01T00:00:00.000Z: a fixed, realistic default start so timestamps in tests read well. */
const DEFAULT_START = Date.UTC(2025, 0, 1);

/** Lets every queued microtask (and the microtasks they queue) run before continuing. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A {@link Clock} for tests: time stands still until the test moves it, so time logic (retries,
 * timeouts, expiries, schedules) is tested without waiting and without flakiness.
 *
 * `sleep()` resolves only when {@link FakeClock.advance} (or {@link FakeClock.set}) reaches its due
 * time; `sleep(0)` resolves at once. Do not combine with `vi.useFakeTimers()`: `advance()` uses
 * the real `setImmediate` to let woken code run.
 *
 * @example
 * const clock = new FakeClock();
 * const done = retry(op, { clock });   // sleeps 1 s between attempts
 * await clock.advance("1s");           // the first backoff elapses; the retry runs
 */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  #seq = 0;
  #advancing: Promise<void> = Promise.resolve();

  /** @param start the initial time, ms since the epoch or a Date; default 2025-01-01T00:00:00Z. */
  constructor(start: number | Date = DEFAULT_START) {
    const ms = start instanceof Date ? start.getTime() : start;
    if (!Number.isFinite(ms))
      throw new InvalidArgumentError(`FakeClock start must be a finite time, got ${ms}`, "start");
    this.#now = ms;
  }

  /** The fake time, ms since the epoch. */
  now(): number {
    return this.#now;
  }

  /** Resolves when the fake time reaches now + `ms`; rejects with the signal's reason on abort. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      if (!(ms > 0)) {
        resolve();
        return;
      }
      const sleeper: Sleeper = { due: this.#now + ms, seq: this.#seq++, resolve, signal, onAbort: undefined };
      if (signal !== undefined) {
        sleeper.onAbort = () => {
          this.#remove(sleeper);
          reject(signal.reason as Error);
        };
        signal.addEventListener("abort", sleeper.onAbort, { once: true });
      }
      this.#sleepers.push(sleeper);
    });
  }

  /** How many sleeps are waiting for time to pass. */
  get pendingSleepers(): number {
    return this.#sleepers.length;
  }

  /**
   * Moves time forward by `duration`, waking due sleepers one at a time in due order, at their due
   * time, and letting the woken code run before the next one. Sleeps started by woken code that
   * fall inside the window fire too. Concurrent calls run one after the other.
   *
   * By default the woken code gets one turn of the event loop. Give `between` to wait for it
   * exactly instead (a test harness's `settled()`): then every sleeper due at the same instant
   * wakes together, and `between` runs before time moves on to the next due time.
   */
  async advance(duration: Duration, options: { between?: () => Promise<void> } = {}): Promise<void> {
    const ms = toMs(duration, "advance");
    const run = this.#advancing.then(() => this.#advance(ms, options.between));
    this.#advancing = run.catch(() => undefined);
    await run;
  }

  /**
   * Jumps to `ms` since the epoch. Moving forward wakes every sleeper now due, in due order, at
   * once (use {@link FakeClock.advance} to let woken code run between them); moving back wakes none.
   */
  set(ms: number | Date): void {
    const to = ms instanceof Date ? ms.getTime() : ms;
    if (!Number.isFinite(to))
      throw new InvalidArgumentError(`FakeClock.set needs a finite time, got ${to}`, "ms");
    this.#now = to;
    for (let next = this.#nextDue(to); next !== undefined; next = this.#nextDue(to)) this.#wake(next);
  }

  async #advance(ms: number, between: (() => Promise<void>) | undefined): Promise<void> {
    const target = this.#now + ms;
    await (between ?? settle)();
    for (let next = this.#nextDue(target); next !== undefined; next = this.#nextDue(target)) {
      this.#now = Math.max(this.#now, next.due);
      if (between === undefined) {
        this.#wake(next);
        await settle();
        continue;
      }
      for (let due: Sleeper | undefined = next; due !== undefined; due = this.#nextDue(this.#now))
        this.#wake(due);
      await between();
    }
    this.#now = Math.max(this.#now, target);
  }

  #nextDue(limit: number): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.#sleepers) {
      if (
        s.due <= limit &&
        (best === undefined || s.due < best.due || (s.due === best.due && s.seq < best.seq))
      ) {
        best = s;
      }
    }
    return best;
  }

  #wake(sleeper: Sleeper): void {
    this.#remove(sleeper);
    if (sleeper.onAbort !== undefined) sleeper.signal?.removeEventListener("abort", sleeper.onAbort);
    sleeper.resolve();
  }

  #remove(sleeper: Sleeper): void {
    const i = this.#sleepers.indexOf(sleeper);
    if (i !== -1) this.#sleepers.splice(i, 1);
  }
}
