import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { sqlite } from "../adapters/sqlite/index.js";
import { isPatchbayError } from "../core/errors.js";
import { defineEvent } from "../core/events.js";
import { memoryTransport } from "../testing/memory-transport.js";
import { createWebhooks } from "../webhooks/webhooks.js";
import { createEventBus, type EventBus } from "./bus.js";

const Ping = defineEvent("test.ping", { version: 1, schema: z.object({ n: z.number() }) });
const noop = () => undefined;

/** The error `fn` throws (or rejects with). */
async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error");
}

describe("the bus's lifecycle errors say what happened", () => {
  let bus: EventBus | undefined;
  afterEach(async () => {
    await bus?.stop();
    bus = undefined;
  });

  const store = sqlite({ file: ":memory:" });
  const makeBus = async () => {
    await store.open();
    return (bus = createEventBus({ store, transport: memoryTransport() }));
  };

  it("subscribe() after start() binds at once: ready resolves, then published events reach the group", async () => {
    const b = await makeBus();
    b.subscribe(Ping, { group: "early" }, noop);
    await Promise.all([b.start(), b.start()]);
    await b.start(); // a no-op
    const got: number[] = [];
    await b.subscribe(Ping, { group: "late" }, (event) => void got.push(event.data.n)).ready;
    await b.publish(Ping, { n: 7 });
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([7]);
  });

  it("subscribe(), publish() or start() after stop() is STOPPED", async () => {
    const b = await makeBus();
    await b.start();
    await Promise.all([b.stop(), b.stop()]);
    expect(isPatchbayError(await errorOf(() => b.subscribe(Ping, { group: "g" }, noop)), "STOPPED")).toBe(
      true,
    );
    expect(isPatchbayError(await errorOf(() => b.publish(Ping, { n: 1 })), "STOPPED")).toBe(true);
    expect(isPatchbayError(await errorOf(() => b.start()), "STOPPED")).toBe(true);
  });

  it("takes retry.maxAttempts, and attempts as its deprecated alias (refusing the two disagreeing)", async () => {
    const b = await makeBus();
    b.subscribe(Ping, { group: "a", retry: { maxAttempts: 3 } }, noop);
    b.subscribe(Ping, { group: "b", retry: { attempts: 3 } }, noop);
    const e = await errorOf(() =>
      b.subscribe(Ping, { group: "c", retry: { attempts: 3, maxAttempts: 4 } }, noop),
    );
    expect(isPatchbayError(e, "INVALID_ARGUMENT")).toBe(true);
  });

  it("createWebhooks() on a started bus subscribes at once", async () => {
    const b = await makeBus();
    await b.start();
    const hooks = createWebhooks({ store, bus: b });
    await hooks.start();
    await hooks.stop();
  });
});
