/**
 * Inbound verification of Standard Webhooks requests: signature (any of several secrets, compared
 * in constant time) and timestamp (within a tolerance both ways).
 */
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { WebhookVerificationError } from "./errors.js";
import { bodyBytes, headerValue, type HeaderSource } from "./headers.js";
import { secretKey } from "./secrets.js";
import { constantTimeEqual, hmacBase64 } from "./signature.js";

/** Options of {@link verifyWebhook} (and of the GitHub and Stripe verifiers). */
export interface VerifyOptions {
  /** How far the timestamp may be from now, either way. Default `"5m"`. */
  tolerance?: Duration;
  /** Parse the body as JSON (default `true`); `false` leaves `payload` undefined. */
  parse?: boolean;
  clock?: Clock;
}

/** A request that passed verification. */
export interface VerifiedWebhook<T = unknown> {
  /** The message id to dedupe on (`webhook-id`; GitHub's delivery id; Stripe's event id). */
  id: string;
  /** When the sender signed it, Unix seconds (undefined for GitHub, which sends none). */
  timestamp: number | undefined;
  /** The JSON body, parsed (undefined when `parse: false` or the body is empty). */
  payload: T;
  /** The body exactly as received. */
  body: Buffer;
}

const V1 = "v1,";
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads the JSON body of a verified request. */
export function parseBody<T>(body: Buffer, parse: boolean | undefined): T {
  if (parse === false || body.length === 0) return undefined as T;
  let text: string;
  try {
    // Strictly: Buffer#toString would put U+FFFD in place of invalid bytes, silently handing the
    // handler other text than was signed and sent.
    text = STRICT_UTF8.decode(body);
  } catch (cause) {
    throw new InvalidArgumentError("the webhook body is signed correctly but is not valid UTF-8", "rawBody", {
      cause,
    });
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new InvalidArgumentError("the webhook body is signed correctly but is not JSON", "rawBody", {
      cause,
    });
  }
}

/** Throws unless `timestamp` (Unix seconds) is within `tolerance` of the clock's now. */
export function checkTimestamp(timestamp: number, options: VerifyOptions, header: string): void {
  const toleranceS = toMs(options.tolerance ?? "5m", "tolerance") / 1000;
  const now = Math.floor((options.clock ?? systemClock).now() / 1000);
  if (now - timestamp > toleranceS) {
    throw new WebhookVerificationError(
      "WEBHOOK_TIMESTAMP_TOO_OLD",
      `webhook timestamp ${timestamp} is ${now - timestamp} s old, more than the ${toleranceS} s tolerance`,
      header,
    );
  }
  if (timestamp - now > toleranceS) {
    throw new WebhookVerificationError(
      "WEBHOOK_TIMESTAMP_TOO_NEW",
      `webhook timestamp ${timestamp} is ${timestamp - now} s in the future, more than the ${toleranceS} s tolerance`,
      header,
    );
  }
}

/** The secrets as a non-empty list, each checked. */
export function secretList(secretOrSecrets: string | readonly string[]): string[] {
  const list = typeof secretOrSecrets === "string" ? [secretOrSecrets] : [...secretOrSecrets];
  if (list.length === 0) throw new InvalidArgumentError("give at least one secret", "secret");
  return list;
}

function required(headers: HeaderSource, name: string): string {
  const value = headerValue(headers, name);
  if (value === undefined || value.trim() === "") {
    throw new WebhookVerificationError("WEBHOOK_HEADER_MISSING", `missing ${name} header`, name);
  }
  return value.trim();
}

/**
 * Verifies a Standard Webhooks request and returns its id, timestamp and parsed body. Accepts
 * the request when any `v1` signature in `webhook-signature` matches any of the secrets (so a
 * receiver can hold old and new secrets while rotating), and the `webhook-timestamp` is within
 * `tolerance` (default 5 minutes) of now, either way. Verify the **raw** body: JSON parsed and
 * re-serialized does not match.
 *
 * Throws {@link WebhookVerificationError}: `WEBHOOK_HEADER_MISSING`, `WEBHOOK_SIGNATURE_INVALID`,
 * `WEBHOOK_TIMESTAMP_TOO_OLD`, `WEBHOOK_TIMESTAMP_TOO_NEW`. The timestamp is judged only after
 * the signature matched, so a forger learns nothing from the error.
 *
 * @example
 * const { id, payload } = verifyWebhook(process.env.WEBHOOK_SECRET!, req.headers, rawBody);
 */
export function verifyWebhook<T = unknown>(
  secretOrSecrets: string | readonly string[],
  headers: HeaderSource,
  rawBody: string | Uint8Array,
  options: VerifyOptions = {},
): VerifiedWebhook<T> {
  const keys = secretList(secretOrSecrets).map((s) => secretKey(s));
  const id = required(headers, "webhook-id");
  const timestampText = required(headers, "webhook-timestamp");
  const signatures = required(headers, "webhook-signature");
  if (!/^\d{1,12}$/.test(timestampText)) {
    throw new WebhookVerificationError(
      "WEBHOOK_HEADER_MISSING",
      `webhook-timestamp must be Unix seconds, got ${JSON.stringify(timestampText.slice(0, 40))}`,
      "webhook-timestamp",
    );
  }
  const timestamp = Number(timestampText);
  const body = bodyBytes(rawBody);
  const offered = signatures
    .split(" ")
    // A header sent as two lines reaches us joined with ", " (Node, fetch): drop that comma.
    .map((s) => s.replace(/,$/, ""))
    .filter((s) => s.startsWith(V1))
    .map((s) => s.slice(V1.length));
  const expected = keys.map((key) => hmacBase64(key, id, timestamp, body));
  // Every pair is compared, so the time taken does not say which secret (if any) matched.
  let match = false;
  for (const sig of offered) for (const want of expected) if (constantTimeEqual(sig, want)) match = true;
  if (!match) {
    throw new WebhookVerificationError(
      "WEBHOOK_SIGNATURE_INVALID",
      offered.length === 0
        ? "webhook-signature has no v1 signature"
        : "no webhook signature matches: wrong secret, or the body or headers were changed",
      "webhook-signature",
    );
  }
  checkTimestamp(timestamp, options, "webhook-timestamp");
  return { id, timestamp, payload: parseBody<T>(body, options.parse), body };
}
