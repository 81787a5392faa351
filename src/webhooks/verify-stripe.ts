import { createHmac } from "node:crypto";
import { InvalidArgumentError } from "../core/errors.js";
import { WebhookVerificationError } from "./errors.js";
import { bodyBytes, headerValue, type HeaderSource } from "./headers.js";
import { constantTimeEqual } from "./signature.js";
import { checkTimestamp, parseBody, secretList, type VerifiedWebhook, type VerifyOptions } from "./verify.js";

const HEADER = "stripe-signature";

/**
 * Verifies a Stripe webhook: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, where each `v1`
 * is the hex HMAC-SHA256 of `<t>.<raw body>` keyed with the endpoint's signing secret (the
 * `whsec_...` string as it is). Any `v1` matching any secret passes; `t` must be within
 * `tolerance` (default 5 minutes) either way. The id is the event's `id` from the body.
 * Throws {@link WebhookVerificationError}.
 *
 * @example const { payload } = verifyStripeWebhook(process.env.STRIPE_WEBHOOK_SECRET!, req.headers, rawBody);
 */
export function verifyStripeWebhook<T = unknown>(
  secretOrSecrets: string | readonly string[],
  headers: HeaderSource,
  rawBody: string | Uint8Array,
  options: VerifyOptions = {},
): VerifiedWebhook<T> {
  const secrets = secretList(secretOrSecrets);
  for (const s of secrets) {
    if (typeof s !== "string" || s.length === 0)
      throw new InvalidArgumentError("Stripe webhook secrets are non-empty strings", "secret");
  }
  const header = headerValue(headers, HEADER)?.trim();
  if (!header) {
    throw new WebhookVerificationError("WEBHOOK_HEADER_MISSING", "missing Stripe-Signature header", HEADER);
  }
  let timestampText: string | undefined;
  const offered: string[] = [];
  for (const part of header.split(",")) {
    const at = part.indexOf("=");
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === "t") timestampText = value;
    else if (key === "v1") offered.push(value);
  }
  if (timestampText === undefined || !/^\d{1,12}$/.test(timestampText)) {
    throw new WebhookVerificationError(
      "WEBHOOK_HEADER_MISSING",
      "Stripe-Signature has no valid t= timestamp",
      HEADER,
    );
  }
  const timestamp = Number(timestampText);
  const body = bodyBytes(rawBody);
  let match = false;
  for (const secret of secrets) {
    const expected = createHmac("sha256", secret).update(`${timestampText}.`).update(body).digest("hex");
    for (const sig of offered) if (constantTimeEqual(sig, expected)) match = true;
  }
  if (!match) {
    throw new WebhookVerificationError(
      "WEBHOOK_SIGNATURE_INVALID",
      offered.length === 0
        ? "Stripe-Signature has no v1 signature"
        : "no Stripe signature matches: wrong secret, or the body was changed",
      HEADER,
    );
  }
  checkTimestamp(timestamp, options, HEADER);
  const event = parseBody<{ id?: unknown } | undefined>(body, true);
  const id = typeof event?.id === "string" ? event.id : undefined;
  if (id === undefined) {
    throw new InvalidArgumentError("the Stripe event body has no string id", "rawBody");
  }
  return { id, timestamp, payload: (options.parse === false ? undefined : event) as T, body };
}
