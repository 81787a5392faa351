/**
 * The webhooks conformance suite: what a store must do for outbound webhooks — fan-out once per
 * matching endpoint, the retry schedule on a fake clock with every attempt logged, an endpoint
 * disabled by 410 or by failing too long, `Retry-After`, replay and recover, secret rotation,
 * per-endpoint concurrency and rate limits, a worker never claiming again what it still sends, endpoint management and purging, and two workers on
 * one store claiming each delivery once. Requests go to a real HTTP receiver on loopback. An
 * adapter's test file calls {@link defineWebhooksConformance} inside a vitest run.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEventBus, type EventBus } from "../../bus/bus.js";
import { localTransport } from "../../bus/local-transport.js";
import { defineEvent } from "../../core/events.js";
import type { SqlStore } from "../../store/sql-store.js";
import { FakeClock } from "../../testing/fake-clock.js";
import {
  createWebhooks,
  EndpointDisabled,
  verifyWebhook,
  type EndpointDisabledData,
  type WebhookConnector,
  type Webhooks,
  type WebhooksOptions,
} from "../../webhooks/index.js";
import { objectSchema, string } from "./events.js";
import type { ConformanceDatabase } from "./store.js";
import { until } from "./transport.js";
import { startReceiver, type TestReceiver } from "./webhook-receiver.js";

/** How {@link defineWebhooksConformance} reaches an adapter: a fresh, isolated, empty database per test. */
export interface WebhooksHarness {
  name: string;
  fresh(): Promise<ConformanceDatabase> | ConformanceDatabase;
}

const number = (v: unknown) =>
  typeof v === "number" && Number.isFinite(v) ? undefined : "expected a number";
const OrderPaid = defineEvent("order.paid", {
  version: 1,
  schema: objectSchema<{ orderId: string; total: number }>({ orderId: string, total: number }),
});
const UserCreated = defineEvent("user.created", {
  version: 1,
  schema: objectSchema<{ userId: string }>({ userId: string }),
});

