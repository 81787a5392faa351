/**
 * The delivery worker: claims due deliveries (within each endpoint's limits), sends them, and
 * records the outcomes in group commits. It sleeps until the next delivery is due, a fan-out or
 * replay in this process wakes it, a PostgreSQL notification from another process does, or the
 * poll interval passes. Never exits on a store error: it backs off and tries again.
 */
import { setMaxListeners } from "node:events";
import { claimBackoff, startClaimLoop, type ClaimLoop } from "../core/claim-loop.js";
import type { Clock } from "../core/clock.js";
import { measure, statusClass } from "../core/instruments.js";
import type { Logger } from "../core/logger.js";
import { run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { sql } from "../store/sql.js";
import type { ClaimedDelivery, createClaimer } from "./claim.js";
import type { createRecorder, FinishedAttempt, RecordedAttempt } from "./record.js";
import type { Sender } from "./sender.js";
import { webhookMetrics, withAttemptSpan } from "./telemetry.js";
import { WAKE_CHANNEL, webhookTables } from "./tables.js";

/** What the worker is built from. */
export interface WorkerDeps {
  store: SqlStore;
  clock: Clock;
  logger: Logger;
  claim: ReturnType<typeof createClaimer>;
  record: ReturnType<typeof createRecorder>;
  send: Sender;
  /** Deliveries in flight at once in this process. */
  concurrency: number;
  pollMs: number;
}

/** A running worker. */
export interface Worker {
  /** Wakes the loop (new work, a freed slot). */
  wake(): void;
  /** Stops claiming, waits for attempts in flight up to `timeoutMs`, then aborts and records the rest. */
  stop(timeoutMs: number): Promise<void>;
}

const RECORD_BATCH = 200;

/** Starts a worker. */
export async function startWorker(deps: WorkerDeps): Promise<Worker> {
  const { store, clock, logger } = deps;
  const d = store.dialect;
  const t = webhookTables(d);
  const inFlight = new Set<Promise<void>>();
  /** The deliveries in flight (by seq) and when their lease ends: never claimed again by this worker. */
  const held = new Map<number, number>();
  const aborting = new AbortController();
  // Every attempt in flight listens for the shutdown abort.
  setMaxListeners(deps.concurrency + 16, aborting.signal);
  let running = true;
  // Set once the claim loop starts (below); a wake-up before that (a NOTIFY while listening
  // starts) has nothing to wake, and the loop's first round claims anyway.
  // eslint-disable-next-line prefer-const -- read by wake() before it is assigned
  let claimLoop: ClaimLoop | undefined;
  const wake = () => claimLoop?.wake();

  // Group commit: attempts that finish while a commit runs are recorded together in the next.
  const queue: Array<{ item: FinishedAttempt; done: () => void }> = [];
  let flushing: Promise<void> | undefined;
  const flush = async () => {
    let pause = 0;
    // One turn of the event loop first, so responses already in the socket buffers join this batch.
    await new Promise((r) => setImmediate(r));
    while (queue.length > 0) {
      const batch = queue.splice(0, RECORD_BATCH);
      let results: RecordedAttempt[];
      try {
        results = await deps.record(batch.map((b) => b.item));
      } catch (e) {
        pause = claimBackoff(pause);
        logger.error(
          { err: e, outcomes: batch.length },
          "patchbay webhooks: recording attempts failed; retrying",
        );
        if (!running && pause >= 5000) {
          // Shutting down and the store stays unreachable: the leases bring these deliveries back.
          for (const b of batch) b.done();
          continue;
        }
        queue.unshift(...batch);
        await new Promise((r) => setTimeout(r, pause));
        continue;
      }
      pause = 0;
      for (const b of batch) b.done();
      try {
        report(results);
      } catch {
        // A logger or metrics exporter failing must not make us record the batch twice.
      }
    }
  };
  const recordLater = (item: FinishedAttempt) =>
    new Promise<void>((done) => {
      queue.push({ item, done });
      flushing ??= flush().finally(() => (flushing = undefined));
    });

  function report(results: RecordedAttempt[]) {
    for (const r of results) {
      const { delivery: c, outcome: o } = r.attempt;
      webhookMetrics.attempts.add(1, { outcome: o.ok ? "succeeded" : "failed", state: r.state });
      webhookMetrics.latency.record(o.latencyMs);
      measure("webhook.attempt", 1, {
        endpoint: c.endpointId,
        outcome: r.state,
        status_class: statusClass(o.status),
      });
      if (o.ok) continue;
      logger[r.state === "failed" ? "warn" : "info"](
        {
          endpointId: c.endpointId,
          messageId: c.messageId,
          attempt: c.attempt,
          status: o.status,
          err: o.error,
          state: r.state,
          ...(r.nextAttemptAt === undefined
            ? {}
            : { nextAttemptAt: new Date(r.nextAttemptAt).toISOString() }),
        },
        r.state === "failed" ? "patchbay webhooks: delivery failed" : "patchbay webhooks: attempt failed",
      );
    }
  }

  const dispatch = (c: ClaimedDelivery, until: number) => {
    held.set(c.seq, until);
    const p = (async () => {
      const startedAt = clock.now();
      const outcome = await withAttemptSpan(c.eventType, c.traceparent, (headers) =>
        deps.send(
          { id: c.messageId, url: c.url, body: c.payload, secrets: c.secrets, headers },
          aborting.signal,
        ),
      );
      await recordLater({ delivery: c, outcome, startedAt });
    })()
      .catch((e: unknown) =>
        logger.error({ err: e, messageId: c.messageId }, "patchbay webhooks: attempt crashed"),
      )
      .finally(() => {
        held.delete(c.seq);
        inFlight.delete(p);
        wake();
      });
    inFlight.add(p);
  };

  const nextDue = async (now: number): Promise<number | undefined> => {
    const { rows } = await run<{ next: unknown }>(
      store,
      d,
      sql`SELECT MIN(w.next_attempt_at) AS next FROM ${t.deliveries} w JOIN ${t.endpoints} e ON e.id = w.endpoint_id
          WHERE e.status = 'enabled' AND w.status IN ('pending', 'sending') AND w.next_attempt_at > ${now}`,
    );
    const next = rows[0]?.next;
    return next === null || next === undefined ? undefined : Number(next);
  };

  const unlisten = store.listen
    ? await store.listen(WAKE_CHANNEL, wake).catch((e: unknown) => {
        logger.warn({ err: e }, "patchbay webhooks: cannot listen for wake-ups; polling only");
        return undefined;
      })
    : undefined;

  claimLoop = startClaimLoop({
    // Let finished attempts settle first, so one claim fills every slot that is free.
    beforeRound: () => new Promise((r) => setImmediate(r)),
    free: () => deps.concurrency - inFlight.size,
    inFlight: () => inFlight.size,
    async claim(slots) {
      const result = await deps.claim(slots, held);
      for (const c of result.deliveries) dispatch(c, result.until);
      return { claimed: result.deliveries.length, wakeAt: result.wakeAt };
    },
    nextDue,
    clock,
    pollMs: deps.pollMs,
    onError: (e) => logger.warn({ err: e }, "patchbay webhooks: claiming deliveries failed; retrying"),
  });
  const loop = claimLoop;

  let stopped: Promise<void> | undefined;
  return {
    wake,
    stop(timeoutMs) {
      stopped ??= (async () => {
        running = false;
        await loop.stop();
        const drained = Promise.allSettled([...inFlight]);
        const timer = setTimeout(() => aborting.abort(), timeoutMs);
        await drained;
        clearTimeout(timer);
        await flushing;
        await unlisten?.().catch(() => undefined);
      })();
      return stopped;
    },
  };
}
