import { InvalidArgumentError } from "../../core/errors.js";
import type { QueryResult } from "../../store/contracts.js";
import { toStoreError } from "./errors.js";
import { loadMysql, type MysqlPoolLike, type MysqlQueryable, type MysqlResultHeader } from "./load.js";

/** How to reach MariaDB/MySQL. */
export interface MysqlConnectionOptions {
  /** `mysql://user:pass@host:3306/database`. Default `PATCHBAY_MYSQL_URL`. */
  url?: string;
  /** Use your own `mysql2/promise` pool instead (not ended by `close()`). Its options should include `dateStrings: true`. */
  pool?: MysqlPoolLike;
}

/**
 * A lazily created pool. Dates come back as MySQL's own text (exact to the microsecond) and big
 * integers and decimals as strings, so a sync never rounds a value or a cursor.
 */
export function lazyPool(options: MysqlConnectionOptions, max: number) {
  let pool: MysqlPoolLike | undefined;
  return {
    async get(): Promise<MysqlPoolLike> {
      if (!pool) {
        const uri = options.url ?? process.env.PATCHBAY_MYSQL_URL;
        if (!options.pool && !uri) {
          throw new InvalidArgumentError(
            "give url (mysql://user@host:3306/db), pool, or set PATCHBAY_MYSQL_URL",
            "url",
          );
        }
        pool =
          options.pool ??
          (await loadMysql()).createPool({
            uri: uri,
            connectionLimit: max,
            dateStrings: true,
            supportBigNumbers: true,
            bigNumberStrings: true,
            decimalNumbers: false,
          });
      }
      return pool;
    },
    async close() {
      const p = pool;
      pool = undefined;
      if (p && !options.pool) await p.end();
    },
  };
}

type Queryable = MysqlQueryable;

/** Runs one statement; a result set becomes `rows`, an OK packet `rowCount` (affected rows). */
export async function run<Row>(
  on: Queryable,
  text: string,
  params: readonly unknown[] = [],
): Promise<QueryResult<Row>> {
  try {
    const [result] = await on.query(text, params as unknown[]);
    if (Array.isArray(result)) return { rows: result as Row[], rowCount: result.length };
    return { rows: [], rowCount: (result as MysqlResultHeader).affectedRows };
  } catch (e) {
    throw toStoreError(e, text);
  }
}
