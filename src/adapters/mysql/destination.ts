import type { Row, SyncDestination } from "../../sync/contracts.js";
import { quoteName, quoteTable, type TableName } from "../../sync/identifiers.js";
import {
  sqlDestination,
  type DestinationConnection,
  type DestinationTx,
  type LoadRequest,
  type SqlDestinationOptions,
} from "../../sync/sql-destination.js";
import { lazyPool, run, type MysqlConnectionOptions } from "./connection.js";
import { toStoreError } from "./errors.js";
import type { MysqlPoolConnection, MysqlResultHeader } from "./load.js";

/** Options of {@link mysqlDestination}. */
export interface MysqlDestinationOptions extends SqlDestinationOptions, MysqlConnectionOptions {}

const q = (t: TableName) => quoteTable(t, "backtick");
const c = (name: string) => quoteName(name, "backtick", "column");

function columnType(sample: unknown, isKey: boolean): string {
  if (typeof sample === "number") return Number.isInteger(sample) && isKey ? "BIGINT" : "DOUBLE";
  if (typeof sample === "bigint") return "DECIMAL(65,0)";
  if (typeof sample === "boolean") return "BOOLEAN";
  if (sample instanceof Date) return "DATETIME(6)";
  if (sample instanceof Uint8Array) return "LONGBLOB";
  if (typeof sample === "object" && sample !== null) return "JSON";
  return isKey ? "VARCHAR(191)" : "LONGTEXT";
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");
const ZONED = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * A date/time for a DATETIME/TIMESTAMP column, as `YYYY-MM-DD HH:MM:SS.ffffff`: JS Dates and
 * strings with a zone (`...Z`, `...+02`) are converted to UTC; the fraction's digits are kept.
 */
export function mysqlDateTime(value: unknown): unknown {
  if (value instanceof Date) {
    return `${value.getUTCFullYear()}-${pad(value.getUTCMonth() + 1)}-${pad(value.getUTCDate())} ${pad(value.getUTCHours())}:${pad(value.getUTCMinutes())}:${pad(value.getUTCSeconds())}.${pad(value.getUTCMilliseconds(), 3)}`;
  }
  if (typeof value !== "string") return value;
  const m = ZONED.exec(value.trim());
  if (!m) return value;
  const [, y, mo, d, h, mi, s, fraction = "", zone] = m;
  if (!zone) return `${y}-${mo}-${d} ${h}:${mi}:${s}${fraction}`;
  let offsetMin = 0;
  if (zone.toUpperCase() !== "Z") {
    const digits = zone.replace(":", "");
    offsetMin =
      (digits[0] === "-" ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || 0));
  }
  const utc = new Date(
    Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offsetMin * 60_000,
  );
  return `${utc.getUTCFullYear()}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())} ${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}${fraction}`;
}

function bindable(value: unknown, temporal: boolean): unknown {
  if (temporal) return mysqlDateTime(value);
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (
    typeof value === "object" &&
    value !== null &&
    !(value instanceof Date) &&
    !(value instanceof Uint8Array)
  ) {
    return JSON.stringify(value);
  }
  return value;
}

