/**
 * Outbound webhooks: SSRF refusals (host names resolving to private addresses), which do not depend
 * on the store. Everything else (fan-out, signing, the retry schedule, disabling, replay, recover,
 * rotation, limits) is the shipped webhooks conformance suite, run on every store by
 * test/webhooks-conformance.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { localTransport } from "../src/bus/local-transport.js";
import { defineEvent } from "../src/core/events.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { FakeClock } from "../src/testing/fake-clock.js";
import {
  createWebhooks,
  EndpointDisabled,
  type EndpointDisabledData,
  type Webhooks,
  type WebhooksOptions,
} from "../src/webhooks/index.js";
import { until } from "./conformance/transport.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";
import { startReceiver, type TestReceiver } from "./support/webhook-receiver.js";

const OrderPaid = defineEvent("order.paid", {
  version: 1,
  schema: z.object({ orderId: z.string(), total: z.number() }),
});
const UserCreated = defineEvent("user.created", { version: 1, schema: z.object({ userId: z.string() }) });

// The store-dependent cases run on every store in test/webhooks-conformance.test.ts (the shipped
// suite); what is left here does not depend on the store, so SQLite is enough.
const cases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];

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
