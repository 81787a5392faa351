import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { createEnvelope, validateEnvelope } from "./envelope.js";
import { isPatchbayError, type EnvelopeError } from "./errors.js";
import { isUuid, uuidv7Time } from "./ids.js";

function envelopeError(fn: () => unknown): EnvelopeError {
  try {
    fn();
  } catch (e) {
    if (isPatchbayError(e, "ENVELOPE_INVALID")) return e;
    throw e;
  }
  throw new Error("expected an ENVELOPE_INVALID error");
}

const valid = { specversion: "1.0", id: "e-1", source: "/shop", type: "order.created" };

describe("createEnvelope", () => {
  it("fills id with a UUIDv7 and time with the clock's now", () => {
    const clock = new FakeClock(Date.UTC(2025, 2, 1, 9, 30));
    const ev = createEnvelope({ type: "order.created", source: "/shop", data: { orderId: "o-1" } }, clock);
    expect(ev).toMatchObject({
      specversion: "1.0",
      type: "order.created",
      source: "/shop",
      data: { orderId: "o-1" },
    });
    expect(ev.time).toBe("2025-03-01T09:30:00.000Z");
    expect(isUuid(ev.id, 7)).toBe(true);
    expect(uuidv7Time(ev.id)).toBe(clock.now());
  });

  it("keeps given attributes and extensions and drops undefined ones", () => {
    const ev = createEnvelope({
      type: "order.created",
      source: "/shop",
      id: "fixed",
      time: new Date(Date.UTC(2025, 0, 2)),
      subject: undefined,
      correlationid: "c-1",
      dataversion: 2,
      extensions: { tenant: "acme", priority: 3, urgent: true },
    });
    expect(ev).toEqual({
      specversion: "1.0",
      type: "order.created",
      source: "/shop",
      id: "fixed",
      time: "2025-01-02T00:00:00.000Z",
      correlationid: "c-1",
      dataversion: 2,
      tenant: "acme",
      priority: 3,
      urgent: true,
    });
    expect("subject" in ev).toBe(false);
  });

  it("refuses an extension that would overwrite a context attribute", () => {
    const err = envelopeError(() =>
      createEnvelope({ type: "t", source: "/s", extensions: { id: "sneaky" } }),
    );
    expect(err.attribute).toBe("extension:id");
    // An attribute passed as undefined is still the attribute: an extension may not take its name.
    const undefinedAttribute = envelopeError(() =>
      createEnvelope({ type: "t", source: "/s", traceparent: undefined, extensions: { traceparent: "x" } }),
    );
    expect(undefinedAttribute.attribute).toBe("extension:traceparent");
  });

  it("refuses bad input with ENVELOPE_INVALID naming the attribute", () => {
    expect(envelopeError(() => createEnvelope({ type: "", source: "/s" })).attribute).toBe("type");
    expect(
      envelopeError(() => createEnvelope({ type: "t", source: "/s", time: "yesterday" })).attribute,
    ).toBe("time");
    expect(
      envelopeError(() => createEnvelope({ type: "t", source: "/s", time: new Date(NaN) })).attribute,
    ).toBe("time");
  });
});

describe("validateEnvelope", () => {
  it("accepts a minimal event and returns a copy", () => {
    const out = validateEnvelope(valid);
    expect(out).toEqual(valid);
    expect(out).not.toBe(valid);
  });

  it("accepts every optional attribute and extension type the spec allows", () => {
    const full = {
      ...valid,
      time: "2025-01-01T12:00:00.123456+02:00",
      datacontenttype: "application/json; charset=utf-8",
      dataschema: "https://schemas.example.com/order-created/v2.json",
      subject: "o-1",
      data: { a: 1 },
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      tracestate: "rojo=00f067aa0ba902b7",
      correlationid: "c-1",
      causationid: "e-0",
      dataversion: 3,
      tenant: "acme",
      retries: -2,
      flag: false,
      a1b2c3d4e5f6g7h8i9j0: "twenty chars",
    };
    expect(validateEnvelope(full)).toEqual(full);
  });

  it("treats null optional attributes as absent but keeps null data", () => {
    expect(validateEnvelope({ ...valid, subject: null, data: null })).toEqual({ ...valid, data: null });
  });

  it("decodes data_base64 into Uint8Array data", () => {
    const out = validateEnvelope({
      ...valid,
      datacontenttype: "application/octet-stream",
      data_base64: "AAEC/w==",
    });
    expect(out.data).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect("data_base64" in out).toBe(false);
  });

  const invalid: [string, unknown, string][] = [
    ["a string", "hello", "(envelope)"],
    ["null", null, "(envelope)"],
    ["an array", [valid], "(envelope)"],
    ["missing specversion", { ...valid, specversion: undefined }, "specversion"],
    ["specversion 0.3", { ...valid, specversion: "0.3" }, "specversion"],
    ["specversion as a number", { ...valid, specversion: 1 }, "specversion"],
    ["missing id", { ...valid, id: undefined }, "id"],
    ["empty id", { ...valid, id: "" }, "id"],
    ["numeric id", { ...valid, id: 7 }, "id"],
    ["missing source", { ...valid, source: undefined }, "source"],
    ["empty type", { ...valid, type: "" }, "type"],
    ["time without zone", { ...valid, time: "2025-01-01T12:00:00" }, "time"],
    ["time as a date only", { ...valid, time: "2025-01-01" }, "time"],
    ["time on Feb 30", { ...valid, time: "2025-02-30T00:00:00Z" }, "time"],
    ["time at hour 25", { ...valid, time: "2025-01-01T25:00:00Z" }, "time"],
    ["time as a number", { ...valid, time: 1735732800000 }, "time"],
    ["relative dataschema", { ...valid, dataschema: "/schemas/order.json" }, "dataschema"],
    ["empty subject", { ...valid, subject: "" }, "subject"],
    ["datacontenttype without a subtype", { ...valid, datacontenttype: "json" }, "datacontenttype"],
    ["uppercase extension name", { ...valid, FooBar: "x" }, "extension:FooBar"],
    ["extension name with a dash", { ...valid, "foo-bar": "x" }, "extension:foo-bar"],
    [
      "extension name over 20 characters",
      { ...valid, abcdefghijklmnopqrstu: "x" },
      "extension:abcdefghijklmnopqrstu",
    ],
    ["object extension value", { ...valid, tenant: { id: 1 } }, "extension:tenant"],
    ["fractional extension value", { ...valid, ratio: 0.5 }, "extension:ratio"],
    ["dataversion 0", { ...valid, dataversion: 0 }, "dataversion"],
    ["dataversion as a string", { ...valid, dataversion: "2" }, "dataversion"],
    ["numeric traceparent", { ...valid, traceparent: 1 }, "traceparent"],
    ["both data and data_base64", { ...valid, data: {}, data_base64: "AA==" }, "data"],
    ["data_base64 that is not base64", { ...valid, data_base64: "not base64!" }, "data_base64"],
  ];

  for (const [name, value, attribute] of invalid) {
    it(`rejects ${name} with ENVELOPE_INVALID on "${attribute}"`, () => {
      const err = envelopeError(() => validateEnvelope(value));
      expect(err.code).toBe("ENVELOPE_INVALID");
      expect(err.attribute).toBe(attribute);
      expect(err.message).toContain(attribute);
    });
  }
});
