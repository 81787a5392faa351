import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/** Why an inbound webhook was refused. */
export type WebhookVerificationCode =
  | "WEBHOOK_HEADER_MISSING"
  | "WEBHOOK_SIGNATURE_INVALID"
  | "WEBHOOK_TIMESTAMP_TOO_OLD"
  | "WEBHOOK_TIMESTAMP_TOO_NEW"
  | "WEBHOOK_REPLAYED";

/** The HTTP status a receiver answers each refusal with. */
const STATUS: Record<WebhookVerificationCode, number> = {
  WEBHOOK_HEADER_MISSING: 400,
  WEBHOOK_SIGNATURE_INVALID: 401,
  WEBHOOK_TIMESTAMP_TOO_OLD: 401,
  WEBHOOK_TIMESTAMP_TOO_NEW: 401,
  WEBHOOK_REPLAYED: 409,
};

/**
 * An inbound webhook failed verification: a required header is missing or malformed
 * (`WEBHOOK_HEADER_MISSING`), no signature matches (`WEBHOOK_SIGNATURE_INVALID`), the timestamp is
 * outside the tolerance (`WEBHOOK_TIMESTAMP_TOO_OLD` / `_TOO_NEW`), or the message id was seen
 * before (`WEBHOOK_REPLAYED`). Not retryable: the same request fails the same way.
 */
export class WebhookVerificationError extends PatchbayError {
  /** The HTTP status a receiver should answer with (400, 401 or 409). */
  readonly status: number;

  constructor(
    code: WebhookVerificationCode,
    message: string,
    /** The header at fault, when one is (`"webhook-signature"`, `"stripe-signature"`). */
    readonly header?: string,
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super(code, message, options);
    this.status = STATUS[code];
  }
}

/**
 * A webhook message id arrived again. `state` says whether the first delivery was processed
 * (`"processed"`: answer 2xx so the sender stops), is still being processed (`"in_flight"`: the
 * sender should retry later), or came with another body (`"conflict"`).
 */
export class WebhookReplayedError extends WebhookVerificationError {
  constructor(
    /** The message id (`webhook-id`, `X-GitHub-Delivery`, the Stripe event id). */
    readonly messageId: string,
    readonly state: "processed" | "in_flight" | "conflict",
  ) {
    super(
      "WEBHOOK_REPLAYED",
      state === "processed"
        ? `webhook ${messageId} was already processed`
        : state === "in_flight"
          ? `webhook ${messageId} is being processed by another request`
          : `webhook ${messageId} was already received with a different body`,
    );
  }
}

/**
 * An outbound webhook target was refused before any connection was made: the URL's scheme is not
 * allowed, or every address its host resolves to is loopback, private, link-local, multicast,
 * unspecified, reserved or a cloud metadata address (SSRF protection). Not retryable.
 */
export class WebhookAddressRefusedError extends PatchbayError {
  constructor(
    readonly url: string,
    /** What was wrong: `"loopback"`, `"private"`, `"metadata"`, `"scheme"`, `"https-only"`, ... */
    readonly reason: string,
    /** The refused address, when the refusal is about an address. */
    readonly address: string | undefined,
    message: string,
  ) {
    super("WEBHOOK_ADDRESS_REFUSED", message);
  }
}

/** A webhook payload is larger than the configured limit. Not retryable: it will not shrink. */
export class WebhookPayloadTooLargeError extends PatchbayError {
  constructor(
    /** The payload's size in bytes. */
    readonly size: number,
    /** The limit in bytes. */
    readonly limit: number,
  ) {
    super(
      "WEBHOOK_PAYLOAD_TOO_LARGE",
      `webhook payload is ${size} bytes, over the ${limit}-byte limit (maxPayloadBytes)`,
    );
  }
}

/** An endpoint or delivery that does not exist was named. */
export class WebhookNotFoundError extends PatchbayError {
  constructor(
    code: "WEBHOOK_ENDPOINT_NOT_FOUND" | "WEBHOOK_DELIVERY_NOT_FOUND",
    message: string,
    /** The id that was looked up. */
    readonly id: string,
  ) {
    super(code, message);
  }
}

/**
 * One delivery attempt did not succeed: the receiver answered a non-2xx status (`status`), the
 * request timed out or the connection failed. `retryable` follows the delivery rules: 410 Gone is
 * final, everything else is retried by the schedule.
 */
export class WebhookDeliveryError extends PatchbayError {
  constructor(
    code: "WEBHOOK_HTTP_STATUS" | "WEBHOOK_NETWORK" | "WEBHOOK_TIMEOUT" | "WEBHOOK_ABORTED",
    message: string,
    /** The HTTP status, when the receiver answered. */
    readonly status: number | undefined,
    options: PatchbayErrorOptions = {},
  ) {
    super(code, message, { retryable: true, ...options });
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    WEBHOOK_HEADER_MISSING: WebhookVerificationError;
    WEBHOOK_SIGNATURE_INVALID: WebhookVerificationError;
    WEBHOOK_TIMESTAMP_TOO_OLD: WebhookVerificationError;
    WEBHOOK_TIMESTAMP_TOO_NEW: WebhookVerificationError;
    WEBHOOK_REPLAYED: WebhookReplayedError;
    WEBHOOK_ADDRESS_REFUSED: WebhookAddressRefusedError;
    WEBHOOK_PAYLOAD_TOO_LARGE: WebhookPayloadTooLargeError;
    WEBHOOK_ENDPOINT_NOT_FOUND: WebhookNotFoundError;
    WEBHOOK_DELIVERY_NOT_FOUND: WebhookNotFoundError;
    WEBHOOK_HTTP_STATUS: WebhookDeliveryError;
    WEBHOOK_NETWORK: WebhookDeliveryError;
    WEBHOOK_TIMEOUT: WebhookDeliveryError;
    WEBHOOK_ABORTED: WebhookDeliveryError;
  }
}
