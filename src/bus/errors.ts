import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/**
 * A subscription cannot work as asked (`SUBSCRIPTION_INVALID`), or a transport's delivery was
 * settled twice (`BUS_STOPPED`, an internal fault). A stopped bus refuses work with the
 * lifecycle's `STOPPED` (`StoppedError`). Not retryable.
 */
export class BusError extends PatchbayError {
  constructor(
    code: "BUS_STOPPED" | "SUBSCRIPTION_INVALID",
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
 * A transport could not read a message whole: its headers or the transport's own bookkeeping
 * are corrupt (a damaged queue row, a broken producer), or its body is not UTF-8 text. Not
 * retryable — the same bytes fail again — so the bus dead-letters the message at once, with
 * the parts that could be read; `raw` keeps what could not (`rawEncoding` says how).
 */
export class UndecodableMessageError extends PatchbayError {
  constructor(
    message: string,
    /** What could not be read: `"headers"`, `"last_error"`, `"patchbay-headers"`, `"body"`, ... */
    readonly part: string,
    /** That part as it was found (text, or the bytes in base64). */
    readonly raw: string,
    readonly rawEncoding: "text" | "base64" = "text",
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super("MESSAGE_UNDECODABLE", message, options);
  }
}

/**
 * A message's dead letter could not be stored. `retryable` when the store was unreachable (the
 * transport delivers the message again later); otherwise the store refused the letter even with
 * its text made storable, and the transport parks the message where it keeps such messages
 * (RabbitMQ: the group's broker dead-letter queue; the local queue: its row, never due again).
 */
export class DeadLetterError extends PatchbayError {
  constructor(
    message: string,
    readonly group: string,
    readonly messageId: string,
    options: PatchbayErrorOptions = {},
  ) {
    super("DEAD_LETTER_FAILED", message, options);
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
    BUS_STOPPED: BusError;
    SUBSCRIPTION_INVALID: BusError;
    PUBLISH_FAILED: PublishError;
    MESSAGE_UNDECODABLE: UndecodableMessageError;
    DEAD_LETTER_FAILED: DeadLetterError;
    MESSAGE_TOO_LARGE: MessageTooLargeError;
  }
}
