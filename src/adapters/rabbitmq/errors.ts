import { PatchbayError, type PatchbayErrorOptions } from "../../core/errors.js";

/**
 * RabbitMQ could not be reached (`RABBITMQ_UNAVAILABLE`, retryable), or it holds a queue or
 * exchange of ours declared with other arguments (`RABBITMQ_TOPOLOGY_CONFLICT`, not retryable:
 * e.g. a group queue made with another `deliveryLimit`; delete it or keep the old setting).
 */
export class RabbitmqError extends PatchbayError {
  constructor(
    code: "RABBITMQ_UNAVAILABLE" | "RABBITMQ_TOPOLOGY_CONFLICT",
    message: string,
    options: PatchbayErrorOptions = {},
  ) {
    super(code, message, { retryable: code === "RABBITMQ_UNAVAILABLE", ...options });
  }
}

declare module "../../core/errors.js" {
  interface PatchbayErrorCodes {
    RABBITMQ_UNAVAILABLE: RabbitmqError;
    RABBITMQ_TOPOLOGY_CONFLICT: RabbitmqError;
  }
}

/** The AMQP reply code of an amqplib error (406 PRECONDITION_FAILED, 404 NOT_FOUND, ...), if any. */
export function amqpCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Wraps a declaration failure: 406 means our topology conflicts with what the broker holds. */
export function toTopologyError(e: unknown, what: string): unknown {
  if (amqpCode(e) !== 406) return e;
  return new RabbitmqError(
    "RABBITMQ_TOPOLOGY_CONFLICT",
    `RabbitMQ refused to declare ${what}: ${(e as Error).message}`,
    { cause: e },
  );
}
