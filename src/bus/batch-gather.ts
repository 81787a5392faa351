/**
 * Gathers a batch subscription's deliveries into batches for one shared transaction each. A batch
 * is taken from the queue when a handler slot is free for it, not when it is requested: while
 * every slot is busy, arrivals keep filling the next batch (group commit). A batch is requested
 * once `size` deliveries wait, or `maxWaitMs` after the first of a partial one (0: at the end of
 * the current turn of the event loop, so the deliveries of one fetch share a batch).
 */
import type { BulkheadPolicy } from "../resilience/bulkhead.js";

/** How a batch ended for one of its members. */
export type BatchOutcome = "done" | "duplicate" | "alone";

/** One waiting member and how its caller learns its outcome. */
interface Waiting<T> {
  item: T;
  settle: (outcome: BatchOutcome) => void;
}

/** A gatherer: `add` resolves with the member's outcome ("alone": run it on its own). */
export interface BatchGatherer<T> {
  add(item: T): Promise<BatchOutcome>;
}

/**
 * Makes a gatherer. `run` gets the items of one batch, in arrival order, inside a slot of
 * `slots`, and resolves with one outcome per item; should it reject, every member runs alone.
 * Once `closing` aborts, waiting members are settled "alone" (their caller hands them back).
 */
export function createBatchGatherer<T>(options: {
  size: number;
  maxWaitMs: number;
  slots: BulkheadPolicy;
  closing: AbortSignal;
  run: (items: T[]) => Promise<BatchOutcome[]>;
}): BatchGatherer<T> {
  const { size, maxWaitMs, slots, closing, run } = options;
  const queue: Array<Waiting<T>> = [];
  /** Batches requested and waiting for a slot: each will take up to `size` members. */
  let requested = 0;
  let armed = false;

  const settleAll = (batch: Array<Waiting<T>>, outcome: BatchOutcome) => {
    for (const w of batch) w.settle(outcome);
  };

  async function take(): Promise<void> {
    requested--;
    const batch = queue.splice(0, size);
    if (batch.length === 0) return;
    if (closing.aborted) return settleAll(batch, "alone");
    arm(); // members left for the next batch
    let outcomes: BatchOutcome[];
    try {
      outcomes = await run(batch.map((w) => w.item));
    } catch {
      return settleAll(batch, "alone");
    }
    batch.forEach((w, i) => w.settle(outcomes[i] ?? "alone"));
  }

  function request(): void {
    requested++;
    slots.execute(take, closing).catch(() => {
      // Refused a slot (the bus is stopping): what waits is handed back by its callers.
      requested--;
      settleAll(queue.splice(0), "alone");
    });
  }

  /** Requests a batch for the members no requested batch will take, now or after the wait. */
  function arm(): void {
    if (armed || queue.length <= requested * size) return;
    armed = true;
    const fire = () => {
      armed = false;
      if (queue.length > requested * size) request();
    };
    if (maxWaitMs > 0) setTimeout(fire, maxWaitMs);
    else setImmediate(fire);
  }

  return {
    add(item) {
      return new Promise<BatchOutcome>((settle) => {
        queue.push({ item, settle });
        if (closing.aborted) return settleAll(queue.splice(0), "alone");
        if (queue.length - requested * size >= size) request();
        else arm();
      });
    },
  };
}
