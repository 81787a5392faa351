import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/**
 * The bus was used out of order — `subscribe()` or `start()` after it started
 * (`BUS_ALREADY_STARTED`), anything after `stop()` (`BUS_STOPPED`) — or a subscription cannot
 * work as asked (`SUBSCRIPTION_INVALID`). Not retryable.
 */
export class BusError extends PatchbayError {
  constructor(
    code: "BUS_ALREADY_STARTED" | "BUS_STOPPED" | "SUBSCRIPTION_INVALID",
    message: string,
    options: PatchbayErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** A publish could not be made durable (broker refused, connection lost before the confirm). */
export class PublishError extends PatchbayError {
  constructor(message: string, options: PatchbayErrorOptions = {}) {
    super("PUBLISH_FAILED", message, { retryable: true, ...options });
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    BUS_ALREADY_STARTED: BusError;
    BUS_STOPPED: BusError;
    SUBSCRIPTION_INVALID: BusError;
    PUBLISH_FAILED: PublishError;
  }
}