function connection(conn: MysqlPoolConnection): DestinationConnection {
  const described = new Map<string, Map<string, string>>();
  const query = <R>(text: string, params: readonly unknown[] = []) => run<R>(conn, text, params);

  const describe = async (table: TableName) => {
    const cached = described.get(q(table));
    if (cached) return cached;
    const { rows } = await query<{ name: string; type: string }>(
      "SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
      [table.schema ?? null, table.name],
    );
    if (rows.length === 0) return undefined;
    const columns = new Map(rows.map((r) => [r.name, String(r.type).toLowerCase()]));
    described.set(q(table), columns);
    return columns;
  };

  const load = async (request: LoadRequest) => {
    const types = (await describe(request.table)) ?? new Map<string, string>();
    const temporal = request.columns.map((n) => ["datetime", "timestamp"].includes(types.get(n) ?? ""));
    const updates = request.columns.filter((n) => !request.key.includes(n));
    let action = "";
    if (request.mode === "merge") {
      const v = request.version;
      // MySQL applies the assignments left to right, so the version column goes last: the
      // condition must see the stored version, not the new one.
      const ordered = v ? [...updates.filter((n) => n !== v), ...updates.filter((n) => n === v)] : updates;
      const when = v ? `${c(v)} IS NULL OR VALUES(${c(v)}) > ${c(v)}` : undefined;
      const set = ordered.map((n) =>
        when ? `${c(n)} = IF(${when}, VALUES(${c(n)}), ${c(n)})` : `${c(n)} = VALUES(${c(n)})`,
      );
      const keyCol = c(request.key[0] as string);
      action = ` ON DUPLICATE KEY UPDATE ${set.length ? set.join(", ") : `${keyCol} = ${keyCol}`}`;
    }
    const text = `INSERT INTO ${q(request.table)} (${request.columns.map(c).join(", ")}) VALUES ?${action}`;
    let changed = 0;
    for (let i = 0; i < request.rows.length; i += 1000) {
      const values = request.rows
        .slice(i, i + 1000)
        .map((row: Row) => request.columns.map((n, j) => bindable(row[n], temporal[j] as boolean)));
      try {
        const [result] = (await conn.query(text, [values])) as [MysqlResultHeader, unknown];
        // mysql2 connects with CLIENT_FOUND_ROWS: affectedRows counts an insert 1, a key hit 1, and a
        // key hit that changed the row 1 more. "Duplicates" in `info` counts the key hits.
        const duplicates = Number(/Duplicates:\s*(\d+)/.exec(result.info ?? "")?.[1] ?? 0);
        const inserted = values.length - duplicates;
        changed +=
          request.mode === "merge"
            ? inserted + Math.max(0, result.affectedRows - inserted - duplicates)
            : result.affectedRows;
      } catch (e) {
        throw toStoreError(e, text);
      }
    }
    return changed;
  };

  const tx: DestinationTx = {
    query,
    load,
    async swapIn(target, stage, key) {
      const columns = [...((await describe(target)) ?? new Map<string, string>()).keys()];
      const on = key.map((k) => `s.${c(k)} = t.${c(k)}`).join(" AND ");
      const deleted = await query(
        `DELETE t FROM ${q(target)} t LEFT JOIN ${q(stage)} s ON ${on} WHERE s.${c(key[0] as string)} IS NULL`,
      );
      const cols = columns.map(c).join(", ");
      const updates = columns.filter((n) => !key.includes(n));
      const keyCol = c(key[0] as string);
      const set = updates.length
        ? updates.map((n) => `${c(n)} = VALUES(${c(n)})`).join(", ")
        : `${keyCol} = ${keyCol}`;
      const written = await query(
        `INSERT INTO ${q(target)} (${cols}) SELECT ${cols} FROM ${q(stage)} ON DUPLICATE KEY UPDATE ${set}`,
      );
      return { written: written.rowCount, deleted: deleted.rowCount };
    },
  };

  return {
    query,
    describe,
    async transaction(fn) {
      try {
        await conn.beginTransaction();
      } catch (e) {
        throw toStoreError(e, "BEGIN");
      }
      try {
        const result = await fn(tx);
        await conn.commit();
        return result;
      } catch (e) {
        await conn.rollback().catch(() => conn.destroy());
        throw e;
      }
    },
    async prepareStage(target, stage, _key, resume) {
      if (resume && (await describe(stage))) return true;
      described.delete(q(stage));
      // DDL commits on its own in MySQL: this runs outside any batch transaction.
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
      await query(`CREATE TABLE ${q(stage)} LIKE ${q(target)}`);
      return false;
    },
    async dropStage(stage) {
      described.delete(q(stage));
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
    },
    invalidate: () => described.clear(),
    close: () => Promise.resolve(conn.release()),
  };
}

/**
 * Writes rows into a MariaDB/MySQL (InnoDB) table: multi-row `INSERT ... ON DUPLICATE KEY
 * UPDATE` in one transaction with the pipeline's checkpoint and quarantined rows.
 *
 * @example mysqlDestination({ url, table: "orders", key: "id", version: "updated_at" })
 */
export function mysqlDestination(options: MysqlDestinationOptions): SyncDestination {
  const pool = lazyPool(options, 4);
  return sqlDestination(
    {
      quote: "backtick",
      placeholder: () => "?",
      rowValues: false,
      columnType,
      metaDdl: (checkpoints, quarantine) => [
        `CREATE TABLE IF NOT EXISTS ${checkpoints} (pipeline VARCHAR(191) NOT NULL, target VARCHAR(191) NOT NULL, checkpoint LONGTEXT NULL, owner VARCHAR(64) NULL, seq BIGINT NOT NULL DEFAULT 0, updated_at BIGINT NOT NULL, PRIMARY KEY (pipeline, target)) ENGINE=InnoDB`,
        `CREATE TABLE IF NOT EXISTS ${quarantine} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, pipeline VARCHAR(191) NOT NULL, run_id VARCHAR(64) NOT NULL, reason VARCHAR(32) NOT NULL, error LONGTEXT NOT NULL, row_data LONGTEXT NOT NULL, created_at BIGINT NOT NULL) ENGINE=InnoDB`,
      ],
      async connect() {
        const db = await pool.get(); // DRIVER_MISSING as it is, not as a query error
        try {
          return connection(await db.getConnection());
        } catch (e) {
          throw toStoreError(e, "(connect)");
        }
      },
      close: () => pool.close(),
    },
    options,
    "mysql",
  );
}
