/**
 * `patchbay/mysql`: data sync source and destination for MariaDB and MySQL (InnoDB), on
 * `mysql2`. Install `mysql2` (>= 3.9) next to `patchbay`.
 */
export { mysqlSource, type MysqlSourceOptions } from "./source.js";
export { mysqlDestination, mysqlDateTime, type MysqlDestinationOptions } from "./destination.js";
export type { MysqlConnectionOptions } from "./connection.js";
export type { MysqlPoolLike, MysqlPoolConnection, MysqlQueryable } from "./load.js";
