import { Parser } from "@asyncapi/parser";
import { toStandardJsonSchema } from "@valibot/to-json-schema";
import { type } from "arktype";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { topologyNames } from "../adapters/nats/topology.js";
import { isPatchbayError } from "../core/errors.js";
import { natsSubject } from "./asyncapi.js";
import { defineEvent } from "../core/events.js";
import {
  checkContracts,
  defineCatalogue,
  exportAsyncApi,
  verifyConsumer,
  verifyProducer,
  type CatalogueOptions,
} from "./index.js";

interface OrderCreatedV1 {
  orderId: string;
  total: number;
}
const OrderCreated = defineEvent("order.created", {
  version: 2,
  schema: z.object({ orderId: z.string(), total: z.number().int(), currency: z.enum(["EUR", "USD"]) }),
  upcast: { 1: (v1: OrderCreatedV1) => ({ ...v1, currency: "EUR" }) },
  description: "an order was placed",
});
const OrderPaid = defineEvent("order.paid", {
  version: 1,
  schema: toStandardJsonSchema(v.object({ orderId: v.string(), amount: v.number() })),
});
const UserRegistered = defineEvent("user.registered", {
  version: 1,
  schema: type({ userId: "string", email: "string.email", "name?": "string" }),
});

const base: CatalogueOptions = {
  title: "Shop",
  events: [OrderCreated, OrderPaid, UserRegistered],
  transports: { local: true, rabbitmq: { prefix: "shop" }, nats: { prefix: "shop" } },
  consumers: [
    { group: "order-saga", events: [OrderCreated], description: "starts the order saga" },
    { group: "partner-sync", events: ["order.paid", "user.registered"] },
  ],
  webhooks: [OrderPaid],
};

async function diagnostics(doc: unknown) {
  const { diagnostics } = await new Parser().parse(JSON.stringify(doc));
  return diagnostics.map((d) => `${d.severity} ${d.code}: ${d.message} at ${d.path.join(".")}`);
}

describe("exportAsyncApi", () => {
  it("exports zod, valibot and arktype schemas to an AsyncAPI 3.1 document the official parser accepts without a diagnostic", async () => {
    const doc = exportAsyncApi(defineCatalogue(base));
    expect(doc.asyncapi).toBe("3.1.0");
    expect(await diagnostics(doc)).toEqual([]);
    const messages = (
      doc.components as {
        messages: Record<string, { payload: { required?: string[] }; "x-patchbay-reads": number[] }>;
      }
    ).messages;
    expect(messages["order.created"]!.payload.required).toEqual(["orderId", "total", "currency"]);
    expect(messages["order.created"]!["x-patchbay-reads"]).toEqual([1, 2]);
    expect(messages["order.paid"]!.payload.required).toEqual(["orderId", "amount"]);
    expect(messages["user.registered"]!.payload.required?.toSorted()).toEqual(["email", "userId"]);
    expect(Object.keys(doc.channels as object)).toEqual(
      expect.arrayContaining([
        "local.order.created",
        "rabbitmq.order.created",
        "rabbitmq.group.order-saga",
        "nats.order.paid",
        "webhook.order.paid",
      ]),
    );
    // The subject is the one the NATS adapter publishes on.
    const nats = topologyNames("shop");
    expect((doc.channels as Record<string, { address: string }>)["nats.order.paid"]?.address).toBe(
      nats.event("order.paid"),
    );
    for (const t of ["order.paid", "a.b-c_d", "weird type", "x.*"])
      expect(natsSubject("shop", t), t).toBe(nats.event(t));
    const ops = doc.operations as Record<string, { action: string; "x-patchbay-group"?: string }>;
    expect(ops["rabbitmq.order-saga.order.created"]).toMatchObject({
      action: "receive",
      "x-patchbay-group": "order-saga",
    });
  });

  it("refuses a schema with no JSON Schema converter (CONTRACT_SCHEMA_UNCONVERTIBLE), and takes the catalogue's converter", () => {
    const Plain = defineEvent("plain.thing", { version: 1, schema: v.object({ a: v.string() }) });
    let err: unknown;
    try {
      exportAsyncApi(defineCatalogue({ title: "x", events: [Plain] }));
    } catch (e) {
      err = e;
    }
    expect(isPatchbayError(err, "CONTRACT_SCHEMA_UNCONVERTIBLE") && err.eventType).toBe("plain.thing");
    const doc = exportAsyncApi(
      defineCatalogue({ title: "x", events: [Plain], jsonSchema: () => ({ type: "object" }) }),
    );
    expect(JSON.stringify(doc)).toContain('"payload":{"type":"object"}');
  });

  it("refuses a consumer of a type the catalogue does not define (CONTRACT_INVALID)", () => {
    expect(() => defineCatalogue({ ...base, consumers: [{ group: "g", events: ["nope"] }] })).toThrow(
      expect.objectContaining({ code: "CONTRACT_INVALID" }),
    );
  });
});

