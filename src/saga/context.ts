import type { BusTx } from "../bus/bus.js";
import type { Logger } from "../core/logger.js";

/**
 * The transaction a `transaction: true` step runs in: the step's writes (`tx.query`, `tx.state`)
 * and its checkpoint commit together, or not at all. With a bus, `tx.publish` joins it too.
 */
export type SagaTx = BusTx;

/** What a step's `run` and `compensate` get besides their argument. */
export interface StepContext {
  /** The saga instance id. */
  readonly sagaId: string;
  /** The saga's name. */
  readonly sagaName: string;
  /** The step's name. */
  readonly step: string;
  /** `"run"` in `run`, `"compensate"` in `compensate`. */
  readonly phase: "run" | "compensate";
  /**
   * Stable across retries, crashes and restarts: `<sagaId>:<step>` in `run`,
   * `<sagaId>:<step>:compensate` in `compensate` (a refund must not reuse the charge's key).
   * Pass it to external APIs (`Idempotency-Key`) so a repeated attempt is not applied twice.
   */
  readonly idempotencyKey: string;
  /** 1 on the first attempt; counts retries and attempts cut short by a crash. */
  readonly attempt: number;
  /**
   * Aborts when the step's `timeout` or the saga's deadline passes, when the runner stops past its
   * drain timeout, or when this worker lost the instance's lease. Pass it on (`fetch(url, { signal })`).
   */
  readonly signal: AbortSignal;
  /**
   * The store transaction of a step declared with `transaction: true`: its writes and the step's
   * recorded outcome commit together — an exactly-once effect. Reading it in any other step
   * throws `SAGA_NO_TRANSACTION`.
   */
  readonly tx: SagaTx;
  /** Results of the steps that ran before, by step name (as stored: JSON). */
  readonly results: Readonly<Record<string, unknown>>;
  readonly logger: Logger;
}
