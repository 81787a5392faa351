/**
 * The acks of one consumer channel, coalesced. Acks requested in one turn of the event loop go
 * out together at its end: the longest run of finished deliveries at the head of the channel's
 * unsettled ones as a single `basic.ack` with `multiple` (every tag up to it), the rest one by
 * one. An ack is never held back longer than that turn — not behind a slow handler — so a
 * channel's prefetch window is freed exactly as soon as it would be by acking each delivery.
 * Fewer ack frames is less work for the broker's quorum queue and for us.
 */
import type { Channel, Message } from "./load.js";

const PENDING = 0;
const QUEUED = 1;
const SETTLED = 2;

/** One delivery on the channel: its message and whether its ack is due or done. */
export interface Tracked {
  readonly msg: Message;
  state: typeof PENDING | typeof QUEUED | typeof SETTLED;
}

/** Coalesces the acks of `ch`; `alive()` false drops them (the broker redelivers). */
export function channelAcks(ch: Pick<Channel, "ack" | "nack">, alive: () => boolean) {
  /** The channel's unsettled deliveries, in delivery (= tag) order. */
  let entries: Tracked[] = [];
  let scheduled: NodeJS.Immediate | undefined;

  const send = (t: Tracked, multiple: boolean) => {
    try {
      ch.ack(t.msg, multiple);
    } catch {
      // closing under us: the broker redelivers what was not acked
    }
  };

  function flush() {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    if (!alive()) {
      entries = [];
      return;
    }
    // The head run of finished deliveries (acked now, or settled before — a nack, an earlier
    // single ack: the broker no longer holds those) is acked up to its last due ack at once.
    let i = 0;
    let last = -1;
    for (; i < entries.length && entries[i]!.state !== PENDING; i++)
      if (entries[i]!.state === QUEUED) last = i;
    if (last >= 0) send(entries[last]!, true);
    // Due acks behind an unfinished delivery go one by one.
    for (let j = i; j < entries.length; j++) {
      const t = entries[j]!;
      if (t.state === QUEUED) {
        send(t, false);
        t.state = SETTLED;
      }
    }
    // Only unfinished deliveries stay (at most the prefetch), however long one of them takes.
    entries = entries.filter((t) => t.state === PENDING);
  }

  return {
    /** Starts tracking a delivery (call in delivery order). */
    track(msg: Message): Tracked {
      const t: Tracked = { msg, state: PENDING };
      entries.push(t);
      return t;
    },
    /** Acks the delivery at the end of this turn of the event loop. */
    ack(t: Tracked) {
      if (t.state !== PENDING) return;
      t.state = QUEUED;
      scheduled ??= setImmediate(flush);
    },
    /** Gives the delivery back to the queue now. */
    requeue(t: Tracked) {
      if (t.state !== PENDING) return;
      t.state = SETTLED;
      if (!alive()) return;
      try {
        ch.nack(t.msg, false, true);
      } catch {
        // closing under us: the broker requeues it anyway
      }
    },
    /** Rejects the delivery now, without requeueing: the queue dead-letters it. */
    reject(t: Tracked) {
      if (t.state !== PENDING) return;
      t.state = SETTLED;
      if (!alive()) return;
      try {
        ch.nack(t.msg, false, false);
      } catch {
        // closing under us: the broker requeues it, and it comes back
      }
    },
    /** Sends the due acks now (before the channel closes). */
    flush,
  };
}
