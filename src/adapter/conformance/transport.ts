/**
 * The Transport conformance suite: the invariants written in `src/bus/transport.ts`, checked
 * against each transport on its real service.
 */
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Consumer, Delivery, Transport, TransportMessage } from "../../bus/transport.js";
import { isPatchbayError } from "../../core/errors.js";
import type { StoreTx } from "../../store/contracts.js";
import type { SqlStore } from "../../store/sql-store.js";

export interface TransportHarness {
  name: string;
  /** Whether the transport's queue lives in the store (`capabilities.sharesStore`). */
  sharesStore: boolean;
  /**
   * Whether a released delivery comes back as the next attempt (RabbitMQ: a requeue counts as a
   * delivery in the quorum queue's `x-delivery-count`) rather than as the same one.
   */
  releaseCountsAttempt?: boolean;
  /** A fresh, isolated transport (and its store, when it has one). */
  fresh(): Promise<{ transport: Transport; store?: SqlStore; cleanup(): Promise<void> }>;
}

const message = (type: string, n = 0): TransportMessage => ({
  id: randomUUID(),
  type,
  key: `k-${n}`,
  body: JSON.stringify({ specversion: "1.0", id: `e-${n}`, source: "/t", type, data: { n } }),
  headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", n: String(n) },
});

/** Resolves when `predicate` holds, polling; fails after `ms`. */
export async function until(predicate: () => boolean | Promise<boolean>, ms = 10_000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function defineTransportConformance(harness: TransportHarness): void {
  describe(`Transport conformance: ${harness.name}`, () => {
    let transport: Transport;
    let store: SqlStore | undefined;
    let cleanup: () => Promise<void>;
    const consumers: Consumer[] = [];
    const consume = async (group: string, concurrency: number, fn: (d: Delivery) => Promise<void>) => {
      const c = await transport.consume(group, { concurrency }, fn);
      consumers.push(c);
      return c;
    };
    const collect = async (group: string, concurrency = 4) => {
      const got: Delivery[] = [];
      await consume(group, concurrency, async (d) => {
        got.push(d);
        await d.ack();
      });
      return got;
    };

    beforeEach(async () => {
      const fresh = await harness.fresh();
      transport = fresh.transport;
      store = fresh.store;
      cleanup = () => fresh.cleanup();
      await transport.open();
    });
    afterEach(async () => {
      await Promise.all(consumers.splice(0).map((c) => c.stop(5000)));
      await transport.close();
      await cleanup();
    });

    it("delivers a published message intact to a bound group", async () => {
      await transport.bind("g", ["order.*"]);
      const m = message("order.created", 1);
      await transport.publish([m]);
      const got = await collect("g");
      await until(() => got.length === 1, 10_000, "delivery");
      expect(got[0]!.message).toEqual(m);
      expect(got[0]!.attempt).toBe(1);
      expect(got[0]!.failure).toBeUndefined();
      expect(got[0]!.group).toBe("g");
    });

    it("carries a message's fresh flag: set when published with it, absent otherwise", async () => {
      await transport.bind("g", ["order.*"]);
      const fresh = { ...message("order.created", 1), fresh: true };
      const plain = message("order.created", 2);
      await transport.publish([fresh, plain]);
      const got = await collect("g");
      await until(() => got.length === 2, 10_000, "deliveries");
      const byId = new Map(got.map((d) => [d.message.id, d.message]));
      expect(byId.get(fresh.id)).toEqual(fresh);
      expect(byId.get(plain.id)).toEqual(plain);
      expect(byId.get(plain.id)?.fresh).toBeUndefined();
    });

    it("fans out to every matching group and to no other", async () => {
      await transport.bind("all", ["#"]);
      await transport.bind("orders", ["order.*"]);
      await transport.bind("users", ["user.created"]);
      const [all, orders, users] = [await collect("all"), await collect("orders"), await collect("users")];
      await transport.publish([
        message("order.created", 1),
        message("order.paid.late", 2),
        message("user.created", 3),
      ]);
      await until(() => all.length === 3 && orders.length === 1 && users.length === 1, 10_000, "fan-out");
      await new Promise((r) => setTimeout(r, 200));
      expect(all).toHaveLength(3);
      expect(orders.map((d) => d.message.type)).toEqual(["order.created"]);
      expect(users.map((d) => d.message.type)).toEqual(["user.created"]);
    });

    it("keeps messages for a group with no consumer until one starts", async () => {
      await transport.bind("late", ["#"]);
      const sent = Array.from({ length: 20 }, (_, i) => message("evt.x", i));
      await transport.publish(sent);
      await new Promise((r) => setTimeout(r, 100));
      const got = await collect("late");
      await until(() => got.length === 20, 10_000, "backlog");
      expect(new Set(got.map((d) => d.message.id))).toEqual(new Set(sent.map((m) => m.id)));
    });

    it("competing consumers of one group share the messages: each delivered once", async () => {
      await transport.bind("workers", ["job.*"]);
      const seen: string[] = [];
      const worker = () =>
        consume("workers", 3, async (d) => {
          seen.push(d.message.id);
          await new Promise((r) => setTimeout(r, 2));
          await d.ack();
        });
      await worker();
      await worker();
      const sent = Array.from({ length: 60 }, (_, i) => message("job.run", i));
      await transport.publish(sent);
      await until(() => seen.length >= 60, 15_000, "60 deliveries");
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toHaveLength(60);
      expect(new Set(seen).size).toBe(60);
    });

    it("never has more than `concurrency` deliveries in flight", async () => {
      await transport.bind("bounded", ["#"]);
      let inFlight = 0;
      let peak = 0;
      let done = 0;
      await consume("bounded", 3, async (d) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 15));
        inFlight--;
        done++;
        await d.ack();
      });
      await transport.publish(Array.from({ length: 20 }, (_, i) => message("x.y", i)));
      await until(() => done === 20, 15_000, "20 handled");
      expect(peak).toBeLessThanOrEqual(3);
      expect(peak).toBeGreaterThan(1);
    });

    it("retry redelivers after the delay with the attempt count and the failure record", async () => {
      await transport.bind("r", ["#"]);
      const got: Array<{ attempt: number; at: number; failure: unknown }> = [];
      await consume("r", 1, async (d) => {
        got.push({ attempt: d.attempt, at: Date.now(), failure: d.failure });
        if (d.attempt === 1) await d.retry(300, { firstFailedAt: 42, error: { message: "boom" } });
        else await d.ack();
      });
      await transport.publish([message("a.b")]);
      await until(() => got.length === 2, 10_000, "redelivery");
      expect(got[1]!.attempt).toBe(2);
      expect(got[1]!.at - got[0]!.at).toBeGreaterThanOrEqual(290);
      expect(got[1]!.failure).toEqual({ firstFailedAt: 42, error: { message: "boom" } });
    });

    it("redelivers a delivery that was never settled (the consumer died)", async () => {
      await transport.bind("crash", ["#"]);
      const attempts: number[] = [];
      await consume("crash", 1, async (d) => {
        attempts.push(d.attempt);
        if (d.attempt === 1) throw new Error("process died before settling");
        await d.ack();
      });
      await transport.publish([message("a.b")]);
      await until(() => attempts.length === 2, 15_000, "redelivery after an unsettled delivery");
      expect(attempts).toEqual([1, 2]);
    });

    it("a delayed publish is not delivered before its time", async () => {
      await transport.bind("d", ["#"]);
      const got = await collect("d");
      const sentAt = Date.now();
      await transport.publish([message("a.b")], { delayMs: 400 });
      await until(() => got.length === 1, 10_000, "delayed delivery");
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(390);
    });

    it("a publish targeted at one group reaches only that group", async () => {
      await transport.bind("one", ["#"]);
      await transport.bind("two", ["#"]);
      const [one, two] = [await collect("one"), await collect("two")];
      await transport.publish([message("a.b")], { group: "two" });
      await until(() => two.length === 1, 10_000, "targeted delivery");
      await new Promise((r) => setTimeout(r, 150));
      expect(one).toHaveLength(0);
    });

    it("stop waits for deliveries in flight", async () => {
      await transport.bind("s", ["#"]);
      let finished = false;
      const c = await transport.consume("s", { concurrency: 1 }, async (d) => {
        await new Promise((r) => setTimeout(r, 200));
        finished = true;
        await d.ack();
      });
      await transport.publish([message("a.b")]);
      await new Promise((r) => setTimeout(r, 100));
      await c.stop(5000);
      expect(finished).toBe(true);
    });

    it("release hands a delivery back at once to any consumer of the group, not counted as an attempt where the transport can", async () => {
      await transport.bind("rel", ["a.*"]);
      const got: Array<{ attempt: number; at: number }> = [];
      await consume("rel", 1, async (d) => {
        got.push({ attempt: d.attempt, at: Date.now() });
        if (got.length === 1) await d.release();
        else await d.ack();
      });
      await transport.publish([message("a.b")]);
      await until(() => got.length === 2, 10_000, "the released delivery back");
      // At once: not after a lease or a redelivery delay (both 300-400 ms in these harnesses).
      expect(got[1]!.at - got[0]!.at).toBeLessThan(250);
      expect(got[1]!.attempt).toBe(harness.releaseCountsAttempt ? 2 : 1);
      // Settled by the release: nothing else may settle it.
      await transport.bind("rel2", ["c.*"]);
      const settled: unknown[] = [];
      await consume("rel2", 1, async (d) => {
        if (settled.length > 0) return d.ack();
        await d.release();
        settled.push(await d.ack().catch((e: unknown) => e));
      });
      await transport.publish([message("c.d")]);
      await until(() => settled.length >= 1, 10_000, "a second delivery");
      expect(isPatchbayError(settled[0], "BUS_STOPPED")).toBe(true);
    });

    it("nothing is handed to the consumer once stop() began; what it held comes back to the next one", async () => {
      await transport.bind("halt", ["#"]);
      const seen: string[] = [];
      let stopBegan = Infinity;
      let lateStarts = 0;
      const first = await transport.consume("halt", { concurrency: 4 }, async (d) => {
        if (Date.now() >= stopBegan) lateStarts++;
        seen.push(d.message.id);
        await new Promise((r) => setTimeout(r, 40));
        await d.ack();
      });
      const sent = Array.from({ length: 40 }, (_, i) => message("job.halt", i));
      await transport.publish(sent);
      await until(() => seen.length >= 6, 10_000, "some deliveries");
      stopBegan = Date.now();
      await first.stop(5000);
      await new Promise((r) => setTimeout(r, 200));
      expect(lateStarts).toBe(0);
      const rest = await collect("halt");
      await until(() => new Set([...seen, ...rest.map((d) => d.message.id)]).size === 40, 15_000, "all 40");
    });

    it("stop returns within its timeout while a delivery hangs, which then comes back to another consumer", async () => {
      await transport.bind("hang", ["#"]);
      let unblock!: () => void;
      const gate = new Promise<void>((r) => (unblock = r));
      const got: Delivery[] = [];
      const stuck = await transport.consume("hang", { concurrency: 1 }, async (d) => {
        got.push(d);
        await gate; // ignores everything: a handler that hangs
        await d.ack().catch(() => undefined);
      });
      try {
        await transport.publish([message("a.b")]);
        await until(() => got.length === 1, 10_000, "the delivery");
        const began = Date.now();
        await Promise.race([stuck.stop(200), new Promise((r) => setTimeout(r, 5000))]);
        expect(Date.now() - began).toBeLessThan(200 + 300);
        // The stopped consumer no longer holds it (no lease kept alive for it).
        const again = await collect("hang");
        await until(() => again.length === 1, 10_000, "the hung delivery, redelivered");
        expect(again[0]!.message.id).toBe(got[0]!.message.id);
        expect(again[0]!.attempt).toBe(2);
      } finally {
        unblock();
      }
    });

    it("declares whether it shares the store, as the harness expects", () => {
      expect(transport.capabilities.sharesStore).toBe(harness.sharesStore);
      expect(store !== undefined).toBe(harness.sharesStore);
    });

    it.skipIf(harness.sharesStore)(
      "without a shared store: publish({ tx }) is refused with INVALID_ARGUMENT, nothing published",
      async () => {
        await transport.bind("tx", ["#"]);
        const got = await collect("tx");
        const tx = {} as StoreTx; // never used: the transport must refuse before touching it
        const error = await transport.publish([message("in.tx")], { tx }).catch((e: unknown) => e);
        expect(isPatchbayError(error, "INVALID_ARGUMENT")).toBe(true);
        await transport.publish([message("after")]);
        await until(() => got.length >= 1, 10_000, "the next message");
        await new Promise((r) => setTimeout(r, 200));
        expect(got.map((d) => d.message.type)).toEqual(["after"]);
      },
    );

    it.skipIf(!harness.sharesStore)(
      "with a shared store: a message published in a transaction exists only if it commits",
      async () => {
        if (!store) throw new Error("a transport that shares the store needs the harness to return it");
        await transport.bind("tx", ["#"]);
        await store
          .transaction(async (tx) => {
            await transport.publish([message("rolled.back")], { tx });
            throw new Error("rollback");
          })
          .catch(() => undefined);
        await store.transaction((tx) => transport.publish([message("committed")], { tx }));
        const got = await collect("tx");
        await until(() => got.length === 1, 10_000, "committed message");
        await new Promise((r) => setTimeout(r, 150));
        expect(got.map((d) => d.message.type)).toEqual(["committed"]);
      },
    );

    it.skipIf(!harness.sharesStore)(
      "with a shared store: an ack in a transaction that does not commit settles nothing; the delivery can still be retried",
      async () => {
        if (!store) throw new Error("a transport that shares the store needs the harness to return it");
        const s = store;
        await transport.bind("rb", ["#"]);
        const got: Array<{ attempt: number; retried: unknown }> = [];
        await consume("rb", 1, async (d) => {
          if (d.attempt > 1) {
            got.push({ attempt: d.attempt, retried: undefined });
            return d.ack();
          }
          // The handler's transaction acks, then fails (as a COMMIT refused by a deferred key would).
          await s
            .transaction(async (tx) => {
              await d.ack(tx);
              throw new Error("commit refused");
            })
            .catch(() => undefined);
          const retried = await d
            .retry(50, { firstFailedAt: 1, error: { message: "commit refused" } })
            .then(() => "retried")
            .catch((e: unknown) => e);
          got.push({ attempt: d.attempt, retried });
        });
        await transport.publish([message("a.b")]);
        await until(() => got.length === 2, 10_000, "the retry's redelivery");
        expect(got).toEqual([
          { attempt: 1, retried: "retried" },
          { attempt: 2, retried: undefined },
        ]);
      },
    );
  });
}
