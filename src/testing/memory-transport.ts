/**
 * An in-memory {@link Transport} for users' unit tests: the bus's semantics (groups, fan-out,
 * competing consumers, delayed retries, redelivery of unsettled messages) without durability.
 * It does not share a store, so the bus's outbox relay is exercised with it.
 */
import { BusError } from "../bus/errors.js";
import { matchesAny, assertPattern } from "../bus/patterns.js";
import { systemClock, type Clock } from "../core/clock.js";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import { invoke } from "../core/invoke.js";
import { settleBy } from "../core/settle-by.js";
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

/** A delivery in flight: settled by its consumer, or abandoned by a stop that timed out. */
interface Held {
  entry: Entry;
  settled: boolean;
  abandoned: boolean;
}

/** Options of {@link memoryTransport}. */
export interface MemoryTransportOptions {
  /** How long an unsettled delivery waits before it is redelivered. Default 1000 ms. */
  redeliverAfterMs?: number;
  /** The source of time of delays, retries and redeliveries (a `FakeClock` in tests). Default the system clock. */
  clock?: Clock;
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
  const clock = options.clock ?? systemClock;
  /** Calls `fn` after `ms` of the clock's time (never keeping the process alive); returns the cancel. */
  const after = (ms: number, fn: () => void): (() => void) => {
    if (clock === systemClock) {
      const timer = setTimeout(fn, ms).unref();
      return () => clearTimeout(timer);
    }
    const sleeping = new AbortController();
    clock.sleep(ms, sleeping.signal).then(fn, () => undefined);
    return () => sleeping.abort();
  };
  const bindings = new Map<string, string[]>();
  const queues = new Map<string, Entry[]>();
  /** The pumps of the group's consumers in this transport. */
  const wakers = new Map<string, Set<() => void>>();
  const wakersOf = (g: string) => {
    let set = wakers.get(g);
    if (!set) wakers.set(g, (set = new Set()));
    return set;
  };
  const wake = (g: string) => {
    for (const pump of wakers.get(g) ?? []) pump();
  };
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
    const delay = entry.runAt - clock.now();
    if (delay > 0) after(delay, () => wake(group));
    wake(group);
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
      const runAt = clock.now() + (opts.delayMs ?? 0);
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
      /** The deliveries in flight, and the promise of each one's handling. */
      const held = new Map<Held, Promise<void>>();
      let cancelRecheck: (() => void) | undefined;
      const pump = () => {
        if (!running) return;
        const q = queue(group);
        const now = clock.now();
        let nextDue = Infinity;
        for (let i = 0; i < q.length && held.size < concurrency;) {
          const entry = q[i]!;
          if (entry.runAt > now) {
            nextDue = Math.min(nextDue, entry.runAt);
            i++;
            continue;
          }
          q.splice(i, 1);
          entry.attempt++;
          const h: Held = { entry, settled: false, abandoned: false };
          /** False when the delivery was abandoned by a stop: its outcome no longer counts. */
          const settle = (): boolean => {
            if (h.abandoned) return false;
            if (h.settled) throw new BusError("BUS_STOPPED", `delivery ${entry.message.id} already settled`);
            h.settled = true;
            return true;
          };
          const delivery: Delivery = {
            message: entry.message,
            group,
            attempt: entry.attempt,
            failure: entry.failure,
            ack: () => invoke(() => void settle()),
            retry: (delayMs, failure) =>
              invoke(() => {
                if (settle()) enqueue(group, { ...entry, runAt: clock.now() + delayMs, failure });
              }),
            // Due at once, and this delivery is not counted as an attempt.
            release: () =>
              invoke(() => {
                if (settle()) enqueue(group, { ...entry, attempt: entry.attempt - 1, runAt: clock.now() });
              }),
          };
          // In flight before the handler runs: one that settles synchronously re-enters pump().
          held.set(h, Promise.resolve());
          let refused = false;
          const handled = invoke(() => onDelivery(delivery))
            .catch((e: unknown) => {
              refused = isPatchbayError(e, "DEAD_LETTER_FAILED") && !e.retryable;
            })
            .then(() => {
              held.delete(h);
              // Its dead letter refused by the store: kept aside, never delivered again.
              if (!h.settled && refused) parked.push({ group, message: entry.message });
              // Unsettled (the handler's process "died"): it comes back, like a lease running out.
              else if (!h.settled && !h.abandoned)
                enqueue(group, { ...entry, runAt: clock.now() + redeliverAfter });
              pump();
            });
          held.set(h, handled);
        }
        // A timer may fire a little before the clock reaches runAt: look again then.
        cancelRecheck?.();
        cancelRecheck = nextDue === Infinity ? undefined : after(Math.max(1, nextDue - clock.now()), pump);
      };
      wakersOf(group).add(pump);
      queueMicrotask(pump);
      let stopped: Promise<void> | undefined;
      return Promise.resolve({
        stop(timeoutMs = 30_000) {
          stopped ??= (async () => {
            running = false;
            cancelRecheck?.();
            wakersOf(group).delete(pump);
            await settleBy(Promise.allSettled(held.values()), Date.now() + timeoutMs);
            // Still running at the timeout: abandoned, as by a process that died.
            for (const h of held.keys()) {
              h.abandoned = true;
              if (!h.settled) enqueue(group, { ...h.entry, runAt: clock.now() + redeliverAfter });
            }
            held.clear();
          })();
          return stopped;
        },
      });
    },
  };
}
