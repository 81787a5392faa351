/**
 * A test harness: a Patchbay on an in-memory SQLite store with the production API, driven by a
 * fake clock, with records of what was published, consumed and dead-lettered and a `settled()`
 * that waits until nothing is left to do now. In the style of MassTransit's test harness; plain
 * promises, so it works from vitest, jest and node:test alike.
 *
 * `settled()` knows rather than guesses: every worker (each queue consumer, the saga runner, the
 * webhooks worker) runs the one claim loop on the harness's clock, which says whether it sleeps
 * and how many items it handed off are still running (`claimLoopsOn`). Once all sleep with
 * nothing running, each is made to claim once more; when none finds work and all still sleep,
 * nothing is left to do at this time.
 */
import { sqlite } from "../adapters/sqlite/index.js";
import type { DeadLetter } from "../bus/dead-letters.js";
import { localTransport } from "../bus/local-transport.js";
import type { Delivery, Transport, TransportMessage } from "../bus/transport.js";
import type { AnyEventDefinition } from "../bus/bus.js";
import { claimLoopsOn } from "../core/claim-loop.js";
import { decodeStructured, type CloudEvent } from "../core/envelope.js";
import { toMs, type Duration } from "../core/duration.js";
import { PatchbayError } from "../core/errors.js";
import { createLogger, type Logger } from "../core/logger.js";
import { createPatchbay, type Patchbay } from "../patchbay.js";
import type { SagaRunner } from "../saga/runner.js";
import type { Pipeline } from "../sync/pipeline.js";
import type { SqlStore } from "../store/sql-store.js";
import { FakeClock } from "./fake-clock.js";

/** Options of {@link createHarness}. */
export interface HarnessOptions {
  /** Event definitions consumers decode (as `createPatchbay({ events })`). */
  events?: readonly AnyEventDefinition[];
  /** Default: a new {@link FakeClock} at 2025-01-01T00:00:00Z. */
  clock?: FakeClock;
  /** Default: SQLite in memory. Give `withStoreFaults(sqlite({ file: ":memory:" }), fault)` to inject store faults. */
  store?: SqlStore;
  /** Wraps the transport (e.g. `(t) => withTransportFaults(t, fault)`). */
  transport?: (transport: Transport) => Transport;
  /** How long `settled()` waits, in real time, before it fails with `HARNESS_NOT_SETTLED`. Default 10 s. */
  timeout?: Duration;
  /**
   * How often, in real time, an idle worker looks for work nobody woke it for (rows a test wrote
   * with SQL, another harness on the same store). `settled()` does not depend on it. Default 100 ms.
   */
  pollInterval?: Duration;
  /** The lease of claimed queue messages and sagas, in clock time. Default 30 s (production's). */
  lease?: Duration;
  source?: string;
  logger?: Logger;
}

/** A delivery a consumer group acknowledged. */
export interface ConsumedRecord {
  group: string;
  event: CloudEvent;
  attempt: number;
}

/** The harness made by {@link createHarness}. */
export interface Harness {
  /**
   * The Patchbay: subscribe, publish, and register sagas (`pb.saga`), pipelines (`pb.pipeline`) and
   * webhooks (`pb.webhooks`) as in production; every part follows the clock and `settled()` waits for it.
   */
  readonly pb: Patchbay;
  /** The Patchbay's saga runner (`pb.sagas`): register sagas here or with `pb.saga`. */
  readonly sagas: SagaRunner;
  readonly clock: FakeClock;
  readonly store: SqlStore;
  /** Starts the Patchbay and its parts (parts registered later start at once). */
  start(): Promise<void>;
  /**
   * Resolves once nothing is left to do at the clock's current time: no message due or in flight
   * in any group, no saga due or running a step, no webhook delivery due or being sent, no
   * pipeline run in progress. Work scheduled later (retries, delays, cron ticks) waits for
   * {@link Harness.advance}. Fails with `HARNESS_NOT_SETTLED` after the `timeout` (work that
   * never ends, or waits on the clock itself: move it with `advance`).
   */
  settled(): Promise<void>;
  /**
   * Moves the fake clock forward by `duration` through every due time on the way (each retry,
   * delay, saga deadline, webhook attempt, cron tick, in order), settling at each as
   * {@link Harness.settled} does, then waits until settled.
   */
  advance(duration: Duration): Promise<void>;
  /** Events published (committed), optionally of one type. */
  published(type?: string): CloudEvent[];
  /** Deliveries acknowledged, optionally by one group and of one type. */
  consumed(filter?: { group?: string; type?: string }): ConsumedRecord[];
  /** Dead letters in the store, optionally of one group. */
  deadLettered(group?: string): Promise<DeadLetter[]>;
  /** Ids of the sagas of `name` (all when omitted) that ended compensated. */
  compensated(name?: string): Promise<string[]>;
  /** Stops everything and closes the store. Safe twice. */
  stop(): Promise<void>;
}

