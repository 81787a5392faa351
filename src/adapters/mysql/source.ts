import type { Row, SyncSource } from "../../sync/contracts.js";
import { keysetSource, type SqlSourceOptions } from "../../sync/keyset.js";
import { EXACT_READ, lazyPool, run, type MysqlConnectionOptions } from "./connection.js";

/**
 * The run's upper bound for a timestamp cursor. The session is in UTC, but a DATETIME cursor
 * holds whatever its writers' `NOW()` gave: in the server's default zone (or the caller's
 * session's), often not UTC. The earlier of the two clocks is never ahead of either reading, so
 * no row still being written is passed; the cost, on a server not in UTC, is that rows of one
 * kind of column wait up to the zone's offset for a later run.
 */
const TIMESTAMP_BOUND =
  "SELECT CAST(LEAST(NOW(6), @pb_local_now) - INTERVAL (? * 1000) MICROSECOND AS CHAR) AS v";

/** Options of {@link mysqlSource}. */
export interface MysqlSourceOptions extends SqlSourceOptions, MysqlConnectionOptions {}

/**
 * Reads a MariaDB/MySQL table or query in batches by keyset paging (never OFFSET; the keyset
 * comparison is spelt out so InnoDB ranges it on the cursor index). Timestamps are compared by the
 * server's clock minus `safetyLag`: the earlier of UTC's and the writers' zone's (see
 * {@link TIMESTAMP_BOUND}). Every value is read exactly,
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
        const { conn, release, ownZone } = await pool.acquire();
        try {
          if (text === TIMESTAMP_BOUND) {
            // The clock in the zone the table's writers use, then back to UTC.
            await run(conn, `SET time_zone = ${ownZone}`);
            await run(conn, "SET @pb_local_now = NOW(6)");
            await run(conn, "SET time_zone = '+00:00'");
          }
          return (await run<Row>(conn, text, params, EXACT_READ)).rows;
        } finally {
          await release();
        }
      },
      upperBoundSql: (type) =>
        type === "timestamp"
          ? TIMESTAMP_BOUND
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
