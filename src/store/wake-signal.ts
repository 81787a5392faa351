import { createBatcher } from "../core/batcher.js";
import type { Logger } from "../core/logger.js";
import { run } from "./dialect.js";
import type { SqlStore } from "./sql-store.js";

/**
 * Wakes the workers of other processes listening on `channel`, after work committed here (where
 * the store has notifications; without them, a no-op: other processes poll).
 *
 * Sent on its own, never from the transaction whose work it announces. A NOTIFY holds a global
 * lock from the statement through its commit's flush, so transactions that each notified commit
 * one at a time: 8 saga starts at once ran 2–3× slower with a NOTIFY each than the same INSERTs
 * without. Here one notification at a time covers every call made before it was sent.
 *
 * The returned function never rejects: the work is stored either way, and other processes find it
 * at their next poll. A failure is logged as `patchbay <what>: could not notify other workers`.
 */
export function createWakeSignal(
  store: SqlStore,
  channel: string,
  logger: Logger,
  what: string,
): () => Promise<void> {
  const signal = store.dialect.roles.notify?.signal(channel, "");
  if (!signal) return () => Promise.resolve();
  const signals = createBatcher(async (items: unknown[]) => {
    await run(store, store.dialect, signal);
    return items.map(() => undefined);
  });
  return () =>
    signals
      .add(undefined)
      .catch((e: unknown) => logger.warn({ err: e }, `patchbay ${what}: could not notify other workers`));
}
