import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { FakeClock } from "../testing/fake-clock.js";
import { generateSecret } from "./secrets.js";
import { signatureHeaders } from "./signature.js";
import { verifyGitHubWebhook } from "./verify-github.js";
import { verifyStripeWebhook } from "./verify-stripe.js";
import { verifyWebhook } from "./verify.js";

const clock = new FakeClock(Date.UTC(2025, 0, 1, 12));
const nowS = () => Math.floor(clock.now() / 1000);
const body =
  '{"type":"order.paid","timestamp":"2025-01-01T12:00:00.000Z","data":{"orderId":"o-1","total":42}}';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return isPatchbayError(e) ? e.code : `not a PatchbayError: ${String(e)}`;
  }
  return undefined;
};

describe("verifyWebhook (Standard Webhooks)", () => {
  const secret = generateSecret();

  it("accepts a correctly signed request and parses the body", () => {
    const headers = signatureHeaders(secret, { id: "msg_1", timestamp: nowS(), body });
    const verified = verifyWebhook<{ data: { orderId: string } }>(secret, headers, body, { clock });
    expect(verified.id).toBe("msg_1");
    expect(verified.payload.data.orderId).toBe("o-1");
  });

  it("rejects a forged signature, a changed body, re-serialized JSON and another id", () => {
    const headers = signatureHeaders(secret, { id: "msg_1", timestamp: nowS(), body });
    const forged = signatureHeaders(generateSecret(), { id: "msg_1", timestamp: nowS(), body });
    expect(codeOf(() => verifyWebhook(secret, forged, body, { clock }))).toBe("WEBHOOK_SIGNATURE_INVALID");
    expect(codeOf(() => verifyWebhook(secret, headers, body.replace("42", "43"), { clock }))).toBe(
      "WEBHOOK_SIGNATURE_INVALID",
    );
    const reserialized = JSON.stringify(JSON.parse(body), null, 2);
    expect(codeOf(() => verifyWebhook(secret, headers, reserialized, { clock }))).toBe(
      "WEBHOOK_SIGNATURE_INVALID",
    );
    expect(codeOf(() => verifyWebhook(secret, { ...headers, "webhook-id": "msg_2" }, body, { clock }))).toBe(
      "WEBHOOK_SIGNATURE_INVALID",
    );
    expect(
      codeOf(() => verifyWebhook(secret, { ...headers, "webhook-signature": "v2,abc" }, body, { clock })),
    ).toBe("WEBHOOK_SIGNATURE_INVALID");
  });

  it("rejects timestamps more than the tolerance away, either way, and honours a custom tolerance", () => {
    const stale = signatureHeaders(secret, { id: "m", timestamp: nowS() - 301, body });
    const future = signatureHeaders(secret, { id: "m", timestamp: nowS() + 301, body });
    const edge = signatureHeaders(secret, { id: "m", timestamp: nowS() - 300, body });
    expect(codeOf(() => verifyWebhook(secret, stale, body, { clock }))).toBe("WEBHOOK_TIMESTAMP_TOO_OLD");
    expect(codeOf(() => verifyWebhook(secret, future, body, { clock }))).toBe("WEBHOOK_TIMESTAMP_TOO_NEW");
    expect(codeOf(() => verifyWebhook(secret, edge, body, { clock }))).toBeUndefined();
    expect(codeOf(() => verifyWebhook(secret, stale, body, { clock, tolerance: "10m" }))).toBeUndefined();
  });

  it("does not judge the timestamp of a forged request: it is refused for its signature", () => {
    const forgedStale = signatureHeaders(generateSecret(), { id: "m", timestamp: nowS() - 3600, body });
    expect(codeOf(() => verifyWebhook(secret, forgedStale, body, { clock }))).toBe(
      "WEBHOOK_SIGNATURE_INVALID",
    );
  });

  it("names a missing or malformed header", () => {
    const headers = signatureHeaders(secret, { id: "m", timestamp: nowS(), body });
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"] as const) {
      const { [name]: _gone, ...rest } = headers;
      expect(codeOf(() => verifyWebhook(secret, rest, body, { clock }))).toBe("WEBHOOK_HEADER_MISSING");
    }
    expect(
      codeOf(() => verifyWebhook(secret, { ...headers, "webhook-timestamp": "soon" }, body, { clock })),
    ).toBe("WEBHOOK_HEADER_MISSING");
  });

  it("accepts any of several secrets and any of several signatures (rotation)", () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const both = signatureHeaders([newSecret, oldSecret], { id: "m", timestamp: nowS(), body });
    expect(both["webhook-signature"].split(" ")).toHaveLength(2);
    expect(verifyWebhook(oldSecret, both, body, { clock }).id).toBe("m");
    expect(verifyWebhook(newSecret, both, body, { clock }).id).toBe("m");
    const onlyOld = signatureHeaders(oldSecret, { id: "m", timestamp: nowS(), body });
    expect(verifyWebhook([newSecret, oldSecret], onlyOld, body, { clock }).id).toBe("m");
  });

  it("reads headers case-insensitively, from a record or a fetch Headers", () => {
    const headers = signatureHeaders(secret, { id: "m", timestamp: nowS(), body });
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyWebhook(secret, upper, body, { clock }).id).toBe("m");
    expect(verifyWebhook(secret, new Headers(headers), Buffer.from(body), { clock }).id).toBe("m");
  });

  it("refuses a secret that is not in the whsec_ format", () => {
    const headers = signatureHeaders(secret, { id: "m", timestamp: nowS(), body });
    expect(codeOf(() => verifyWebhook("whsec_not base64!", headers, body, { clock }))).toBe(
      "INVALID_ARGUMENT",
    );
  });
});