const withOrder = (schema: z.ZodType, extra: Partial<Parameters<typeof defineEvent>[1]> = {}) =>
  defineCatalogue({
    ...base,
    events: [
      defineEvent("order.created", { version: 2, schema, upcast: { 1: (x: unknown) => x }, ...extra }),
      OrderPaid,
      UserRegistered,
    ],
  });
const v2 = { orderId: z.string(), total: z.number().int(), currency: z.enum(["EUR", "USD"]) };

describe("checkContracts", () => {
  const published = exportAsyncApi(defineCatalogue(base));
  const rules = (report: ReturnType<typeof checkContracts>) =>
    report.changes
      .filter((c) => c.breaking)
      .map((c) => `${c.direction}:${c.rule}${c.path ? `:${c.path}` : ""}`);

  it("finds no change between a catalogue and its own published document", () => {
    const report = checkContracts(published, defineCatalogue(base), { mode: "full" });
    expect(report).toEqual({ mode: "full", breaking: false, changes: [] });
  });

  it("a required field added breaks backward; an optional one breaks nothing", () => {
    const added = withOrder(z.object({ ...v2, country: z.string() }));
    expect(rules(checkContracts(published, added, { mode: "backward" }))).toEqual([
      "backward:required-field:country",
    ]);
    expect(checkContracts(published, added, { mode: "forward" }).breaking).toBe(false);
    const optional = withOrder(z.object({ ...v2, country: z.string().optional() }));
    expect(checkContracts(published, optional, { mode: "full" }).breaking).toBe(false);
    const defaulted = withOrder(z.object({ ...v2, country: z.string().default("DE") }));
    expect(checkContracts(published, defaulted, { mode: "backward" }).breaking).toBe(false);
  });

  it("a required field removed breaks forward (old consumers still require it)", () => {
    const removed = withOrder(z.object({ orderId: z.string(), currency: v2.currency }));
    expect(rules(checkContracts(published, removed, { mode: "forward" }))).toEqual([
      "forward:required-field:total",
    ]);
    expect(checkContracts(published, removed, { mode: "backward" }).breaking).toBe(false);
  });

  it("a type narrowed and an enum value removed break backward", () => {
    const narrowed = withOrder(
      z.object({ ...v2, total: z.number().int().min(1), currency: z.enum(["EUR"]) }),
    );
    expect(rules(checkContracts(published, narrowed))).toEqual([
      "backward:type-narrowed:total",
      "backward:enum-value-removed:currency",
    ]);
    const retyped = withOrder(z.object({ ...v2, orderId: z.number() }));
    expect(rules(checkContracts(published, retyped, { mode: "full" }))).toEqual([
      "backward:type-narrowed:orderId",
      "forward:type-narrowed:orderId",
    ]);
  });

  it("a version bump with an upcaster is backward compatible and forward breaking; dropping the upcaster breaks consumers", () => {
    const v3 = (upcast: Record<number, (x: unknown) => unknown>) =>
      defineCatalogue({
        ...base,
        events: [
          defineEvent("order.created", { version: 3, schema: z.object({ id: z.string() }), upcast }),
          OrderPaid,
          UserRegistered,
        ],
      });
    const bumped = checkContracts(published, v3({ 1: (x) => x, 2: (x) => x }), { mode: "backward" });
    expect(bumped.breaking).toBe(false);
    expect(bumped.changes.map((c) => c.rule)).toEqual(["version-upcast", "version-bumped"]);
    expect(rules(checkContracts(published, v3({ 1: (x) => x, 2: (x) => x }), { mode: "forward" }))).toEqual([
      "forward:version-bumped",
    ]);
    const dropped = checkContracts(published, v3({ 2: (x) => x }), { mode: "backward" });
    expect(rules(dropped)).toEqual(["backward:version-dropped"]);
    expect(dropped.changes[0]!.message).toContain("while order-saga still read it");
  });

  it("a version dropped that no consumer group reads any more is compatible", () => {
    const next = defineCatalogue({
      ...base,
      events: [defineEvent("order.created", { version: 2, schema: z.object(v2) }), OrderPaid, UserRegistered],
      consumers: [],
    });
    // No consumers declared: assumed read.
    expect(rules(checkContracts(published, next))).toEqual(["backward:version-dropped"]);
    const unread = defineCatalogue({
      ...base,
      events: next.events,
      consumers: [{ group: "partner-sync", events: ["order.paid"] }],
    });
    expect(checkContracts(published, unread).breaking).toBe(false);
  });

  it("an event type or webhook removed is reported", () => {
    const next = defineCatalogue({ ...base, events: [OrderCreated, OrderPaid], consumers: [], webhooks: [] });
    expect(rules(checkContracts(published, next, { mode: "full" }))).toEqual([
      "backward:event-type-removed",
      "forward:webhook-removed",
    ]);
  });
});

