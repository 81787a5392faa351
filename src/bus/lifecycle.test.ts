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

  it("subscribe() or start() after start() is BUS_ALREADY_STARTED, naming the order to follow", async () => {
    const b = await makeBus();
    b.subscribe(Ping, { group: "early" }, noop);
    await b.start();
    const late = await errorOf(() => b.subscribe(Ping, { group: "late" }, noop));
    expect(isPatchbayError(late, "BUS_ALREADY_STARTED")).toBe(true);
    expect((late as Error).message).toMatch(/subscribe\(\) must be called before start\(\)/);
    expect(isPatchbayError(await errorOf(() => b.start()), "BUS_ALREADY_STARTED")).toBe(true);
  });

  it("subscribe() or start() after stop() is BUS_STOPPED", async () => {
    const b = await makeBus();
    await b.start();
    await b.stop();
    expect(isPatchbayError(await errorOf(() => b.subscribe(Ping, { group: "g" }, noop)), "BUS_STOPPED")).toBe(
      true,
    );
    expect(isPatchbayError(await errorOf(() => b.start()), "BUS_STOPPED")).toBe(true);
  });

  it("createWebhooks() on a started bus is refused, saying it must come before bus.start()", async () => {
    const b = await makeBus();
    await b.start();
    const e = await errorOf(() => createWebhooks({ store, bus: b }));
    expect(isPatchbayError(e, "INVALID_ARGUMENT")).toBe(true);
    expect((e as Error).message).toMatch(/before bus\.start\(\)/);
  });
});