/** How long work in flight may sit unchanged on a clock sleep before advance() moves time on. */
const STUCK_ON_CLOCK_MS = 50;
const realSleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates a harness. Subscribe and register sagas, `start()`, act, `await settled()`, assert.
 *
 * @example
 * const h = createHarness({ events: [OrderCreated] });
 * h.pb.subscribe(OrderCreated, { group: "email" }, handler);
 * await h.start();
 * await h.pb.publish(OrderCreated, order);
 * await h.settled();
 * expect(h.consumed({ group: "email" })).toHaveLength(1);
 * await h.stop();
 */
export function createHarness(options: HarnessOptions = {}): Harness {
  const clock = options.clock ?? new FakeClock();
  const logger = options.logger ?? createLogger({ name: "harness", level: "silent" });
  const store = options.store ?? sqlite({ file: ":memory:", clock, logger });
  const timeoutMs = toMs(options.timeout ?? "10s", "timeout");
  const pollInterval = options.pollInterval ?? "100ms";
  const lease = options.lease ?? "30s";
  const published: CloudEvent[] = [];
  const consumed: ConsumedRecord[] = [];

  const decode = (m: TransportMessage): CloudEvent | undefined => {
    try {
      return decodeStructured(m.body);
    } catch {
      return undefined;
    }
  };
  const record = (messages: readonly TransportMessage[]) => {
    for (const m of messages) {
      const event = decode(m);
      if (event) published.push(event);
    }
  };
  const local = localTransport(store, { clock, logger, pollInterval, lease });
  const observed: Transport = {
    name: local.name,
    capabilities: local.capabilities,
    open: () => local.open(),
    bind: (group, patterns) => local.bind(group, patterns),
    close: () => local.close(),
    async publish(messages, opts) {
      await local.publish(messages, opts);
      if (opts?.group !== undefined) return; // a replay, not a new publish
      if (opts?.tx) opts.tx.afterCommit(() => record(messages));
      else record(messages);
    },
    consume(group, consumeOptions, onDelivery) {
      return local.consume(group, consumeOptions, async (delivery: Delivery) => {
        const tracked: Delivery = Object.create(delivery, {
          ack: {
            value: async (tx?: Parameters<Delivery["ack"]>[0]) => {
              await delivery.ack(tx);
              const event = decode(delivery.message);
              // The bus also acks what it dead-letters (in the same transaction): that is not consumed.
              // Literals, not placeholders: `?` and `$1` differ between the stores a harness may get.
              const literal = (v: string) => `'${v.replaceAll("'", "''")}'`;
              const { rows } = await (tx ?? store).query(
                `SELECT 1 AS x FROM ${t("bus_dead_letters")} WHERE grp = ${literal(group)} AND message_id = ${literal(delivery.message.id)}`,
              );
              if (event === undefined || rows.length > 0) return;
              const entry = { group, event, attempt: delivery.attempt };
              if (tx) tx.afterCommit(() => consumed.push(entry));
              else consumed.push(entry);
            },
          },
        }) as Delivery;
        await onDelivery(tracked);
      });
    },
  };
  const transport = options.transport ? options.transport(observed) : observed;
  const patchbay = createPatchbay({
    store,
    clock,
    logger,
    transport,
    sagas: { pollInterval, lease },
    ...(options.events ? { events: options.events } : {}),
    ...(options.source ? { source: options.source } : {}),
  });
  /** Pipelines made through `pb.pipeline`, so that `settled()` can wait for their runs. */
  const pipelines: Pipeline[] = [];
  let webhooksMade = false;
  const pb: Patchbay = Object.create(patchbay, {
    // The first call makes them: polling as often as the queue and the sagas do.
    webhooks: {
      value: (webhooksOptions?: Parameters<Patchbay["webhooks"]>[0]) => {
        const made = patchbay.webhooks(webhooksMade ? webhooksOptions : { pollInterval, ...webhooksOptions });
        webhooksMade = true;
        return made;
      },
    },
    pipeline: {
      value: (...args: Parameters<Patchbay["pipeline"]>) => {
        const p = patchbay.pipeline(...args);
        pipelines.push(p);
        return p;
      },
    },
  }) as Patchbay;
  const sagas = patchbay.sagas;
  const t = (name: string) => store.dialect.table(name);

  /** What is still going on now, as text for the timeout message; "" when every worker sleeps idle. */
  function busy(): string {
    const loops = claimLoopsOn(clock);
    const awake = loops.filter((l) => !l.asleep).length;
    const items = loops.reduce((n, l) => n + l.inFlight(), 0);
    const running = pipelines.reduce((n, p) => n + p.runsInFlight, 0);
    const parts = [
      awake > 0 ? `${awake} worker(s) claiming` : "",
      items > 0 ? `${items} message(s), saga(s) or webhook attempt(s) in flight` : "",
      running > 0 ? `${running} pipeline run(s) in progress` : "",
    ];
    return parts.filter(Boolean).join(", ");
  }

  /**
   * Waits until every worker sleeps with nothing in flight, then has each claim once more: settled
   * when none found work and all still sleep. `stuckOnClock`: also return when only work in
   * flight is left, unchanged for a while, and the clock has sleepers (it waits on the clock).
   */
  async function settle(stuckOnClock: boolean): Promise<void> {
    const until = Date.now() + timeoutMs;
    let failure: unknown;
    let stuck: { since: number; state: string } | undefined;
    for (;;) {
      const left = busy();
      if (left === "") {
        const rounds = await Promise.all(claimLoopsOn(clock).map((l) => l.round()));
        failure = rounds.find((r) => r.error !== undefined)?.error;
        if (failure === undefined && rounds.every((r) => r.claimed === 0) && busy() === "") return;
        stuck = undefined;
      } else if (stuckOnClock && clock.pendingSleepers > 0 && claimLoopsOn(clock).every((l) => l.asleep)) {
        const state = `${left}/${clock.pendingSleepers}`;
        if (stuck?.state !== state) stuck = { since: Date.now(), state };
        else if (Date.now() - stuck.since >= STUCK_ON_CLOCK_MS) return;
      }
      if (Date.now() > until) {
        const why =
          failure === undefined
            ? ""
            : ` (a claim failed: ${failure instanceof Error ? failure.message : JSON.stringify(failure)})`;
        throw new PatchbayError(
          "HARNESS_NOT_SETTLED",
          `the harness did not settle within ${timeoutMs} ms: ${left || "work keeps coming"}${why}`,
        );
      }
      if (left !== "" || failure !== undefined) await realSleep(1);
    }
  }

  let stopping: Promise<void> | undefined;
  const harness: Harness = {
    pb,
    sagas,
    clock,
    store,
    start: () => patchbay.start(),
    settled: () => settle(false),
    async advance(duration) {
      await clock.advance(duration, { between: () => settle(true) });
      await settle(false);
    },
    published: (type) => published.filter((e) => type === undefined || e.type === type),
    consumed: (filter = {}) =>
      consumed.filter(
        (c) =>
          (filter.group === undefined || c.group === filter.group) &&
          (filter.type === undefined || c.event.type === filter.type),
      ),
    deadLettered: (group) => pb.bus.deadLetters.list(group === undefined ? {} : { group }),
    async compensated(name) {
      const list = await sagas.list({ status: "compensated", ...(name === undefined ? {} : { name }) });
      return list.map((s) => s.id);
    },
    stop() {
      stopping ??= patchbay.stop({ timeout: "2s" });
      return stopping;
    },
  };
  return harness;
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    HARNESS_NOT_SETTLED: PatchbayError;
  }
}
