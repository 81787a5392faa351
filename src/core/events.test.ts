import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { FakeClock } from "../testing/fake-clock.js";
import { createEnvelope, decodeStructured, encodeStructured, fromBinary, toBinary } from "./envelope.js";
import {
  isPatchbayError,
  type InvalidArgumentError,
  type SchemaValidationError,
  type UnknownEventVersionError,
} from "./errors.js";
import type { CloudEvent } from "./envelope.js";
import { defineEvent, syncFirst, type EventData } from "./events.js";
import type { StandardSchemaV1 } from "./schema.js";
import { isUuid } from "./ids.js";

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

const zodOrder = z.object({ orderId: z.string().min(1), total: z.number().nonnegative() });
const valibotOrder = v.object({
  orderId: v.pipe(v.string(), v.minLength(1)),
  total: v.pipe(v.number(), v.minValue(0)),
});

const libraries = [
  ["zod 4", zodOrder],
  ["valibot", valibotOrder],
] as const;

describe.each(libraries)("defineEvent with %s", (_name, schema) => {
  const OrderCreated = defineEvent("order.created", { version: 1, schema, source: "/shop" });

  it("parses valid data", async () => {
    await expect(OrderCreated.parse({ orderId: "o-1", total: 10 })).resolves.toEqual({
      orderId: "o-1",
      total: 10,
    });
  });

  it("rejects data failing the schema with SCHEMA_INVALID and the issue paths", async () => {
    const err = await rejection(OrderCreated.parse({ orderId: "", total: -1 }));
    expect(isPatchbayError(err, "SCHEMA_INVALID")).toBe(true);
    const { eventType, version, issues } = err as SchemaValidationError;
    expect({ eventType, version }).toEqual({ eventType: "order.created", version: 1 });
    expect(issues.map((i) => i.path).sort()).toEqual(["orderId", "total"]);
  });

  it("builds a validated envelope with dataversion and a JSON content type", async () => {
    const clock = new FakeClock(Date.UTC(2025, 3, 1));
    const ev = await OrderCreated.toEnvelope(
      { orderId: "o-1", total: 10 },
      {
        subject: "o-1",
        correlationid: "c-1",
        causationid: "cmd-1",
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      },
      clock,
    );
    expect(ev).toMatchObject({
      specversion: "1.0",
      type: "order.created",
      source: "/shop",
      subject: "o-1",
      time: "2025-04-01T00:00:00.000Z",
      datacontenttype: "application/json",
      dataversion: 1,
      correlationid: "c-1",
      causationid: "cmd-1",
      data: { orderId: "o-1", total: 10 },
    });
    expect(isUuid(ev.id, 7)).toBe(true);
  });

  it("refuses to build an envelope from invalid data", async () => {
    const err = await rejection(OrderCreated.toEnvelope({ orderId: "o-1", total: -5 }));
    expect(isPatchbayError(err, "SCHEMA_INVALID")).toBe(true);
  });

  it("decodes what it encodes through structured and binary mode", async () => {
    const ev = await OrderCreated.toEnvelope({ orderId: "o-2", total: 3 }, { source: "/other" });
    expect(ev.source).toBe("/other");
    await expect(OrderCreated.decode(decodeStructured(encodeStructured(ev)))).resolves.toEqual({
      orderId: "o-2",
      total: 3,
    });
    const { headers, body } = toBinary(ev);
    await expect(OrderCreated.decode(fromBinary(headers, body))).resolves.toEqual({
      orderId: "o-2",
      total: 3,
    });
  });
});

