/**
 * Interop with the independent `standardwebhooks` package (the Standard Webhooks reference
 * library): what our sender signs, it accepts; what it signs, we accept; a forged, re-serialized
 * or stale request is refused by both. And with the official `cloudevents` SDK: it reads our
 * CloudEvents webhooks, structured and binary, as the events we published.
 */
import { CloudEvent as CloudEventsSdkEvent, HTTP } from "cloudevents";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { decodeStructured, fromBinary } from "../src/core/envelope.js";
import { defineEvent } from "../src/core/events.js";
import { isPatchbayError } from "../src/core/errors.js";
import type { SqlStore } from "../src/store/sql-store.js";
import {
  createWebhooks,
  generateSecret,
  signatureHeaders,
  verifyWebhook,
  type Webhooks,
} from "../src/webhooks/index.js";
import { until } from "./conformance/transport.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";
import { startReceiver, type TestReceiver } from "./support/webhook-receiver.js";

const InvoicePaid = defineEvent("invoice.paid", {
  version: 1,
  schema: z.object({ invoiceId: z.string(), amount: z.number(), note: z.string() }),
});

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return "accepted";
  } catch (e) {
    return isPatchbayError(e) ? e.code : "thrown";
  }
};
const libVerdict = (secret: string, body: string, headers: Record<string, string>) => {
  try {
    new Webhook(secret).verify(body, headers);
    return "accepted";
  } catch (e) {
    return (e as Error).message;
  }
};

describe("Standard Webhooks interop with the standardwebhooks package", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
  let receiver: TestReceiver;
  let bus: EventBus;
  let webhooks: Webhooks;

  beforeEach(async () => {
    db = sqliteDatabase();
    store = db.make();
    receiver = await startReceiver();
    bus = createEventBus({ store });
    webhooks = createWebhooks({ store, bus, allow: ["127.0.0.1/32"], pollInterval: "50ms" });
    await bus.start();
    await webhooks.start();
  });
  afterEach(async () => {
    await webhooks.stop();
    await bus.stop();
    await receiver.close();
    await store.close();
    await db.cleanup();
  });

  it("the reference library verifies what our sender delivers, during a rotation too", async () => {
    const endpoint = await webhooks.endpoints.create({ url: receiver.url });
    const note = 'unicode ✓ "quotes" </script> \u2028';
    const event = await bus.publish(InvoicePaid, { invoiceId: "in-1", amount: 10.5, note });
    await until(() => receiver.requests.length === 1, 10_000, "delivery");
    const first = receiver.requests[0]!;
    const payload = new Webhook(endpoint.secret).verify(
      first.body,
      first.headers as Record<string, string>,
    ) as {
      type: string;
      data: { note: string };
    };
    expect(payload.type).toBe("invoice.paid");
    expect(payload.data.note).toBe(note);
    expect(first.headers["webhook-id"]).toBe(event.id);

    const rotated = await webhooks.endpoints.rotateSecret(endpoint.id);
    await bus.publish(InvoicePaid, { invoiceId: "in-2", amount: 1, note: "" });
    await until(() => receiver.requests.length === 2, 10_000, "second delivery");
    const second = receiver.requests[1]!;
    for (const secret of [endpoint.secret, rotated.current]) {
      expect(libVerdict(secret, second.body.toString(), second.headers as Record<string, string>)).toBe(
        "accepted",
      );
    }
  });

  it("we verify what the reference library signs", () => {
    const secret = generateSecret(24);
    const body = JSON.stringify({
      type: "user.created",
      timestamp: new Date().toISOString(),
      data: { id: 1 },
    });
    const id = "msg_2Lh9fGz5Wp8Zb3cA";
    const now = new Date();
    const signature = new Webhook(secret).sign(id, now, body);
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": signature,
    };
    expect(verifyWebhook<{ data: { id: number } }>(secret, headers, body).payload.data.id).toBe(1);
    expect(verifyWebhook(secret, headers, Buffer.from(body)).id).toBe(id);
    // And the headers we compute are the library's, byte for byte.
    expect(signatureHeaders(secret, { id, timestamp: Math.floor(now.getTime() / 1000), body })).toEqual(
      headers,
    );
  });

  it("a forged, re-serialized or stale request is refused by both", () => {
    const secret = generateSecret();
    const body = '{"type":"invoice.paid","data":{"amount":1}}';
    const t = Math.floor(Date.now() / 1000);
    const good = signatureHeaders(secret, { id: "m1", timestamp: t, body });
    const forged = signatureHeaders(generateSecret(), { id: "m1", timestamp: t, body });
    const reserialized = JSON.stringify(JSON.parse(body), null, 1);
    const stale = signatureHeaders(secret, { id: "m1", timestamp: t - 600, body });
    const future = signatureHeaders(secret, { id: "m1", timestamp: t + 600, body });

    expect(codeOf(() => verifyWebhook(secret, good, body))).toBe("accepted");
    expect(libVerdict(secret, body, { ...good })).toBe("accepted");
    expect(codeOf(() => verifyWebhook(secret, forged, body))).toBe("WEBHOOK_SIGNATURE_INVALID");
    expect(libVerdict(secret, body, { ...forged })).toMatch(/No matching signature/);
    expect(codeOf(() => verifyWebhook(secret, good, reserialized))).toBe("WEBHOOK_SIGNATURE_INVALID");
    expect(libVerdict(secret, reserialized, { ...good })).toMatch(/No matching signature/);
    expect(codeOf(() => verifyWebhook(secret, stale, body))).toBe("WEBHOOK_TIMESTAMP_TOO_OLD");
    expect(libVerdict(secret, body, { ...stale })).toMatch(/too old/);
    expect(codeOf(() => verifyWebhook(secret, future, body))).toBe("WEBHOOK_TIMESTAMP_TOO_NEW");
    expect(libVerdict(secret, body, { ...future })).toMatch(/too new/);
  });
});

