import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/** Codes of {@link SagaError}. */
export type SagaErrorCode =
  | "SAGA_NOT_FOUND"
  | "SAGA_ID_CONFLICT"
  | "SAGA_STATE_INVALID"
  | "SAGA_LEASE_LOST"
  | "SAGA_NO_TRANSACTION"
  | "SAGA_NO_BUS"
  | "SAGA_RESULT_INVALID";

/**
 * A saga operation that cannot be done: no such instance, an id taken by another saga, an
 * operator action the instance's status does not allow, a lost lease, a stopped runner.
 */
export class SagaError extends PatchbayError {
  constructor(
    code: SagaErrorCode,
    message: string,
    /** The saga instance concerned, when there is one. */
    readonly sagaId: string | undefined,
    options: PatchbayErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/**
 * An instance was started with a definition version this code does not have (it was removed, or
 * the instance was started by newer code). The instance is marked `failed` with this error instead
 * of being retried: deploy code that has the version, then `retry` it.
 */
export class SagaVersionError extends PatchbayError {
  constructor(
    readonly sagaId: string,
    /** The saga's name. */
    readonly sagaName: string,
    /** The version the instance was started with. */
    readonly version: number,
    /** The versions of this saga the running code has. */
    readonly knownVersions: readonly number[],
  ) {
    super(
      "SAGA_VERSION_UNKNOWN",
      `saga ${JSON.stringify(sagaName)} instance ${JSON.stringify(sagaId)} was started with version ${version}, which this code does not have (it has ${knownVersions.length === 0 ? "none" : knownVersions.join(", ")}); deploy code with that version, then retry the instance`,
    );
  }
}

/** The saga's deadline passed before it completed: it compensates. Not retryable. */
export class SagaDeadlineError extends PatchbayError {
  constructor(
    readonly sagaId: string,
    /** The deadline, ms since the epoch. */
    readonly deadline: number,
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super(
      "SAGA_DEADLINE",
      `saga ${JSON.stringify(sagaId)} passed its deadline ${new Date(deadline).toISOString()}`,
      options,
    );
  }
}

/**
 * A step's attempt never reported an outcome (the worker running it died or lost its lease) and
 * no attempts are left: treated as the step's last failure, so a step that kills its worker cannot
 * loop forever.
 */
export class SagaStepAbandonedError extends PatchbayError {
  constructor(
    readonly sagaId: string,
    /** The step's name. */
    readonly step: string,
    /** Attempts started, the abandoned one included. */
    readonly attempts: number,
  ) {
    super(
      "SAGA_STEP_ABANDONED",
      `step ${JSON.stringify(step)} of saga ${JSON.stringify(sagaId)}: attempt ${attempts - 1} never reported an outcome (its worker died or lost its lease) and no attempts are left`,
    );
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    SAGA_NOT_FOUND: SagaError;
    SAGA_ID_CONFLICT: SagaError;
    SAGA_STATE_INVALID: SagaError;
    SAGA_LEASE_LOST: SagaError;
    SAGA_NO_TRANSACTION: SagaError;
    SAGA_NO_BUS: SagaError;
    SAGA_RESULT_INVALID: SagaError;
    SAGA_VERSION_UNKNOWN: SagaVersionError;
    SAGA_DEADLINE: SagaDeadlineError;
    SAGA_STEP_ABANDONED: SagaStepAbandonedError;
  }
}
