import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/** The bus is not started, already stopped, or was given something it cannot deliver. */
export class BusError extends PatchbayError {
  constructor(
    code: "BUS_NOT_STARTED" | "BUS_STOPPED" | "SUBSCRIPTION_INVALID",
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

/**
 * A message is larger than the bus accepts (its `maxMessageBytes`): its serialized CloudEvent plus
 * its headers, in UTF-8 bytes. Not retryable: the same message will not get smaller.
 */
export class MessageTooLargeError extends PatchbayError {
  constructor(
    /** The event type of the refused message. */
    readonly type: string,
    /** The message's size in bytes. */
    readonly size: number,
    /** The bus's limit in bytes. */
    readonly limit: number,
  ) {
    super(
      "MESSAGE_TOO_LARGE",
      `a ${type} message of ${size} bytes is over the bus's limit of ${limit} bytes (maxMessageBytes); nothing was published`,
      { retryable: false },
    );
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    BUS_NOT_STARTED: BusError;
    BUS_STOPPED: BusError;
    SUBSCRIPTION_INVALID: BusError;
    PUBLISH_FAILED: PublishError;
    MESSAGE_TOO_LARGE: MessageTooLargeError;
  }
}
