import { PatchbayError } from "../core/errors.js";

/**
 * A catalogue or a contract document that cannot be used (`CONTRACT_INVALID`), a schema with no
 * JSON Schema converter (`CONTRACT_SCHEMA_UNCONVERTIBLE`), or a producer's samples / a consumer
 * that does not keep the contract (`CONTRACT_VIOLATED`, with every problem in `problems`).
 */
export class ContractError extends PatchbayError {
  /** The event type concerned, when there is one. */
  readonly eventType: string | undefined;
  /** Every problem found, one line each (a verification reports them all, not only the first). */
  readonly problems: string[];

  constructor(
    code: "CONTRACT_INVALID" | "CONTRACT_SCHEMA_UNCONVERTIBLE" | "CONTRACT_VIOLATED",
    message: string,
    options: { eventType?: string | undefined; problems?: string[]; cause?: unknown } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.eventType = options.eventType;
    this.problems = options.problems ?? [message];
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    CONTRACT_INVALID: ContractError;
    CONTRACT_SCHEMA_UNCONVERTIBLE: ContractError;
    CONTRACT_VIOLATED: ContractError;
  }
}
