import { describe, expect, it } from "vitest";
import { z } from "zod";
import { sqlite } from "../adapters/sqlite/index.js";
import { createEventBus } from "../bus/bus.js";
import { defineEvent } from "../core/events.js";
import { constant } from "../resilience/backoff.js";
import { FakeClock } from "./fake-clock.js";
import { memoryTransport } from "./memory-transport.js";

const Ping = defineEvent("test.ping", { version: 1, schema: z.object({ n: z.number() }) });

describe("memoryTransport on a fake clock", () => {
  it("holds a retry 6 hours of fake time, and redelivers once advance() passes it", async () => {
    const clock = new FakeClock();
    const store = sqlite({ file: ":memory:", clock });
    const bus = createEventBus({ store, clock, transport: memoryTransport({ clock }) });
    const attempts: number[] = [];
    bus.subscribe(
      Ping,
      { group: "g", retry: { immediate: 0, maxAttempts: 3, backoff: constant("6h") } },
      (_event, ctx) => {
        attempts.push(clock.now());
        if (ctx.attempt < 2) throw new Error("down");
      },
    );
    await bus.start();
    const until = async (n: number) => {
      const deadline = Date.now() + 5000;
      while (attempts.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    };
    try {
      const t0 = clock.now();
      await bus.publish(Ping, { n: 1 });
      await until(1);
      await clock.advance("5h");
      await new Promise((r) => setTimeout(r, 50));
      expect(attempts).toEqual([t0]);
      await clock.advance("1h");
      await until(2);
      expect(attempts).toEqual([t0, t0 + 6 * 3_600_000]);
    } finally {
      await bus.stop();
      await store.close();
    }
  });
});
