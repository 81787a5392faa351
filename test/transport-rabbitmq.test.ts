/**
 * The Transport conformance suite on RabbitMQ, and what is particular to it: exact rebinding,
 * delays made of tier hops, retries that outlive their consumer, headers of any name, publishing
 * through an outage (a TCP proxy the test cuts), acks dropped on a dead channel, the delivery
 * limit's broker dead-letter queue.
 */
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import type { RabbitmqTransportOptions } from "../src/adapters/rabbitmq/options.js";
import { rabbitmq } from "../src/adapters/rabbitmq/index.js";
import { topologyNames } from "../src/adapters/rabbitmq/topology.js";
import type { Consumer, Delivery, Transport, TransportMessage } from "../src/bus/transport.js";
import { isPatchbayError } from "../src/core/errors.js";
import { constant } from "../src/resilience/backoff.js";
import { defineTransportConformance, until } from "./conformance/transport.js";
import { isolatedBroker, type IsolatedBroker } from "./support/rabbitmq.js";
import { tcpProxy, type TcpProxy } from "./support/tcp-proxy.js";

const { rabbitmq: mq } = inject("services");

const message = (type: string, headers: Record<string, string> = {}): TransportMessage => ({
  id: randomUUID(),
  type,
  body: JSON.stringify({ specversion: "1.0", id: randomUUID(), source: "/t", type, data: {} }),
  headers,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!mq.reachable) {
  describe.skip("RabbitMQ transport", () => undefined);
  console.log(`Transport conformance on RabbitMQ skipped: unreachable at ${mq.where}`);
} else {
  defineTransportConformance({
    sharesStore: false,
    releaseCountsAttempt: true,
    name: `RabbitMQ (${mq.where})`,
    fresh() {
      const broker = isolatedBroker(mq.url);
      return Promise.resolve({ transport: broker.make(), cleanup: () => broker.cleanup() });
    },
  });

  describe(`RabbitMQ transport specifics (${mq.where})`, () => {
    let broker: IsolatedBroker;
    let proxy: TcpProxy | undefined;
    const transports: Transport[] = [];
    const consumers: Consumer[] = [];
    const releases: Array<() => void> = [];
    const make = (options: RabbitmqTransportOptions = {}) => {
      const t = broker.make({ reconnect: constant(100), ...options });
      transports.push(t);
      return t;
    };
    const viaProxy = async () => {
      const target = new URL(mq.url);
      proxy = await tcpProxy(target.hostname, Number(target.port) || 5672);
      target.hostname = "127.0.0.1";
      target.port = String(proxy.port);
      return target.toString();
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
      broker = isolatedBroker(mq.url);
    });
    afterEach(async () => {
      releases.splice(0).forEach((r) => r());
      await Promise.all(consumers.splice(0).map((c) => c.stop(5000)));
      await Promise.all(transports.splice(0).map((t) => t.close()));
      await proxy?.close();
      proxy = undefined;
      await broker.cleanup();
    });

    it("bind leaves exactly the given patterns bound: earlier ones are unbound", async () => {
      const t = make();
      await t.bind("g", ["a.*", "b.*"]);
      await t.bind("g", ["b.*", "c.#"]);
      const got = await collect(t, "g");
      await t.publish([message("a.x"), message("b.x"), message("c.y.z")]);
      await until(() => got.length === 2, 10_000, "two deliveries");
      await sleep(200);
      expect(got.map((d) => d.message.type).sort()).toEqual(["b.x", "c.y.z"]);
    });

    it("a delay longer than a tier is made of hops, on time, and the hops are not attempts", async () => {
      const t = make();
      await t.bind("d", ["#"]);
      const got = await collect(t, "d");
      const sentAt = Date.now();
      await t.publish([message("late.one")], { delayMs: 1000 }); // 400 + 400 + 100 + 100 ms
      await until(() => got.length === 1, 10_000, "the delayed message");
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(990);
      expect(got[0]!.attempt).toBe(1);
    });

    it("a scheduled retry outlives its consumer: a new process gets it on time, counted, with its failure", async () => {
      const first = make();
      await first.bind("r", ["#"]);
      const m = message("job.run");
      // Taken before the call: the delay runs from the call, not from the confirm that ends it
      // (which can take a while on a loaded machine).
      let retryCalledAt = 0;
      let retried = false;
      const c = await first.consume("r", { concurrency: 1 }, async (d) => {
        retryCalledAt = Date.now();
        await d.retry(1500, { firstFailedAt: 7, error: { message: "later" } });
        retried = true;
      });
      await first.publish([m]);
      await until(() => retried, 10_000, "the retry");
      await c.stop(1000);
      await first.close();

      const second = make();
      const got = await collect(second, "r");
      await until(() => got.length === 1, 10_000, "the retried message");
      // Not before it is due (a few ms of slack for timer rounding).
      expect(Date.now() - retryCalledAt).toBeGreaterThanOrEqual(1490);
      expect(got[0]!.message).toEqual(m);
      expect(got[0]!.attempt).toBe(2);
      expect(got[0]!.failure).toEqual({ firstFailedAt: 7, error: { message: "later" } });
    });

    it("headers of any name round-trip, those that look like ours or the broker's included", async () => {
      const t = make();
      await t.bind("h", ["#"]);
      const got = await collect(t, "h");
      const headers = {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "x-request-id": "r-1",
        "patchbay-retries": "99",
        "x-delivery-count": "5",
        CC: "elsewhere",
      };
      const m = { ...message("h.x", headers), key: "k" };
      await t.publish([m]);
      await until(() => got.length === 1, 10_000, "delivery");
      expect(got[0]!.message).toEqual(m);
      expect(got[0]!.attempt).toBe(1);
    });

    it("a message it cannot read whole is delivered marked undecodable, never read wrongly, and the consumer goes on", async () => {
      const t = make();
      await t.bind("u", ["#"]);
      const got = await collect(t, "u", 1);
      const queue = topologyNames(broker.prefix).group("u");
      const conn = await amqp.connect(mq.url);
      const notUtf8 = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]); // "{", two bytes UTF-8 has no use for, "}"
      try {
        const ch = await conn.createConfirmChannel();
        const raw = { persistent: true, type: "u.x" };
        ch.sendToQueue(queue, Buffer.from("{}"), {
          ...raw,
          messageId: "bad-headers",
          headers: { "patchbay-headers": "{not json" },
        });
        ch.sendToQueue(queue, Buffer.from("{}"), {
          ...raw,
          messageId: "bad-failure",
          headers: { "patchbay-failure": "[]" },
        });
        ch.sendToQueue(queue, notUtf8, { ...raw, messageId: "bad-body" });
        await ch.waitForConfirms();
      } finally {
        await conn.close();
      }
      await t.publish([message("u.x", { n: "fine" })]);
      await until(() => got.length === 4, 10_000, "four deliveries");
      const seen = Object.fromEntries(
        got.map((d) => {
          const u = d.undecodable;
          const what = u
            ? { code: u.code, part: u.part, raw: u.raw, rawEncoding: u.rawEncoding }
            : "readable";
          return [d.message.headers.n ?? d.message.id, what];
        }),
      );
      const bad = (part: string, raw: string, rawEncoding = "text") => ({
        code: "MESSAGE_UNDECODABLE",
        part,
        raw,
        rawEncoding,
      });
      expect(seen).toEqual({
        "bad-headers": bad("patchbay-headers", "{not json"),
        "bad-failure": bad("patchbay-failure", "[]"),
        "bad-body": bad("body", notUtf8.toString("base64"), "base64"),
        fine: "readable",
      });
    });
    it("a publish targeted at a group without a queue fails with PUBLISH_FAILED, not retryable", async () => {
      const t = make();
      await t.open();
      const error = await t.publish([message("a.b")], { group: "nobody" }).catch((e: unknown) => e);
      expect(isPatchbayError(error, "PUBLISH_FAILED")).toBe(true);
      expect((error as { retryable: boolean }).retryable).toBe(false);
    });

    it("publishes made during an outage wait in the buffer and are delivered after the reconnection", async () => {
      const t = make({ url: await viaProxy() });
      await t.bind("o", ["#"]);
      const got = await collect(t, "o");
      proxy!.outage();
      await sleep(200);
      const sent = Array.from({ length: 20 }, () => message("o.x"));
      const publishing = t.publish(sent);
      await sleep(500);
      proxy!.restore();
      await publishing;
      await until(() => new Set(got.map((d) => d.message.id)).size === 20, 15_000, "20 messages");
    });

    it("beyond the buffer's size or timeout, a publish fails with PUBLISH_FAILED — nothing vanishes", async () => {
      const t = make({ url: await viaProxy(), publishBuffer: { maxMessages: 5, timeout: "400ms" } });
      await t.bind("b", ["#"]);
      proxy!.outage();
      await sleep(200);
      const waiting = t.publish([message("b.1"), message("b.2"), message("b.3")]).catch((e: unknown) => e);
      const refused = await t
        .publish([message("b.4"), message("b.5"), message("b.6")])
        .catch((e: unknown) => e);
      expect(isPatchbayError(refused, "PUBLISH_FAILED")).toBe(true);
      expect((refused as Error).message).toMatch(/maxMessages = 5/);
      const timedOut = await waiting;
      expect(isPatchbayError(timedOut, "PUBLISH_FAILED")).toBe(true);
      expect((timedOut as { retryable: boolean }).retryable).toBe(true);
      proxy!.restore();
      const got = await collect(t, "b");
      await t.publish([message("b.after")]);
      await until(() => got.length === 1, 15_000, "the publish after the outage");
    });

    it("a publish whose confirm never comes fails with PUBLISH_FAILED after confirmTimeout", async () => {
      const t = make({ url: await viaProxy(), confirmTimeout: "400ms" });
      await t.bind("a", ["#"]);
      await t.publish([message("a.x")]); // confirmed: the path works
      proxy!.stall(); // the connection stays up, but nothing the broker sends comes through
      const started = Date.now();
      const error = await t.publish([message("a.x"), message("a.y")]).then(
        () => undefined,
        (e: unknown) => e,
      );
      const waited = Date.now() - started;
      expect(isPatchbayError(error, "PUBLISH_FAILED")).toBe(true);
      expect((error as Error).message).toMatch(/no confirm from RabbitMQ within 400 ms/);
      // Not before the timeout; swept at a quarter of it, so not much after either.
      expect(waited).toBeGreaterThanOrEqual(400);
      proxy!.restore();
    });

    it("an ack on a dead channel is dropped and the message comes back after the reconnection", async () => {
      const t = make({ url: await viaProxy() });
      await t.bind("a", ["#"]);
      const attempts: Array<{ id: string; attempt: number }> = [];
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      releases.push(release);
      consumers.push(
        await t.consume("a", { concurrency: 1 }, async (d) => {
          attempts.push({ id: d.message.id, attempt: d.attempt });
          if (d.attempt === 1) await released;
          await d.ack();
        }),
      );
      const m = message("a.x");
      await t.publish([m]);
      await until(() => attempts.length === 1, 10_000, "first delivery");
      proxy!.cut();
      await sleep(300);
      release();
      await until(() => attempts.length === 2, 15_000, "redelivery");
      expect(attempts).toEqual([
        { id: m.id, attempt: 1 },
        { id: m.id, attempt: 2 },
      ]);
    });

    it("acks finishing out of order all land, and none waits behind a delivery that never finishes", async () => {
      const t = make();
      await t.bind("a", ["#"]);
      const stuck = message("a.stuck");
      const others = Array.from({ length: 60 }, () => message("a.x"));
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      releases.push(release);
      const done = new Set<string>();
      const first = await t.consume("a", { concurrency: 4 }, async (d) => {
        if (d.message.id === stuck.id) await released;
        else await sleep(Math.random() * 5); // finish in any order
        await d.ack();
        done.add(d.message.id);
      });
      await t.publish([stuck]);
      await t.publish(others);
      // With 4 deliveries in flight at most, the 60 get through only if their acks are not held
      // back behind the stuck one's (an ack "up to" a tag must never wait for a slow delivery).
      await until(() => others.every((m) => done.has(m.id)), 15_000, "the 60 others handled");
      await first.stop(200); // the stuck one is still running: the broker takes it back
      const again: Delivery[] = [];
      consumers.push(
        await t.consume("a", { concurrency: 4 }, async (d) => {
          again.push(d);
          await d.ack();
        }),
      );
      await until(() => again.length >= 1, 10_000, "the stuck one redelivered");
      await sleep(500);
      // Every other ack landed: only the unfinished delivery comes back.
      expect(again.map((d) => [d.message.id, d.attempt])).toEqual([[stuck.id, 2]]);
    });

    it("a message whose consumer dies with it past deliveryLimit moves to the group's broker DLQ", async () => {
      const t = make({ url: await viaProxy(), deliveryLimit: 1 });
      await t.bind("p", ["#"]);
      let deliveries = 0;
      const never = new Promise<void>((r) => releases.push(r));
      consumers.push(
        await t.consume("p", { concurrency: 1 }, async () => {
          deliveries++;
          await never; // never settles: the connection dies under it, as if it crashed the process
        }),
      );
      await t.publish([message("p.x")]);
      const dlq = topologyNames(broker.prefix).brokerDeadLetters("p");
      const conn = await amqp.connect(mq.url);
      try {
        const ch = await conn.createChannel();
        let seen = 0;
        for (let cuts = 0; cuts < 5; cuts++) {
          // After a reconnection the consumer waits up to 5 s for the hung handler before resuming.
          await until(() => deliveries > seen, 20_000, "a delivery");
          seen = deliveries;
          proxy!.cut();
          await sleep(500);
          if ((await ch.checkQueue(dlq)).messageCount === 1) break;
        }
        expect((await ch.checkQueue(dlq)).messageCount).toBe(1);
        expect(deliveries).toBeLessThanOrEqual(2);
      } finally {
        await conn.close();
      }
    }, 60_000);

    it("an unreachable broker: open fails with RABBITMQ_UNAVAILABLE, publish with PUBLISH_FAILED", async () => {
      const t = rabbitmq({ url: "amqp://guest:guest@127.0.0.1:1", connectTimeout: "300ms" });
      try {
        expect(isPatchbayError(await t.open().catch((e: unknown) => e), "RABBITMQ_UNAVAILABLE")).toBe(true);
        const error = await t.publish([message("x.y")]).catch((e: unknown) => e);
        expect(isPatchbayError(error, "PUBLISH_FAILED")).toBe(true);
      } finally {
        await t.close();
      }
    });
  });
}