/** Outbound webhooks' guarantees, checked on one store. */
export function defineWebhooksConformance(harness: WebhooksHarness): void {
  describe(`Webhooks conformance: ${harness.name}`, () => {
    let db: ConformanceDatabase;
    let store: SqlStore;
    let clock: FakeClock;
    let receiver: TestReceiver;
    const running: Array<{ stop(): Promise<void> }> = [];

    /** A bus and webhooks on the test's store and fake clock, started. */
    async function system(options: Partial<WebhooksOptions> = {}, on: SqlStore = store) {
      const bus: EventBus = createEventBus({
        store: on,
        clock,
        transport: localTransport(on, { clock, pollInterval: "50ms" }),
        events: [OrderPaid, UserCreated, EndpointDisabled],
      });
      const disabled: EndpointDisabledData[] = [];
      bus.subscribe(EndpointDisabled, { group: "alerts" }, (event) => void disabled.push(event.data));
      const webhooks = createWebhooks({
        store: on,
        bus,
        clock,
        allow: ["127.0.0.1/32"],
        pollInterval: "50ms",
        random: () => 0.5,
        ...options,
      });
      await bus.start();
      await webhooks.start();
      running.push(
        { stop: () => webhooks.stop({ timeout: "2s" }) },
        { stop: () => bus.stop({ timeout: "2s" }) },
      );
      return { bus, webhooks, disabled };
    }

    const attemptsOf = async (webhooks: Webhooks, endpointId: string, messageId: string) =>
      webhooks.deliveries.attempts(endpointId, messageId);

    /** Waits (real time) until the delivery has `n` attempts recorded. */
    const attemptsReach = (webhooks: Webhooks, endpointId: string, messageId: string, n: number) =>
      until(
        async () => (await attemptsOf(webhooks, endpointId, messageId)).length >= n,
        10_000,
        `${n} attempts`,
      );

    beforeEach(async () => {
      db = await harness.fresh();
      clock = new FakeClock();
      store = db.make({ clock });
      await store.open();
      receiver = await startReceiver();
    });
    afterEach(async () => {
      for (const r of running.splice(0).reverse()) await r.stop();
      await receiver.close();
      await store.close();
      await db.cleanup();
    });

    it("a receiver answering with a NUL byte in its body: delivered once, recorded (NUL read as U+FFFD), other deliveries not held up", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url, events: ["order.*"] });
      receiver.bodyFor = (status) => Buffer.from(`ok ${status}\u0000 😀`);
      const first = await bus.publish(OrderPaid, { orderId: "o-nul", total: 1 });
      const second = await bus.publish(OrderPaid, { orderId: "o-nul-2", total: 2 });
      const statusOf = async (id: string) => (await webhooks.deliveries.get(endpoint.id, id))?.status;
      await until(
        async () => (await statusOf(first.id)) === "delivered" && (await statusOf(second.id)) === "delivered",
        10_000,
        "both delivered",
      );
      // A failure with such a body is recorded too, and scheduled for its retry.
      receiver.script = [500];
      const third = await bus.publish(OrderPaid, { orderId: "o-nul-3", total: 3 });
      await attemptsReach(webhooks, endpoint.id, third.id, 1);
      await clock.advance("5s");
      await until(async () => (await statusOf(third.id)) === "delivered", 10_000, "the third delivered");
      // Nothing sent twice, however much time passes.
      await clock.advance("1h");
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(4);
      for (const id of [first.id, second.id]) {
        expect(
          (await attemptsOf(webhooks, endpoint.id, id)).map((x) => [x.status, x.responseExcerpt]),
        ).toEqual([[200, "ok 200\ufffd 😀"]]);
      }
      expect(
        (await attemptsOf(webhooks, endpoint.id, third.id)).map((x) => [x.status, x.responseExcerpt]),
      ).toEqual([
        [500, "ok 500\ufffd 😀"],
        [200, "ok 200\ufffd 😀"],
      ]);
    });

    it("500 three times then 200: delivered exactly once more, 4 attempts logged, every request signed alike", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url, events: ["order.*"] });
      receiver.script = [500, 500, 500, 200];
      const event = await bus.publish(OrderPaid, { orderId: "o-1", total: 42 });

      await attemptsReach(webhooks, endpoint.id, event.id, 1);
      for (const [n, wait] of [
        [2, "5s"],
        [3, "5m"],
        [4, "30m"],
      ] as const) {
        await clock.advance(wait);
        await attemptsReach(webhooks, endpoint.id, event.id, n);
      }
      await until(
        async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "delivered",
        10_000,
        "delivered",
      );
      // Nothing more is sent, however much time passes.
      await clock.advance("2d");
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(4);

      const attempts = await attemptsOf(webhooks, endpoint.id, event.id);
      expect(attempts.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
        [1, 500, "failed"],
        [2, 500, "failed"],
        [3, 500, "failed"],
        [4, 200, "succeeded"],
      ]);
      expect(attempts[0]!.responseExcerpt).toBe("answer 500");
      expect(attempts[0]!.error).toMatchObject({ code: "WEBHOOK_HTTP_STATUS" });
      expect(attempts.every((a) => typeof a.latencyMs === "number")).toBe(true);
      expect(attempts[1]!.at - attempts[0]!.at).toBe(5_000);

      const ids = new Set(receiver.requests.map((r) => r.headers["webhook-id"]));
      expect(ids).toEqual(new Set([event.id]));
      const bodies = new Set(receiver.requests.map((r) => r.body.toString()));
      expect(bodies.size).toBe(1);
      expect(JSON.parse([...bodies][0]!)).toEqual({
        type: "order.paid",
        timestamp: event.time,
        data: { orderId: "o-1", total: 42 },
      });
      // Each request was signed when it was sent (its timestamp is its attempt's time).
      receiver.requests.forEach((r, i) => {
        expect(Number(r.headers["webhook-timestamp"])).toBe(Math.floor(attempts[i]!.at / 1000));
        expect(verifyWebhook(endpoint.secret, r.headers, r.body, { clock, tolerance: "3d" }).id).toBe(
          event.id,
        );
      });
      const delivery = await webhooks.deliveries.get(endpoint.id, event.id);
      expect(delivery).toMatchObject({ status: "delivered", attempts: 4, lastStatus: 200 });
      expect((await webhooks.endpoints.get(endpoint.id))?.failingSince).toBeUndefined();
    }, 60_000);

    it("receiver down through the whole schedule: failed; recover delivers it once it is back", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url });
      await receiver.down();
      const event = await bus.publish(OrderPaid, { orderId: "o-2", total: 1 });
      const waits = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"];
      await attemptsReach(webhooks, endpoint.id, event.id, 1);
      for (const [i, wait] of waits.entries()) {
        await clock.advance(wait);
        await attemptsReach(webhooks, endpoint.id, event.id, i + 2);
      }
      await until(
        async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "failed",
        10_000,
        "failed",
      );
      const failedAttempts = await attemptsOf(webhooks, endpoint.id, event.id);
      expect(failedAttempts).toHaveLength(8);
      expect(failedAttempts.every((a) => a.outcome === "failed" && a.error?.code === "WEBHOOK_NETWORK")).toBe(
        true,
      );
      await clock.advance("1d");
      expect(await attemptsOf(webhooks, endpoint.id, event.id)).toHaveLength(8);
      // Failing for ~1.2 days is not yet the 5 days that disable an endpoint.
      expect((await webhooks.endpoints.get(endpoint.id))?.status).toBe("enabled");

      await receiver.up();
      expect(await webhooks.recover(endpoint.id, clock.now() - 7 * 86_400_000)).toBe(1);
      await until(
        async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "delivered",
        10_000,
        "delivered after recover",
      );
      expect(receiver.requests).toHaveLength(1);
      expect(receiver.requests[0]!.headers["webhook-id"]).toBe(event.id);
      const attempts = await attemptsOf(webhooks, endpoint.id, event.id);
      expect(attempts.at(-1)).toMatchObject({ attempt: 9, status: 200, outcome: "succeeded" });
      expect((await webhooks.endpoints.get(endpoint.id))?.failingSince).toBeUndefined();
    }, 60_000);

    it("410 Gone disables the endpoint, publishes endpoint_disabled, and stops its fan-out", async () => {
      const { bus, webhooks, disabled } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url });
      receiver.fallback = 410;
      const event = await bus.publish(OrderPaid, { orderId: "o-3", total: 1 });
      await until(
        async () => (await webhooks.endpoints.get(endpoint.id))?.status === "disabled",
        10_000,
        "disabled",
      );
      expect(await webhooks.endpoints.get(endpoint.id)).toMatchObject({
        status: "disabled",
        disabledReason: "gone",
      });
      expect(await webhooks.deliveries.get(endpoint.id, event.id)).toMatchObject({
        status: "failed",
        lastStatus: 410,
      });
      await until(() => disabled.length === 1, 10_000, "endpoint_disabled event");
      expect(disabled[0]).toMatchObject({ endpointId: endpoint.id, url: receiver.url, reason: "gone" });

      const later = await bus.publish(OrderPaid, { orderId: "o-4", total: 1 });
      await new Promise((r) => setTimeout(r, 300));
      expect(await webhooks.deliveries.get(endpoint.id, later.id)).toBeUndefined();
      expect(receiver.requests).toHaveLength(1);
    }, 60_000);

    it("an endpoint failing without a success for disableAfter is disabled, and the event published", async () => {
      const { bus, webhooks, disabled } = await system({
        disableAfter: "2m",
        retry: { delays: ["0s", "1m", "1m", "1m"], jitter: 0 },
      });
      const endpoint = await webhooks.endpoints.create({ url: receiver.url });
      receiver.fallback = 503;
      const event = await bus.publish(OrderPaid, { orderId: "o-5", total: 1 });
      await attemptsReach(webhooks, endpoint.id, event.id, 1);
      await clock.advance("1m");
      await attemptsReach(webhooks, endpoint.id, event.id, 2);
      expect((await webhooks.endpoints.get(endpoint.id))?.status).toBe("enabled");
      await clock.advance("1m");
      await attemptsReach(webhooks, endpoint.id, event.id, 3);
      await until(() => disabled.length === 1, 10_000, "endpoint_disabled");
      expect(disabled[0]).toMatchObject({ endpointId: endpoint.id, reason: "failing" });
      const ep = await webhooks.endpoints.get(endpoint.id);
      expect(ep).toMatchObject({ status: "disabled", disabledReason: "failing" });
      // The pending delivery waits, not lost: enabling the endpoint resumes it.
      expect((await webhooks.deliveries.get(endpoint.id, event.id))?.status).toBe("pending");
      receiver.fallback = 200;
      await webhooks.endpoints.enable(endpoint.id);
      await clock.advance("1m");
      await until(
        async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "delivered",
        10_000,
        "delivered after enable",
      );
    }, 60_000);

    it("429 with Retry-After: the next attempt waits as long as asked", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url });
      receiver.script = [429];
      receiver.headersFor = (status): Record<string, string> =>
        status === 429 ? { "retry-after": "120" } : {};
      const event = await bus.publish(OrderPaid, { orderId: "o-6", total: 1 });
      await attemptsReach(webhooks, endpoint.id, event.id, 1);
      const delivery = await webhooks.deliveries.get(endpoint.id, event.id);
      const first = (await attemptsOf(webhooks, endpoint.id, event.id))[0]!;
      expect(delivery?.nextAttemptAt).toBe(first.at + 120_000);
      await clock.advance("5s");
      await new Promise((r) => setTimeout(r, 200));
      expect(receiver.requests).toHaveLength(1);
      await clock.advance("115s");
      await attemptsReach(webhooks, endpoint.id, event.id, 2);
      expect(receiver.requests).toHaveLength(2);
    }, 60_000);

    it("fans each event out once per matching endpoint, honouring filters, disabled endpoints and patchbay.* events", async () => {
      const { bus, webhooks } = await system();
      const orders = await webhooks.endpoints.create({ url: receiver.url, events: ["order.*"] });
      const all = await webhooks.endpoints.create({ url: receiver.url });
      const off = await webhooks.endpoints.create({ url: receiver.url });
      const ops = await webhooks.endpoints.create({ url: receiver.url, events: ["patchbay.webhook.*"] });
      await webhooks.endpoints.disable(off.id);
      const paid = await bus.publish(OrderPaid, { orderId: "o-7", total: 3 });
      const user = await bus.publish(UserCreated, { userId: "u-1" });
      const internal = await bus.publish(EndpointDisabled, {
        endpointId: "x",
        url: "https://x.test/",
        reason: "gone",
        disabledAt: new Date(clock.now()).toISOString(),
      });
      await until(() => receiver.requests.length === 4, 10_000, "4 requests");
      await new Promise((r) => setTimeout(r, 300));
      const got = (id: string) => webhooks.deliveries.list({ endpointId: id });
      expect((await got(orders.id)).map((d) => d.messageId)).toEqual([paid.id]);
      expect((await got(all.id)).map((d) => d.messageId).sort()).toEqual([paid.id, user.id].sort());
      expect(await got(off.id)).toEqual([]);
      expect((await got(ops.id)).map((d) => d.messageId)).toEqual([internal.id]);
      expect(receiver.requests).toHaveLength(4);
    }, 60_000);

    it("replays one message with the same webhook-id, to its endpoints or to one that never had it", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url, events: ["order.*"] });
      const event = await bus.publish(OrderPaid, { orderId: "o-8", total: 1 });
      await until(async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "delivered");
      expect(await webhooks.replay(event.id)).toBe(1);
      await attemptsReach(webhooks, endpoint.id, event.id, 2);
      const late = await webhooks.endpoints.create({ url: receiver.url, events: ["user.*"] });
      expect(await webhooks.replay(event.id, { endpointId: late.id })).toBe(1);
      await until(async () => (await webhooks.deliveries.get(late.id, event.id))?.status === "delivered");
      expect(receiver.requests.map((r) => r.headers["webhook-id"])).toEqual([event.id, event.id, event.id]);
      await expect(webhooks.replay("no-such-message")).rejects.toMatchObject({
        code: "WEBHOOK_DELIVERY_NOT_FOUND",
      });
    }, 60_000);

    it("signs with the old and the new secret during a rotation's grace period, then with the new only", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url });
      const rotated = await webhooks.endpoints.rotateSecret(endpoint.id, { grace: "1h" });
      expect(rotated.previous).toBe(endpoint.secret);
      await bus.publish(OrderPaid, { orderId: "o-9", total: 1 });
      await until(() => receiver.requests.length === 1);
      const first = receiver.requests[0]!;
      expect(String(first.headers["webhook-signature"]).split(" ")).toHaveLength(2);
      expect(verifyWebhook(endpoint.secret, first.headers, first.body, { clock })).toBeTruthy();
      expect(verifyWebhook(rotated.current, first.headers, first.body, { clock })).toBeTruthy();
      await clock.advance("61m");
      await bus.publish(OrderPaid, { orderId: "o-10", total: 1 });
      await until(() => receiver.requests.length === 2);
      const second = receiver.requests[1]!;
      expect(String(second.headers["webhook-signature"]).split(" ")).toHaveLength(1);
      expect(() => verifyWebhook(endpoint.secret, second.headers, second.body, { clock })).toThrow(
        /no webhook signature/,
      );
      expect(verifyWebhook(rotated.current, second.headers, second.body, { clock })).toBeTruthy();
    }, 60_000);

    it("never has more requests in flight to an endpoint than its concurrency", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url, concurrency: 2 });
      receiver.hold = true;
      for (let i = 0; i < 6; i++) await bus.publish(OrderPaid, { orderId: `c-${i}`, total: i });
      await until(() => receiver.active === 2, 10_000, "2 in flight");
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.active).toBe(2);
      receiver.hold = false;
      receiver.release();
      await until(
        async () =>
          (await webhooks.deliveries.list({ endpointId: endpoint.id, status: "delivered" })).length === 6,
        10_000,
        "6 delivered",
      );
      expect(receiver.maxActive).toBe(2);
    }, 60_000);

    it("stop() past its timeout with 4 requests in flight: none lost or failed, the cut attempts not counted; the next worker delivers each", async () => {
      const first = await system({ retry: { delays: ["0s", "5s"] } });
      const endpoint = await first.webhooks.endpoints.create({ url: receiver.url, events: ["order.*"] });
      receiver.hold = true;
      const ids: string[] = [];
      for (let i = 0; i < 4; i++)
        ids.push((await first.bus.publish(OrderPaid, { orderId: `s-${i}`, total: i })).id);
      await until(() => receiver.active === 4, 10_000, "4 in flight");
      await first.webhooks.stop({ timeout: "100ms" });
      const statuses = async () =>
        Promise.all(ids.map(async (id) => (await first.webhooks.deliveries.get(endpoint.id, id))?.status));
      expect(await statuses()).toEqual(["pending", "pending", "pending", "pending"]);
      receiver.hold = false;
      receiver.release();
      // Each fails once more with the next worker, then succeeds: had the cut attempt counted,
      // the two-attempt schedule would be spent and the 500 would fail it.
      receiver.script = [500, 500, 500, 500];
      const second = await system({ retry: { delays: ["0s", "5s"] } });
      for (const id of ids) await attemptsReach(second.webhooks, endpoint.id, id, 2);
      await clock.advance("5s");
      await until(async () => (await statuses()).every((s) => s === "delivered"), 10_000, "all delivered");
      await clock.advance("1h");
      await new Promise((r) => setTimeout(r, 300));
      // Lost: none. Doubled: none beyond the cut attempt and the scripted failure.
      expect(receiver.requests).toHaveLength(12);
      for (const id of ids) {
        const outcomes = (await second.webhooks.deliveries.attempts(endpoint.id, id)).map((a) => a.outcome);
        expect(outcomes).toEqual(["failed", "failed", "succeeded"]);
      }
    });

    it("a worker never claims again a delivery it is still sending when the clock moves past its lease", async () => {
      // A request held until released that does not stop at the timeout's abort (the timeout waits
      // for it): the attempt stays in flight across each advance longer than its lease.
      const posts: string[] = [];
      const held: Array<() => void> = [];
      const connector: WebhookConnector = (request) => {
        posts.push(String(request.headers["webhook-id"]));
        return new Promise((resolve) => held.push(() => resolve({ status: 200, headers: {}, body: "" })));
      };
      const releaseAll = () => held.splice(0).forEach((answer) => answer());
      try {
        const { bus, webhooks } = await system({ connector, retry: { delays: [0], jitter: 0 } });
        const endpoint = await webhooks.endpoints.create({ url: receiver.url, concurrency: 1 });
        const first = await bus.publish(OrderPaid, { orderId: "l-1", total: 1 });
        await until(() => posts.length === 1, 10_000, "the first request");
        await clock.advance("2m"); // the lease is the 15 s timeout + 30 s
        await new Promise((r) => setTimeout(r, 500)); // ten polls
        expect(posts).toEqual([first.id]);
        // A second delivery waits: the one in flight still counts against concurrency 1.
        const second = await bus.publish(OrderPaid, { orderId: "l-2", total: 2 });
        await clock.advance("2m");
        await new Promise((r) => setTimeout(r, 500));
        expect(posts).toEqual([first.id]);
        releaseAll();
        await until(() => posts.length === 2, 10_000, "the second request");
        releaseAll();
        await attemptsReach(webhooks, endpoint.id, second.id, 1);
        const outcomes = [];
        for (const e of [first, second]) {
          const attempts = await attemptsOf(webhooks, endpoint.id, e.id);
          outcomes.push(attempts.map((a) => [a.attempt, a.outcome, a.error?.code]));
        }
        // The first answered after its timeout: one attempt, failed.
        expect(outcomes).toEqual([[[1, "failed", "WEBHOOK_TIMEOUT"]], [[1, "succeeded", undefined]]]);
        expect(posts).toEqual([first.id, second.id]);
      } finally {
        releaseAll();
      }
    }, 60_000);

    it("keeps to an endpoint's rate limit (requests per second, by the clock)", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url, rateLimit: 2 });
      for (let i = 0; i < 5; i++) await bus.publish(OrderPaid, { orderId: `r-${i}`, total: i });
      await until(() => receiver.requests.length === 2, 10_000, "a burst of 2");
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(2);
      await clock.advance("1s");
      await until(() => receiver.requests.length === 4, 10_000, "2 more after a second");
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(4);
      await clock.advance("1s");
      await until(
        async () =>
          (await webhooks.deliveries.list({ endpointId: endpoint.id, status: "delivered" })).length === 5,
        10_000,
        "the last one",
      );
      expect(receiver.requests).toHaveLength(5);
    }, 60_000);

    it("fails a payload over the size limit with a clear error, without connecting", async () => {
      const { bus, webhooks } = await system({ maxPayloadBytes: 100 });
      const endpoint = await webhooks.endpoints.create({ url: receiver.url });
      const event = await bus.publish(OrderPaid, { orderId: "x".repeat(200), total: 1 });
      await until(async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "failed");
      const [attempt] = await attemptsOf(webhooks, endpoint.id, event.id);
      expect(attempt?.error).toMatchObject({ code: "WEBHOOK_PAYLOAD_TOO_LARGE", limit: 100 });
      expect(receiver.requests).toHaveLength(0);
      expect((await webhooks.endpoints.get(endpoint.id))?.failingSince).toBeUndefined();
    }, 60_000);

    it("endpoints: validated on create and update, listed by status, deleted with their deliveries", async () => {
      const { bus, webhooks } = await system();
      const bad: Array<[Parameters<Webhooks["endpoints"]["create"]>[0], string]> = [
        [{ url: "ftp://x.test/" }, "WEBHOOK_ADDRESS_REFUSED"],
        [{ url: "https://x.test/", events: [] }, "INVALID_ARGUMENT"],
        [{ url: "https://x.test/", events: ["order..paid"] }, "INVALID_ARGUMENT"],
        [{ url: "https://x.test/", concurrency: 0 }, "INVALID_ARGUMENT"],
        [{ url: "https://x.test/", rateLimit: -1 }, "INVALID_ARGUMENT"],
        [{ url: "https://x.test/", secret: "not-a-secret" }, "INVALID_ARGUMENT"],
      ];
      for (const [input, code] of bad) {
        await expect(webhooks.endpoints.create(input), JSON.stringify(input)).rejects.toMatchObject({ code });
      }
      expect(await webhooks.endpoints.list()).toEqual([]);

      const endpoint = await webhooks.endpoints.create({
        id: "partner-1",
        url: receiver.url,
        description: "partner",
      });
      await expect(webhooks.endpoints.create({ id: "partner-1", url: receiver.url })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
      const updated = await webhooks.endpoints.update(endpoint.id, {
        events: ["order.#"],
        rateLimit: 5,
        concurrency: 3,
      });
      expect(updated).toMatchObject({
        events: ["order.#"],
        rateLimit: 5,
        concurrency: 3,
        description: "partner",
      });
      expect((await webhooks.endpoints.update(endpoint.id, { rateLimit: null })).rateLimit).toBeUndefined();
      await expect(webhooks.endpoints.update("nope", { description: "x" })).rejects.toMatchObject({
        code: "WEBHOOK_ENDPOINT_NOT_FOUND",
      });
      expect(await webhooks.endpoints.secrets(endpoint.id)).toMatchObject({ current: endpoint.secret });

      const event = await bus.publish(OrderPaid, { orderId: "o-del", total: 1 });
      await until(async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "delivered");
      await webhooks.endpoints.disable(endpoint.id);
      expect((await webhooks.endpoints.list({ status: "disabled" })).map((e) => e.id)).toEqual(["partner-1"]);
      expect(await webhooks.endpoints.list({ status: "enabled" })).toEqual([]);
      expect(await webhooks.endpoints.delete(endpoint.id)).toBe(true);
      expect(await webhooks.endpoints.delete(endpoint.id)).toBe(false);
      expect(await webhooks.deliveries.list({ endpointId: endpoint.id })).toEqual([]);
      expect(await webhooks.deliveries.attempts(endpoint.id, event.id)).toEqual([]);
    }, 60_000);

    it("purges delivered deliveries with their attempt logs and orphaned messages, never pending ones", async () => {
      const { bus, webhooks } = await system();
      const endpoint = await webhooks.endpoints.create({ url: receiver.url });
      const done = await bus.publish(OrderPaid, { orderId: "o-old", total: 1 });
      await until(async () => (await webhooks.deliveries.get(endpoint.id, done.id))?.status === "delivered");
      receiver.fallback = 500;
      const pending = await bus.publish(OrderPaid, { orderId: "o-new", total: 1 });
      await attemptsReach(webhooks, endpoint.id, pending.id, 1);
      await clock.advance("1s");
      expect(await webhooks.deliveries.purge({ before: clock.now() })).toBe(1);
      expect(await webhooks.deliveries.get(endpoint.id, done.id)).toBeUndefined();
      expect(await webhooks.deliveries.attempts(endpoint.id, done.id)).toEqual([]);
      expect(await webhooks.deliveries.message(done.id)).toBeUndefined();
      expect((await webhooks.deliveries.get(endpoint.id, pending.id))?.status).toBe("pending");
      expect(await webhooks.deliveries.message(pending.id)).toBeDefined();
    }, 60_000);

    it("a delivery fanned out in another process is sent without waiting for the poll where the store notifies", async () => {
      // The fan-out runs here (bus, webhooks not started); the only worker is on another
      // connection, polling every 10 minutes where the store notifies (50 ms without).
      const { bus, webhooks: fanning } = await (async () => {
        const b: EventBus = createEventBus({
          store,
          clock,
          transport: localTransport(store, { clock, pollInterval: "50ms" }),
          events: [OrderPaid],
        });
        const w = createWebhooks({ store, bus: b, clock, allow: ["127.0.0.1/32"], random: () => 0.5 });
        await b.start();
        running.push({ stop: () => b.stop({ timeout: "2s" }) });
        return { bus: b, webhooks: w };
      })();
      const other = db.make({ clock });
      await other.open();
      running.push({ stop: () => other.close() });
      const worker = createWebhooks({
        store: other,
        clock,
        allow: ["127.0.0.1/32"],
        pollInterval: other.listen ? "10m" : "50ms",
        random: () => 0.5,
      });
      await worker.start();
      running.push({ stop: () => worker.stop({ timeout: "2s" }) });
      const endpoint = await fanning.endpoints.create({ url: receiver.url });
      // Past the worker's first (empty) claims: only a wake-up makes it claim again.
      await new Promise((r) => setTimeout(r, 300));
      const { id } = await bus.publish(OrderPaid, { orderId: "elsewhere", total: 1 });
      await attemptsReach(worker, endpoint.id, id, 1);
      expect(receiver.requests.map((r) => String(r.headers["webhook-id"]))).toEqual([id]);
    }, 30_000);

    it("two workers on one store claim each delivery once: every message POSTed once, never twice", async () => {
      const other = db.make({ clock });
      await other.open();
      running.push({ stop: () => other.close() });
      const a = await system();
      await system({}, other);
      const endpoint = await a.webhooks.endpoints.create({ url: receiver.url, concurrency: 4 });
      const ids: string[] = [];
      for (let i = 0; i < 30; i++)
        ids.push((await a.bus.publish(OrderPaid, { orderId: `w-${i}`, total: i })).id);
      await until(
        async () =>
          (await a.webhooks.deliveries.list({ endpointId: endpoint.id, status: "delivered", limit: 100 }))
            .length === 30,
        30_000,
        "30 delivered",
      );
      await new Promise((r) => setTimeout(r, 500));
      const sent = receiver.requests.map((r) => String(r.headers["webhook-id"]));
      expect(sent.sort()).toEqual([...ids].sort());
      for (const id of ids) expect(await attemptsOf(a.webhooks, endpoint.id, id)).toHaveLength(1);
    }, 60_000);
  });
}
