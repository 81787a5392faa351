/**
 * Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, several
 * separated by spaces (one per secret while a rotated secret is still honoured).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { secretKey } from "./secrets.js";

/** The three Standard Webhooks request headers (a type, so it passes where a header record is expected). */
export type WebhookSignatureHeaders = {
  "webhook-id": string;
  /** Unix seconds. */
  "webhook-timestamp": string;
  /** `v1,<base64>`, space-separated when there are several. */
  "webhook-signature": string;
};

/** The base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` under `key`. */
export function hmacBase64(key: Buffer, id: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac("sha256", key);
  mac.update(`${id}.${timestamp}.`);
  mac.update(body);
  return mac.digest("base64");
}

/**
 * Signs a message: the `webhook-signature` value for each secret, space-separated.
 *
 * @example sign(["whsec_..."], "msg_1", 1735689600, '{"type":"order.paid"}') // "v1,K5oZ..."
 */
export function sign(
  secrets: string | readonly string[],
  id: string,
  timestamp: number,
  body: string | Buffer,
): string {
  const list = typeof secrets === "string" ? [secrets] : secrets;
  return list.map((s) => `v1,${hmacBase64(secretKey(s), id, timestamp, body)}`).join(" ");
}

/**
 * The three headers of a signed Standard Webhooks request, for `timestamp` in Unix seconds.
 *
 * @example
 * const headers = signatureHeaders(secret, { id: "msg_1", timestamp: Math.floor(Date.now() / 1000), body });
 */
export function signatureHeaders(
  secrets: string | readonly string[],
  message: { id: string; timestamp: number; body: string | Buffer },
): WebhookSignatureHeaders {
  return {
    "webhook-id": message.id,
    "webhook-timestamp": String(message.timestamp),
    "webhook-signature": sign(secrets, message.id, message.timestamp, message.body),
  };
}

/** Compares two strings in time independent of where they differ (lengths are not secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
