import { PatchbayError, type PatchbayErrorOptions } from "../../core/errors.js";

/**
 * NATS could not be reached or JetStream is not enabled on it (`NATS_UNAVAILABLE`, retryable),
 * or it holds a stream or consumer of ours made with settings we cannot take over
 * (`NATS_TOPOLOGY_CONFLICT`, not retryable: e.g. a stream of the prefix's name with other subjects).
 */
export class NatsError extends PatchbayError {
  constructor(
    code: "NATS_UNAVAILABLE" | "NATS_TOPOLOGY_CONFLICT",
    message: string,
    options: PatchbayErrorOptions = {},
  ) {
    super(code, message, { retryable: code === "NATS_UNAVAILABLE", ...options });
  }
}

declare module "../../core/errors.js" {
  interface PatchbayErrorCodes {
    NATS_UNAVAILABLE: NatsError;
    NATS_TOPOLOGY_CONFLICT: NatsError;
  }
}
