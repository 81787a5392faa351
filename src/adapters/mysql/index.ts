/**
 * `patchbay/mysql`: a Store on MariaDB (≥ 10.6, InnoDB), and data sync source and destination for
 * MariaDB and MySQL, on `mysql2`. Install `mysql2` (>= 3.9) next to `patchbay`. (MySQL 8 as a
 * store: see docs/store.md — the bus inbox's record needs `INSERT … RETURNING`, MariaDB's.)
 */
import { createSqlStore, type SqlStore, type SqlStoreOptions } from "../../store/sql-store.js";
import { mysqlDriver, type MysqlDriverOptions } from "./driver.js";

export { mysqlSource, type MysqlSourceOptions } from "./source.js";
export { mysqlDestination, mysqlDateTime, type MysqlDestinationOptions } from "./destination.js";
export type { MysqlConnectionOptions } from "./connection.js";
export type { MysqlPoolLike, MysqlPoolConnection, MysqlQueryable } from "./load.js";
export type { MysqlDriverOptions } from "./driver.js";
export { mysqlMigrations } from "./migrations.js";

/** Options of {@link mysql}. */
export interface MysqlStoreOptions extends MysqlDriverOptions, SqlStoreOptions {}

/**
 * A Store on MariaDB or MySQL (InnoDB). Patchbay's tables live in the URL's database, named with
 * a prefix (default `patchbay_`); user SQL in `tx.query` uses MySQL syntax and `?` placeholders
 * and commits in the same transaction.
 *
 * @example
 * const store = mysql({ url: "mysql://app@127.0.0.1:3306/shop" });
 * await store.open();
 */
export function mysql(options: MysqlStoreOptions = {}): SqlStore {
  return createSqlStore(mysqlDriver(options), options);
}
