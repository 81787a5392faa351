/** HTTP: the `Idempotency-Key` server middleware (and, next, the resilient client). */
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
