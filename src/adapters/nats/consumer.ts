/**
 * A consumer of one group: pulls from the group's durable consumer no more than it has free
 * slots (so at most `concurrency` deliveries are in flight and a backlog stays on the server),
 * acks explicitly, keeps a long delivery with `working()` heartbeats, and pulls again after a
 * reconnection (a pull request dies with its server connection; each fetch is bounded, so the
 * next one goes to the new connection).
 *
 * The attempt is the count JetStream keeps (`info.deliveryCount`, durable on the server, so right
 * after a restart of ours or of the server) plus the retries the message went through before it
 * was published again (`Patchbay-Retries`).
 *
 * A redelivered message (its last delivery ended unsettled: its process died, or lost its
 * connection) runs alone in its process (alone.ts), and before it runs, the suspects stream
 * records one more such run; a run that returns clears the record. So the record counts the runs
 * that ended with their process, and only those of this message: a message in flight beside a
 * poison message when it kills its process is redelivered, runs alone once, and is done, while
 * the poison reaches `deliveryLimit` (its first unsettled delivery, beside others, plus
 * `deliveryLimit - 1` alone) and becomes a dead letter.
 */
import type { ConsumerMessages, JsMsg, PullConsumer as JsConsumer } from "./load.js";
import { BusError, UndecodableMessageError } from "../../bus/errors.js";
import type { Consumer, Delivery, FailureRecord } from "../../bus/transport.js";
import { isPatchbayError } from "../../core/errors.js";
import { invoke } from "../../core/invoke.js";
import type { Logger } from "../../core/logger.js";
import { settleBy } from "../../core/settle-by.js";
import type { Backoff } from "../../resilience/backoff.js";
import { runGate } from "./alone.js";
import { decode, decodeFallback, type Decoded, type Incoming } from "./codec.js";

/** How a message goes back to the group later. */
export interface Later {
  group: string;
  delayMs: number;
  retries: number;
  failure: FailureRecord | undefined;
}

export interface ConsumerDeps {
  /** The group's JetStream consumer (looked up again after failures). */
  consumer(): Promise<JsConsumer>;
  /** The group's patterns as bound now (cached briefly), as a predicate. */
  matcher(): Promise<(type: string) => boolean>;
  typePrefix: string;
  /** Publishes the message to the delay stream, to come back to the group (acknowledged). */
  sendLater(decoded: Decoded, later: Later): Promise<void>;
  /** Moves a message whose dead letter the store refused to the parked stream. */
  park(decoded: Decoded, group: string): Promise<void>;
  /** The runs alone recorded for the message at `seq` in the main stream (0 when none). */
  suspectRuns(group: string, seq: number): Promise<number>;
  /** Records `runs` runs alone of the message at `seq` (acknowledged by the stream). */
  markSuspect(group: string, seq: number, runs: number): Promise<void>;
  /** Forgets them: a run returned. */
  clearSuspect(group: string, seq: number): Promise<void>;
  unsettled: Backoff;
  deliveryLimit: number;
  ackWaitMs: number;
  logger: Logger;
}

export const incoming = (m: JsMsg): Incoming => ({
  subject: m.subject,
  data: m.data,
  header: (name) => (m.headers?.has(name) ? m.headers.get(name) : undefined),
});

