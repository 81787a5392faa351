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
  "SELECT CAST(LEAST(NOW(6), @pb_local_now) - INTERVAL GREATEST(? * 1000, @pb_in_flight_age) MICROSECOND AS CHAR) AS v";
const EPOCH_MS_BOUND =
  "SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) - GREATEST(?, @pb_in_flight_age DIV 1000) AS v";

/**
 * information_schema.innodb_trx is a cache InnoDB refreshes at most every 0.1 s: a transaction
 * that began within the last 0.1 s may not be shown yet. A bound therefore always stays this
 * far (1.1 s: that, and a second of `trx_started`'s truncation) behind the clock, and an
 * observation of a sequence cursor is only trusted by in-flight reads made this long after it.
 */
const UNSEEN_US = 1_100_000;

/**
 * The InnoDB transactions of other sessions whose current database is this one (or none): a
 * transaction of a session in another database is not waited for (it could still write this
 * table by a qualified name: a guess, see docs/sync.md). Needs the PROCESS privilege.
 */
const OPEN_HERE =
  "FROM information_schema.innodb_trx t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND (p.DB IS NULL OR p.DB = DATABASE())";

/**
 * The start of the oldest InnoDB transaction of another session still open, as µs since the
 * epoch (NULL when none). `trx_started` is the server's system-zone time to the second, so it
 * is read in that zone and the reader compares against the second it was truncated to; a row
 * stamped by `NOW()` in a statement that began before its transaction first touched InnoDB may be
 * older still: the bound keeps one more second (see {@link IN_FLIGHT_AGE}).
 */
const IN_FLIGHT_SINCE = `SELECT CAST(MIN(UNIX_TIMESTAMP(trx_started)) * 1000000 AS CHAR) AS since ${OPEN_HERE}`;
/**
 * µs from the oldest open transaction's start to now, plus one second (`trx_started` is
 * truncated to the second); at least {@link UNSEEN_US} when none is shown.
 */
const IN_FLIGHT_AGE = `SET @pb_in_flight_age = GREATEST(${UNSEEN_US}, COALESCE((SELECT CAST((UNIX_TIMESTAMP(NOW(6)) - MIN(UNIX_TIMESTAMP(trx_started)) + 1) * 1000000 AS SIGNED) ${OPEN_HERE}), 0))`;

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
            // The clock in the zone the table's writers use.
            await run(conn, `SET time_zone = ${ownZone}`);
            await run(conn, "SET @pb_local_now = NOW(6)");
          }
          if (text === TIMESTAMP_BOUND || text === EPOCH_MS_BOUND || text === IN_FLIGHT_SINCE) {
            // innodb_trx shows trx_started in the server's system zone; then back to UTC.
            await run(conn, "SET time_zone = 'SYSTEM'");
            try {
              await run(conn, IN_FLIGHT_AGE);
              if (text === IN_FLIGHT_SINCE) return (await run<Row>(conn, text, params, EXACT_READ)).rows;
            } finally {
              await run(conn, "SET time_zone = '+00:00'");
            }
          }
          return (await run<Row>(conn, text, params, EXACT_READ)).rows;
        } finally {
          await release();
        }
      },
      upperBoundSql: (type) => (type === "timestamp" ? TIMESTAMP_BOUND : EPOCH_MS_BOUND),
      async observe(from, column, params) {
        // SYSDATE(6) is read when the row is produced, after the read view was made (NOW(6) is
        // the statement's start, before it).
        const rows = await this.query(
          `SELECT CAST(FLOOR(UNIX_TIMESTAMP(SYSDATE(6)) * 1000000) AS CHAR) AS at, CAST(MAX(${column}) AS CHAR) AS max FROM ${from}`,
          params,
        );
        // Transactions begun just before `at` show in innodb_trx once its cache is refreshed
        // (every 0.1 s at most): no in-flight read is made sooner.
        await new Promise((resolve) => setTimeout(resolve, 150));
        return { at: BigInt(String(rows[0]?.at)), max: rows[0]?.max ?? null };
      },
      async inFlightSince() {
        const rows = await this.query(IN_FLIGHT_SINCE, []);
        const since = rows[0]?.since;
        return since === null || since === undefined ? null : BigInt((since as string).split(".")[0] ?? "0");
      },
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
