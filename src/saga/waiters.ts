/** Waiting for saga instances to finish: woken at once by this process's workers, polling for others'. */
import { toMs, type Duration } from "../core/duration.js";
import { TimeoutError } from "../resilience/errors.js";
import type { SqlStore } from "../store/sql-store.js";
import { SagaError } from "./errors.js";
import { TERMINAL_STATUSES, type SagaInstance } from "./records.js";
import { publicView, type SagaRepository } from "./repository.js";

/** Options of `SagaRunner.wait`. */
export interface WaitOptions {
  /** Give up (with `TIMEOUT`) after this long. Default 30 s. */
  timeout?: Duration;
}

/** The waiters of one runner: `wait` for callers, `settled` for the workers that finish instances. */
export function createWaiters(
  repo: SagaRepository,
  store: SqlStore,
  pollMs: number,
  drivenHere: (id: string) => boolean,
) {
  const waiters = new Map<string, Set<(instance: SagaInstance) => void>>();

  /** Hands an instance that reached completed, compensated, failed or resolved to its waiters. */
  const settled = (instance: SagaInstance): void => {
    for (const w of waiters.get(instance.id) ?? []) w(instance);
  };

  async function wait(id: string, waitOptions: WaitOptions = {}): Promise<SagaInstance> {
    const ms = toMs(waitOptions.timeout ?? "30s", "timeout");
    const until = Date.now() + ms;
    for (;;) {
      // Listen before reading, so a local completion between the read and the wait is not missed.
      const set = waiters.get(id) ?? new Set<(instance: SagaInstance) => void>();
      waiters.set(id, set);
      let wakeWaiter!: (instance: SagaInstance) => void;
      const woken = new Promise<SagaInstance>((resolve) => (wakeWaiter = resolve));
      set.add(wakeWaiter);
      let timer: NodeJS.Timeout | undefined;
      try {
        // An instance this process drives now is neither missing nor settled, and its worker
        // hands it over when it settles (the waiter is registered above, in this same turn): no
        // read. When it stops short of settling (a retry's wait, a lost lease), the poll reads.
        if (!drivenHere(id)) {
          const row = await repo.get(store, id);
          if (!row) throw new SagaError("SAGA_NOT_FOUND", `no saga instance ${JSON.stringify(id)}`, id);
          if (TERMINAL_STATUSES.includes(row.status)) return publicView(row);
        }
        const left = until - Date.now();
        if (left <= 0) throw new TimeoutError(ms);
        // Local completions arrive at once, with the final record; other processes' are seen by polling.
        const done = await Promise.race([
          woken,
          new Promise<undefined>(
            (resolve) => (timer = setTimeout(() => resolve(undefined), Math.min(left, pollMs, 250))),
          ),
        ]);
        if (done) return done;
      } finally {
        clearTimeout(timer);
        set.delete(wakeWaiter);
        if (set.size === 0 && waiters.get(id) === set) waiters.delete(id);
      }
    }
  }

  return { wait, settled };
}
