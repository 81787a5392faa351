/** HTTP: the resilient client and the `Idempotency-Key` server middleware. */
export {
  createIdempotencyGate,
  requestFingerprint,
  type IdempotencyDecision,
  type IdempotencyKeyOptions,
  type IdempotencyRequest,
  type StoredResponse,
} from "./idempotency.js";
export { idempotencyKey, type NodeIdempotencyKeyOptions } from "./idempotency-node.js";
export {
  idempotencyKeyFastify,
  type FastifyIdempotencyKeyOptions,
  type FastifyInstanceLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
} from "./idempotency-fastify.js";
export {
  httpClient,
  type HttpClient,
  type HttpClientOptions,
  type HttpRequestOptions,
  type HttpResponse,
} from "./client.js";
export { HttpBodyError, HttpError, HttpNetworkError, HttpRedirectError, parseRetryAfter } from "./errors.js";
