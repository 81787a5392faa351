/**
 * `patchbay/adapter`: what an adapter written outside this repository needs — `createSqlStore`
 * over a {@link StoreDriver}, the dialect and role interfaces its statements fill in, shared
 * statement sets to start from and the store's typed errors. The conformance suites that prove an
 * adapter are in `patchbay/adapter/conformance` (they run under the author's own vitest, an
 * optional peer), so an adapter's runtime never loads vitest.
 *
 * @example
 * import { createSqlStore, sharedRoles, type StoreDriver } from "patchbay/adapter";
 * declare const driver: StoreDriver;
 * const store = createSqlStore(driver);
 */
export {
  createSqlStore,
  runFirstAndLast,
  type DriverTransactionOptions,
  type LazyTransactionOptions,
  type SqlStore,
  type SqlStoreOptions,
  type StoreDriver,
} from "../store/sql-store.js";
export type { SqlDialect } from "../store/dialect.js";
export { run, int, PREPARED, column, quoteColumn } from "../store/dialect.js";
export type {
  ClaimSpec,
  InboxRoles,
  JobRef,
  LockRoles,
  NotifyRoles,
  OutcomeFence,
  QueueRoles,
  RowRoles,
  SagaRoles,
  StepValues,
  StoreRoles,
  UpdateSpec,
  UpsertWhenSpec,
} from "../store/roles.js";
export {
  sharedRoles,
  sharedRowRoles,
  sharedInboxRoles,
  sharedQueueRoles,
  serialLocks,
} from "../adapters/shared/roles.js";
export type {
  QueryOptions,
  QueryResult,
  SqlExecutor,
  Store,
  StoreCapabilities,
  StoreHealth,
  StoreTx,
  TransactionOptions,
} from "../store/contracts.js";
export {
  assertMigrationList,
  type Migration,
  type MigrationHost,
  type MigrationTx,
  type MigrationReport,
} from "../store/migrations.js";
export {
  sql,
  join,
  joinWith,
  raw,
  render,
  quoteIdentifier,
  type SqlStatement,
  type RawSql,
} from "../store/sql.js";
export { patternMigrations, type ColumnTypes } from "../store/pattern-tables.js";
export { StoreQueryError, StoreUnavailableError, TransactionRolledBackError } from "../store/errors.js";