describe("contract tests", () => {
  const catalogue = defineCatalogue(base);

  it("verifyProducer accepts good samples and lists every bad one", async () => {
    await expect(
      verifyProducer(catalogue, [
        { type: "order.created", data: { orderId: "o1", total: 5, currency: "EUR" } },
        { type: "order.paid", data: { orderId: "o1", amount: 5 } },
      ]),
    ).resolves.toBe(2);
    const err = await verifyProducer(catalogue, [
      { type: "order.created", data: { orderId: "o1", total: 5 } },
      { type: "order.created", dataversion: 1, data: { orderId: "o1", total: 5, currency: "EUR" } },
      { type: "order.shipped", data: {} },
    ]).catch((e: unknown) => e);
    expect(isPatchbayError(err, "CONTRACT_VIOLATED") && err.problems).toEqual([
      expect.stringMatching(/^sample 0: order.created v2: .*currency/),
      "sample 1: order.created written at v1, the catalogue's current version is v2",
      "sample 2: order.shipped is not in the catalogue",
    ]);
  });

  it("verifyConsumer hands every claimed version, upcast, to the handler", async () => {
    const seen: unknown[] = [];
    const versions = await verifyConsumer(catalogue, (event) => void seen.push(event.data), OrderCreated, {
      samples: { 1: { orderId: "o1", total: 5 }, 2: { orderId: "o2", total: 7, currency: "USD" } },
    });
    expect(versions).toEqual([1, 2]);
    expect(seen).toEqual([
      { orderId: "o1", total: 5, currency: "EUR" },
      { orderId: "o2", total: 7, currency: "USD" },
    ]);
  });

  it("verifyConsumer fails for a missing sample, a version without upcaster and a handler that throws", async () => {
    const err = await verifyConsumer(
      catalogue,
      (event) => {
        if (event.data?.currency === "USD") throw new Error("dollars not handled");
      },
      OrderCreated,
      { versions: [0, 1, 2], samples: { 2: { orderId: "o2", total: 7, currency: "USD" } } },
    ).catch((e: unknown) => e);
    expect(isPatchbayError(err, "CONTRACT_VIOLATED") && err.problems).toEqual([
      "v0: order.created reads v1, v2 only (no upcaster chain from v0)",
      "v1: no sample given",
      "v2: the handler failed: dollars not handled",
    ]);
  });
});
