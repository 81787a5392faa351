/**
 * Group commit: callers add one item each and get their own result, while the items that arrive
 * while a flush is in flight are written together by the next flush — one statement and one
 * commit for many callers under load, no added wait when idle (a lone item is flushed at once,
 * in the same turn of the event loop).
 *
 * A flush that fails rejects every caller of its batch. With `isolateFailures`, a failed batch
 * of several items is flushed again one item at a time, so one bad item (a value the database
 * refuses) fails only its own caller — use it when a failed flush wrote nothing (one statement,
 * or one transaction) and flushing again is harmless.
 *
 * Flushes run in the async context the batcher was created in, not the context of whichever
 * caller happened to start a batch (that caller may be inside a store transaction).
 */
import { AsyncResource } from "node:async_hooks";

export interface BatcherOptions {
  /** Most items per flush. Default 500. */
  maxBatch?: number;
  /** Flush a failed batch again item by item. Default false. */
  isolateFailures?: boolean;
}

/** A group-commit queue (see {@link createBatcher}). */
export interface Batcher<T, R> {
  /** Queues `item`; resolves with its result once the flush that carried it finished. */
  add(item: T): Promise<R>;
}

interface Entry<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (reason: unknown) => void;
}

/**
 * Creates a {@link Batcher}. `flush` gets the items of one batch and returns one result per item,
 * in the same order.
 *
 * @example
 * const seen = createBatcher((ids: string[]) => selectSeen(ids)); // one SELECT … = ANY($1) per batch
 * if (await seen.add(message.id)) return; // duplicate
 */
export function createBatcher<T, R = void>(
  flush: (items: T[]) => Promise<R[]>,
  options: BatcherOptions = {},
): Batcher<T, R> {
  const maxBatch = options.maxBatch ?? 500;
  const queue: Array<Entry<T, R>> = [];
  /** One flush in flight at a time: the next batch forms while it is written. */
  let flushing = false;
  let scheduled = false;

  async function write(batch: Array<Entry<T, R>>): Promise<void> {
    let results: R[];
    try {
      results = await flush(batch.map((e) => e.item));
      if (results.length !== batch.length) {
        throw new Error(`batch flush returned ${results.length} results for ${batch.length} items`);
      }
    } catch (e) {
      if (options.isolateFailures && batch.length > 1) {
        await Promise.all(batch.map((entry) => write([entry])));
      } else {
        for (const entry of batch) entry.reject(e);
      }
      return;
    }
    batch.forEach((entry, i) => entry.resolve(results[i] as R));
  }

  const pump = AsyncResource.bind(function pump(): void {
    scheduled = false;
    if (!flushing && queue.length > 0) {
      const batch = queue.splice(0, maxBatch);
      flushing = true;
      void write(batch).finally(() => {
        flushing = false;
        pump();
      });
    }
  });

  return {
    add(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        // A microtask, not at once: items added in the same synchronous stretch share a flush.
        if (!scheduled && !flushing) {
          scheduled = true;
          queueMicrotask(pump);
        }
      });
    },
  };
}