describe("CloudEvents HTTP binding interop with the official cloudevents SDK", () => {
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const modes = [
    ["cloudevents", "structured", "application/cloudevents+json; charset=utf-8"],
    ["cloudevents-binary", "binary", "application/json"],
  ] as const;

  it("we read what the SDK writes in both modes: its ce-traceparent, and extension names over 20 characters", () => {
    const sdkEvent = new CloudEventsSdkEvent({
      id: "e-1",
      source: "/billing",
      type: "invoice.paid",
      data: { invoiceId: "in-9" },
      traceparent,
      averyveryverylongextensionname: "kept",
    });
    const binary = HTTP.binary(sdkEvent);
    const hop = "00-11111111111111111111111111111111-2222222222222222-01";
    const fromHeaders = fromBinary({ ...binary.headers, traceparent: hop }, binary.body as string);
    const structured = HTTP.structured(sdkEvent);
    const fromJson = decodeStructured(structured.body as string);
    for (const ev of [fromHeaders, fromJson]) {
      expect(ev).toMatchObject({
        id: "e-1",
        type: "invoice.paid",
        data: { invoiceId: "in-9" },
        traceparent,
        averyveryverylongextensionname: "kept",
      });
    }
  });

  it("an unknown format is refused with INVALID_ARGUMENT, not sent as another one", async () => {
    const db = sqliteDatabase();
    const store = db.make();
    try {
      expect(() => createWebhooks({ store, format: "cloudevent" as "cloudevents" })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", argument: "format" }) as Error,
      );
    } finally {
      await store.close();
      await db.cleanup();
    }
  });

  for (const [format, mode, contentType] of modes) {
    describe(`format "${format}" (${mode} mode)`, () => {
      let db: IsolatedDatabase;
      let store: SqlStore;
      let receiver: TestReceiver;
      let bus: EventBus;
      let webhooks: Webhooks;

      beforeEach(async () => {
        db = sqliteDatabase();
        store = db.make();
        receiver = await startReceiver();
        bus = createEventBus({ store });
        webhooks = createWebhooks({ store, bus, allow: ["127.0.0.1/32"], pollInterval: "50ms", format });
        await bus.start();
        await webhooks.start();
      });
      afterEach(async () => {
        await webhooks.stop();
        await bus.stop();
        await receiver.close();
        await store.close();
        await db.cleanup();
      });

      it("the SDK reads our request as the event, with its traceparent attribute, and the signature verifies", async () => {
        const endpoint = await webhooks.endpoints.create({ url: receiver.url });
        const note = 'unicode ✓ "quotes" 100%';
        const event = await bus.publish(
          InvoicePaid,
          { invoiceId: "in-1", amount: 10.5, note },
          // ASCII without spaces: the binding percent-encodes the rest in headers, which the SDK (10.0.0) does not decode.
          { traceparent, subject: "invoice/in-1", extensions: { tenant: "acme" } },
        );
        await until(() => receiver.requests.length === 1, 10_000, "delivery");
        const request = receiver.requests[0]!;
        expect(request.headers["content-type"]).toBe(contentType);
        const received = HTTP.toEvent({ headers: request.headers, body: request.body.toString() });
        expect(Array.isArray(received)).toBe(false);
        const ce = received as CloudEventsSdkEvent<{ note: string; amount: number }>;
        expect(ce.validate()).toBe(true);
        expect(ce).toMatchObject({
          specversion: "1.0",
          id: event.id,
          type: "invoice.paid",
          source: event.source,
          subject: "invoice/in-1",
          traceparent,
          tenant: "acme",
        });
        expect(ce.data).toMatchObject({ note, amount: 10.5 });
        // The extension attribute (binary: ce-traceparent) and the W3C header of the hop (no SDK here: the event's).
        if (mode === "binary") expect(request.headers["ce-traceparent"]).toBe(traceparent);
        expect(request.headers.traceparent).toBe(traceparent);
        expect(
          libVerdict(endpoint.secret, request.body.toString(), request.headers as Record<string, string>),
        ).toBe("accepted");
      });
    });
  }
});
