/** Webhooks: signed, durable outbound delivery (Standard Webhooks) and inbound verification. */
export { createWebhooks, type Webhooks, type WebhooksOptions } from "./webhooks.js";
export type {
  CreateEndpointInput,
  DisabledReason,
  EndpointSecrets,
  UpdateEndpointInput,
  WebhookEndpoint,
  WebhookEndpoints,
} from "./endpoints.js";
export type {
  DeliveryFilter,
  DeliveryStatus,
  WebhookAttempt,
  WebhookDeliveries,
  WebhookDelivery,
  WebhookMessage,
} from "./deliveries.js";
export { EndpointDisabled, type EndpointDisabledData } from "./events.js";
export { WEBHOOK_TEST_EVENT, type WebhookTestData } from "./test-event.js";
export type { WebhookPayloadFormat } from "./payload.js";
export {
  DEFAULT_RETRY_SCHEDULE,
  retrySchedule,
  type RetrySchedule,
  type RetryScheduleOptions,
} from "./schedule.js";
export { generateSecret, SECRET_PREFIX } from "./secrets.js";
export { sign, signatureHeaders, type WebhookSignatureHeaders } from "./signature.js";
export { verifyWebhook, type VerifiedWebhook, type VerifyOptions } from "./verify.js";
export { verifyGitHubWebhook } from "./verify-github.js";
export { verifyStripeWebhook } from "./verify-stripe.js";
export type { HeaderSource } from "./headers.js";
export {
  createTargetPolicy,
  type CheckedTarget,
  type ResolvedAddress,
  type TargetPolicy,
  type TargetPolicyOptions,
  type WebhookResolver,
} from "./ssrf.js";
export { classifyAddress, parseIp, type AddressRefusal, type IpAddress } from "./addresses.js";
export {
  createHttpConnector,
  type ConnectRequest,
  type ConnectResponse,
  type HttpConnector,
  type HttpConnectorOptions,
  type WebhookConnector,
} from "./connector.js";
export {
  WebhookAddressRefusedError,
  WebhookDeliveryError,
  WebhookNotFoundError,
  WebhookPayloadTooLargeError,
  WebhookReplayedError,
  WebhookVerificationError,
  type WebhookVerificationCode,
} from "./errors.js";
export {
  createWebhookReceiver,
  type ReceivedWebhook,
  type ReceiveResult,
  type ReceiverContext,
  type WebhookReceiver,
  type WebhookReceiverOptions,
  type WebhookVerifier,
} from "./receiver.js";
export { webhookReceiver } from "./receiver-node.js";
export {
  webhookReceiverFastify,
  type FastifyWebhookInstanceLike,
  type FastifyWebhookReceiverOptions,
  type FastifyWebhookReplyLike,
  type FastifyWebhookRequestLike,
} from "./receiver-fastify.js";
