import type { Row, SyncSource } from "../../sync/contracts.js";
import { keysetSource, type SqlSourceOptions } from "../../sync/keyset.js";
import { EXACT_READ, lazyPool, run, type MysqlConnectionOptions } from "./connection.js";

/** Options of {@link mysqlSource}. */
export interface MysqlSourceOptions extends SqlSourceOptions, MysqlConnectionOptions {}

/**
 * Reads a MariaDB/MySQL table or query in batches by keyset paging (never OFFSET; the keyset
 * comparison is spelt out so InnoDB ranges it on the cursor index). Timestamps are compared by the
 * server's clock (`NOW(6)` minus `safetyLag`, in a UTC session). Every value is read exactly,
 * whatever the pool's options: dates and times, DECIMAL and JSON as their text, BIGINT as a
 * string; TIMESTAMP as its UTC time (the session is in UTC while the source uses it).
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
      async query(text, params) {
        const { conn, release } = await pool.acquire();
        try {
          return (await run<Row>(conn, text, params, EXACT_READ)).rows;
        } finally {
          await release();
        }
      },
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
