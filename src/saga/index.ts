/**
 * Sagas: durable orchestration with compensation. Steps run in order on workers that claim
 * instances with a lease; when a step fails for good, the completed steps are compensated in
 * reverse; a saga that cannot compensate is `failed` (stuck), published as `patchbay.saga.failed`,
 * and waits for a person (`retry`, `skip`, `resolve`).
 */
export {
  defineSaga,
  saga,
  isSagaDefinition,
  type AnySagaDefinition,
  type ResolvedStep,
  type SagaDefinition,
  type SagaOptions,
  type SagaStep,
} from "./definition.js";
export type { SagaTx, StepContext } from "./context.js";
export {
  createSagaRunner,
  type SagaHandle,
  type SagaRunner,
  type SagaRunnerOptions,
  type StartedSaga,
  type StartSagaOptions,
  type StopSagaRunnerOptions,
  type WaitOptions,
} from "./runner.js";
export type {
  SagaBulkAction,
  SagaBulkFilter,
  SagaBulkOptions,
  SagaBulkProgress,
  SagaBulkResult,
  SagaBulkSkip,
} from "./bulk.js";
export type { ResolveOptions, SkipOptions } from "./operator.js";
export type { SagaRetryOptions } from "./policy.js";
export {
  SAGA_STATUSES,
  type SagaDetails,
  type SagaErrorInfo,
  type SagaFault,
  type SagaFilter,
  type SagaInstance,
  type SagaPhase,
  type SagaStatus,
  type SagaStepRecord,
  type SagaStepStatus,
} from "./records.js";
export { SagaFailed, type SagaFailedData } from "./events.js";
export {
  SagaDeadlineError,
  SagaError,
  SagaStepAbandonedError,
  SagaVersionError,
  type SagaErrorCode,
} from "./errors.js";