describe("event versions", () => {
  const V3 = z.object({ orderId: z.string(), amount: z.object({ value: z.number(), currency: z.string() }) });
  type V1 = { id: string; total: number };
  type V2 = { orderId: string; total: number; currency: string };
  const OrderCreated = defineEvent("order.created", {
    version: 3,
    schema: V3,
    source: "/shop",
    upcast: {
      1: (v1: V1): V2 => ({ orderId: v1.id, total: v1.total, currency: "EUR" }),
      2: async (v2: V2) =>
        Promise.resolve({ orderId: v2.orderId, amount: { value: v2.total, currency: v2.currency } }),
    },
  });
  const received = (data: unknown, dataversion?: number) =>
    createEnvelope({ type: "order.created", source: "/legacy", data, dataversion });

  it("upcasts v1 -> v2 -> v3, treating a missing dataversion as 1", async () => {
    const expected = { orderId: "o-1", amount: { value: 9, currency: "EUR" } };
    await expect(OrderCreated.decode(received({ id: "o-1", total: 9 }, 1))).resolves.toEqual(expected);
    await expect(OrderCreated.decode(received({ id: "o-1", total: 9 }))).resolves.toEqual(expected);
  });

  it("upcasts v2 -> v3 and reads v3 as it is", async () => {
    const v2 = received({ orderId: "o-2", total: 5, currency: "USD" }, 2);
    await expect(OrderCreated.decode(v2)).resolves.toEqual({
      orderId: "o-2",
      amount: { value: 5, currency: "USD" },
    });
    const v3 = await OrderCreated.toEnvelope({ orderId: "o-3", amount: { value: 1, currency: "GBP" } });
    expect(v3.dataversion).toBe(3);
    await expect(OrderCreated.decode(v3)).resolves.toEqual(v3.data);
  });

  it("validates the upcast result against the current schema", async () => {
    const err = await rejection(OrderCreated.decode(received({ id: "o-1", total: "nine" }, 1)));
    expect(isPatchbayError(err, "SCHEMA_INVALID")).toBe(true);
    expect((err as SchemaValidationError).version).toBe(3);
  });

  it("rejects a version newer than the definition with EVENT_VERSION_UNKNOWN", async () => {
    const err = await rejection(OrderCreated.decode(received({}, 4)));
    expect(isPatchbayError(err, "EVENT_VERSION_UNKNOWN")).toBe(true);
    const { eventType, version, knownVersion } = err as UnknownEventVersionError;
    expect({ eventType, version, knownVersion }).toEqual({
      eventType: "order.created",
      version: 4,
      knownVersion: 3,
    });
  });

  it("rejects a version with no upcaster path with EVENT_VERSION_UNKNOWN", async () => {
    const OnlyFromV2 = defineEvent("order.created", { version: 3, schema: V3, upcast: { 2: (d) => d } });
    const err = await rejection(OnlyFromV2.decode(received({ id: "o-1", total: 1 }, 1)));
    expect(isPatchbayError(err, "EVENT_VERSION_UNKNOWN")).toBe(true);
    expect((err as UnknownEventVersionError).version).toBe(1);
    expect((err as Error).message).toContain("no upcaster from v1 to v2");
  });

  it("refuses to decode an event of another type", async () => {
    const other = createEnvelope({ type: "order.paid", source: "/shop", data: {} });
    expect(isPatchbayError(await rejection(OrderCreated.decode(other)), "INVALID_ARGUMENT")).toBe(true);
  });

  it("infers the data type", () => {
    const data: EventData<typeof OrderCreated> = { orderId: "o", amount: { value: 1, currency: "EUR" } };
    expect(data.amount.currency).toBe("EUR");
  });
});

