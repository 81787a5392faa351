/**
 * `patchbay/postgres`: the production store on PostgreSQL (via `pg`). Patchbay's tables live in
 * their own schema (default `patchbay`); user SQL in `tx.query` runs on the same connection and
 * commits in the same transaction.
 */
import { createSqlStore, type SqlStore, type SqlStoreOptions } from "../../store/sql-store.js";
import { postgresDriver, type PostgresDriverOptions } from "./driver.js";

export { postgresMigrations } from "./migrations.js";
export type { PostgresDriverOptions } from "./driver.js";
export type {
  PgPoolLike,
  PgPoolClient,
  PgQueryable,
  PgQueryConfig,
  PgResult,
  PgSubmittable,
  PgTypeParsers,
} from "./load.js";
export { postgresSource, type PostgresSourceOptions } from "./sync-source.js";
export { postgresDestination, type PostgresDestinationOptions } from "./sync-destination.js";

/** Options of {@link postgres}. */
export interface PostgresStoreOptions extends PostgresDriverOptions, SqlStoreOptions {}

/**
 * A Store on PostgreSQL.
 *
 * User SQL in `tx.query` uses PostgreSQL syntax and `$1` placeholders.
 *
 * @example
 * const store = postgres({ url: process.env.DATABASE_URL, schema: "patchbay" });
 * await store.open();
 */
export function postgres(options: PostgresStoreOptions = {}): SqlStore {
  return createSqlStore(postgresDriver(options), options);
}
export { postgresChanges, type PostgresChangesOptions } from "./cdc/source.js";
export type { SlotInfo } from "./cdc/slots.js";
export {
  CdcLagExceededError,
  CdcNoSlotsError,
  CdcReplicaIdentityError,
  CdcSlotMissingError,
  CdcStreamError,
  CdcWalLevelError,
} from "./cdc/errors.js";
