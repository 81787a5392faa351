/**
 * Outbound webhooks end to end on each store: events published on the bus fan out to endpoints,
 * are signed and POSTed to a real receiver on loopback (allowlisted), retried on the schedule
 * driven by a fake clock, logged attempt by attempt; endpoints are disabled by 410 and by failing
 * too long; replay, recover, rotation, limits and SSRF refusals.
 */
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { localTransport } from "../src/bus/local-transport.js";
import { defineEvent } from "../src/core/events.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { FakeClock } from "../src/testing/fake-clock.js";
import {
  createWebhooks,
  EndpointDisabled,
  verifyWebhook,
  type EndpointDisabledData,
  type Webhooks,
  type WebhooksOptions,
} from "../src/webhooks/index.js";
import { until } from "./conformance/transport.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";
import { startReceiver, type TestReceiver } from "./support/webhook-receiver.js";

const { postgres: pg, mysql: maria } = inject("services");

const OrderPaid = defineEvent("order.paid", {
  version: 1,
  schema: z.object({ orderId: z.string(), total: z.number() }),
});
const UserCreated = defineEvent("user.created", { version: 1, schema: z.object({ userId: z.string() }) });

const cases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pg.reachable) cases.push(["PostgreSQL", () => postgresDatabase(pg.url)]);
if (maria.reachable) cases.push(["MariaDB", () => mysqlDatabase(maria.url)]);
else
  describe("on MariaDB", () =>
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {}));

for (const [name, makeDb] of cases) {
  describe(`webhooks on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    let clock: FakeClock;
    let receiver: TestReceiver;
    const running: Array<{ stop(): Promise<void> }> = [];

    /** A bus and webhooks on the test's store and fake clock, started. */
    async function system(options: Partial<WebhooksOptions> = {}) {
      const bus: EventBus = createEventBus({
        store,
        clock,
        transport: localTransport(store, { clock, pollInterval: "50ms" }),
        events: [OrderPaid, UserCreated, EndpointDisabled],
      });
      const disabled: EndpointDisabledData[] = [];
      bus.subscribe(EndpointDisabled, { group: "alerts" }, (event) => void disabled.push(event.data));
      const webhooks = createWebhooks({
        store,
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
      db = makeDb();
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

    it("SSRF: host names resolving to loopback, private, metadata or mapped addresses are refused before any connection", async () => {
      const answers: Record<string, string> = {
        "loop.test": "127.0.0.1",
        "ten.test": "10.0.0.1",
        "meta.test": "169.254.169.254",
        "six.test": "::1",
        "mapped.test": "::ffff:127.0.0.1",
      };
      let connections = 0;
      const { bus, webhooks } = await system({
        allow: [],
        resolver: (host) => {
          const address = answers[host];
          return Promise.resolve(address ? [{ address, family: address.includes(":") ? 6 : 4 }] : []);
        },
        connector: () => {
          connections++;
          throw new Error("the connector must never be reached for a refused address");
        },
      });
      const endpoints = await Promise.all(
        Object.keys(answers).map((host) => webhooks.endpoints.create({ url: `https://${host}/hook` })),
      );
      const event = await bus.publish(OrderPaid, { orderId: "o-ssrf", total: 1 });
      for (const endpoint of endpoints) {
        await until(async () => (await webhooks.deliveries.get(endpoint.id, event.id))?.status === "failed");
        const [attempt] = await attemptsOf(webhooks, endpoint.id, event.id);
        expect(attempt?.error).toMatchObject({ code: "WEBHOOK_ADDRESS_REFUSED" });
      }
      expect(connections).toBe(0);
      // And an IP-literal URL is refused when the endpoint is created.
      await expect(
        webhooks.endpoints.create({ url: "http://169.254.169.254/latest/meta-data" }),
      ).rejects.toMatchObject({
        code: "WEBHOOK_ADDRESS_REFUSED",
        reason: "metadata",
      });
    }, 60_000);
  });
}
