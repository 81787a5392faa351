import { context, propagation } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withConsumerSpan, withProducerSpan } from "./telemetry.js";

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("bus spans", () => {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    propagation.disable();
    context.disable();
  });

  it("a publish inside a handler carries the incoming message's trace, across awaits", async () => {
    const carried = await withConsumerSpan(
      "order.created",
      "billing",
      { traceparent: incoming },
      async () => {
        await new Promise((r) => setTimeout(r, 1));
        return withProducerSpan("invoice.issued", (carrier) => Promise.resolve(carrier.traceparent));
      },
    );
    expect(carried?.split("-")[1]).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it("passes the result through and the failure on, thrown or rejected", async () => {
    await expect(withConsumerSpan("a.b", "g", {}, () => Promise.resolve(42))).resolves.toBe(42);
    const rejected = new Error("rejected");
    await expect(withConsumerSpan("a.b", "g", {}, () => Promise.reject(rejected))).rejects.toBe(rejected);
    const thrown = new Error("thrown");
    const throwing = withProducerSpan("a.b", () => {
      throw thrown;
    });
    // A synchronous throw still arrives as a rejection, not an exception at the call.
    await expect(throwing).rejects.toBe(thrown);
  });
});
