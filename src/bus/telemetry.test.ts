import { context, propagation, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
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

describe("bus spans with an SDK installed", () => {
  const exporter = new InMemorySpanExporter();
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    );
  });
  afterAll(() => {
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("records a consumer span and, as its child, the span of a publish made by the handler", async () => {
    exporter.reset();
    const carried = await withConsumerSpan("order.created", "billing", {}, async () => {
      await new Promise((r) => setTimeout(r, 1));
      return withProducerSpan("invoice.issued", (carrier) => Promise.resolve(carrier.traceparent));
    });
    const spans = exporter.getFinishedSpans();
    const consumer = spans.find((s) => s.name === "process order.created");
    const producer = spans.find((s) => s.name === "publish invoice.issued");
    expect(consumer?.attributes["messaging.consumer.group.name"]).toBe("billing");
    expect(producer?.parentSpanContext?.spanId).toBe(consumer?.spanContext().spanId);
    // The message carries the producer span's own context.
    expect(carried).toBe(`00-${producer?.spanContext().traceId}-${producer?.spanContext().spanId}-01`);
  });

  it("records a handler's failure on its span", async () => {
    exporter.reset();
    const failure = new Error("card declined");
    await expect(
      withConsumerSpan("order.created", "billing", {}, () => Promise.reject(failure)),
    ).rejects.toBe(failure);
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: "card declined" });
    expect(span?.events.map((e) => e.name)).toEqual(["exception"]);
  });
});