export async function startConsumer(
  deps: ConsumerDeps,
  group: string,
  concurrency: number,
  onDelivery: (delivery: Delivery) => Promise<void>,
): Promise<Consumer> {
  const log = deps.logger.child({ group });
  let running = true;
  let batch: ConsumerMessages | undefined;
  let unsettledRun = 0;
  let previousDelay: number | undefined;
  const inFlight = new Set<Promise<void>>();
  const live = new Set<NatsDelivery>();
  const cancels = new Set<() => void>();
  let slotFreed: (() => void) | undefined;

  // Acks go out together once this turn's handlers are done: one socket write for many (an ack
  // on its own costs a write, and the server a read, per message). Sent before stop returns.
  let acks: JsMsg[] = [];
  let ackTimer: NodeJS.Immediate | undefined;
  const flushAcks = () => {
    const due = acks;
    acks = [];
    ackTimer = undefined;
    for (const m of due) m.ack();
  };
  const ack = (m: JsMsg) => {
    acks.push(m);
    ackTimer ??= setImmediate(flushAcks);
  };

  const pause = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const cancel = () => {
        clearTimeout(timer);
        cancels.delete(cancel);
        resolve(false);
      };
      const timer = setTimeout(() => {
        cancels.delete(cancel);
        resolve(running);
      }, ms);
      cancels.add(cancel);
    });

  class NatsDelivery implements Delivery {
    state: "open" | "busy" | "settled" | "abandoned" = "open";
    readonly message: Delivery["message"];
    readonly failure: FailureRecord | undefined;
    readonly undecodable: Delivery["undecodable"];
    constructor(
      readonly msg: JsMsg,
      readonly d: Decoded,
      readonly attempt: number,
      undecodable: UndecodableMessageError | undefined,
      /** Stops the heartbeat and gives its turn back (idempotent). */
      readonly done: () => void,
    ) {
      this.message = d.message;
      this.failure = d.failure;
      this.undecodable = undecodable;
    }
    get group() {
      return group;
    }
    private claim(what: string) {
      if (this.state !== "open") {
        throw new BusError("BUS_STOPPED", `delivery ${this.d.message.id} already settled (${what})`);
      }
      this.state = "busy";
    }
    ack(): Promise<void> {
      return invoke(() => {
        this.claim("ack");
        ack(this.msg);
        this.state = "settled";
        this.done();
      });
    }
    /** Due again at once (a nak: JetStream counts it as a delivery, so the next attempt is one more). */
    release(): Promise<void> {
      return invoke(() => {
        this.claim("release");
        this.msg.nak();
        this.state = "settled";
        this.done();
      });
    }
    /**
     * Published to the delay stream (acknowledged), then acked here — not `nak(delay)`: a message
     * nak'ed with a delay counts toward the consumer's max_ack_pending (nats-server#6093), so a
     * burst of retries could stall the whole group, and a nak cannot carry the failure record.
     */
    async retry(delayMs: number, failure: FailureRecord): Promise<void> {
      this.claim("retry");
      try {
        await deps.sendLater(this.d, {
          group,
          delayMs: Math.max(0, delayMs),
          retries: this.attempt,
          failure,
        });
      } catch (e) {
        this.state = "open";
        throw e;
      }
      ack(this.msg);
      this.state = "settled";
      this.done();
    }
  }

  async function handle(m: JsMsg): Promise<void> {
    let d: Decoded;
    try {
      d = decode(incoming(m), deps.typePrefix);
    } catch (e) {
      d = decodeFallback(incoming(m), e);
    }
    // The stream holds every group's messages: what is not for this group is acked at once.
    if (d.group !== undefined ? d.group !== group : !(await deps.matcher())(d.message.type)) {
      ack(m);
      return;
    }
    const deliveries = m.info.deliveryCount;
    const seq = m.info.streamSequence;
    // Keeps the delivery ours while it waits for its turn and while the handler runs longer than
    // the ack wait.
    const heartbeat = setInterval(() => m.working(), Math.max(250, Math.floor(deps.ackWaitMs / 3)));
    heartbeat.unref();
    const suspect = deliveries > 1;
    const turn = suspect
      ? await runGate.apart(() => running, deps.ackWaitMs)
      : await runGate.beside(() => running).then((release) => release && { alone: false, release });
    let capped: NodeJS.Timeout | undefined;
    const done = () => {
      clearInterval(heartbeat);
      clearTimeout(capped);
      turn?.release();
    };
    if (!turn) {
      done();
      return m.nak(); // stopping: back to the group at once
    }
    let undecodable = d.undecodable;
    let marked = false;
    if (turn.alone && !undecodable) {
      try {
        const runs = await deps.suspectRuns(group, seq);
        if (runs >= Math.max(1, deps.deliveryLimit - 1)) {
          // Its process died on it every time, alone the last times: a dead letter now.
          undecodable = new UndecodableMessageError(
            `message ${d.message.id} was delivered ${deliveries} times to group ${group} without being settled (deliveryLimit ${deps.deliveryLimit}), ${runs} of them running alone in their process; its consumer dies on it?`,
            "delivery",
            String(deliveries),
          );
        } else {
          await deps.markSuspect(group, seq, runs + 1);
          marked = true;
        }
      } catch (e) {
        log.warn({ err: e, messageId: d.message.id }, "patchbay nats: cannot record a suspect's run");
        done();
        return m.nak(1000);
      }
      // A run that outlasts the ack wait lets the others go on (it still counts if it kills us).
      capped = setTimeout(turn.release, deps.ackWaitMs);
      capped.unref();
    }
    const attempt = d.retries + deliveries;
    const delivery = new NatsDelivery(m, d, attempt, undecodable, done);
    let failure: unknown;
    live.add(delivery);
    try {
      await onDelivery(delivery);
    } catch (e) {
      failure = e;
      log.error({ err: e, messageId: d.message.id }, "patchbay nats: delivery not settled");
    } finally {
      live.delete(delivery);
    }
    if (marked && delivery.state !== "abandoned") {
      // It returned: this run did not kill its process.
      deps
        .clearSuspect(group, seq)
        .catch((e: unknown) => log.debug({ err: e }, "patchbay nats: suspect record kept"));
    }
    if (delivery.state === "settled" || delivery.state === "abandoned") {
      if (delivery.state === "settled") unsettledRun = 0;
      return;
    }
    delivery.done();
    delivery.state = "settled";
    if (!running) return m.nak();
    if (isPatchbayError(failure, "DEAD_LETTER_FAILED") && !failure.retryable) {
      try {
        await deps.park(d, group);
        ack(m);
        log.error({ messageId: d.message.id }, "patchbay nats: message parked in the prefix's parked stream");
      } catch (e) {
        log.error({ err: e, messageId: d.message.id }, "patchbay nats: cannot park a message");
        m.nak(1000);
      }
      return;
    }
    // The consumer could not record an outcome (the store is down?): later, slower while it lasts.
    const delayMs = deps.unsettled.delay(++unsettledRun, previousDelay, Math.random);
    previousDelay = delayMs;
    try {
      await deps.sendLater(d, { group, delayMs, retries: attempt, failure: d.failure });
      ack(m);
    } catch (e) {
      log.warn({ err: e, messageId: d.message.id }, "patchbay nats: cannot reschedule a delivery");
      m.nak(delayMs);
    }
  }

  function dispatch(m: JsMsg) {
    const p: Promise<void> = handle(m)
      .catch((e: unknown) => log.error({ err: e }, "patchbay nats: consumer error"))
      .finally(() => {
        inFlight.delete(p);
        slotFreed?.();
      });
    inFlight.add(p);
  }

  const refill = Math.max(1, Math.floor(concurrency / 4));

  async function loop(): Promise<void> {
    let failures = 0;
    let pull: JsConsumer | undefined;
    while (running) {
      const free = concurrency - inFlight.size;
      // A pull per freed slot would cost a round trip per message under load: pull again once a
      // quarter of the slots are free (at once when idle).
      if (free <= 0 || (inFlight.size > 0 && free < refill)) {
        await new Promise<void>((r) => (slotFreed = r));
        slotFreed = undefined;
        continue;
      }
      if (runGate.closed) {
        // A suspect waits to run alone in this process, or runs: nothing new meanwhile.
        await new Promise<void>((r) => {
          slotFreed = r;
          void runGate.changed().then(r);
        });
        slotFreed = undefined;
        continue;
      }
      try {
        // Looked up once (a consumer info request), again only after a failure.
        pull ??= await deps.consumer();
        await deps.matcher();
        if (!running) break;
        batch = await pull.fetch({ max_messages: free, expires: 2000 });
        for await (const m of batch) {
          if (!running) {
            m.nak(); // fetched, not handed over: back to the group at once
            continue;
          }
          dispatch(m);
        }
        failures = 0;
      } catch (e) {
        if (!running) break;
        pull = undefined;
        failures++;
        log.warn({ err: e }, "patchbay nats: pull failed; pulling again");
        await pause(Math.min(2000, 100 * 2 ** Math.min(failures, 5)));
      } finally {
        batch = undefined;
      }
    }
  }

  // The group's consumer must exist before the first pull (and errors surface to the caller).
  await deps.consumer();
  const looping = loop();

  let stopped: Promise<void> | undefined;
  return {
    stop(timeoutMs = 30_000) {
      stopped ??= (async () => {
        const deadline = Date.now() + timeoutMs;
        running = false;
        for (const cancel of [...cancels]) cancel();
        slotFreed?.();
        runGate.wake(); // deliveries waiting for their turn give up

        batch?.stop();
        await settleBy(looping, deadline);
        const handlers = [...inFlight];
        await settleBy(Promise.allSettled(handlers), deadline);
        if (ackTimer) {
          clearImmediate(ackTimer);
          flushAcks();
        }
        // Abandoned like those of a process that died, but handed back at once: no heartbeat
        // keeps them, and a late settle does nothing.
        for (const d of live) {
          if (d.state === "open" || d.state === "busy") {
            d.state = "abandoned";
            d.done();
            d.msg.nak();
          }
        }
      })();
      return stopped;
    },
  };
}