describe("verifyGitHubWebhook", () => {
  const secret = "It's a Secret to Everybody";
  const payload = "Hello, World!";
  // GitHub's documented example: this secret and payload give this signature.
  const documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

  it("accepts GitHub's documented test vector and rejects a changed body", () => {
    const headers = { "x-hub-signature-256": documented, "x-github-delivery": "d-1" };
    expect(verifyGitHubWebhook(secret, headers, payload, { parse: false }).id).toBe("d-1");
    expect(codeOf(() => verifyGitHubWebhook(secret, headers, payload + " "))).toBe(
      "WEBHOOK_SIGNATURE_INVALID",
    );
    expect(codeOf(() => verifyGitHubWebhook("other", headers, payload))).toBe("WEBHOOK_SIGNATURE_INVALID");
    expect(codeOf(() => verifyGitHubWebhook(secret, { "x-github-delivery": "d" }, payload))).toBe(
      "WEBHOOK_HEADER_MISSING",
    );
  });
});

describe("verifyStripeWebhook", () => {
  const secret = "whsec_test_secret";
  const event = '{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}';
  const stripeHeader = (t: number, key = secret, extra = "") =>
    `t=${t},v1=${createHmac("sha256", key).update(`${t}.${event}`).digest("hex")}${extra}`;

  it("accepts a Stripe-Signature computed the way Stripe documents it, with the event id as id", () => {
    const verified = verifyStripeWebhook<{ type: string }>(
      secret,
      { "stripe-signature": stripeHeader(nowS(), secret, ",v0=ignored") },
      event,
      { clock },
    );
    expect(verified.id).toBe("evt_1");
    expect(verified.payload.type).toBe("payment_intent.succeeded");
  });

  it("accepts any v1 when Stripe rolls the secret, and rejects forged, stale and future ones", () => {
    const t = nowS();
    const rolled = `${stripeHeader(t, "whsec_old")},v1=${createHmac("sha256", secret).update(`${t}.${event}`).digest("hex")}`;
    expect(verifyStripeWebhook(secret, { "stripe-signature": rolled }, event, { clock }).id).toBe("evt_1");
    const h = (v: string) => ({ "stripe-signature": v });
    expect(
      codeOf(() => verifyStripeWebhook(secret, h(stripeHeader(t, "whsec_other")), event, { clock })),
    ).toBe("WEBHOOK_SIGNATURE_INVALID");
    expect(codeOf(() => verifyStripeWebhook(secret, h(stripeHeader(t - 400)), event, { clock }))).toBe(
      "WEBHOOK_TIMESTAMP_TOO_OLD",
    );
    expect(codeOf(() => verifyStripeWebhook(secret, h(stripeHeader(t + 400)), event, { clock }))).toBe(
      "WEBHOOK_TIMESTAMP_TOO_NEW",
    );
    expect(codeOf(() => verifyStripeWebhook(secret, h("v1=abc"), event, { clock }))).toBe(
      "WEBHOOK_HEADER_MISSING",
    );
    expect(codeOf(() => verifyStripeWebhook(secret, {}, event, { clock }))).toBe("WEBHOOK_HEADER_MISSING");
  });
});
