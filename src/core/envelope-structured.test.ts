import { describe, expect, it } from "vitest";
import { createEnvelope, decodeStructured, encodeStructured, type CloudEvent } from "./envelope.js";
import { FakeClock } from "../testing/fake-clock.js";
import { isPatchbayError, type EnvelopeError } from "./errors.js";

function envelopeError(fn: () => unknown): EnvelopeError {
  try {
    fn();
  } catch (e) {
    if (isPatchbayError(e, "ENVELOPE_INVALID")) return e;
    throw e;
  }
  throw new Error("expected an ENVELOPE_INVALID error");
}

const base = { type: "order.created", source: "/shop", id: "e-1", time: "2025-01-01T00:00:00.000Z" };

describe("structured mode", () => {
  it("round-trips a JSON event with Patchbay extensions", () => {
    const ev = createEnvelope({
      ...base,
      subject: "o-1",
      datacontenttype: "application/json",
      data: { orderId: "o-1", items: [{ sku: "A", qty: 2 }], note: null },
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      correlationid: "c-1",
      causationid: "e-0",
      dataversion: 2,
      extensions: { tenant: "acme", urgent: true, priority: 5 },
    });
    const text = encodeStructured(ev);
    expect(JSON.parse(text)).toMatchObject({ specversion: "1.0", dataversion: 2, data: { orderId: "o-1" } });
    expect(decodeStructured(text)).toEqual(ev);
    expect(decodeStructured(new TextEncoder().encode(text))).toEqual(ev);
  });

  it("writes the payload after the attributes, whatever order the event was built in", () => {
    const ev = createEnvelope({ data: { n: 1 }, ...base, subject: "o-1" });
    const text = encodeStructured(ev);
    expect(Object.keys(JSON.parse(text) as object).at(-1)).toBe("data");
    expect(text.endsWith(`"data":{"n":1}}`)).toBe(true);
    expect(encodeStructured(createEnvelope(base))).not.toContain('"data"');
  });

  it("gives events made in one millisecond the same time, and a later event a later one", async () => {
    const clock = new FakeClock(Date.UTC(2025, 0, 1));
    const a = createEnvelope({ type: "t", source: "/s" }, clock);
    const b = createEnvelope({ type: "t", source: "/s" }, clock);
    await clock.advance(1);
    const c = createEnvelope({ type: "t", source: "/s" }, clock);
    expect([a.time, b.time, c.time]).toEqual([
      "2025-01-01T00:00:00.000Z",
      "2025-01-01T00:00:00.000Z",
      "2025-01-01T00:00:00.001Z",
    ]);
  });

  it("carries bytes as data_base64 for non-JSON content types and decodes them back", () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const ev = createEnvelope({ ...base, datacontenttype: "application/octet-stream", data: bytes });
    const json = JSON.parse(encodeStructured(ev)) as Record<string, unknown>;
    expect(json.data_base64).toBe("AAEC+v8=");
    expect("data" in json).toBe(false);
    expect(decodeStructured(encodeStructured(ev)).data).toEqual(bytes);
  });

  it("carries bytes with no content type as data_base64, as binary mode does", () => {
    const bytes = new Uint8Array([0xff, 0x00, 0x7b]);
    const ev = createEnvelope({ ...base, data: bytes });
    const json = JSON.parse(encodeStructured(ev)) as Record<string, unknown>;
    expect(json.data_base64).toBe("/wB7");
    expect(decodeStructured(encodeStructured(ev)).data).toEqual(bytes);
  });

  it("stores JSON bytes as JSON when the content type is JSON", () => {
    const ev = createEnvelope({
      ...base,
      datacontenttype: "application/json",
      data: new TextEncoder().encode('{"a":1}'),
    });
    expect(JSON.parse(encodeStructured(ev))).toMatchObject({ data: { a: 1 } });
  });

  it("keeps text data as a JSON string", () => {
    const ev = createEnvelope({ ...base, datacontenttype: "text/plain", data: "héllo" });
    expect(decodeStructured(encodeStructured(ev))).toEqual(ev);
  });

  it("rejects object data with a text content type", () => {
    const ev = { ...base, specversion: "1.0", datacontenttype: "text/plain", data: { a: 1 } } as CloudEvent;
    expect(envelopeError(() => encodeStructured(ev)).attribute).toBe("data");
  });

  it("rejects a body that is not JSON with attribute (body)", () => {
    const err = envelopeError(() => decodeStructured("{not json"));
    expect(err.attribute).toBe("(body)");
    expect(err.message).toContain("body");
    expect(envelopeError(() => decodeStructured(new Uint8Array([0xff, 0xfe]))).attribute).toBe("(body)");
  });

  it("validates what it decodes", () => {
    const err = envelopeError(() => decodeStructured(JSON.stringify({ ...base, specversion: "0.3" })));
    expect(err.attribute).toBe("specversion");
  });
});

describe("structured mode: extension names over 20 characters", () => {
  const text = JSON.stringify({
    specversion: "1.0",
    id: "e-1",
    source: "/s",
    type: "t",
    averyveryverylongextensionname: "x",
  });

  it("reads them (CloudEvents says SHOULD NOT, not MUST NOT) and refuses to write them", () => {
    const ev = decodeStructured(text);
    expect(ev.averyveryverylongextensionname).toBe("x");
    expect(() => encodeStructured(ev)).toThrow(/extension names are 1-20 characters/);
  });
});
