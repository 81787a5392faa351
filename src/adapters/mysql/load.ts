/**
 * `mysql2`, imported when a source or destination first connects, and the part of its promise
 * API this adapter uses, declared here as structural types: Patchbay's published types name no
 * driver type, so an app's strict `tsc` does not read mysql2's. The loader below checks, at our
 * compile time, that the real module fits these types.
 */
import { driverLoader } from "../load-driver.js";

/** What a statement that changes rows returns (`mysql2`'s `ResultSetHeader`). */
export interface MysqlResultHeader {
  affectedRows: number;
  /** `Records: 3  Duplicates: 1  Warnings: 0` after a multi-row INSERT. */
  info: string;
  /** How many warnings the statement raised (`SHOW WARNINGS` lists them). */
  warningStatus?: number;
}

/** A column as a `typeCast` function sees it. */
export interface MysqlField {
  type: string;
  extendedFormat?: string;
  string(encoding?: string): string | null;
}

/** A statement with per-query read options (`mysql2`'s `QueryOptions`, the parts Patchbay sets). */
export interface MysqlQueryOptions {
  sql: string;
  values?: unknown[];
  dateStrings?: boolean;
  supportBigNumbers?: boolean;
  bigNumberStrings?: boolean;
  typeCast?: (field: MysqlField, next: () => unknown) => unknown;
}

/** Runs statements: `[result, fields]`, the result rows or a {@link MysqlResultHeader}. */
export interface MysqlQueryable {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  query(options: MysqlQueryOptions): Promise<[unknown, unknown]>;
}

/** A connection checked out of a pool. */
export interface MysqlPoolConnection extends MysqlQueryable {
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  destroy(): void;
  release(): void;
}

/**
 * A `mysql2/promise` pool, as the `pool` option takes it: any `mysql.createPool(...)` from
 * `mysql2/promise` (≥ 3.9). Declared here so that Patchbay's types do not need mysql2's.
 */
export interface MysqlPoolLike extends MysqlQueryable {
  getConnection(): Promise<MysqlPoolConnection>;
  end(): Promise<void>;
  /** The callback pool underneath: its `connection` event sees each new connection first. */
  pool: {
    on(
      event: "connection",
      listener: (connection: {
        query(sql: string, callback: (e: Error | null) => void): unknown;
        destroy(): void;
      }) => void,
    ): unknown;
  };
}

/** The `mysql2/promise` module. */
export interface MysqlModule {
  createPool(config: Record<string, unknown>): MysqlPoolLike;
}

/**
 * Imports `mysql2/promise` (once); `DRIVER_MISSING` with `npm install mysql2` when it is not
 * installed. Typed against mysql2's own types here: the compiler checks that it fits {@link MysqlModule}.
 */
export const loadMysql = driverLoader<MysqlModule>({
  driver: "mysql2",
  range: ">= 3.9",
  neededBy: "patchbay/mysql",
  load: async () => (await import("mysql2/promise")).default,
});
