/**
 * An in-memory {@link Transport} for users' unit tests: the bus's semantics (groups, fan-out,
 * competing consumers, delayed retries, redelivery of unsettled messages) without durability.
 * It does not share a store, so the bus's outbox relay is exercised with it.
 */
import { matchesAny, assertPattern } from "../bus/patterns.js";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import type {
  Consumer,
  Delivery,
  FailureRecord,
  Transport,
  TransportMessage,
  TransportPublishOptions,
} from "../bus/transport.js";

interface Entry {
  message: TransportMessage;
  attempt: number;
  runAt: number;
  failure: FailureRecord | undefined;
}

/** Options of {@link memoryTransport}. */
export interface MemoryTransportOptions {
  /** How long an unsettled delivery waits before it is redelivered. Default 1000 ms. */
  redeliverAfterMs?: number;
}

/** An in-memory transport; `published` lists every message it accepted, for assertions. */
export function memoryTransport(options: MemoryTransportOptions = {}): Transport & {
  readonly published: readonly TransportMessage[];
  /** Messages whose dead letter the store refused (`DEAD_LETTER_FAILED`, not retryable): kept here, not redelivered. */
  readonly parked: ReadonlyArray<{ group: string; message: TransportMessage }>;
  /** Messages waiting (not in flight) per group. */
  depth(group: string): number;
} {
  const redeliverAfter = options.redeliverAfterMs ?? 1000;
  const bindings = new Map<string, string[]>();
  const queues = new Map<string, Entry[]>();
  const wakers = new Map<string, () => void>();
  const published: TransportMessage[] = [];
  const parked: Array<{ group: string; message: TransportMessage }> = [];
  const queue = (g: string) => {
    let q = queues.get(g);
    if (!q) queues.set(g, (q = []));
    return q;
  };
  const enqueue = (group: string, entry: Entry) => {
    const q = queue(group);
    if (q.some((e) => e.message.id === entry.message.id)) return;
    q.push(entry);
    const delay = entry.runAt - Date.now();
    if (delay > 0) setTimeout(() => wakers.get(group)?.(), delay).unref();
    wakers.get(group)?.();
  };

  return {
    name: "memory",
    capabilities: { sharesStore: false, durable: false },
    published,
    parked,
    depth: (group) => queues.get(group)?.length ?? 0,
    open: () => Promise.resolve(),
    close: () => Promise.resolve(),

    bind(group, patterns) {
      patterns.forEach(assertPattern);
      bindings.set(group, [...patterns]);
      return Promise.resolve();
    },

    publish(messages: readonly TransportMessage[], opts: TransportPublishOptions = {}) {
      if (opts.tx) {
        return Promise.reject(
          new InvalidArgumentError(
            "the in-memory transport cannot publish inside a store transaction; the bus's outbox does that (tx.publish)",
            "tx",
          ),
        );
      }
      const runAt = Date.now() + (opts.delayMs ?? 0);
      for (const message of messages) {
        published.push(message);
        for (const [group, patterns] of bindings) {
          if (opts.group ? group === opts.group : matchesAny(patterns, message.type)) {
            enqueue(group, { message, attempt: 0, runAt, failure: undefined });
          }
        }
      }
      return Promise.resolve();
    },

    consume(group, { concurrency }, onDelivery): Promise<Consumer> {
      let running = true;
      let inFlight = 0;
      let recheck: NodeJS.Timeout | undefined;
      const pump = () => {
        if (!running) return;
        const q = queue(group);
        const now = Date.now();
        let nextDue = Infinity;
        for (let i = 0; i < q.length && inFlight < concurrency;) {
          const entry = q[i]!;
          if (entry.runAt > now) {
            nextDue = Math.min(nextDue, entry.runAt);
            i++;
            continue;
          }
          q.splice(i, 1);
          inFlight++;
          entry.attempt++;
          let settled = false;
          const settle = () => {
            if (settled) throw new Error("delivery already settled");
            settled = true;
          };
          const delivery: Delivery = {
            message: entry.message,
            group,
            attempt: entry.attempt,
            failure: entry.failure,
            ack: () => Promise.resolve(settle()),
            retry: (delayMs, failure) => {
              settle();
              enqueue(group, { ...entry, runAt: Date.now() + delayMs, failure });
              return Promise.resolve();
            },
          };
          let refused = false;
          void onDelivery(delivery)
            .catch((e: unknown) => {
              refused = isPatchbayError(e, "DEAD_LETTER_FAILED") && !e.retryable;
            })
            .finally(() => {
              inFlight--;
              // Its dead letter refused by the store: kept aside, never delivered again.
              if (!settled && refused) parked.push({ group, message: entry.message });
              // Unsettled (the handler's process "died"): it comes back, like a lease running out.
              else if (!settled) enqueue(group, { ...entry, runAt: Date.now() + redeliverAfter });
              pump();
            });
        }
        // A timer may fire a little before Date.now() reaches runAt: look again then.
        clearTimeout(recheck);
        if (nextDue !== Infinity) recheck = setTimeout(pump, Math.max(1, nextDue - Date.now())).unref();
      };
      wakers.set(group, pump);
      queueMicrotask(pump);
      return Promise.resolve({
        async stop() {
          running = false;
          clearTimeout(recheck);
          wakers.delete(group);
          while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
        },
      });
    },
  };
}
