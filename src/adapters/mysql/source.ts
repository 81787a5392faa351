import type { Row, SyncSource } from "../../sync/contracts.js";
import { keysetSource, type SqlSourceOptions } from "../../sync/keyset.js";
import { lazyPool, run, type MysqlConnectionOptions } from "./connection.js";

/** Options of {@link mysqlSource}. */
export interface MysqlSourceOptions extends SqlSourceOptions, MysqlConnectionOptions {}

/**
 * Reads a MariaDB/MySQL table or query in batches by keyset paging (never OFFSET; the keyset
 * comparison is spelt out so InnoDB ranges it on the cursor index). Timestamps are compared by the
 * server's clock (`NOW(6)` minus `safetyLag`) and come back as exact text.
 *
 * @example mysqlSource({ url: "mysql://root@127.0.0.1:3306/shop", table: "orders", cursor: "updated_at", key: "id" })
 */
export function mysqlSource(options: MysqlSourceOptions): SyncSource {
  const pool = lazyPool(options, 2);
  return keysetSource(
    {
      quote: "backtick",
      placeholder: () => "?",
      rowValues: false,
      query: async (text, params) => (await run<Row>(await pool.get(), text, params)).rows,
      upperBoundSql: (type) =>
        type === "timestamp"
          ? "SELECT CAST(NOW(6) - INTERVAL (? * 1000) MICROSECOND AS CHAR) AS v"
          : "SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) - ? AS v",
      minusSql: (type) =>
        type === "timestamp"
          ? "SELECT CAST(CAST(? AS DATETIME(6)) - INTERVAL (? * 1000) MICROSECOND AS CHAR) AS v"
          : "SELECT CAST(? AS SIGNED) - ? AS v",
      close: () => pool.close(),
    },
    options,
    "mysql",
  );
}
