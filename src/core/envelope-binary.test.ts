import { describe, expect, it } from "vitest";
import {
  AMQP_BINARY,
  createEnvelope,
  fromBinary,
  HTTP_BINARY,
  NATS_BINARY,
  toBinary,
  type CloudEvent,
} from "./envelope.js";
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

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const event = createEnvelope({
  type: "order.created",
  source: "/shop",
  id: "e-1",
  time: "2025-01-01T00:00:00.000Z",
  subject: "order 42 – größe",
  datacontenttype: "application/json",
  data: { orderId: "o-42", total: 12.5 },
  traceparent,
  tracestate: "rojo=00f067aa0ba902b7",
  correlationid: "c-1",
  dataversion: 3,
  extensions: { tenant: "acme" },
});

describe("binary mode over HTTP", () => {
  it("maps attributes to ce- headers, trace context to W3C headers, datacontenttype to content-type", () => {
    const msg = toBinary(event, { prefix: HTTP_BINARY });
    expect(msg.headers).toEqual({
      "ce-specversion": "1.0",
      "ce-id": "e-1",
      "ce-source": "/shop",
      "ce-type": "order.created",
      "ce-time": "2025-01-01T00:00:00.000Z",
      "ce-subject": "order%2042%20%E2%80%93%20gr%C3%B6%C3%9Fe",
      "ce-correlationid": "c-1",
      "ce-dataversion": "3",
      "ce-tenant": "acme",
      "ce-traceparent": traceparent,
      "ce-tracestate": "rojo=00f067aa0ba902b7",
      traceparent,
      tracestate: "rojo=00f067aa0ba902b7",
      "content-type": "application/json",
    });
    expect(msg.contentType).toBe("application/json");
    expect(msg.body).toBe('{"orderId":"o-42","total":12.5}');
  });

  it("round-trips, reading header names case-insensitively and dataversion back as a number", () => {
    const { headers, body } = toBinary(event);
    const shouted = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    const back = fromBinary(shouted, new TextEncoder().encode(body as string));
    expect(back).toEqual(event);
    expect(back.dataversion).toBe(3);
  });

  it("reads double-quoted and lower-case percent-encoded values, and Node's array headers", () => {
    const back = fromBinary(
      {
        "ce-specversion": "1.0",
        "ce-id": '"e-\\"1\\""',
        "ce-source": "/shop",
        "ce-type": ["order.created"],
        "ce-subject": "a%c3%a9",
      },
      undefined,
    );
    expect(back).toEqual({
      specversion: "1.0",
      id: 'e-"1"',
      source: "/shop",
      type: "order.created",
      subject: "aé",
    });
  });

  it("rejects percent-encoding that is not valid UTF-8 (overlong) on the attribute", () => {
    const headers = { "ce-specversion": "1.0", "ce-id": "%C0%A0", "ce-source": "/s", "ce-type": "t" };
    expect(envelopeError(() => fromBinary(headers, "")).attribute).toBe("id");
  });

  it("rejects a JSON body that does not parse with attribute (body)", () => {
    const { headers } = toBinary(event);
    expect(envelopeError(() => fromBinary(headers, "{oops")).attribute).toBe("(body)");
  });

  it("rejects headers missing a required attribute", () => {
    const { headers, body } = toBinary(event);
    delete headers["ce-source"];
    expect(envelopeError(() => fromBinary(headers, body)).attribute).toBe("source");
  });

  it("carries text and bytes as they are", () => {
    const text = createEnvelope({
      type: "t",
      source: "/s",
      id: "1",
      datacontenttype: "text/csv",
      data: "a,b\n1,2",
    });
    const t = toBinary(text);
    expect(t.body).toBe("a,b\n1,2");
    expect(fromBinary(t.headers, Buffer.from(t.body as string))).toEqual(text);

    const bytes = createEnvelope({
      type: "t",
      source: "/s",
      id: "2",
      datacontenttype: "application/octet-stream",
      data: new Uint8Array([1, 2, 3]),
    });
    const b = toBinary(bytes);
    expect(b.body).toEqual(new Uint8Array([1, 2, 3]));
    expect(fromBinary(b.headers, b.body).data).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("sends no body and no content-type for an event without data", () => {
    const bare: CloudEvent = { specversion: "1.0", id: "1", source: "/s", type: "t" };
    const msg = toBinary(bare);
    expect(msg).toEqual({
      headers: { "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t" },
      body: "",
      contentType: undefined,
    });
    expect(fromBinary(msg.headers, msg.body)).toEqual(bare);
  });
});

describe("binary mode: the distributed tracing extension and long extension names", () => {
  const headers = {
    "ce-specversion": "1.0",
    "ce-id": "e-7",
    "ce-source": "/shop",
    "ce-type": "order.created",
  };
  const hop = "00-11111111111111111111111111111111-2222222222222222-01";

  it("reads the traceparent attribute from ce-traceparent; the W3C header (a hop's span) does not replace it", () => {
    const back = fromBinary({ ...headers, "ce-traceparent": traceparent, traceparent: hop }, "");
    expect(back.traceparent).toBe(traceparent);
  });

  it("falls back on the W3C traceparent header when a producer sent no ce-traceparent", () => {
    expect(fromBinary({ ...headers, traceparent: hop }, "").traceparent).toBe(hop);
  });

  it("reads extension names over 20 characters (SHOULD NOT, not MUST NOT) but never writes them", () => {
    const back = fromBinary({ ...headers, "ce-averyveryverylongextensionname": "x" }, "");
    expect(back.averyveryverylongextensionname).toBe("x");
    expect(() => toBinary(back)).toThrow(/extension names are 1-20 characters/);
  });
});

describe("binary mode over AMQP and NATS", () => {
  it("uses cloudEvents: properties, raw values, and the content-type property instead of a header", () => {
    const msg = toBinary(event, { prefix: AMQP_BINARY });
    expect(msg.headers["cloudEvents:id"]).toBe("e-1");
    expect(msg.headers["cloudEvents:subject"]).toBe("order 42 – größe");
    expect(msg.headers.traceparent).toBe(traceparent);
    expect(msg.headers["content-type"]).toBeUndefined();
    expect(msg.contentType).toBe("application/json");
    const back = fromBinary(msg.headers, Buffer.from(msg.body as string), {
      prefix: AMQP_BINARY,
      contentType: msg.contentType,
    });
    expect(back).toEqual(event);
  });

  it("accepts native AMQP property types", () => {
    const back = fromBinary(
      {
        "cloudEvents:specversion": "1.0",
        "cloudEvents:id": "e-9",
        "cloudEvents:source": "/s",
        "cloudEvents:type": "t",
        "cloudEvents:time": new Date(Date.UTC(2025, 0, 1)),
        "cloudEvents:dataversion": 2,
        "cloudEvents:urgent": true,
      },
      Buffer.from('{"x":1}'),
      { prefix: AMQP_BINARY, contentType: "application/json" },
    );
    expect(back).toMatchObject({
      time: "2025-01-01T00:00:00.000Z",
      dataversion: 2,
      urgent: true,
      data: { x: 1 },
    });
  });

  it("round-trips over NATS headers", () => {
    const msg = toBinary(event, { prefix: NATS_BINARY });
    expect(fromBinary(msg.headers, msg.body, { prefix: NATS_BINARY })).toEqual(event);
  });
});
