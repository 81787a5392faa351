/**
 * The Transport conformance suite on NATS JetStream, and what is particular to it.
 */
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import type { Consumer, Delivery, Transport, TransportMessage } from "../src/bus/transport.js";
import { isPatchbayError } from "../src/core/errors.js";
import { constant } from "../src/resilience/backoff.js";
import { defineTransportConformance, until } from "./conformance/transport.js";
import { nats } from "../src/adapters/nats/index.js";
import { isolatedNats, quick, type IsolatedNats } from "./support/nats.js";
import { ownNatsServer } from "./support/nats-server.js";
import { tcpProxy } from "./support/tcp-proxy.js";

const { nats: ns } = inject("services");

const message = (type: string, headers: Record<string, string> = {}): TransportMessage => ({
  id: randomUUID(),
  type,
  body: JSON.stringify({ specversion: "1.0", id: randomUUID(), source: "/t", type, data: {} }),
  headers,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!ns.reachable) {
  describe.skip("NATS transport", () => undefined);
  console.log(`Transport conformance on NATS skipped: unreachable at ${ns.where}`);
} else {
  defineTransportConformance({
    sharesStore: false,
    releaseCountsAttempt: true,
    name: `NATS JetStream (${ns.where})`,
    fresh() {
      const broker = isolatedNats(ns.url);
      return Promise.resolve({
        transport: broker.make({ unsettledRetry: constant(300) }),
        cleanup: () => broker.cleanup(),
      });
    },
  });

  describe(`NATS transport specifics (${ns.where})`, () => {
    let broker: IsolatedNats;
    const transports: Transport[] = [];
    const consumers: Consumer[] = [];
    const make = () => {
      const t = broker.make();
      transports.push(t);
      return t;
    };
    const collect = async (t: Transport, group: string, concurrency = 4) => {
      const got: Delivery[] = [];
      consumers.push(
        await t.consume(group, { concurrency }, async (d) => {
          got.push(d);
          await d.ack();
        }),
      );
      return got;
    };
    beforeEach(() => {
      broker = isolatedNats(ns.url);
    });
    afterEach(async () => {
      await Promise.all(consumers.splice(0).map((c) => c.stop(5000)));
      await Promise.all(transports.splice(0).map((t) => t.close()));
      await broker.cleanup();
    });

    it("bind leaves exactly the given patterns bound, read by every process of the group", async () => {
      const a = make();
      const b = make();
      await a.bind("g", ["a.*", "b.#"]);
      await b.bind("g", ["b.#", "c.#"]);
      await sleep(1100); // a process reads its group's binding again at most a second later
      const got = await collect(a, "g");
      await a.publish([message("a.x"), message("b"), message("c.y.z"), message("d.x")]);
      await until(() => got.length === 2, 10_000, "two deliveries");
      await sleep(300);
      expect(got.map((d) => d.message.type).sort()).toEqual(["b", "c.y.z"]);
    });

    it("a re-publish of an id within the duplicate window is dropped; a targeted replay of it is not", async () => {
      const t = make();
      await t.bind("dup", ["#"]);
      const got = await collect(t, "dup");
      const m = message("x.y");
      await t.publish([m]);
      await t.publish([m]);
      await t.publish([m], { group: "dup" });
      await until(() => got.length === 2, 10_000, "two deliveries");
      await sleep(300);
      expect(got).toHaveLength(2);
    });

    it("headers of any name and value round-trip", async () => {
      const t = make();
      await t.bind("h", ["#"]);
      const got = await collect(t, "h");
      const headers = { "x-odd name": "a\r\nb", "Patchbay-Id": "user's", "": "empty", ü: "ÿ" };
      const m = message("x.y", headers);
      await t.publish([m]);
      await until(() => got.length === 1, 10_000, "delivery");
      expect(got[0]!.message).toEqual(m);
    });

    it("a retry outlives its consumer: a new process gets it on time, counted, with its failure", async () => {
      const first = make();
      await first.bind("r", ["#"]);
      let retried = false;
      const c = await first.consume("r", { concurrency: 1 }, async (d) => {
        await d.retry(1500, { firstFailedAt: 7, error: { message: "later" } });
        retried = true;
      });
      const sentAt = Date.now();
      await first.publish([message("job.run")]);
      await until(() => retried, 10_000, "the retry");
      await c.stop(5000);
      await first.close();
      const second = make();
      const got = await collect(second, "r");
      await until(() => got.length === 1, 15_000, "the retried message");
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1400);
      expect(got[0]!.attempt).toBe(2);
      expect(got[0]!.failure).toEqual({ firstFailedAt: 7, error: { message: "later" } });
    });

    it("eight processes starting at once make the streams and the group's consumer once, and share it", async () => {
      const many = Array.from({ length: 8 }, () => make());
      // open, bind and consume all at once, as processes of one deployment starting together.
      const got: Delivery[] = [];
      await Promise.all(
        many.map(async (t) => {
          await t.open();
          await t.bind("race.g", ["race.#"]);
          consumers.push(
            await t.consume("race.g", { concurrency: 2 }, async (d) => {
              got.push(d);
              await d.ack();
            }),
          );
        }),
      );
      const info = await broker.consumers();
      expect(info.map((c) => `${c.stream}/${c.name}`).sort()).toEqual(
        [`${broker.prefix}/race_dg`, `${broker.prefix}_delay/forwarder`].sort(),
      );
      expect(info.find((c) => c.name === "race_dg")?.description).toContain('"patterns":["race.#"]');
      const sent = Array.from({ length: 40 }, () => message("race.x"));
      await many[3]!.publish(sent);
      await until(() => got.length === 40, 15_000, "40 deliveries");
      await sleep(500);
      // Competing consumers of one durable: each message once across the eight.
      expect(got.map((d) => d.message.id).sort()).toEqual(sent.map((m) => m.id).sort());
    });

    it("a handler running 3× ackWait keeps its delivery with heartbeats: delivered once, never redelivered", async () => {
      const t = broker.make({ ackWait: "2s" });
      transports.push(t);
      await t.bind("long", ["#"]);
      const got: Delivery[] = [];
      let acked = 0;
      consumers.push(
        await t.consume("long", { concurrency: 2 }, async (d) => {
          got.push(d);
          await sleep(6000);
          await d.ack();
          acked++;
        }),
      );
      await t.publish([message("x.slow")]);
      await until(() => acked === 1, 20_000, "the slow handler's ack");
      await sleep(4000); // two more ack waits: a redelivery would have come
      expect(got.map((d) => d.attempt)).toEqual([1]);
      const c = (await broker.consumers()).find((i) => i.name === "long");
      expect(c).toMatchObject({ redelivered: 0, ackPending: 0, pending: 0 });
    });

    it("retries waiting for their time are not ack pending on the group's consumer (nats-server#6093): the group goes on", async () => {
      const t = make();
      await t.bind("wait", ["#"]);
      const fresh: Delivery[] = [];
      let retried = 0;
      consumers.push(
        await t.consume("wait", { concurrency: 8 }, async (d) => {
          if (d.message.type === "x.later") {
            await d.retry(60_000, { firstFailedAt: Date.now(), error: { message: "later" } });
            retried++;
          } else {
            fresh.push(d);
            await d.ack();
          }
        }),
      );
      await t.publish(Array.from({ length: 50 }, () => message("x.later")));
      await until(() => retried === 50, 15_000, "50 retries");
      await t.publish([message("x.now")]);
      await until(() => fresh.length === 1, 10_000, "a message published after the retries");
      await sleep(500);
      const c = (await broker.consumers()).find((i) => i.name === "wait");
      // A nak(delay) would leave the 50 ack pending here until due (and stall the group at max_ack_pending).
      expect(c).toMatchObject({ ackPending: 0, pending: 0 });
    });

    it("an idle consumer pulls again after an outage of its connection longer than a pull: what comes next is delivered", async () => {
      const target = new URL(ns.url);
      const proxy = await tcpProxy(target.hostname, Number(target.port) || 4222);
      try {
        const t = nats({ url: `nats://127.0.0.1:${proxy.port}`, prefix: broker.prefix, ...quick });
        transports.push(t);
        await t.bind("idle", ["#"]);
        const got = await collect(t, "idle");
        await t.publish([message("x.before")]);
        await until(() => got.length === 1, 10_000, "the first delivery");
        proxy.outage(); // the pull waiting on the server dies with the connection
        await sleep(3000);
        proxy.restore();
        // Published by another connection: nothing but a new pull brings it to the idle consumer.
        const other = make();
        await other.publish([message("x.after")]);
        // (x.before may come again: its ack may have been lost with the connection.)
        await until(
          () => got.some((d) => d.message.type === "x.after"),
          20_000,
          "a delivery after the outage",
        );
      } finally {
        await proxy.close();
      }
    });

    it("an idle consumer pulls again after its nats-server restarts: what comes next is delivered", async () => {
      const server = await ownNatsServer();
      try {
        const t = nats({ url: server.url, prefix: broker.prefix, ...quick });
        transports.push(t);
        await t.bind("idle", ["#"]);
        const got = await collect(t, "idle");
        await t.publish([message("x.before")]);
        await until(() => got.length === 1, 10_000, "the first delivery");
        await server.kill();
        await sleep(2500);
        await server.start();
        const other = nats({ url: server.url, prefix: broker.prefix, ...quick });
        transports.push(other);
        // The server listens before its JetStream has read its store back (slow under load):
        // PUBLISH_FAILED (retryable) until then, and publishing again is safe.
        const after = message("x.after");
        await until(
          () =>
            other.publish([after]).then(
              () => true,
              (e: unknown) => {
                if (!isPatchbayError(e, "PUBLISH_FAILED") || !e.retryable) throw e;
                return false;
              },
            ),
          30_000,
          "a publish to the restarted server",
        );
        await until(
          () => got.some((d) => d.message.type === "x.after"),
          20_000,
          "a delivery after the restart",
        );
      } finally {
        await Promise.all(consumers.splice(0).map((c) => c.stop(5000)));
        await Promise.all(transports.splice(0).map((t) => t.close()));
        await server.cleanup();
      }
    }, 90_000);

    it("a message delivered deliveryLimit times without a settle comes as undecodable (for a dead letter)", async () => {
      const t = broker.make({ deliveryLimit: 2 });
      transports.push(t);
      await t.bind("p", ["#"]);
      const seen: Delivery[] = [];
      await t.publish([message("x.y")]);
      // Twice a consumer that never settles it and is abandoned (as if its process died on it).
      for (let round = 1; round <= 2; round++) {
        const c = await t.consume("p", { concurrency: 1 }, async (d) => {
          seen.push(d);
          await new Promise(() => undefined);
        });
        await until(() => seen.length === round, 10_000, `delivery ${round}`);
        await c.stop(50);
      }
      const last = await collect(t, "p");
      await until(() => last.length === 1, 10_000, "the third delivery");
      expect(seen.map((d) => d.attempt)).toEqual([1, 2]);
      expect(last[0]!.attempt).toBe(3);
      expect(last[0]!.undecodable?.code).toBe("MESSAGE_UNDECODABLE");
      expect(last[0]!.undecodable?.message).toMatch(/delivered 3 times/);
    });
  });
}
