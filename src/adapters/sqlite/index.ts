/**
 * `patchbay/sqlite`: the embedded default. One file, no server: WAL mode, a busy timeout for
 * other processes, every commit synced (configurable).
 */
import { createSqlStore, type SqlStore, type SqlStoreOptions } from "../../store/sql-store.js";
import { sqliteDriver, type SqliteDriverOptions } from "./driver.js";

export { sqliteMigrations } from "./migrations.js";
export type { SqliteDriverOptions } from "./driver.js";
export {
  sqliteSource,
  sqliteDestination,
  type SqliteSourceOptions,
  type SqliteDestinationOptions,
} from "./sync.js";

/** Options of {@link sqlite}. */
export interface SqliteStoreOptions extends SqliteDriverOptions, SqlStoreOptions {}

/**
 * A Store on a SQLite file (default `.patchbay/patchbay.db`).
 *
 * User SQL in `tx.query` uses SQLite syntax and `?` placeholders.
 *
 * @example
 * const store = sqlite({ file: "data/app.db" });
 * await store.open();
 * await store.transaction(async (tx) => {
 *   await tx.query("insert into orders (id) values (?)", [id]);
 *   await tx.state.set("orders.last", id);
 * });
 */
export function sqlite(options: SqliteStoreOptions = {}): SqlStore {
  return createSqlStore(sqliteDriver(options), options);
}
