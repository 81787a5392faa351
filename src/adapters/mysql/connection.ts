import { InvalidArgumentError } from "../../core/errors.js";
import type { QueryResult } from "../../store/contracts.js";
import { toStoreError } from "./errors.js";
import {
  loadMysql,
  type MysqlPoolConnection,
  type MysqlPoolLike,
  type MysqlQueryable,
  type MysqlResultHeader,
} from "./load.js";

/** How to reach MariaDB/MySQL. */
export interface MysqlConnectionOptions {
  /** `mysql://user:pass@host:3306/database`. Default `PATCHBAY_MYSQL_URL`. */
  url?: string;
  /**
   * Use your own `mysql2/promise` pool instead (not ended by `close()`). Any options: values are
   * read exactly whatever they say, and each connection is in UTC and strict while a sync uses it.
   */
  pool?: MysqlPoolLike;
}

/**
 * The session settings of every connection Patchbay uses (the store's and a sync's), whatever the
 * server's defaults or the caller's pool set:
 * - time zone UTC: MariaDB/MySQL convert TIMESTAMP values to and from the session's zone and
 *   `NOW()` is in it, so a session at +02:00 would read and write every instant two hours off; in
 *   UTC, the zone-less text of a TIMESTAMP is its UTC time;
 * - one SQL mode, not the session's plus ours: strict (without it, a value a column cannot hold is
 *   stored as zero or clipped, with only a warning), and none of the modes that change what a
 *   statement means — `NO_BACKSLASH_ESCAPES` (the driver escapes quotes in values with
 *   backslashes: a tab would arrive as `\t`), `ANSI_QUOTES`, `EMPTY_STRING_IS_NULL`,
 *   `PAD_CHAR_TO_FULL_LENGTH`, `ORACLE`…;
 * - autocommit on: a statement outside a transaction is committed when it returns;
 * - UTF-8 (4-byte) text both ways, so an emoji is never `?` (a literal's collation `utf8mb4_bin`,
 *   as the store's connections are opened; a comparison with a column takes the column's).
 */
export const SESSION_SETTINGS: ReadonlyArray<readonly [variable: string, value: string]> = [
  ["time_zone", "'+00:00'"],
  ["sql_mode", "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"],
  ["autocommit", "1"],
  ["character_set_client", "'utf8mb4'"],
  ["collation_connection", "'utf8mb4_bin'"],
  ["character_set_results", "'utf8mb4'"],
];

/** `SET …` of {@link SESSION_SETTINGS}. */
export const SET_SESSION = `SET ${SESSION_SETTINGS.map(([v, value]) => `${v} = ${value}`).join(", ")}`;
/** Keeps the session's own values in user variables (`@pb_<variable>`), then {@link SET_SESSION}. */
const SAVE_AND_SET_SESSION = `SET ${SESSION_SETTINGS.map(([v]) => `@pb_${v} = @@session.${v}`).join(", ")}, ${SESSION_SETTINGS.map(([v, value]) => `${v} = ${value}`).join(", ")}`;
/** Gives a caller's session its own values back. */
const RESTORE_SESSION = `SET ${SESSION_SETTINGS.map(([v]) => `${v} = @pb_${v}`).join(", ")}`;

/**
 * A lazily created pool, its sessions set as {@link SESSION_SETTINGS} says. With the caller's own
 * `pool`, each connection taken by {@link acquire} is switched to those settings and back to its
 * own when released.
 */
export function lazyPool(options: MysqlConnectionOptions, max: number) {
  let pool: MysqlPoolLike | undefined;
  const own = options.pool === undefined;
  const get = async (): Promise<MysqlPoolLike> => {
    if (!pool) {
      const uri = options.url ?? process.env.PATCHBAY_MYSQL_URL;
      if (!options.pool && !uri) {
        throw new InvalidArgumentError(
          "give url (mysql://user@host:3306/db), pool, or set PATCHBAY_MYSQL_URL",
          "url",
        );
      }
      if (options.pool) pool = options.pool;
      else {
        pool = (await loadMysql()).createPool({
          uri: uri,
          connectionLimit: max,
          dateStrings: true,
          supportBigNumbers: true,
          bigNumberStrings: true,
          decimalNumbers: false,
          jsonStrings: true,
        });
        // Queued on the new connection before anything else is sent on it.
        pool.pool.on("connection", (c) => {
          c.query(SET_SESSION, (e: Error | null) => {
            if (e) c.destroy();
          });
        });
      }
    }
    return pool;
  };
  return {
    get,
    /**
     * A connection whose session is in UTC and strict. `release()` gives it back (a caller's pooled
     * session with its own zone and mode again; destroyed when that fails).
     */
    async acquire(): Promise<{
      conn: MysqlPoolConnection;
      release: () => Promise<void>;
      /** SQL for the zone the connection's applications write in: the server's default, or the caller's session's. */
      ownZone: string;
    }> {
      const db = await get(); // DRIVER_MISSING (or INVALID_ARGUMENT) as it is, not as a query error
      let conn: MysqlPoolConnection;
      try {
        conn = await db.getConnection();
      } catch (e) {
        throw toStoreError(e, "(connect)");
      }
      if (own) return { conn, release: () => Promise.resolve(conn.release()), ownZone: "DEFAULT" };
      try {
        await conn.query(SAVE_AND_SET_SESSION);
      } catch (e) {
        conn.destroy();
        throw toStoreError(e, "(set the session time zone and mode)");
      }
      return {
        conn,
        ownZone: "@pb_time_zone",
        release: async () => {
          try {
            await conn.query(RESTORE_SESSION);
            conn.release();
          } catch {
            conn.destroy();
          }
        },
      };
    },
    async close() {
      const p = pool;
      pool = undefined;
      if (p && own) await p.end();
    },
  };
}

/**
 * How a source reads rows, whatever the pool's own options: dates and times as MySQL's text
 * (exact to the microsecond, never a JS Date), big integers as strings, and DECIMAL and JSON as
 * their text (`decimalNumbers` would round a DECIMAL; JSON.parse would round
 * 12345678901234567890 and turn the JSON string `"a"` into the bare text `a`).
 */
export const EXACT_READ = {
  dateStrings: true,
  supportBigNumbers: true,
  bigNumberStrings: true,
  typeCast(
    field: { type: string; extendedFormat?: string; string(encoding?: string): string | null },
    next: () => unknown,
  ) {
    if (field.type === "JSON" || field.extendedFormat === "json") return field.string("utf8");
    if (field.type === "NEWDECIMAL" || field.type === "DECIMAL") return field.string("ascii");
    return next();
  },
} as const;

type Queryable = MysqlQueryable;

/** Runs one statement; a result set becomes `rows`, an OK packet `rowCount` (affected rows). */
export async function run<Row>(
  on: Queryable,
  text: string,
  params: readonly unknown[] = [],
  read: Partial<typeof EXACT_READ> = {},
  standardState = false,
): Promise<QueryResult<Row>> {
  try {
    const [result] = await on.query({ sql: text, values: params as unknown[], ...read });
    if (Array.isArray(result)) return { rows: result as Row[], rowCount: result.length };
    return { rows: [], rowCount: (result as MysqlResultHeader).affectedRows };
  } catch (e) {
    throw toStoreError(e, text, standardState);
  }
}
