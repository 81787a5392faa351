/**
 * `patchbay`: the core (events, CloudEvents envelope, errors, durations, clock, logging) and
 * the Store contracts. Backends live in their own entry points: `patchbay/sqlite`,
 * `patchbay/postgres`; test helpers in `patchbay/testing`.
 */
export * from "./core/index.js";
export type {
  ClaimOptions,
  IdempotencyClaim,
  IdempotencyRecord,
  IdempotencyRef,
  IdempotencyStore,
  QueryResult,
  SqlExecutor,
  StateEntry,
  StateStore,
  Store,
  StoreCapabilities,
  StoreHealth,
  StoreLifecycle,
  StoreTx,
  Transactor,
  TransactionOptions,
} from "./store/contracts.js";
export {
  IdempotencyOwnershipError,
  MigrationError,
  NestedTransactionError,
  StateVersionConflictError,
  StoreClosedError,
  StoreQueryError,
  StoreUnavailableError,
} from "./store/errors.js";
export type { Migration, MigrationReport } from "./store/migrations.js";
export type { SqlStore, SqlStoreOptions, StoreDriver } from "./store/sql-store.js";
export * from "./resilience/index.js";
export * from "./http/index.js";
export * from "./bus/index.js";
export * from "./saga/index.js";
export * from "./webhooks/index.js";
export {
  createPatchbay,
  type Patchbay,
  type PatchbayOptions,
  type PatchbaySagaOptions,
  type PatchbayWebhooksOptions,
} from "./patchbay.js";
export * from "./sync/index.js";
export { createConsole, CONSOLE_HEADER, type ConsoleHandler, type ConsoleOptions } from "./ops/console.js";
export type { ConsoleParts } from "./ops/console-api.js";
export type { AuditEntry } from "./ops/console-audit.js";
export { ConsoleError, type ConsoleErrorCode } from "./ops/console-errors.js";
export { createMetrics, type MetricsOptions, type PatchbayMetrics } from "./ops/metrics.js";
export {
  checkLiveness,
  checkReadiness,
  type HealthCheck,
  type LivenessReport,
  type ReadinessOptions,
  type ReadinessReport,
  type WorkersState,
} from "./ops/health.js";
export {
  metricsHandler,
  opsHandler,
  type OpsHandlerOptions,
  type OpsRequestHandler,
  type OpsSource,
} from "./ops/health-handler.js";
export {
  onMeasurement,
  type MeasurementLabels,
  type MeasurementListener,
  type MeasurementName,
} from "./core/instruments.js";
export * from "./contracts/index.js";
export { changeCapture, type ChangeCapture, type ChangeCaptureOptions } from "./cdc/change-capture.js";
export {
  changeEvents,
  defaultChangeEvent,
  type CapturedChange,
  type ChangeEventMapping,
  type ChangeEvents,
  type ChangeEventsOptions,
} from "./cdc/change-events.js";
