/** The event bus: publish/subscribe with groups, outbox, inbox, delayed retries, dead letters. */
export {
  createEventBus,
  DEFAULT_MAX_MESSAGE_BYTES,
  type BusTx,
  type EventBus,
  type EventBusOptions,
  type Handler,
  type HandlerContext,
  type PublishEntry,
  type PublishOptions,
  type ReceivedEvent,
  type SubscribeOptions,
  type SubscriptionRetry,
} from "./bus.js";
export type {
  DeadLetter,
  DeadLetterCursor,
  DeadLetterFilter,
  DeadLetterListOptions,
  DeadLetters,
} from "./dead-letters.js";
export { BusError, MessageTooLargeError, PublishError } from "./errors.js";
export { localTransport, type LocalTransportOptions } from "./local-transport.js";
export { assertPattern, compilePattern } from "./patterns.js";
export { groupPauses, type GroupPauses, type PausedGroup } from "./pause.js";
export type {
  ConsumeOptions,
  Consumer,
  Delivery,
  FailureRecord,
  Transport,
  TransportCapabilities,
  TransportMessage,
  TransportPublishOptions,
} from "./transport.js";