describe("defineEvent arguments", () => {
  const schema = z.object({});
  const invalid = (fn: () => unknown) => {
    const err = thrown(fn);
    expect(isPatchbayError(err, "INVALID_ARGUMENT")).toBe(true);
    return (err as InvalidArgumentError).argument;
  };

  it("accepts dotted names of letters, digits, _ and -", () => {
    for (const type of ["order.created", "Order_Created", "com.example.v2.order-paid", "x"]) {
      expect(defineEvent(type, { version: 1, schema }).type).toBe(type);
    }
  });

  it("rejects type names with wildcards, spaces or empty segments", () => {
    for (const type of ["order.*", "order.#", "order created", "order..created", ".order", "order.", ""]) {
      expect(invalid(() => defineEvent(type, { version: 1, schema }))).toBe("type");
    }
  });

  it("rejects versions that are not positive integers", () => {
    for (const version of [0, -1, 1.5, Number.NaN]) {
      expect(invalid(() => defineEvent("a.b", { version, schema }))).toBe("options.version");
    }
  });

  it("rejects a schema that is not a Standard Schema", () => {
    expect(invalid(() => defineEvent("a.b", { version: 1, schema: {} as typeof schema }))).toBe(
      "options.schema",
    );
  });

  it("rejects upcasters keyed outside 1..version-1", () => {
    expect(invalid(() => defineEvent("a.b", { version: 2, schema, upcast: { 2: (d) => d } }))).toBe(
      "options.upcast.2",
    );
    expect(invalid(() => defineEvent("a.b", { version: 2, schema, upcast: { 0: (d) => d } }))).toBe(
      "options.upcast.0",
    );
  });

  it("requires a source when building an envelope without a default one", async () => {
    const NoSource = defineEvent("a.b", { version: 1, schema });
    const err = await rejection(NoSource.toEnvelope({}));
    expect(isPatchbayError(err, "INVALID_ARGUMENT")).toBe(true);
  });
});

describe("syncFirst (the bus's per-message path)", () => {
  const syncSchema = zodOrder;
  const asyncSchema: StandardSchemaV1<{ n: number }> = {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (value) => Promise.resolve({ value: value as { n: number } }),
    },
  };

  it("gives a synchronous schema's results as values, and its failures as throws", async () => {
    const def = defineEvent("order.created", { version: 1, schema: syncSchema, source: "/shop" });
    const event = syncFirst(def).toEnvelope({ orderId: "o-1", total: 5 });
    expect(event).not.toBeInstanceOf(Promise);
    expect((event as CloudEvent).data).toEqual({ orderId: "o-1", total: 5 });
    expect(syncFirst(def).decode(event as CloudEvent)).toEqual({ orderId: "o-1", total: 5 });
    const bad = thrown(() => syncFirst(def).toEnvelope({ orderId: "", total: 5 }));
    expect(isPatchbayError(bad, "SCHEMA_INVALID")).toBe(true);
    // The public methods keep their contract: a rejection, never a throw.
    const rejected = def.toEnvelope({ orderId: "", total: 5 });
    expect(rejected).toBeInstanceOf(Promise);
    expect(isPatchbayError(await rejection(rejected), "SCHEMA_INVALID")).toBe(true);
  });

  it("gives promises when the schema is asynchronous or an upcast is needed", async () => {
    const def = defineEvent("count.changed", { version: 1, schema: asyncSchema, source: "/c" });
    const event = syncFirst(def).toEnvelope({ n: 1 });
    expect(event).toBeInstanceOf(Promise);
    await expect(syncFirst(def).decode(await event)).resolves.toEqual({ n: 1 });
    const v2 = defineEvent("count.changed", {
      version: 2,
      schema: asyncSchema,
      upcast: { 1: (d: unknown) => ({ n: (d as { count: number }).count }) },
    });
    const old = { ...(await event), dataversion: 1, data: { count: 7 } };
    await expect(syncFirst(v2).decode(old)).resolves.toEqual({ n: 7 });
  });

  it("falls back to the promise methods for a definition not made by defineEvent", async () => {
    const made = defineEvent("order.created", { version: 1, schema: syncSchema, source: "/shop" });
    const handMade = { ...made }; // a copy: not registered
    await expect(syncFirst(handMade).toEnvelope({ orderId: "o-2", total: 1 })).resolves.toMatchObject({
      data: { orderId: "o-2", total: 1 },
    });
  });
});
