/**
 * What the bus of this process is doing per consumer group, for the console's Queues screen:
 * deliveries in flight now, and what the last minute's deliveries became (acked, retried,
 * dead-lettered). Read from the process's measurements (src/core/instruments.ts), so it covers
 * every transport, brokers included — and only this process: a queue's depth and age, read from
 * the store, are the cross-process truth.
 */
import type { Clock } from "../core/clock.js";
import { onMeasurement } from "../core/instruments.js";

/** One group's activity in this process. */
export interface GroupActivity {
  /** Deliveries handed to a handler and not settled yet. */
  inFlight: number;
  /** Over the last minute (in 5-second steps): deliveries, and how they settled. */
  lastMinute: { delivered: number; acked: number; retried: number; deadLettered: number };
}

type Kind = keyof GroupActivity["lastMinute"];

const STEP_MS = 5_000;
const STEPS = 12;

/** Starts listening to this process's bus measurements; `stop()` ends it. */
export function busActivity(clock: Clock) {
  const groups = new Map<string, { inFlight: number; steps: Map<number, Record<Kind, number>> }>();
  const groupOf = (name: string) => {
    let g = groups.get(name);
    if (!g) groups.set(name, (g = { inFlight: 0, steps: new Map() }));
    return g;
  };
  const count = (name: string, kind: Kind | "returned", n: number) => {
    const g = groupOf(name);
    // A delivery that was in flight before this began settles without having been counted: never below 0.
    g.inFlight = Math.max(0, g.inFlight + (kind === "delivered" ? n : -n));
    if (kind === "returned") return;
    const step = Math.floor(clock.now() / STEP_MS);
    let counts = g.steps.get(step);
    if (!counts) {
      g.steps.set(step, (counts = { delivered: 0, acked: 0, retried: 0, deadLettered: 0 }));
      for (const old of g.steps.keys()) if (old <= step - STEPS) g.steps.delete(old);
    }
    counts[kind] += n;
  };
  const stop = onMeasurement((name, value, labels) => {
    const group = (labels as { group?: string }).group;
    if (group === undefined) return;
    if (name === "bus.delivered") count(group, "delivered", value);
    else if (name === "bus.acked") count(group, "acked", value);
    else if (name === "bus.retried") count(group, "retried", value);
    else if (name === "bus.dead_lettered") count(group, "deadLettered", value);
    // Its dead letter refused, the message went back to the queue (or was parked): no longer in flight.
    else if (name === "bus.dead_letter_failed") count(group, "returned", value);
  });

  return {
    /** Every group this process delivered to, by name. */
    read(): Map<string, GroupActivity> {
      const from = Math.floor(clock.now() / STEP_MS) - STEPS + 1;
      const out = new Map<string, GroupActivity>();
      for (const [name, g] of groups) {
        const lastMinute = { delivered: 0, acked: 0, retried: 0, deadLettered: 0 };
        for (const [step, counts] of g.steps) {
          if (step < from) continue;
          for (const k of Object.keys(lastMinute) as Kind[]) lastMinute[k] += counts[k];
        }
        out.set(name, { inFlight: g.inFlight, lastMinute });
      }
      return out;
    },
    stop,
  };
}
